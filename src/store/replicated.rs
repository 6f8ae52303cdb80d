//! The ordering authority of a replicated store: the servers of one store form a Raft
//! group, and the group orders actions instead of one process.
//!
//! A client's dispatches go into the Raft log as [`StoreBatch`]es (through
//! whichever server the client is connected to; a follower forwards to the leader) and
//! are acknowledged once committed. Applying a batch, on every server, runs it through
//! the replicated `Sequencer`: the new actions get the next sequence numbers and resends
//! are dropped, so every server holds the same ordered log. That log lives in a
//! [`LocalAuthority`] on each server, which serves its own clients (catch-up, snapshots,
//! backpressure) and its own JS reducer exactly as a single server does. The epoch is
//! the store's, shared by every server of the group, so a client's position is valid on
//! each of them and moving to another server is a resume.

use super::authority::{LocalAuthority, OrderingAuthority, Read, Snapshot, Version};
use super::authority::{StoreCapture, StorePart};
use super::entry::{StoreAnswer, StoreBatch};
use super::outbox::{Event, EventKind, Wake};
use super::sequencer::Admitted;
use super::sequencer::Sequencer;
use crate::config::StoreConfig;
use crate::consensus::engine::{EventSink, Handle, RaftConfig, RaftEngine, RaftEvent, Resend};
use crate::consensus::net::ApiError;
use crate::consensus::state_machine::{applied, Machine, SmEvent, StateMachine};
use crate::consensus::NodeId;
use crate::error::ErrorCode;
use crate::protocol::{FrameError, Mode, Ordered};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub struct RaftAuthority {
    local: Arc<LocalAuthority>,
    engine: Handle<StoreMachine>,
    /// This server's own dispatches, proposed in order by one task.
    own: mpsc::UnboundedSender<Own>,
    cancel: CancellationToken,
    tracker: crate::tasks::Tasks,
    /// Which of the group's stores this is: its hash, or empty for the first one (the
    /// store whose `createServer` made the group).
    store: Bytes,
    hosted: Arc<Hosted>,
}

/// The stores a group hosts besides its first, on this server. Each one's log is fed by
/// the committed batches that name it, whether or not this server has opened the store
/// yet (a store opened later takes over what was ordered for it); the opened ones are
/// where the port sends a client whose handshake names their hash.
#[derive(Default)]
pub(crate) struct Hosted {
    logs: parking_lot::RwLock<HashMap<Bytes, Arc<LocalAuthority>>>,
    opened: parking_lot::Mutex<HashMap<String, Weak<RaftAuthority>>>,
    /// Whether the group's first store is cut off (see `watch_group`); the others follow.
    cut_off: AtomicBool,
}

struct Quiet;
impl Wake for Quiet {
    fn wake(&self) {}
}

impl Hosted {
    /// The log of the store `hash`: this server's, or a holder for what the group orders
    /// for a store not opened here yet.
    fn log(&self, hash: &Bytes) -> Arc<LocalAuthority> {
        if let Some(l) = self.logs.read().get(hash) {
            return l.clone();
        }
        self.logs
            .write()
            .entry(hash.clone())
            .or_insert_with(|| {
                let name = String::from_utf8_lossy(hash).into_owned();
                let epoch = epoch_of(&name);
                // Its reducer's first state is unknown here: taken from the store that
                // opens it (`adopt`), as nothing was handed over before.
                LocalAuthority::with_epoch(
                    name,
                    Mode::Action,
                    StoreConfig::local(),
                    Bytes::from_static(b"null"),
                    Box::new(Quiet),
                    epoch,
                    None,
                )
            })
            .clone()
    }

    /// Makes `fresh` the log of its store on this server, with what the group ordered
    /// for the store before (kept by a holder) moved into it.
    fn adopt(&self, fresh: &Arc<LocalAuthority>) {
        let key = Bytes::from(fresh.hash().to_string());
        let mut logs = self.logs.write();
        if let Some(held) = logs.get(&key) {
            let head = held.head();
            if let Some(c) = held.capture(head).filter(|_| head > 0) {
                if c.seq == 0 {
                    // Nothing handed over yet: the store's own first state, then the log.
                    fresh.append_ordered(1, c.actions);
                } else {
                    fresh.restore(c.into());
                }
            }
        }
        fresh.set_cut_off(self.cut_off.load(Ordering::Relaxed));
        logs.insert(key, fresh.clone());
    }

