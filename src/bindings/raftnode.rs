//! `NativeRaftNode`: one node of the RaftNode API (@ruvector/raft's), on the engine's
//! Raft. Messages to peers go through a JS function (the user's transport, wrapped by
//! `src/js/raftnode.js`) as JSON text; messages from peers come in through
//! `handleRequestVote` / `handleAppendEntries`. Committed proposals and events are
//! queued as JSON lines and JS is woken once per batch to pull them (`poll`).

use super::error::{js_error, rejection, Code};
use super::js::{JsQueue, WakeFn};
use super::runtime::{on_engine, Background};
use crate::consensus::engine::{Parts, RaftConfig, RaftEngine, RaftEvent};
use crate::consensus::machines::node::{self, Names, NodeCommand, NodeMachine};
use crate::consensus::net::{Reply, Request};
use crate::consensus::state_machine::{self as sm, SmEvent};
use crate::consensus::{raft_id, Command, LogStore, NodeId, PeerTransport};
use crate::error::NodeErrorCode as E;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `(JSON { method, peer, request }) => Promise<JSON { ok } | { error }>`; never throws.
type SendFn = ThreadsafeFunction<String, Promise<String>, String, Status, false>;

/// Why a call failed: the seed's code, the message, and the leader for NOT_LEADER.
type Failure = (E, String, Option<String>);

/// A node's engine as `start()` left it: starting, started, or failed to start (why).
type Starting = Arc<Background<Arc<RaftEngine>, Failure>>;

fn fail(code: E, message: impl Into<String>) -> Failure {
    (code, message.into(), None)
}

/// A synchronous call's failure, thrown (JS turns it into a RaftError).
fn thrown((code, message, _): Failure) -> napi::Error<Code> {
    js_error(code, message)
}

fn config_error(m: impl Into<String>) -> napi::Error<Code> {
    thrown(fail(E::ConfigError, m))
}

/// An async call's failure, as its rejection (the seed's code, and the leader for
/// NOT_LEADER).
fn rejected((code, message, leader): Failure) -> napi::Error {
    rejection(code, message, leader)
}

/// What an async call resolves to: `{ ok: true, ...fields }`.
fn answer(v: Value) -> String {
    match v {
        Value::Object(mut m) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m).to_string()
        }
        v => json!({ "ok": true, "value": v }).to_string(),
    }
}

struct JsTransport {
    send: Mutex<Option<Arc<SendFn>>>,
    names: Names,
    me: String,
    out: Arc<JsQueue>,
    /// The last term this node asked for votes in (one voteRequested per election).
    asked: AtomicU64,
    /// Peers whose transport failed, until it answers again (one error each).
    failing: Arc<Mutex<HashSet<String>>>,
}

impl PeerTransport for JsTransport {
    fn call(
        &self,
        target: &NodeId,
        req: Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Reply>> + Send>> {
        let send = self.send.lock().clone();
        let prepared = node::outgoing(&req, &self.names);
        let names = self.names.clone();
        let out = self.out.clone();
        let peer = target.name().to_string();
        if let Request::Vote(r) = &req {
            let term = r.vote.leader_id.term;
            if self.asked.swap(term, Ordering::AcqRel) != term {
                out.push(json!({"type": "voteRequested", "term": term, "candidateId": self.me}));
            }
        }
        let failing = self.failing.clone();
        Box::pin(async move {
            let (method, body, _) = prepared?;
            let r = Self::carry(send, method, &peer, body, &names).await;
            // One `error` event when a peer's transport starts failing, none while it goes on.
            match &r {
                Err(e) if failing.lock().insert(peer.clone()) => {
                    out.push(json!({"type": "error", "code": E::Internal, "message": e.to_string(), "peerId": peer}))
                }
                Ok(_) => {
                    failing.lock().remove(&peer);
                }
                Err(_) => {}
            }
            r
        })
    }
}

impl JsTransport {
    async fn carry(
        send: Option<Arc<SendFn>>,
        method: &'static str,
        peer: &str,
        body: Value,
        names: &Names,
    ) -> io::Result<Reply> {
        {
            let send = send.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, "the node is stopped")
            })?;
            let text = json!({"method": method, "peer": peer, "request": body}).to_string();
            let promise = send
                .call_async(text)
                .await
                .map_err(|e| io::Error::other(format!("the transport could not be called: {e}")))?;
            let answer = promise
                .await
                .map_err(|e| io::Error::other(format!("the transport failed: {e}")))?;
            let v: Value = serde_json::from_str(&answer).map_err(io::Error::other)?;
            if let Some(e) = v.get("error") {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!(
                        "{method} to {peer}: {}",
                        e.as_str().unwrap_or("the transport threw")
                    ),
                ));
            }
            node::incoming(method, &v["ok"], names)
        }
    }
}

