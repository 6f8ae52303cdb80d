//! A Raft node: openraft over the framed TCP transport, with the durable or in-memory
//! store and the state machine it was opened with, and what applications need around
//! it: writes forwarded to the leader (batched by the proposer), linearizable reads,
//! state and status for JS. Its other concerns live beside it: [`super::formation`]
//! (founding, joining, membership changes), `network::rpc` (serving peers),
//! `network::client` (openraft's client side), [`super::events`] (what the node
//! reports). Every task runs
//! on the node's tracker; after `shutdown` every call answers `ERR_CLOSED`.

pub use super::config::RaftConfig;
pub use super::events::{EventSink, NodeState, RaftEvent};
use super::network::net::{ApiError, Committed, Dialer, Pool, Reply, Request, Status};
use super::proposer::{Proposer, Rejected};
use super::state_machine::{answer, command, Core, Machine, SmEvent, SmSink, StateMachine};
use super::storage::disk::Disk;
use super::storage::log_store::LogStore;
use super::types::{raft_id, Command, NodeId, TypeConfig};
use crate::error::ErrorCode;
use crate::protocol::FrameLimits;
use crate::transport::{Endpoint, Listener};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) struct Shared {
    pub(super) cfg: RaftConfig,
    pub(super) me: NodeId,
    pub(super) limits: FrameLimits,
    /// Addresses learned from `add_node` before the membership has them.
    pub(super) known: Mutex<BTreeMap<String, String>>,
    pub(super) pool: Pool,
    /// What the peer probe last found of each peer: the one liveness view of the group
    /// (events, and the JS cluster manager's health, read it; nobody pings again).
    pub(super) health: Mutex<BTreeMap<String, super::events::PeerHealth>>,
    pub(super) dialer: Dialer,
    pub(super) sink: EventSink,
    /// The embedder's transport to peers, instead of the engine's TCP sessions.
    pub(super) external: Option<Arc<dyn super::network::client::PeerTransport>>,
    pub(super) metrics: Arc<super::metrics::NodeMetrics>,
    /// When this node last accepted an append (entries or a heartbeat) from a leader.
    pub(super) heard: Mutex<Option<std::time::Instant>>,
}

/// What a node may be started with besides its config and state machine.
#[derive(Default)]
pub struct Parts {
    /// Reach peers through this instead of TCP (no listener, no probing).
    pub transport: Option<Arc<dyn super::network::client::PeerTransport>>,
    /// Start from this log and vote (memory only; a `dataDir` holds its own).
    pub log: Option<LogStore>,
}

/// Whether a command may be proposed again after an attempt whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// The application recognises a second copy and drops it (the store's client
    /// counters).
    Safe,
    /// A second copy would apply twice.
    Unsafe,
}

pub struct RaftEngine {
    pub(super) shared: Arc<Shared>,
    pub raft: Raft<TypeConfig>,
    /// What the engine itself needs of its state machine, whatever it replicates (the
    /// typed machine is its opener's, in the [`Handle`]).
    core: Arc<dyn Core>,
    pub(super) proposer: Proposer,
    pub(super) is_init: std::sync::atomic::AtomicBool,
    pub(super) id: u64,
    pub(super) found: tokio::sync::Mutex<()>,
    /// Membership changes run one at a time on the leader: two concurrent additions of
    /// one node (it asked to join while a peer forwarded its addition) would otherwise
    /// both see it absent, and the second would ping it mid-catch-up, see a node that
    /// has a cluster but has not applied its name yet, and refuse it as another's.
    pub(super) changing: tokio::sync::Mutex<()>,
    pub(super) stop: CancellationToken,
    pub(super) tracker: crate::tasks::Tasks,
    pub(super) snapshot_every: Arc<AtomicU64>,
    pub(super) disk: Option<Disk>,
    /// The log openraft writes (shared), for `persistent()`.
    pub(super) log: LogStore,
}