    fn all(&self) -> Vec<Arc<LocalAuthority>> {
        self.logs.read().values().cloned().collect()
    }
}

/// A batch of this server's own actions, and who waits for where it went.
type Own = (Vec<String>, oneshot::Sender<Result<Admitted, ApiError>>);

/// The store's state machine: its sequence numbers and per-client table, replicated;
/// its log and reducer state, which live in this server's [`LocalAuthority`], go into
/// each Raft snapshot and come back from an installed one. The same for each store the
/// group hosts besides its first: a table each, and a log each.
pub(crate) struct StoreMachine {
    main: Arc<LocalAuthority>,
    hosted: Arc<Hosted>,
}

impl StoreMachine {
    fn new(main: Arc<LocalAuthority>) -> StoreMachine {
        StoreMachine {
            main,
            hosted: Arc::default(),
        }
    }
}

#[cfg(test)]
impl StoreMachine {
    /// A store machine over a log of its own, for tests of the engine.
    pub(crate) fn for_tests() -> StoreMachine {
        StoreMachine::new(LocalAuthority::new(
            "test".into(),
            Mode::Action,
            StoreConfig::local(),
            Bytes::from_static(b"{}"),
            Box::new(Quiet),
        ))
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoreData {
    #[serde(default)]
    store: Sequencer,
    /// The other stores' tables, by hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    stores: BTreeMap<String, Sequencer>,
}

impl StoreData {
    fn table(&self, store: &[u8]) -> Option<&Sequencer> {
        if store.is_empty() {
            return Some(&self.store);
        }
        self.stores.get(std::str::from_utf8(store).ok()?)
    }
}

/// A snapshot's stores: the first one's part as before there were several (so older
/// snapshots read as they are), and the others' by hash.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoreParts {
    #[serde(flatten)]
    main: StorePart,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    stores: BTreeMap<String, StorePart>,
}

#[derive(Default)]
pub(crate) struct StoreCaptures {
    main: Option<StoreCapture>,
    stores: Vec<(String, StoreCapture)>,
}

impl Machine for StoreMachine {
    type State = StoreData;
    type Extra = StoreParts;
    type Captured = StoreCaptures;
    type Command = StoreBatch;
    type Response = StoreAnswer;

    fn apply(&self, st: &mut StoreData, b: StoreBatch, _index: u64) -> StoreAnswer {
        let table = if b.store.is_empty() {
            &mut st.store
        } else {
            st.stores
                .entry(String::from_utf8_lossy(&b.store).into_owned())
                .or_default()
        };
        match table.submit(b.client, b.first_counter, b.actions.len()) {
            Ok(admitted) => StoreAnswer::Admitted(admitted),
            // The batch does not follow what this client sent before: nothing applied.
            Err(_) => StoreAnswer::Refused(ErrorCode::Protocol),
        }
    }

    fn refuse(_why: &str) -> StoreAnswer {
        StoreAnswer::Refused(ErrorCode::Invalid)
    }

    fn capture(&self, st: &StoreData) -> Result<Option<StoreCaptures>, String> {
        let at = |log: &LocalAuthority, head: u64| {
            log.capture(head)
                .ok_or_else(|| format!("the store could not give its state at #{head}"))
        };
        let mut c = StoreCaptures::default();
        let head = st.store.head();
        if head > 0 {
            c.main = Some(at(&self.main, head)?);
        }
        for (hash, table) in &st.stores {
            let head = table.head();
            if head > 0 {
                let log = self.hosted.log(&Bytes::from(hash.clone()));
                c.stores.push((hash.clone(), at(&log, head)?));
            }
        }
        Ok((c.main.is_some() || !c.stores.is_empty()).then_some(c))
    }