/// RaftNode's options (the seed's names).
#[napi(object)]
pub struct RaftNodeOptions {
    pub node_id: String,
    /// The other nodes of the group.
    pub peers: Vec<String>,
    /// @default 150
    pub election_timeout_min: Option<u32>,
    /// @default 300
    pub election_timeout_max: Option<u32>,
    /// @default 50
    pub heartbeat_interval: Option<u32>,
    /// @default 100
    pub max_entries_per_request: Option<u32>,
    /// Where the log and the vote are kept, durably (fsync before a vote or an append
    /// is answered); without it, memory only (see getState / loadState).
    pub data_dir: Option<String>,
    /// A proposal not committed and applied within this many ms rejects with TIMEOUT.
    /// @default 5000
    pub propose_timeout: Option<u32>,
    /// A transport call not answered within this many ms counts as an unreachable peer.
    /// @default the larger of 1000 and electionTimeoutMax
    pub transport_timeout: Option<u32>,
}

#[napi(object)]
pub struct NodeStatus {
    pub role: String,
    pub term: f64,
    pub leader: Option<String>,
    pub commit_index: f64,
}

#[napi]
pub struct NativeRaftNode {
    cfg: RaftConfig,
    peers: Vec<String>,
    names: Names,
    transport: Arc<JsTransport>,
    out: Arc<JsQueue>,
    committed: Arc<Committed>,
    /// The engine: `None` before `start()`; then a channel that gives it (or why it did
    /// not start) once it has opened its dataDir, off Node's thread.
    engine: Mutex<Option<Starting>>,
    preload: Mutex<Option<LogStore>>,
    stopped: AtomicBool,
    propose_timeout: Duration,
}

/// How far the engine has applied the log, for JS to pull committed entries from. The
/// entries themselves are not queued: a slow JS state machine would let them pile up
/// without bound, while the log holds them anyway (it is never compacted here).
#[derive(Default)]
struct Committed {
    index: AtomicU64,
    /// A `committed` wake-up is queued and JS has not pulled since.
    signalled: AtomicBool,
}

fn sink(out: Arc<JsQueue>, committed: Arc<Committed>) -> crate::consensus::engine::EventSink {
    Arc::new(move |e| match e {
        RaftEvent::Role { role, term } => {
            out.push(json!({"type": "role", "role": role, "term": term}))
        }
        RaftEvent::LeaderElected { leader, term } => {
            out.push(json!({"type": "leaderElected", "leaderId": leader, "term": term}))
        }
        // The group runs RaftNode's machine only: its commands are all proposals.
        RaftEvent::State(SmEvent::Applied {
            index,
            command: Command::App(_),
            ..
        }) => {
            committed.index.fetch_max(index, Ordering::AcqRel);
            if !committed.signalled.swap(true, Ordering::AcqRel) {
                out.push(json!({"type": "committed"}));
            }
        }
        RaftEvent::Warning { code, message } => {
            out.push(json!({"type": "error", "code": code, "message": message}))
        }
        _ => {}
    })
}