/// A node's role as the APIs name it: a learner started as a replica stays one, and is
/// called so (a learner is otherwise a voter still catching up).
pub(super) fn role_name(s: ServerState, replica: bool) -> &'static str {
    match s {
        ServerState::Learner if replica => "replica",
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Follower => "follower",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

pub(super) fn closed() -> ApiError {
    api(ErrorCode::Closed, "the Raft node is shut down")
}

pub(super) fn api(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// openraft's other refusals, each as the code that says what a caller can do about it:
/// its API refused (`api_code`: another membership change running, no quorum), the log's
/// storage failed (`ERR_IO`), the node stopped (`ERR_CLOSED`), or openraft itself panicked
/// (a bug).
pub(super) fn refused<E: std::fmt::Display>(e: RaftError<u64, E>, api_code: ErrorCode) -> ApiError {
    use openraft::error::Fatal;
    let code = match &e {
        RaftError::APIError(_) => api_code,
        RaftError::Fatal(Fatal::StorageError(_)) => ErrorCode::Io,
        RaftError::Fatal(Fatal::Stopped) => ErrorCode::Closed,
        RaftError::Fatal(Fatal::Panicked) => ErrorCode::Internal,
    };
    api(code, e.to_string())
}

pub(super) fn name_of(m: &RaftMetrics<u64, NodeId>, id: u64) -> Option<String> {
    m.membership_config
        .membership()
        .get_node(&id)
        .map(|n| n.name().to_string())
}

/// A node and the state machine it was opened with: what its opener keeps, so that it
/// proposes and reads `M`'s own types (the engine itself only carries their bytes).
pub struct Handle<M: Machine> {
    engine: Arc<RaftEngine>,
    sm: StateMachine<M>,
}

impl<M: Machine> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            engine: self.engine.clone(),
            sm: self.sm.clone(),
        }
    }
}

impl<M: Machine> std::ops::Deref for Handle<M> {
    type Target = RaftEngine;
    fn deref(&self) -> &RaftEngine {
        &self.engine
    }
}

/// How soon a resendable write whose forward to the leader failed tries it again (once).
const FORWARD_RETRY: Duration = Duration::from_millis(50);

/// A command committed, and what applying it answered.
#[derive(Debug, Clone)]
pub struct Written<R> {
    pub index: u64,
    pub response: R,
}

impl<M: Machine> Handle<M> {
    pub fn engine(&self) -> &Arc<RaftEngine> {
        &self.engine
    }

    /// The state machine (local reads).
    pub fn machine(&self) -> &StateMachine<M> {
        &self.sm
    }

    /// Commits `cmd` (see [`RaftEngine::write`]) and returns the machine's answer.
    pub async fn write(&self, cmd: &M::Command) -> Result<Written<M::Response>, ApiError> {
        self.write_as(cmd, Resend::Unsafe).await
    }

    /// [`Handle::write`], told whether the command may be proposed twice.
    pub async fn write_as(
        &self,
        cmd: &M::Command,
        resend: Resend,
    ) -> Result<Written<M::Response>, ApiError> {
        let c = self.engine.write_as(command::<M>(cmd), resend).await?;
        Ok(Written {
            index: c.index,
            response: answer::<M>(&c.response),
        })
    }
}

impl RaftEngine {
    /// Starts a node whose state machine replicates `machine`'s state.
    pub async fn start_with<M: Machine>(
        cfg: RaftConfig,
        sink: EventSink,
        machine: M,
    ) -> io::Result<Handle<M>> {
        Self::start_parts(cfg, sink, machine, Parts::default()).await
    }

    /// As `start_with`, with a transport of the embedder's and/or a log to start from.
    pub async fn start_parts<M: Machine>(
        cfg: RaftConfig,
        sink: EventSink,
        machine: M,
        parts: Parts,
    ) -> io::Result<Handle<M>> {
        cfg.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = match cfg.listen && parts.transport.is_none() {
            true => Some(Listener::bind(&Endpoint::Tcp {
                host: cfg.host.clone(),
                port: cfg.port,
            })?),
            false => None,
        };
        let port = listener
            .as_ref()
            .and_then(Listener::port)
            .unwrap_or(cfg.port);
        let host = cfg
            .advertise_host
            .clone()
            .unwrap_or_else(|| cfg.host.clone());
        // A node whose messages go through the embedder's transport has no address.
        let me = match port {
            0 => NodeId::named(&cfg.name),
            _ => NodeId::at(&cfg.name, &format!("{host}:{port}"))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
        };
        let id = raft_id(&cfg.name);
        let raft_cfg = Config {
            cluster_name: "redux-cluster-rs".into(),
            election_timeout_min: cfg.election_timeout_min,
            election_timeout_max: cfg.election_timeout_max,
            heartbeat_interval: cfg.heartbeat_interval,
            install_snapshot_timeout: 2000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_threshold.max(1)),
            max_in_snapshot_log_to_keep: (cfg.snapshot_threshold / 2).min(1000),
            max_payload_entries: cfg.max_entries.max(1),
            ..Default::default()
        }
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;