    fn encode(captured: StoreCaptures) -> StoreParts {
        StoreParts {
            main: captured.main.map(Into::into).unwrap_or_default(),
            stores: captured
                .stores
                .into_iter()
                .map(|(h, c)| (h, c.into()))
                .collect(),
        }
    }

    fn restore(&self, parts: StoreParts) {
        if parts.main.seq > 0 || !parts.main.actions.is_empty() {
            self.main.restore(parts.main);
        }
        for (hash, part) in parts.stores {
            self.hosted.log(&Bytes::from(hash)).restore(part);
        }
    }

    fn restored(st: StoreData) -> StoreData {
        StoreData {
            store: st.store.restored(),
            stores: st
                .stores
                .into_iter()
                .map(|(h, t)| (h, t.restored()))
                .collect(),
        }
    }
}

/// One epoch per store, the same on every server: derived from the store's hash.
fn epoch_of(hash: &str) -> u64 {
    let d = Sha256::digest(format!("redux-cluster-rs raft store {hash}").as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) | 1
}

impl RaftAuthority {
    /// Starts this server's Raft node and the log it feeds. Must run inside the engine's
    /// runtime.
    pub async fn start(
        hash: String,
        mode: Mode,
        cfg: StoreConfig,
        initial_state: Bytes,
        waker: Box<dyn Wake>,
        raft: RaftConfig,
        native: Option<Arc<crate::reducer::NativeState>>,
    ) -> io::Result<Arc<RaftAuthority>> {
        let local = RaftAuthority::replica(hash, mode, cfg, initial_state, waker, native)?;
        RaftAuthority::start_on(local, raft).await
    }

    /// The server's own replica, which the group's committed batches feed: made at once
    /// (cheap), so that a server can serve its JS side while its Raft node starts.
    pub fn replica(
        hash: String,
        mode: Mode,
        cfg: StoreConfig,
        initial_state: Bytes,
        waker: Box<dyn Wake>,
        native: Option<Arc<crate::reducer::NativeState>>,
    ) -> io::Result<Arc<LocalAuthority>> {
        let epoch = epoch_of(&hash);
        // With a native reducer the state machine applies in Rust and its snapshots are
        // the reducer's state: no JS on the path.
        Ok(match native {
            Some(n) => LocalAuthority::native(hash, mode, cfg, n, waker, Some(epoch))
                .map_err(io::Error::other)?,
            None => LocalAuthority::with_epoch(hash, mode, cfg, initial_state, waker, epoch, None),
        })
    }