#[napi]
impl NativeRaftNode {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        o: RaftNodeOptions,
        #[napi(ts_arg_type = "(message: string) => Promise<string>")] send: SendFn,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
    ) -> Result<Self, Code> {
        if o.node_id.is_empty() {
            return Err(config_error("nodeId must be a non-empty string"));
        }
        let mut all: Vec<String> = o
            .peers
            .iter()
            .filter(|p| **p != o.node_id)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        if all.iter().any(|p| p.is_empty()) {
            return Err(config_error("peers must be non-empty node ids"));
        }
        let d = RaftConfig::local(&o.node_id);
        let min = o
            .election_timeout_min
            .map_or(d.election_timeout_min, u64::from);
        let max = o
            .election_timeout_max
            .map_or(d.election_timeout_max, u64::from);
        let hb = o.heartbeat_interval.map_or(d.heartbeat_interval, u64::from);
        let max_entries = o.max_entries_per_request.unwrap_or(100);
        let names =
            Names::new(std::iter::once(o.node_id.as_str()).chain(all.iter().map(String::as_str)));
        let out = Arc::new(JsQueue::new(wake, E::EventsDropped));
        let transport = Arc::new(JsTransport {
            send: Mutex::new(Some(Arc::new(send))),
            names: names.clone(),
            me: o.node_id.clone(),
            out: out.clone(),
            asked: AtomicU64::new(0),
            failing: Arc::new(Mutex::new(HashSet::new())),
        });
        let cfg = RaftConfig {
            listen: false,
            host: String::new(),
            election_timeout_min: min,
            election_timeout_max: max,
            heartbeat_interval: hb,
            // The log is never compacted: a JS state machine cannot hand over snapshots,
            // and the seed's API has none to install.
            snapshot_threshold: 1 << 62,
            data_dir: o.data_dir.map(PathBuf::from),
            forward: false,
            commit_timeout: Duration::from_millis(
                o.transport_timeout.map_or(max.max(1000), u64::from),
            ),
            max_entries: max_entries as u64,
            ..d
        };
        cfg.validate().map_err(config_error)?;
        Ok(NativeRaftNode {
            cfg,
            peers: all,
            names,
            transport,
            out,
            committed: Arc::default(),
            engine: Mutex::new(None),
            preload: Mutex::new(None),
            stopped: AtomicBool::new(false),
            propose_timeout: Duration::from_millis(o.propose_timeout.unwrap_or(5000) as u64),
        })
    }

    /// The engine if it has started (the synchronous getters answer defaults before).
    fn engine(&self) -> std::result::Result<Arc<RaftEngine>, Failure> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(fail(E::Closed, "the node is stopped"));
        }
        let Some(node) = self.engine.lock().clone() else {
            return Err(fail(
                E::ConfigError,
                "the node is not started (call start())",
            ));
        };
        let r = node.now();
        r.unwrap_or_else(|| Err(fail(E::Closed, "the node is still starting")))
    }

    /// The engine once started: a call made while it opens its dataDir waits for it.
    async fn ready(&self) -> std::result::Result<Arc<RaftEngine>, Failure> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(fail(E::Closed, "the node is stopped"));
        }
        let Some(node) = self.engine.lock().clone() else {
            return Err(fail(
                E::ConfigError,
                "the node is not started (call start())",
            ));
        };
        node.ready()
            .await
            .unwrap_or_else(|| Err(fail(E::Closed, "the node is stopped")))
    }

    /// A peer's request as the transport delivered it (JSON text), with this node's
    /// engine; `bad` when it is not what `parse` takes.
    async fn incoming<R>(
        &self,
        request: &str,
        what: &str,
        bad: E,
        parse: impl FnOnce(&Value, &Names) -> std::result::Result<R, String>,
    ) -> std::result::Result<(Arc<RaftEngine>, Value, R), Failure> {
        let engine = self.ready().await?;
        let v: Value = serde_json::from_str(request)
            .map_err(|e| fail(bad, format!("a malformed {what} request: not JSON: {e}")))?;
        let r = parse(&v, &self.names)
            .map_err(|e| fail(bad, format!("a malformed {what} request: {e}")))?;
        Ok((engine, v, r))
    }

    /// Starts the node: its Raft core, with every member known from the start.
    #[napi(catch_unwind)]
    pub fn start(&self) -> Result<(), Code> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(thrown(fail(
                E::Closed,
                "a stopped node cannot start again; make a new one",
            )));
        }
        let mut slot = self.engine.lock();
        if slot.is_some() {
            return Ok(());
        }
        let parts = Parts {
            transport: Some(self.transport.clone()),
            log: self.preload.lock().take(),
        };
        let members: BTreeMap<u64, NodeId> = std::iter::once(&self.cfg.name)
            .chain(&self.peers)
            .map(|n| (raft_id(n), NodeId::named(n)))
            .collect();
        let cfg = self.cfg.clone();
        let events = sink(self.out.clone(), self.committed.clone());
        let (out, names) = (self.out.clone(), self.names.clone());
        let committed = self.committed.clone();
        // Opening dataDir and replaying its log happen on the engine's threads: start()
        // returns at once, and what needs the engine waits for it.
        let failed = out.clone();
        let woken = out.clone();
        let node = Background::start(
            async move {
                let started = async {
                    let e = RaftEngine::start_parts(cfg, events, NodeMachine, parts)
                        .await?
                        .engine()
                        .clone();
                    // Every node founds the group with the same members: the first entry
                    // is the same everywhere, so it does not matter who does it first. A
                    // node with a log (dataDir, loadState) has it already.
                    if !e.raft.is_initialized().await.unwrap_or(false) {
                        let _ = e.raft.initialize(members).await;
                    }
                    Ok::<_, io::Error>(e)
                };
                match started.await {
                    Ok(engine) => {
                        engine.spawn(watch_log(engine.clone(), out, names));
                        Ok(engine)
                    }
                    Err(e) => {
                        let why = format!("cannot start the Raft node: {e}");
                        failed.push(json!({"type": "error", "code": E::Internal, "message": why}));
                        Err(fail(E::Internal, why))
                    }
                }
            },
            // Entries applied while it started (its log replayed) could not be read
            // yet: JS pulls again now.
            move |_| {
                if !committed.signalled.swap(true, Ordering::AcqRel) {
                    woken.push(json!({"type": "committed"}));
                }
            },
        );
        *slot = Some(Arc::new(node));
        Ok(())
    }

    /// Stops the node and releases the JS callbacks so that the process can exit;
    /// resolves once the engine has wound down (its tasks ended, its files closed).
    #[napi(catch_unwind)]
    pub async fn stop(&self) -> Result<()> {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.transport.send.lock().take();
        self.out.detach();
        // A node still starting is waited for, then stopped like a started one.
        let starting = self.engine.lock().take();
        if let Some(node) = starting {
            on_engine(async move {
                if let Some(Ok(e)) = node.join().await {
                    e.shutdown().await
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Proposes a command (JSON text). Resolves with its place once committed by a
    /// majority (JS then waits for its own state machine to apply it).
    #[napi(catch_unwind)]
    pub async fn propose(&self, command: String) -> Result<String> {
        let engine = self.ready().await.map_err(rejected)?;
        let command: Value = serde_json::from_str(&command)
            .map_err(|e| rejected(fail(E::Internal, format!("the command is not JSON: {e}"))))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let timeout = self.propose_timeout;
        let names = self.names.clone();
        let r = on_engine(async move {
            let w = engine
                .raft
                .client_write(sm::command::<NodeMachine>(&NodeCommand { command, timestamp }));
            match tokio::time::timeout(timeout, w).await {
                Err(_) => Err(fail(E::Timeout, format!("not committed within {} ms (no majority reachable?); it may still commit later", timeout.as_millis()))),
                Ok(Ok(resp)) => Ok(json!({ "index": resp.log_id.index, "term": resp.log_id.leader_id.term })),
                Ok(Err(openraft::error::RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(f)))) => {
                    let leader = f.leader_id.and_then(|id| names.name_of(id));
                    match leader {
                        Some(l) => Err((E::NotLeader, format!("this node is not the leader; the leader is {l}"), Some(l))),
                        None => Err(fail(E::NoLeader, "no leader is known")),
                    }
                }
                Ok(Err(openraft::error::RaftError::Fatal(e))) => Err(fail(E::Closed, e.to_string())),
                Ok(Err(e)) => Err(fail(E::Internal, e.to_string())),
            }
        })
        .await?;
        Ok(answer(r.map_err(rejected)?))
    }

    /// A peer's RequestVote (JSON); resolves `{ ok, response }`.
    #[napi(catch_unwind)]
    pub async fn handle_request_vote(&self, request: String) -> Result<String> {
        let (engine, v, req) = self
            .incoming(
                &request,
                "RequestVote",
                E::InvalidTerm,
                node::vote_request_from,
            )
            .await
            .map_err(rejected)?;
        let r = on_engine(async move { engine.raft.vote(req).await })
            .await?
            .map_err(|e| rejected(fail(E::Internal, e.to_string())))?;
        if r.vote_granted {
            self.out.push(json!({"type": "voteGranted", "candidateId": v["candidateId"], "term": r.vote.leader_id.term}));
        }
        Ok(answer(
            json!({ "response": node::vote_response_json(&r, &self.names) }),
        ))
    }

    /// A peer's AppendEntries (JSON); resolves `{ ok, response }`.
    #[napi(catch_unwind)]
    pub async fn handle_append_entries(&self, request: String) -> Result<String> {
        let (engine, v, req) = self
            .incoming(
                &request,
                "AppendEntries",
                E::LogInconsistency,
                node::append_request_from,
            )
            .await
            .map_err(rejected)?;
        node::entries_follow(&req).map_err(|e| {
            rejected(fail(
                E::InvalidLogIndex,
                format!("a malformed AppendEntries request: {e}"),
            ))
        })?;
        let term = req.vote.leader_id.term;
        self.out
            .push(json!({"type": "heartbeat", "leaderId": v["leaderId"], "term": term}));
        let r = on_engine(async move { engine.raft.append_entries(req).await })
            .await?
            .map_err(|e| rejected(fail(E::Internal, e.to_string())))?;
        Ok(answer(
            json!({ "response": node::append_response_json(&r, term, &self.names) }),
        ))
    }

    /// Events since the last poll, as a JSON array text.
    #[napi(catch_unwind)]
    pub fn poll(&self) -> String {
        self.out.take()
    }

    /// Whether JS listens for `logAppended` (until it does, none is built or queued).
    #[napi(catch_unwind)]
    pub fn set_entry_events(&self, on: bool) {
        self.out.set_entry_events(on);
    }

    /// Up to `max` applied log positions after `after`, as `{ upTo, entries }` JSON: the
    /// committed proposals among them, in order, and the position to continue from.
    #[napi(catch_unwind)]
    pub fn committed(&self, after: f64, max: u32) -> String {
        // Any entry applied from here on queues a new wake-up.
        self.committed.signalled.store(false, Ordering::Release);
        // Still starting (replaying its log): nothing to give yet; the start wakes JS
        // again once the engine can be read.
        let Ok(engine) = self.engine() else {
            return json!({"upTo": after.max(0.0) as u64, "entries": []}).to_string();
        };
        let applied = self.committed.index.load(Ordering::Acquire);
        let after = after.max(0.0) as u64;
        let up_to = applied.min(after.saturating_add(max.max(1) as u64));
        let entries: Vec<Value> = match engine {
            engine if up_to > after => engine
                .entries(after + 1, up_to)
                .into_iter()
                .filter_map(|e| {
                    let NodeCommand { command, timestamp } = NodeCommand::of(&e)?;
                    Some(
                        json!({"term": e.log_id.leader_id.term, "index": e.log_id.index,
                        "command": command, "timestamp": timestamp}),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        json!({"upTo": up_to.max(after), "entries": entries}).to_string()
    }

    /// Where this node stands (read by the JS getters: an object, no JSON).
    #[napi(catch_unwind)]
    pub fn status(&self) -> NodeStatus {
        let Ok(engine) = self.engine() else {
            return NodeStatus {
                role: "follower".into(),
                term: 0.0,
                leader: None,
                commit_index: 0.0,
            };
        };
        let st = engine.state();
        NodeStatus {
            role: st.role.into(),
            term: st.term as f64,
            leader: st.leader,
            commit_index: st.commit_index as f64,
        }
    }

    /// The persistent state `{ currentTerm, votedFor, log }` as JSON text.
    #[napi(catch_unwind)]
    pub fn get_state(&self) -> String {
        let (vote, log) = match self.engine() {
            Ok(e) => e.persistent(),
            Err(_) => self
                .preload
                .lock()
                .as_ref()
                .map(LogStore::contents)
                .unwrap_or_default(),
        };
        node::persistent_json(vote, &log, &self.names).to_string()
    }

    /// Takes a state `getState()` gave (JSON text), before `start()`.
    #[napi(catch_unwind)]
    pub fn load_state(&self, state: String) -> Result<(), Code> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(thrown(fail(E::Closed, "the node is stopped")));
        }
        if self.engine.lock().is_some() {
            return Err(config_error("loadState must come before start()"));
        }
        let v: Value = serde_json::from_str(&state)
            .map_err(|e| config_error(format!("the state is not JSON: {e}")))?;
        let (vote, log) = node::persistent_from(&v, &self.names)
            .map_err(|e| config_error(format!("invalid state: {e}")))?;
        node::log_follows(&log)
            .map_err(|e| thrown(fail(E::InvalidLogIndex, format!("invalid state: {e}"))))?;
        *self.preload.lock() = Some(LogStore::preloaded(vote, log));
        Ok(())
    }
}

/// Reports entries as this node's log takes them (`logAppended`, on every node).
async fn watch_log(engine: Arc<RaftEngine>, out: Arc<JsQueue>, names: Names) {
    let mut rx = engine.raft.metrics();
    let mut seen = rx.borrow().last_log_index.unwrap_or(0);
    loop {
        if rx.changed().await.is_err() || engine.is_stopped() {
            return;
        }
        let last = rx.borrow().last_log_index.unwrap_or(0);
        if last > seen && out.entry_events() {
            for e in engine.entries(seen + 1, last) {
                if NodeCommand::of(&e).is_some() {
                    out.push(json!({"type": "logAppended", "entry": node::entry_json(&e, &names)}));
                }
            }
        }
        seen = last;
    }
}