        let snapshot_every = Arc::new(AtomicU64::new(0));
        let since = Arc::new(AtomicU64::new(0));
        let trigger: Arc<Mutex<Option<Raft<TypeConfig>>>> = Arc::new(Mutex::new(None));
        // Every task of this node runs on it, so that shutdown can wait for them.
        let tracker = crate::tasks::Tasks::new();
        let sm_sink: SmSink = {
            let sink = sink.clone();
            let (every, since, trigger) = (snapshot_every.clone(), since.clone(), trigger.clone());
            let tracker = tracker.clone();
            Arc::new(move |e: SmEvent| {
                match &e {
                    SmEvent::Applied { .. } => {
                        let n = every.load(Ordering::Relaxed);
                        if n > 0 && since.fetch_add(1, Ordering::Relaxed) + 1 >= n {
                            since.store(0, Ordering::Relaxed);
                            if let Some(r) = trigger.lock().clone() {
                                tracker.spawn(async move {
                                    let _ = r.trigger().snapshot().await;
                                });
                            }
                        }
                    }
                    SmEvent::SnapshotCreated { .. } => since.store(0, Ordering::Relaxed),
                    _ => {}
                }
                sink(RaftEvent::State(e))
            })
        };
        let disk = cfg.data_dir.as_deref().map(Disk::open).transpose()?;
        let metrics = Arc::new(super::metrics::NodeMetrics {
            fsync: disk.as_ref().map(Disk::fsync_histogram).unwrap_or_default(),
            ..Default::default()
        });
        let log = match (&disk, parts.log) {
            (Some(d), _) => LogStore::open(d.clone())?,
            (None, Some(l)) => l,
            (None, None) => LogStore::default(),
        };
        let sm = StateMachine::open_with(machine, disk.clone(), Some(sm_sink))
            .map_err(|e| io::Error::other(e.to_string()))?
            .with_metrics(metrics.clone());
        let limits = FrameLimits {
            max_frame: 64 << 20,
            compress_threshold: 256 << 10,
        };
        let shared = Arc::new(Shared {
            limits,
            dialer: Dialer {
                local: me.name().to_string(),
                secret: cfg.secret.clone(),
                limits,
                tls: cfg.tls.clone(),
                metrics: Some(metrics.clone()),
            },
            metrics,
            cfg,
            me,
            known: Mutex::new(BTreeMap::new()),
            pool: Pool::default(),
            health: Mutex::new(BTreeMap::new()),
            heard: Mutex::new(None),
            sink,
            external: parts.transport,
        });
        let net = super::network::client::NetFactory {
            shared: shared.clone(),
        };
        let raft = Raft::new(id, Arc::new(raft_cfg), net, log.clone(), sm.clone())
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        // openraft's metrics say "follower, term 0, no log" until its core first reports,
        // so a `state()` right after start could show a fresh node (a learner) as a
        // follower. Whatever the core reports differs from that, so wait for it (bounded).
        let _ = raft
            .wait(Some(Duration::from_secs(1)))
            .metrics(
                |m| {
                    m.state != ServerState::Follower
                        || m.current_term > 0
                        || m.last_log_index.is_some()
                },
                "the first metrics report",
            )
            .await;
        *trigger.lock() = Some(raft.clone());
        let stop = CancellationToken::new();
        let proposer = Proposer::start(
            raft.clone(),
            shared.cfg.commit_timeout,
            &tracker,
            stop.clone(),
        );
        let engine = Arc::new(RaftEngine {
            shared,
            raft,
            core: Arc::new(sm.clone()),
            proposer,
            is_init: Default::default(),
            id,
            found: tokio::sync::Mutex::new(()),
            changing: tokio::sync::Mutex::new(()),
            stop,
            tracker,
            snapshot_every,
            disk,
            log,
        });
        let t = &engine.tracker;
        if let Some(listener) = listener {
            t.spawn(super::network::rpc::accept_loop(engine.clone(), listener));
        }
        t.spawn(super::events::watch_metrics(engine.clone()));
        if engine.shared.external.is_none() {
            t.spawn(super::events::probe_peers(engine.clone()));
        }
        if engine.shared.cfg.bootstrap {
            engine.found_cluster().await?;
        }
        Ok(Handle { engine, sm })
    }

    /// The vote and the log entries this node holds (a RaftNode's `getState`).
    pub fn persistent(
        &self,
    ) -> (
        Option<openraft::Vote<u64>>,
        Vec<openraft::Entry<TypeConfig>>,
    ) {
        self.log.contents()
    }

    /// The log entries this node holds from `from` through `to`.
    pub fn entries(&self, from: u64, to: u64) -> Vec<openraft::Entry<TypeConfig>> {
        self.log.range(from, to)
    }

    /// The cluster's name, once named.
    pub(super) fn cluster(&self) -> Option<String> {
        self.core.cluster()
    }

    pub fn config(&self) -> &RaftConfig {
        &self.shared.cfg
    }

    pub fn member(&self) -> &NodeId {
        &self.shared.me
    }

    /// Snapshots every `n` applied commands on top of the threshold policy (0: off).
    pub fn set_snapshot_interval(&self, n: u64) {
        self.snapshot_every.store(n, Ordering::Relaxed);
    }

    pub(super) async fn initialized(&self) -> bool {
        // Once initialized, always initialized: the flag spares every write a round trip
        // through openraft's core, which is busy with an fsync whenever we are loaded.
        if self.is_init.load(Ordering::Relaxed) {
            return true;
        }
        let yes = self.raft.is_initialized().await.unwrap_or(false);
        if yes {
            self.is_init.store(true, Ordering::Relaxed);
        }
        yes
    }

    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        Status {
            name: self.shared.me.name().to_string(),
            initialized: m
                .membership_config
                .membership()
                .voter_ids()
                .next()
                .is_some(),
            leader: m.current_leader.and_then(|l| name_of(&m, l)),
            term: m.current_term,
            cluster: self.core.cluster(),
            replica: self.shared.cfg.replica,
        }
    }

    /// How long ago this node last took entries or a heartbeat from a leader (`None`:
    /// never). A follower notices a silent leader by its election timer; a replica has
    /// none, and reads this instead.
    pub fn since_leader_heard(&self) -> Option<Duration> {
        self.shared.heard.lock().map(|t| t.elapsed())
    }

    pub fn state(&self) -> NodeState {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let voters: BTreeSet<u64> = mem.voter_ids().collect();
        let (mut vs, mut ls) = (Vec::new(), Vec::new());
        for (id, n) in mem.nodes() {
            if voters.contains(id) {
                vs.push(n.clone());
            } else {
                ls.push(n.clone());
            }
        }
        let matched = m
            .replication
            .iter()
            .flatten()
            .filter_map(|(id, log)| {
                Some((
                    mem.get_node(id)?.name().to_string(),
                    log.map_or(0, |l| l.index),
                ))
            })
            .collect();
        NodeState {
            matched,
            name: self.shared.me.name().to_string(),
            addr: self.shared.me.addr(),
            role: role_name(m.state, self.shared.cfg.replica),
            term: m.current_term,
            leader: m.current_leader.and_then(|l| name_of(&m, l)),
            voted_for: Some(m.vote.leader_id().voted_for())
                .flatten()
                .and_then(|v| name_of(&m, v)),
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: m.last_applied.map_or(0, |l| l.index),
            last_applied: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            initialized: !vs.is_empty(),
            voters: vs,
            learners: ls,
        }
    }

    pub(super) fn leader_member(&self) -> Option<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        let l = m.current_leader?;
        m.membership_config.membership().get_node(&l).cloned()
    }

    /// Waits until some leader is known (or the timeout).
    pub(super) async fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader_member() {
                return Some(l);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    pub(super) fn not_leader(&self, leader: Option<NodeId>) -> ApiError {
        let mut e = api(
            ErrorCode::NotLeader,
            match &leader {
                Some(l) => format!(
                    "{} is not the leader; the leader is {}",
                    self.shared.me.name(),
                    l.name()
                ),
                None => format!(
                    "{} is not the leader and no leader is known yet",
                    self.shared.me.name()
                ),
            },
        );
        e.leader = leader.map(|l| l.name().to_string());
        e
    }

    pub(super) async fn forward(&self, to: &NodeId, req: &Request) -> Result<Reply, ApiError> {
        let s = &self.shared;
        s.pool
            .call(&s.dialer, &to.addr(), req, s.cfg.commit_timeout)
            .await
            .map_err(|e| {
                api(
                    if e.kind() == io::ErrorKind::TimedOut {
                        ErrorCode::Timeout
                    } else {
                        ErrorCode::Unavailable
                    },
                    format!("forwarding to the leader {} failed: {e}", to.name()),
                )
            })
    }

    /// Commits `cmd` (here if leader, else through the leader) and returns its result.
    pub async fn write(&self, cmd: Command) -> Result<Committed, ApiError> {
        self.write_as(cmd, Resend::Unsafe).await
    }

    /// Resolves once a leader other than `name` is known: the one a write was forwarded
    /// to was replaced (it may have stopped without closing its connections).
    async fn leader_moved_from(&self, name: &str) {
        let mut rx = self.raft.metrics();
        loop {
            if self.leader_member().is_some_and(|l| l.name() != name) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// [`RaftEngine::write`], told whether the command may be proposed twice. A write
    /// forwarded to a leader that is replaced meanwhile (stopped without closing, so its
    /// answer would only come at the timeout) is abandoned: a resendable one goes to the
    /// new leader at once (the application drops the duplicate if both commit), another
    /// fails at once with `ERR_TIMEOUT` (it may still commit, as after any timeout).
    pub async fn write_as(&self, cmd: Command, resend: Resend) -> Result<Committed, ApiError> {
        let m = &self.shared.metrics;
        let _pending = super::metrics::PendingGuard::new(&m.pending);
        let start = std::time::Instant::now();
        let r = self.write_as_inner(cmd, resend).await;
        match &r {
            Ok(_) => {
                m.committed.inc();
                m.commit.observe(start.elapsed());
            }
            Err(e) => m.failed(e.code),
        }
        r
    }

    async fn write_as_inner(&self, cmd: Command, resend: Resend) -> Result<Committed, ApiError> {
        self.open()?;
        // A replica never founds: its writes wait for the group it joins.
        if !self.shared.cfg.replica
            && !self.initialized().await
            && self.shared.known.lock().is_empty()
        {
            self.found_cluster()
                .await
                .map_err(|e| api(ErrorCode::Io, e.to_string()))?;
        }
        let timeout = self.shared.cfg.commit_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        // The leader a forward to was tried again after failing (see below).
        let mut tried_again: Option<String> = None;
        loop {
            match self.write_here(cmd.clone(), deadline).await {
                Err(e) if e.code == ErrorCode::NotLeader => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let Some(leader) = self.await_leader(left).await else {
                        return Err(e);
                    };
                    if leader.name() == self.shared.me.name() {
                        continue;
                    }
                    if !self.shared.cfg.forward {
                        return Err(self.not_leader(Some(leader)));
                    }
                    let req = Request::Write(cmd.clone());
                    let reply = tokio::select! {
                        r = self.forward(&leader, &req) => match r {
                            // The leader is unreachable (killed, its port closed): a
                            // resendable write waits here for its successor, within the
                            // deadline, instead of failing back to the client, which
                            // would reconnect and resend anyway (thousands of clients
                            // at once, each one backing off). It tries the same leader
                            // once more after a moment: what failed may only have been
                            // a kept connection to a leader that restarted at the same
                            // address (elected again, so no other leader comes: the
                            // write used to wait out its deadline). Once only, so that
                            // writes waiting out an election do not dial a dead port.
                            Err(e) if resend == Resend::Safe && e.code == ErrorCode::Unavailable => {
                                let once = tried_again.as_deref() != Some(leader.name());
                                tried_again = Some(leader.name().to_string());
                                let again = async {
                                    tokio::select! {
                                        _ = self.leader_moved_from(leader.name()) => {}
                                        _ = tokio::time::sleep(FORWARD_RETRY), if once => {}
                                    }
                                };
                                if tokio::time::timeout_at(deadline, again).await.is_err() {
                                    return Err(e);
                                }
                                continue;
                            }
                            r => r?,
                        },
                        _ = self.leader_moved_from(leader.name()) => match resend {
                            Resend::Safe => continue,
                            Resend::Unsafe => return Err(api(
                                ErrorCode::Timeout,
                                format!("the leader {} was replaced while this write was forwarded to it; it may still commit", leader.name()),
                            )),
                        },
                    };
                    return match reply {
                        Reply::Written(r) => r,
                        _ => Err(api(ErrorCode::Protocol, "unexpected reply to a write")),
                    };
                }
                r => return r,
            }
        }
    }

    /// Commits on this node if it is the leader.
    pub(super) async fn write_here(
        &self,
        cmd: Command,
        deadline: tokio::time::Instant,
    ) -> Result<Committed, ApiError> {
        match tokio::time::timeout_at(deadline, self.proposer.propose(cmd)).await {
            Err(_) => Err(api(
                ErrorCode::Timeout,
                "the command was not committed in time (no quorum?); it may still commit later",
            )),
            Ok(Ok((index, response))) => Ok(Committed { index, response }),
            Ok(Err(Rejected::Raft(ClientWriteError::ForwardToLeader(f)))) => {
                Err(self.not_leader(f.leader_node))
            }
            // The proposer writes only normal entries: a membership change in progress.
            Ok(Err(Rejected::Raft(e))) => Err(api(ErrorCode::Busy, e.to_string())),
            Ok(Err(Rejected::Stopped)) => Err(closed()),
            Ok(Err(Rejected::Full)) => Err(api(
                ErrorCode::QueueFull,
                format!(
                    "{} writes already wait for this node to propose them; try again later",
                    super::proposer::MAX_QUEUED
                ),
            )),
        }
    }

    /// Waits until this node's state machine reflects every write committed before the
    /// call (the leader confirms its leadership with a quorum first).
    pub async fn read_barrier(&self) -> Result<u64, ApiError> {
        self.open()?;
        let timeout = self.shared.cfg.commit_timeout;
        let index = match self.barrier_here(timeout).await {
            Err(e) if e.code == ErrorCode::NotLeader => {
                let Some(leader) = self.await_leader(timeout).await else {
                    return Err(e);
                };
                if leader.name() == self.shared.me.name() {
                    self.barrier_here(timeout).await?
                } else {
                    match self.forward(&leader, &Request::Read).await? {
                        Reply::Written(r) => r?.index,
                        _ => return Err(api(ErrorCode::Protocol, "unexpected reply to a read")),
                    }
                }
            }
            r => r?,
        };
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read barrier")
            .await
            .map_err(|e| api(ErrorCode::Timeout, format!("catching up for a read: {e}")))?;
        Ok(index)
    }

    pub(super) async fn barrier_here(&self, timeout: Duration) -> Result<u64, ApiError> {
        match tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await {
            Err(_) => Err(api(ErrorCode::Timeout, "leadership not confirmed in time")),
            Ok(Ok(l)) => Ok(l.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                f,
            )))) => Err(self.not_leader(f.leader_node)),
            Ok(Err(e)) => Err(refused(e, ErrorCode::Unavailable)),
        }
    }

    /// Runs `f` as one of this node's tasks (an embedder's watcher): it ends when the node
    /// stops, and `shutdown` waits for it like the node's own. Must run inside the runtime.
    pub fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = f => {}
            }
        });
    }

    /// Stops serving and shuts Raft down (the durable store is closed once dropped).
    /// Idempotent: stops serving, shuts Raft down, waits (bounded) for this node's tasks,
    /// then closes the durable store. Every call after it answers `ERR_CLOSED`.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let _ = self.raft.shutdown().await;
        self.tracker.shutdown(Duration::from_secs(2)).await;
        self.shared.pool.clear();
        if let Some(d) = &self.disk {
            d.close();
        }
    }

    /// `ERR_CLOSED` once the node was shut down.
    pub(super) fn open(&self) -> Result<(), ApiError> {
        if self.is_stopped() {
            Err(closed())
        } else {
            Ok(())
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Every other node this one knows: the membership's and those added by address.
    pub(super) fn peers(&self) -> BTreeMap<String, String> {
        let mut out = self.shared.known.lock().clone();
        let m = self.raft.metrics().borrow().clone();
        for (_, n) in m.membership_config.membership().nodes() {
            out.insert(n.name().to_string(), n.addr());
        }
        out.remove(self.shared.me.name());
        out
    }
}