    /// Starts the Raft node over `local` (opening `dataDir`, replaying its log into the
    /// replica: as long as that takes, so off the JS thread).
    pub async fn start_on(
        local: Arc<LocalAuthority>,
        raft: RaftConfig,
    ) -> io::Result<Arc<RaftAuthority>> {
        let feed = local.clone();
        let machine = StoreMachine::new(local.clone());
        let hosted = machine.hosted.clone();
        let to_hosted = hosted.clone();
        // Called in apply order, on every server, for every committed batch (and again
        // for the whole log when a server restarts from its dataDir).
        let sink: EventSink = Arc::new(move |e| match e {
            RaftEvent::State(SmEvent::Applied {
                command, response, ..
            }) => {
                if let Some((b, StoreAnswer::Admitted(a))) =
                    applied::<StoreMachine>(&command, &response)
                {
                    // A hosted store's log exists on every server from its first batch
                    // on (an empty one when a server opens it), opened here or not.
                    let log = if b.store.is_empty() {
                        feed.clone()
                    } else {
                        to_hosted.log(&b.store)
                    };
                    if let Some(run) = a.run {
                        let new = b.actions.into_iter().skip(a.skip).collect();
                        log.append_ordered(run.first_seq, new);
                    }
                }
            }
            // Every store of the group hears of its leader and its role (a store's
            // divergence guard runs on the leader).
            RaftEvent::Role { role, term } => {
                for log in std::iter::once(feed.clone()).chain(to_hosted.all()) {
                    log.report(Event {
                        kind: EventKind::Role(role.to_string()),
                        message: term.to_string(),
                    });
                }
            }
            RaftEvent::LeaderElected { leader, term } => {
                for log in std::iter::once(feed.clone()).chain(to_hosted.all()) {
                    log.report(Event {
                        kind: EventKind::Leader(leader.clone()),
                        message: term.to_string(),
                    });
                }
            }
            RaftEvent::Warning { code, message } => feed.report(Event::error(code, message)),
            _ => {}
        });
        let engine = RaftEngine::start_with(raft, sink, machine).await?;
        let (own, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let tracker = crate::tasks::Tasks::new();
        tracker.spawn(propose_own(
            engine.clone(),
            rx,
            cancel.clone(),
            Bytes::new(),
        ));
        tracker.spawn(watch_group(
            engine.engine().clone(),
            local.clone(),
            hosted.clone(),
            cancel.clone(),
        ));
        Ok(Arc::new(RaftAuthority {
            local,
            engine,
            own,
            cancel,
            tracker,
            store: Bytes::new(),
            hosted,
        }))
    }

    /// Opens another store on this server's group (`local`, made by [`Self::replica`]
    /// with the store's own hash): it takes over what the group ordered for it before,
    /// its clients reach it through the group's port (by the hash in their handshake),
    /// and its actions go through the group's log, with their own order and table.
    pub fn host(
        &self,
        local: Arc<LocalAuthority>,
    ) -> Result<Arc<RaftAuthority>, (ErrorCode, String)> {
        let hash = local.hash().to_string();
        let store = Bytes::from(hash.clone());
        // Two stores of one hash on one server would split its log between them.
        let open_already = |opened: &HashMap<String, Weak<RaftAuthority>>| {
            opened.get(&hash).is_some_and(|w| w.strong_count() > 0)
        };
        if hash == self.local.hash() || open_already(&self.hosted.opened.lock()) {
            return Err((
                ErrorCode::InvalidConfig,
                format!(
                    "ReduxCluster.createServer: a store of hash {hash} is open on this group \
                     already (give each store of one reducer its own name)"
                ),
            ));
        }
        self.hosted.adopt(&local);
        let (own, rx) = mpsc::unbounded_channel();
        let cancel = self.cancel.child_token();
        let tracker = crate::tasks::Tasks::new();
        tracker.spawn(propose_own(
            self.engine.clone(),
            rx,
            cancel.clone(),
            store.clone(),
        ));
        // The group learns of the store (an empty batch): every server then keeps its
        // log, and sends its clients on to a server where it is open rather than refuse
        // them, until it opens the store itself.
        let (engine, announce) = (self.engine.clone(), store.clone());
        let c = cancel.clone();
        tracker.spawn(async move {
            let cmd = StoreBatch {
                client: 0,
                first_counter: 1,
                actions: Vec::new(),
                store: announce,
            };
            for _ in 0..150 {
                tokio::select! {
                    _ = c.cancelled() => return,
                    r = Box::pin(engine.write_as(&cmd, Resend::Safe)) => if r.is_ok() { return },
                }
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
        // What it would have heard had it been open: the group's leader and this
        // server's role.
        let st = self.engine().state();
        if let Some(leader) = st.leader {
            local.report(Event {
                kind: EventKind::Leader(leader),
                message: st.term.to_string(),
            });
        }
        local.report(Event {
            kind: EventKind::Role(st.role.to_string()),
            message: st.term.to_string(),
        });
        let a = Arc::new(RaftAuthority {
            local,
            engine: self.engine.clone(),
            own,
            cancel,
            tracker,
            store,
            hosted: self.hosted.clone(),
        });
        self.hosted.opened.lock().insert(hash, Arc::downgrade(&a));
        Ok(a)
    }

    /// The group's first store (the one that made it), or another it hosts.
    fn is_first(&self) -> bool {
        self.store.is_empty()
    }

    /// Joins the group through `seeds` (every one of them is asked, in the background,
    /// until it answers or this server stops): fresh servers told about each other form
    /// one group, and a server started later is added to the running one.
    pub fn join(self: &Arc<Self>, seeds: Vec<NodeId>) {
        self.engine.know(&seeds);
        for m in seeds {
            let (engine, cancel) = (self.engine.clone(), self.cancel.clone());
            let local = self.local.clone();
            self.tracker.spawn(async move {
                let mut told = false;
                loop {
                    let r = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = engine.add_node(m.clone()) => r,
                    };
                    match r {
                        Ok(()) => return,
                        Err(e) if e.code == ErrorCode::Closed => return,
                        Err(e) => {
                            // Refusals that retrying alone will not mend (another group, a
                            // host that may not join without the secret) are said once;
                            // the server keeps asking, in case the seed's side changes.
                            let lasting = [ErrorCode::Auth, ErrorCode::OtherCluster].contains(&e.code);
                            if lasting && !told {
                                told = true;
                                local.report(Event::error(
                                    e.code,
                                    format!(
                                        "ReduxCluster.createServer: seed {} refused to add this server: {}",
                                        m.name(), e.message
                                    ),
                                ));
                            }
                            tokio::select! {
                                _ = cancel.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                            }
                        }
                    }
                }
            });
        }
    }

    /// Orders this server's own actions through the group (they are applied here when
    /// the log brings them back). Resolves to where they went, or rejects with the
    /// engine's error (`ERR_CLOSED` once stopped).
    pub async fn submit_own(&self, actions: Vec<String>) -> Result<Admitted, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.own
            .send((actions, tx))
            .map_err(|_| ApiError::new(ErrorCode::Closed, "the server is closed"))?;
        rx.await
            .map_err(|_| ApiError::new(ErrorCode::Closed, "the server is closed"))?
    }

    /// Stops the Raft node and this server's tasks (bounded); idempotent.
    /// A hosted store only closes here (its clients are turned away): the group goes
    /// on ordering for it, and a store opened again takes over its log.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        if self.is_first() {
            self.engine.shutdown().await;
        } else {
            self.hosted.opened.lock().remove(self.local.hash());
        }
        self.tracker.shutdown(Duration::from_secs(2)).await;
    }

    /// The log and the JS side's pull, as on a single server.
    pub fn local(&self) -> &Arc<LocalAuthority> {
        &self.local
    }

    fn sm(&self) -> &StateMachine<StoreMachine> {
        self.engine.machine()
    }

    pub fn engine(&self) -> &Arc<RaftEngine> {
        self.engine.engine()
    }
}

/// Marks this server cut off while it has no leader, or leads without a majority
/// answering, for longer than an election should take: its clients are then sent to
/// other servers (a client that only reads would otherwise wait on it forever).
async fn watch_group(
    engine: Arc<RaftEngine>,
    local: Arc<LocalAuthority>,
    hosted: Arc<Hosted>,
    cancel: CancellationToken,
) {
    let cfg = &engine.config();
    let limit = (cfg.election_timeout_max * 3).max(1000);
    let tick = Duration::from_millis(cfg.heartbeat_interval.clamp(10, 200));
    let mut leaderless_since: Option<tokio::time::Instant> = None;
    let mut cut_off = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = tokio::time::Instant::now();
        let metrics = engine.raft.metrics();
        let m = metrics.borrow();
        let voters = m.membership_config.membership().voter_ids().count();
        let term = m.current_term;
        let lost = match m.state {
            openraft::ServerState::Leader => {
                leaderless_since = None;
                voters > 1 && m.millis_since_quorum_ack.is_some_and(|ms| ms > limit)
            }
            // A replica has no election timer (it never stands), and keeps the leader it
            // last knew: it is cut off once no leader has reached it for the limit.
            openraft::ServerState::Learner if cfg.replica => match engine.since_leader_heard() {
                Some(quiet) => {
                    leaderless_since = None;
                    quiet > Duration::from_millis(limit)
                }
                None => {
                    let since = *leaderless_since.get_or_insert(now);
                    now.duration_since(since) > Duration::from_millis(limit)
                }
            },
            _ if m.current_leader.is_some() => {
                leaderless_since = None;
                false
            }
            _ => {
                let since = *leaderless_since.get_or_insert(now);
                now.duration_since(since) > Duration::from_millis(limit)
            }
        };
        if lost != cut_off {
            cut_off = lost;
            local.set_cut_off(lost);
            hosted.cut_off.store(lost, Ordering::Relaxed);
            for log in hosted.all() {
                log.set_cut_off(lost);
            }
            // Said once per loss, and not while a fresh server waits for its group.
            if lost && term > 0 {
                local.report(Event::error(
                    ErrorCode::Unavailable,
                    format!(
                        "ReduxCluster.createServer: this server lost contact with its group \
                         (no working leader for {limit} ms): its clients are sent to other servers"
                    ),
                ));
            }
        }
    }
}

/// Proposes this server's own batches one at a time, in order, under consecutive
/// counters of its own client id; a batch that did not commit is proposed again with the
/// same counters (the resend is dropped if it had committed after all).
async fn propose_own(
    engine: Handle<StoreMachine>,
    mut rx: mpsc::UnboundedReceiver<Own>,
    cancel: CancellationToken,
    store: Bytes,
) {
    let client: u64 = rand::random();
    let mut next = 1u64;
    loop {
        let (actions, done) = tokio::select! {
            _ = cancel.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let n = actions.len() as u64;
        let cmd = StoreBatch {
            client,
            first_counter: next,
            actions: actions.into_iter().map(Bytes::from).collect(),
            store: store.clone(),
        };
        let result = loop {
            // Boxed: inline, the write would size this task (one per store a server
            // opens, idle most of the time) for its largest state.
            match Box::pin(engine.write_as(&cmd, Resend::Safe)).await {
                Ok(c) => match c.response {
                    // All dropped as resends: an earlier attempt committed after all.
                    // Where it went is in the replicated table.
                    StoreAnswer::Admitted(mut a) if a.run.is_none() => {
                        let first = next;
                        a.run = a.earlier.iter().copied().find(|r| r.first_counter == first);
                        break Ok(a);
                    }
                    StoreAnswer::Admitted(a) => break Ok(a),
                    StoreAnswer::Refused(_) => {
                        break Err(ApiError::new(ErrorCode::Internal, "own batch refused"))
                    }
                },
                Err(e) if e.code == ErrorCode::Closed => break Err(e),
                Err(_) => tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                },
            }
        };
        next += n;
        let _ = done.send(result);
    }
}

impl OrderingAuthority for RaftAuthority {
    fn epoch(&self) -> u64 {
        self.local.epoch()
    }

    fn mode(&self) -> Mode {
        self.local.mode()
    }

    fn hash(&self) -> &str {
        self.local.hash()
    }

    fn raft(&self) -> Option<Arc<RaftEngine>> {
        Some(self.engine.engine().clone())
    }

    /// As far as this server has applied the log (a follower may lag: the client then
    /// resends a little more, and the resends are dropped).
    fn acked(&self, client_id: u64) -> u64 {
        self.sm()
            .read(|s| s.table(&self.store).map_or(0, |t| t.acked(client_id)))
    }

    fn recent(&self, client_id: u64) -> Vec<Ordered> {
        self.sm()
            .read(|s| s.table(&self.store).map(|t| t.recent(client_id)))
            .unwrap_or_default()
    }

    fn route(&self, hash: &str) -> Option<Arc<Self>> {
        self.hosted.opened.lock().get(hash)?.upgrade()
    }

    fn hosted_elsewhere(&self, hash: &str) -> bool {
        let key = Bytes::copy_from_slice(hash.as_bytes());
        self.hosted.logs.read().contains_key(&key)
    }

    fn submit_remote(
        &self,
        client_id: u64,
        first_counter: u64,
        actions: Vec<Bytes>,
    ) -> impl Future<Output = Result<(u64, Vec<Ordered>), FrameError>> + Send {
        let engine = self.engine.clone();
        let store = self.store.clone();
        async move {
            let cmd = StoreBatch {
                client: client_id,
                first_counter,
                actions,
                store,
            };
            match engine.write_as(&cmd, Resend::Safe).await {
                Ok(c) => match c.response {
                    StoreAnswer::Admitted(a) => Ok((a.acked, a.runs())),
                    StoreAnswer::Refused(_) => Err(FrameError::Malformed(
                        "gap in the client's dispatch counters",
                    )),
                },
                // Not committed (no quorum in time, shutting down): the connection
                // closes and the client resends, here or to another server.
                Err(e) => Err(FrameError::Io(io::Error::other(format!(
                    "not committed: {} ({})",
                    e.message, e.code
                )))),
            }
        }
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        self.local.ready()
    }

    fn read(&self, from: u64, max_count: usize, max_bytes: usize) -> Read {
        self.local.read(from, max_count, max_bytes)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.local.snapshot()
    }

    fn can_resume(&self, epoch: u64, seq: u64) -> bool {
        self.local.can_resume(epoch, seq)
    }

    fn watch(&self) -> watch::Receiver<Version> {
        self.local.watch()
    }

    fn report(&self, event: Event) {
        self.local.report(event)
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use crate::consensus::state_machine::Full;

    /// A store's snapshot comes back whole: the per-client table (integer keys in JSON)
    /// and the store's part.
    #[test]
    fn a_store_snapshot_round_trips() {
        let mut st: Full<StoreData, StorePart> = Full::default();
        st.store.submit(11_969_433_801_037_937_980, 1, 3).unwrap();
        st.commands = 7;
        st.extra = Some(StorePart {
            seq: 1,
            state: "{\"n\":1}".into(),
            actions: vec!["{\"type\":\"A\"}".into(); 2],
        });
        // Written before a group hosted several stores: read as the first store's.
        let json = serde_json::to_vec(&st).unwrap();
        let back: Full<StoreData, StoreParts> = serde_json::from_slice(&json).unwrap();
        let back_store = StoreMachine::restored(back.app.clone()).store;
        assert_eq!(back_store.head(), 3);
        assert_eq!(back_store.acked(11_969_433_801_037_937_980), 3);
        let parts = back.extra.clone().unwrap();
        assert_eq!((back.commands, Some(parts.main)), (7, st.extra.clone()));
        assert!(parts.stores.is_empty());

        // With other stores: each one's table and part come back under its hash.
        let mut full: Full<StoreData, StoreParts> = Full {
            app: back.app,
            ..Default::default()
        };
        full.app
            .stores
            .entry("h1".into())
            .or_default()
            .submit(5, 1, 2)
            .unwrap();
        full.extra = Some(StoreParts {
            main: st.extra.clone().unwrap(),
            stores: BTreeMap::from([(
                "h1".to_string(),
                StorePart {
                    seq: 0,
                    state: "{}".into(),
                    actions: vec!["{}".into(); 2],
                },
            )]),
        });
        let json = serde_json::to_vec(&full).unwrap();
        let again: Full<StoreData, StoreParts> = serde_json::from_slice(&json).unwrap();
        let restored = StoreMachine::restored(again.app);
        assert_eq!(restored.table(b"h1").map(|t| t.head()), Some(2));
        assert_eq!(restored.table(b"").map(|t| t.head()), Some(3));
        assert_eq!(again.extra, full.extra);
    }
}

/// The store's machine on the engine, over real loopback sockets.
#[cfg(test)]
mod raft_tests {
    use super::*;
    use crate::consensus::engine::Written;
    use parking_lot::Mutex;

    async fn until<F: Fn() -> bool>(what: &str, f: F) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A node that founds a one-node cluster at start.
    fn founder(name: &str) -> RaftConfig {
        RaftConfig {
            bootstrap: true,
            ..RaftConfig::local(name)
        }
    }

    /// One store action ordered on a node, as the node applied it.
    type Applied = Arc<Mutex<Vec<(u64, String)>>>;

    /// A sink that records the store actions a node applies, with their sequence numbers.
    fn store_recorder() -> (EventSink, Applied) {
        let got: Applied = Arc::default();
        let a2 = got.clone();
        let sink: EventSink = Arc::new(move |e| {
            if let RaftEvent::State(SmEvent::Applied {
                command, response, ..
            }) = e
            {
                if let Some((b, StoreAnswer::Admitted(adm))) =
                    applied::<StoreMachine>(&command, &response)
                {
                    if let Some(run) = adm.run {
                        let mut log = a2.lock();
                        for (i, a) in b.actions.into_iter().skip(adm.skip).enumerate() {
                            log.push((
                                run.first_seq + i as u64,
                                String::from_utf8_lossy(&a).into(),
                            ));
                        }
                    }
                }
            }
        });
        (sink, got)
    }

    fn batch(client: u64, first: u64, n: u64) -> StoreBatch {
        StoreBatch {
            client,
            first_counter: first,
            actions: (first..first + n)
                .map(|c| Bytes::from(format!("{{\"type\":\"A\",\"c\":{client},\"n\":{c}}}")))
                .collect(),
            store: Bytes::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_batches_are_ordered_once_on_every_server_across_a_leader_failover() {
        let (sa, la) = store_recorder();
        let (sb, lb) = store_recorder();
        let (sc, lc) = store_recorder();
        let a = RaftEngine::start_with(founder("sa"), sa, StoreMachine::for_tests())
            .await
            .unwrap();
        let b = RaftEngine::start_with(RaftConfig::local("sb"), sb, StoreMachine::for_tests())
            .await
            .unwrap();
        let c = RaftEngine::start_with(RaftConfig::local("sc"), sc, StoreMachine::for_tests())
            .await
            .unwrap();
        a.add_node(b.member().clone()).await.unwrap();
        a.add_node(c.member().clone()).await.unwrap();
        let nodes = [a.clone(), b.clone(), c.clone()];
        let store = |r: Result<Written<StoreAnswer>, ApiError>| match r.unwrap().response {
            StoreAnswer::Admitted(a) => a,
            other => panic!("{other:?}"),
        };

        // Client 1 through b, client 2 through c; then client 1 resends 2..=4 through a (its
        // acknowledgement lost, say): only 4 is new.
        let r = store(b.write(&batch(1, 1, 3)).await);
        assert_eq!((r.skip, r.acked), (0, 3));
        store(c.write(&batch(2, 1, 2)).await);
        let r = store(a.write(&batch(1, 2, 3)).await);
        assert_eq!((r.skip, r.run.unwrap().count, r.acked), (2, 1, 4));
        // A batch past a gap in the counters is refused, and changes nothing.
        let gap = a.write(&batch(1, 9, 1)).await.unwrap();
        assert_eq!(gap.response, StoreAnswer::Refused(ErrorCode::Protocol));

        // The leader goes; client 1 resends through a survivor what it has not seen acked,
        // plus new ones, and client 2 goes on.
        let leader = a.state().leader.unwrap();
        let (gone, rest): (Vec<_>, Vec<_>) = nodes
            .iter()
            .cloned()
            .partition(|n| n.member().name() == leader);
        gone[0].shutdown().await;
        until("a new leader", || {
            rest.iter()
                .all(|n| n.state().leader.is_some_and(|l| l != leader))
        })
        .await;
        let r = store(rest[0].write(&batch(1, 3, 4)).await);
        assert_eq!((r.skip, r.acked), (2, 6));
        store(rest[1].write(&batch(2, 3, 1)).await);

        // Every survivor applied the same sequence: dense, each action once, in one order.
        let logs: Vec<Applied> = [&a, &b, &c]
            .iter()
            .zip([la, lb, lc])
            .filter(|(n, _)| n.member().name() != leader)
            .map(|(_, l)| l)
            .collect();
        until("both survivors applied all nine", || {
            logs.iter().all(|l| l.lock().len() == 9)
        })
        .await;
        let first = logs[0].lock().clone();
        assert_eq!(*logs[1].lock(), first, "the same order on every server");
        assert_eq!(
            first.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>()
        );
        let mut actions: Vec<&String> = first.iter().map(|(_, a)| a).collect();
        actions.sort();
        actions.dedup();
        assert_eq!(actions.len(), 9, "no action applied twice: {first:?}");
        for n in rest {
            n.shutdown().await;
        }
    }
}
