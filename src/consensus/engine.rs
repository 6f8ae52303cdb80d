//! A Raft node: openraft over the framed TCP transport, with the durable or in-memory
//! store, the key-value state machine, and what applications need around it: forwarding
//! writes to the leader, linearizable reads, safe membership changes callable on any
//! node, cluster formation from `addPeer` calls, and events.
//!
//! Cluster formation. A node started with `bootstrap` founds a one-node cluster at once.
//! Otherwise a fresh node waits: it joins when a leader adds it, or when it is asked to
//! add a peer (`add_node`) it sends that peer a `Join`. If both are fresh, only the
//! smallest name either of them was told about founds the cluster (and adds the others
//! as they ask): with a pairwise rule, three fresh nodes told about each other could
//! found two clusters, which then refuse to merge. A fresh node that is asked to
//! write while it knows no peer founds a one-node cluster (a lone node just works).

use super::disk::Disk;
use super::log_store::LogStore;
use super::net::{split_addr, ApiError, Committed, Pool, Reply, Request, Session, Status};
use super::proposer::{Proposer, Rejected};
use super::state_machine::{KvStateMachine, SmEvent, SmSink};
use super::types::{node_id, Command, Member, Response, TypeConfig};
use crate::protocol::FrameLimits;
use crate::transport::{Endpoint, Listener};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{ChangeMembers, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub name: String,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// The host other nodes dial (default: `host`).
    pub advertise_host: Option<String>,
    pub election_timeout_min: u64,
    pub election_timeout_max: u64,
    pub heartbeat_interval: u64,
    /// Entries between snapshots (then the log before them is purged).
    pub snapshot_threshold: u64,
    pub data_dir: Option<PathBuf>,
    pub secret: Option<String>,
    /// Forward writes made on a follower to the leader (else `ERR_NOT_LEADER`).
    pub forward: bool,
    /// How long a write or a membership change may wait for its commit.
    pub commit_timeout: Duration,
    pub bootstrap: bool,
}

impl RaftConfig {
    pub fn local(name: &str) -> RaftConfig {
        RaftConfig {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 0,
            advertise_host: None,
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            snapshot_threshold: 1000,
            data_dir: None,
            secret: None,
            forward: true,
            commit_timeout: Duration::from_secs(5),
            bootstrap: false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum RaftEvent {
    LeaderElected {
        leader: String,
        term: u64,
    },
    BecameFollower {
        term: u64,
    },
    PeerConnected(String),
    PeerDisconnected(String),
    /// The voters and learners after a membership change was applied.
    Members {
        voters: Vec<Member>,
        learners: Vec<Member>,
    },
    State(SmEvent),
}

pub type EventSink = Arc<dyn Fn(RaftEvent) + Send + Sync>;

/// A snapshot of the node's state, for `getState()`.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub name: String,
    pub addr: String,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<String>,
    pub voted_for: Option<String>,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub last_applied: u64,
    pub snapshot_index: Option<u64>,
    pub voters: Vec<Member>,
    pub learners: Vec<Member>,
    pub initialized: bool,
}

struct Shared {
    cfg: RaftConfig,
    me: Member,
    limits: FrameLimits,
    /// Addresses learned from `add_node` before the membership has them.
    known: Mutex<BTreeMap<String, String>>,
    pool: Pool,
    sink: EventSink,
}

pub struct RaftEngine {
    shared: Arc<Shared>,
    pub raft: Raft<TypeConfig>,
    pub sm: KvStateMachine,
    proposer: Proposer,
    is_init: std::sync::atomic::AtomicBool,
    id: u64,
    found: tokio::sync::Mutex<()>,
    stop: CancellationToken,
    snapshot_every: Arc<AtomicU64>,
    disk: Option<Disk>,
}

fn api(code: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

fn name_of(m: &RaftMetrics<u64, Member>, id: u64) -> Option<String> {
    m.membership_config
        .membership()
        .get_node(&id)
        .map(|n| n.name.clone())
}

impl RaftEngine {
    pub async fn start(cfg: RaftConfig, sink: EventSink) -> io::Result<Arc<RaftEngine>> {
        let listener = Listener::bind(&Endpoint::Tcp {
            host: cfg.host.clone(),
            port: cfg.port,
        })?;
        let port = listener.port().unwrap_or(cfg.port);
        let host = cfg
            .advertise_host
            .clone()
            .unwrap_or_else(|| cfg.host.clone());
        let me = Member {
            name: cfg.name.clone(),
            addr: format!("{host}:{port}"),
        };
        let id = node_id(&cfg.name);
        let raft_cfg = Config {
            cluster_name: "redux-cluster-rs".into(),
            election_timeout_min: cfg.election_timeout_min,
            election_timeout_max: cfg.election_timeout_max,
            heartbeat_interval: cfg.heartbeat_interval,
            install_snapshot_timeout: 2000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_threshold.max(1)),
            max_in_snapshot_log_to_keep: (cfg.snapshot_threshold / 2).min(1000),
            max_payload_entries: 4096,
            ..Default::default()
        }
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;

        let snapshot_every = Arc::new(AtomicU64::new(0));
        let since = Arc::new(AtomicU64::new(0));
        let trigger: Arc<Mutex<Option<Raft<TypeConfig>>>> = Arc::new(Mutex::new(None));
        let sm_sink: SmSink = {
            let sink = sink.clone();
            let (every, since, trigger) = (snapshot_every.clone(), since.clone(), trigger.clone());
            Arc::new(move |e: SmEvent| {
                match &e {
                    SmEvent::Applied { .. } => {
                        let n = every.load(Ordering::Relaxed);
                        if n > 0 && since.fetch_add(1, Ordering::Relaxed) + 1 >= n {
                            since.store(0, Ordering::Relaxed);
                            if let Some(r) = trigger.lock().unwrap().clone() {
                                tokio::spawn(async move {
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
        let log = match &disk {
            Some(d) => LogStore::open(d.clone())?,
            None => LogStore::default(),
        };
        let sm = KvStateMachine::open(disk.clone(), Some(sm_sink))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let shared = Arc::new(Shared {
            limits: FrameLimits {
                max_frame: 64 << 20,
                compress_threshold: 256 << 10,
            },
            cfg,
            me,
            known: Mutex::new(BTreeMap::new()),
            pool: Pool::default(),
            sink,
        });
        let net = NetFactory {
            shared: shared.clone(),
        };
        let raft = Raft::new(id, Arc::new(raft_cfg), net, log, sm.clone())
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        *trigger.lock().unwrap() = Some(raft.clone());
        let proposer = Proposer::start(raft.clone(), shared.cfg.commit_timeout);
        let engine = Arc::new(RaftEngine {
            shared,
            raft,
            sm,
            proposer,
            is_init: Default::default(),
            id,
            found: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
            snapshot_every,
            disk,
        });
        tokio::spawn(accept_loop(engine.clone(), listener));
        tokio::spawn(watch_metrics(engine.clone()));
        tokio::spawn(probe_peers(engine.clone()));
        if engine.shared.cfg.bootstrap {
            engine.found_cluster().await?;
        }
        Ok(engine)
    }

    pub fn member(&self) -> &Member {
        &self.shared.me
    }

    /// Snapshots every `n` applied commands on top of the threshold policy (0: off).
    pub fn set_snapshot_interval(&self, n: u64) {
        self.snapshot_every.store(n, Ordering::Relaxed);
    }

    async fn initialized(&self) -> bool {
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

    /// Founds a one-node cluster (idempotent: a no-op once initialized).
    async fn found_cluster(&self) -> io::Result<()> {
        let _g = self.found.lock().await;
        if self.initialized().await {
            return Ok(());
        }
        let members = BTreeMap::from([(self.id, self.shared.me.clone())]);
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(_)) => Ok(()),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        Status {
            name: self.shared.me.name.clone(),
            initialized: m
                .membership_config
                .membership()
                .voter_ids()
                .next()
                .is_some(),
            leader: m.current_leader.and_then(|l| name_of(&m, l)),
            term: m.current_term,
            cluster: self.sm.read(|st| st.cluster.clone()),
        }
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
        NodeState {
            name: self.shared.me.name.clone(),
            addr: self.shared.me.addr.clone(),
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Candidate => "candidate",
                ServerState::Follower => "follower",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
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

    fn leader_member(&self) -> Option<Member> {
        let m = self.raft.metrics().borrow().clone();
        let l = m.current_leader?;
        m.membership_config.membership().get_node(&l).cloned()
    }

    /// Waits until some leader is known (or the timeout).
    async fn await_leader(&self, timeout: Duration) -> Option<Member> {
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

    fn not_leader(&self, leader: Option<Member>) -> ApiError {
        let mut e = api(
            "ERR_NOT_LEADER",
            match &leader {
                Some(l) => format!(
                    "{} is not the leader; the leader is {}",
                    self.shared.me.name, l.name
                ),
                None => format!(
                    "{} is not the leader and no leader is known yet",
                    self.shared.me.name
                ),
            },
        );
        e.leader = leader.map(|l| l.name);
        e
    }

    async fn forward(&self, to: &Member, req: &Request) -> Result<Reply, ApiError> {
        let s = &self.shared;
        s.pool
            .call(
                &to.addr,
                &s.me.name,
                s.cfg.secret.as_deref(),
                s.limits,
                req,
                s.cfg.commit_timeout,
            )
            .await
            .map_err(|e| {
                api(
                    if e.kind() == io::ErrorKind::TimedOut {
                        "ERR_TIMEOUT"
                    } else {
                        "ERR_UNAVAILABLE"
                    },
                    format!("forwarding to the leader {} failed: {e}", to.name),
                )
            })
    }

    /// Commits `cmd` (here if leader, else through the leader) and returns its result.
    pub async fn write(&self, cmd: Command) -> Result<Committed, ApiError> {
        if !self.initialized().await && self.shared.known.lock().unwrap().is_empty() {
            self.found_cluster()
                .await
                .map_err(|e| api("ERR_IO", e.to_string()))?;
        }
        let timeout = self.shared.cfg.commit_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.write_here(cmd.clone(), deadline).await {
                Err(e) if e.code == "ERR_NOT_LEADER" => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let Some(leader) = self.await_leader(left).await else {
                        return Err(e);
                    };
                    if leader.name == self.shared.me.name {
                        continue;
                    }
                    if !self.shared.cfg.forward {
                        return Err(self.not_leader(Some(leader)));
                    }
                    return match self.forward(&leader, &Request::Write(cmd)).await? {
                        Reply::Written(r) => r,
                        _ => Err(api("ERR_PROTOCOL", "unexpected reply to a write")),
                    };
                }
                r => return r,
            }
        }
    }

    /// Commits on this node if it is the leader.
    async fn write_here(
        &self,
        cmd: Command,
        deadline: tokio::time::Instant,
    ) -> Result<Committed, ApiError> {
        match tokio::time::timeout_at(deadline, self.proposer.propose(cmd)).await {
            Err(_) => Err(api(
                "ERR_TIMEOUT",
                "the command was not committed in time (no quorum?); it may still commit later",
            )),
            Ok(Ok((index, response))) => Ok(Committed { index, response }),
            Ok(Err(Rejected::Raft(ClientWriteError::ForwardToLeader(f)))) => {
                Err(self.not_leader(f.leader_node))
            }
            Ok(Err(Rejected::Raft(e))) => Err(api("ERR_RAFT", e.to_string())),
            Ok(Err(Rejected::Stopped)) => Err(api("ERR_RAFT", "the Raft node stopped")),
        }
    }

    /// Waits until this node's state machine reflects every write committed before the
    /// call (the leader confirms its leadership with a quorum first).
    pub async fn read_barrier(&self) -> Result<u64, ApiError> {
        let timeout = self.shared.cfg.commit_timeout;
        let index = match self.barrier_here(timeout).await {
            Err(e) if e.code == "ERR_NOT_LEADER" => {
                let Some(leader) = self.await_leader(timeout).await else {
                    return Err(e);
                };
                if leader.name == self.shared.me.name {
                    self.barrier_here(timeout).await?
                } else {
                    match self.forward(&leader, &Request::Read).await? {
                        Reply::Written(r) => r?.index,
                        _ => return Err(api("ERR_PROTOCOL", "unexpected reply to a read")),
                    }
                }
            }
            r => r?,
        };
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read barrier")
            .await
            .map_err(|e| api("ERR_TIMEOUT", format!("catching up for a read: {e}")))?;
        Ok(index)
    }

    async fn barrier_here(&self, timeout: Duration) -> Result<u64, ApiError> {
        match tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await {
            Err(_) => Err(api("ERR_TIMEOUT", "leadership not confirmed in time")),
            Ok(Ok(l)) => Ok(l.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                f,
            )))) => Err(self.not_leader(f.leader_node)),
            Ok(Err(e)) => Err(api("ERR_RAFT", e.to_string())),
        }
    }

    /// Adds `m` as a voter (a learner first, so it catches up before it counts). Callable
    /// on any node.
    pub async fn add_node(&self, m: Member) -> Result<(), ApiError> {
        if m.name == self.shared.me.name {
            return Ok(());
        }
        split_addr(&m.addr).map_err(|e| api("ERR_INVALID_CONFIG", e.to_string()))?;
        self.shared
            .known
            .lock()
            .unwrap()
            .insert(m.name.clone(), m.addr.clone());
        let deadline = tokio::time::Instant::now() + self.shared.cfg.commit_timeout * 2;
        loop {
            let r = if self.initialized().await {
                self.change(Request::AddNode(m.clone())).await
            } else {
                self.join_via(&m).await
            };
            match r {
                Err(e)
                    if ["ERR_UNAVAILABLE", "ERR_BUSY", "ERR_NOT_LEADER", "ERR_FRESH"]
                        .contains(&e.code.as_str())
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                r => return r,
            }
        }
    }

    /// The smallest name among this node and the peers it was told about: the one that
    /// founds the cluster when all of them are fresh.
    fn smallest_known(&self) -> String {
        let known = self.shared.known.lock().unwrap();
        let me = &self.shared.me.name;
        known.keys().filter(|k| *k < me).min().unwrap_or(me).clone()
    }

    /// Retried by `add_node` until `first` has founded the cluster and added us.
    fn forming(&self, first: &str) -> ApiError {
        api(
            "ERR_UNAVAILABLE",
            format!("no cluster yet: waiting for {first}, the smallest name, to found it"),
        )
    }

    /// A fresh node asks `peer` to add it; when all are fresh the smallest name founds.
    async fn join_via(&self, peer: &Member) -> Result<(), ApiError> {
        match self
            .forward(peer, &Request::Join(self.shared.me.clone()))
            .await
        {
            Ok(Reply::Done(Ok(()))) => Ok(()),
            Ok(Reply::Done(Err(e))) if e.code == "ERR_FRESH" => {
                // The peer says we are the smallest it knows; we may know a smaller one.
                let first = self.smallest_known();
                if first != self.shared.me.name {
                    return Err(self.forming(&first));
                }
                self.found_cluster()
                    .await
                    .map_err(|e| api("ERR_IO", e.to_string()))?;
                self.change(Request::AddNode(peer.clone())).await
            }
            Ok(Reply::Done(Err(e))) => Err(e),
            Ok(_) => Err(api("ERR_PROTOCOL", "unexpected reply to a join")),
            Err(e) => Err(e),
        }
    }

    /// Asks the node at `addr` for its status, within `ttl`.
    pub async fn ping(&self, addr: &str, ttl: Duration) -> Result<Status, ApiError> {
        let s = &self.shared;
        let r = s
            .pool
            .call(
                addr,
                &s.me.name,
                s.cfg.secret.as_deref(),
                s.limits,
                &Request::Ping,
                ttl,
            )
            .await
            .map_err(|e| api("ERR_UNAVAILABLE", format!("{addr}: {e}")))?;
        match r {
            Reply::Status(st) => Ok(st),
            _ => Err(api("ERR_PROTOCOL", "unexpected reply to a ping")),
        }
    }

    pub async fn remove_node(&self, name: &str) -> Result<(), ApiError> {
        self.shared.known.lock().unwrap().remove(name);
        self.change(Request::RemoveNode(name.into())).await
    }

    /// Runs a membership change on the leader (forwarding if needed).
    async fn change(&self, req: Request) -> Result<(), ApiError> {
        let timeout = self.shared.cfg.commit_timeout;
        match self.change_here(&req).await {
            Err(e) if e.code == "ERR_NOT_LEADER" => {
                let Some(leader) = self.await_leader(timeout).await else {
                    return Err(e);
                };
                if leader.name == self.shared.me.name {
                    return self.change_here(&req).await;
                }
                match self.forward(&leader, &req).await? {
                    Reply::Done(r) => r,
                    _ => Err(api("ERR_PROTOCOL", "unexpected reply to a change")),
                }
            }
            r => r,
        }
    }

    /// Refuses to add a node that belongs to another cluster: Raft would overwrite its
    /// log with ours (or it would fight our leader) instead of failing. The leader names
    /// the cluster (a `Genesis` entry) before it adds its first node, so every member
    /// knows the name; a node that knows another name, or none but already has a
    /// cluster, is someone else's.
    async fn same_cluster(&self, n: &Member) -> Result<(), ApiError> {
        if self.sm.read(|st| st.cluster.is_none()) {
            let cluster = format!("{:016x}", rand::random::<u64>());
            self.write(Command::Genesis { cluster }).await?;
        }
        let ours = self.sm.read(|st| st.cluster.clone());
        // Unreachable now: adding it as a learner waits for it (or times out).
        let Ok(theirs) = self.ping(&n.addr, Duration::from_secs(1)).await else {
            return Ok(());
        };
        if theirs.name != n.name {
            return Err(api(
                "ERR_INVALID_ARGUMENT",
                format!("the node at {} is {}, not {}", n.addr, theirs.name, n.name),
            ));
        }
        let other = match &theirs.cluster {
            Some(c) => Some(c) != ours.as_ref(),
            None => theirs.initialized,
        };
        if other {
            return Err(api(
                "ERR_OTHER_CLUSTER",
                format!(
                    "{} at {} already belongs to another cluster; remove it there and \
                     start it with an empty dataDir to move it here",
                    n.name, n.addr
                ),
            ));
        }
        Ok(())
    }

    async fn change_here(&self, req: &Request) -> Result<(), ApiError> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            let leader = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).cloned());
            return Err(self.not_leader(leader));
        }
        let mem = m.membership_config.membership().clone();
        let map = |e: RaftError<u64, ClientWriteError<u64, Member>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                self.not_leader(f.leader_node)
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
                api("ERR_BUSY", c.to_string())
            }
            e => api("ERR_RAFT", e.to_string()),
        };
        let timeout = self.shared.cfg.commit_timeout * 2;
        async fn within<F: std::future::Future>(t: Duration, f: F) -> Result<F::Output, ApiError> {
            tokio::time::timeout(t, f).await.map_err(|_| {
                api(
                    "ERR_TIMEOUT",
                    "the membership change did not commit in time",
                )
            })
        }
        match req {
            Request::AddNode(n) => {
                let id = node_id(&n.name);
                if mem.voter_ids().any(|v| v == id) {
                    return Ok(());
                }
                if mem.get_node(&id).is_none() {
                    self.same_cluster(n).await?;
                }
                // openraft's blocking add_learner calls a learner "up to date" while it is
                // within 5,000 entries of the leader, which a node that never answered is
                // in a young cluster: promoted, it would take the quorum with it. Promote
                // only once it has acknowledged the entry that added it; else take it out.
                let added = within(timeout, self.raft.add_learner(id, n.clone(), false))
                    .await?
                    .map_err(map)?;
                let caught_up = self
                    .raft
                    .wait(Some(timeout))
                    .metrics(
                        |m| {
                            m.replication
                                .as_ref()
                                .and_then(|r| r.get(&id))
                                .and_then(|matched| matched.as_ref())
                                .is_some_and(|l| l.index >= added.log_id.index)
                        },
                        "the new learner acknowledged its addition",
                    )
                    .await;
                if caught_up.is_err() {
                    let _ = within(
                        timeout,
                        self.raft
                            .change_membership(ChangeMembers::RemoveNodes([id].into()), false),
                    )
                    .await;
                    return Err(api(
                        "ERR_UNAVAILABLE",
                        format!(
                            "{} at {} did not answer within {} ms; it was not added",
                            n.name,
                            n.addr,
                            timeout.as_millis()
                        ),
                    ));
                }
                within(
                    timeout,
                    self.raft
                        .change_membership(ChangeMembers::AddVoterIds([id].into()), false),
                )
                .await?
                .map_err(map)?;
                Ok(())
            }
            Request::RemoveNode(name) => {
                let id = node_id(name);
                if mem.get_node(&id).is_none() {
                    return Ok(());
                }
                let change = if mem.voter_ids().any(|v| v == id) {
                    ChangeMembers::RemoveVoters([id].into())
                } else {
                    ChangeMembers::RemoveNodes([id].into())
                };
                within(timeout, self.raft.change_membership(change, false))
                    .await?
                    .map_err(map)?;
                Ok(())
            }
            _ => Err(api("ERR_PROTOCOL", "not a membership change")),
        }
    }

    async fn handle(self: Arc<Self>, req: Request) -> Reply {
        match req {
            Request::Append(r) => Reply::Append(self.raft.append_entries(r).await),
            Request::Vote(r) => Reply::Vote(self.raft.vote(r).await),
            Request::Snapshot(r) => Reply::Snapshot(self.raft.install_snapshot(r).await),
            Request::Write(cmd) => {
                let deadline = tokio::time::Instant::now() + self.shared.cfg.commit_timeout;
                Reply::Written(self.write_here(cmd, deadline).await)
            }
            Request::Read => {
                Reply::Written(self.barrier_here(self.shared.cfg.commit_timeout).await.map(
                    |index| Committed {
                        index,
                        response: Response::default(),
                    },
                ))
            }
            r @ (Request::AddNode(_) | Request::RemoveNode(_)) => {
                Reply::Done(self.change_here(&r).await)
            }
            Request::Join(m) => {
                self.shared
                    .known
                    .lock()
                    .unwrap()
                    .insert(m.name.clone(), m.addr.clone());
                if self.initialized().await {
                    return Reply::Done(self.change(Request::AddNode(m)).await);
                }
                // Only the smallest name known founds (so that three fresh nodes told
                // about each other form one cluster, not two); the others wait for it.
                match self.smallest_known() {
                    first if first == self.shared.me.name => {
                        if let Err(e) = self.found_cluster().await {
                            return Reply::Done(Err(api("ERR_IO", e.to_string())));
                        }
                        Reply::Done(self.change(Request::AddNode(m)).await)
                    }
                    first if first == m.name => Reply::Done(Err(api(
                        "ERR_FRESH",
                        "not in a cluster yet: the smallest name founds it",
                    ))),
                    first => Reply::Done(Err(self.forming(&first))),
                }
            }
            Request::Ping => Reply::Status(self.status()),
        }
    }

    /// Stops serving and shuts Raft down (the durable store is closed once dropped).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let _ = self.raft.shutdown().await;
        self.shared.pool.clear();
        if let Some(d) = &self.disk {
            d.close();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Every other node this one knows: the membership's and those added by address.
    fn peers(&self) -> BTreeMap<String, String> {
        let mut out = self.shared.known.lock().unwrap().clone();
        let m = self.raft.metrics().borrow().clone();
        for (_, n) in m.membership_config.membership().nodes() {
            out.insert(n.name.clone(), n.addr.clone());
        }
        out.remove(&self.shared.me.name);
        out
    }
}

async fn accept_loop(engine: Arc<RaftEngine>, listener: Listener) {
    loop {
        let accepted = tokio::select! {
            _ = engine.stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let e = engine.clone();
        tokio::spawn(async move {
            let s = &e.shared;
            let handshake = tokio::time::timeout(
                Duration::from_secs(5),
                Session::accept(stream, &s.me.name, s.cfg.secret.as_deref(), s.limits),
            )
            .await;
            let session = match handshake {
                Ok(Ok(session)) => session,
                Ok(Err(err)) => {
                    tracing::warn!(peer = %peer.name, "raft connection refused: {err}");
                    return;
                }
                Err(_) => return,
            };
            let stop = e.stop.clone();
            let h = e.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = super::net::serve_session(session, move |req| h.clone().handle(req)) => {}
            }
        });
    }
}

/// Turns metric changes into events: a leader known (on every node), a step down.
async fn watch_metrics(engine: Arc<RaftEngine>) {
    let mut rx = engine.raft.metrics();
    let mut last_leader: Option<(u64, u64)> = None;
    let mut last_state = ServerState::Learner;
    let mut last_members: Option<openraft::LogId<u64>> = None;
    loop {
        let m = rx.borrow_and_update().clone();
        if let Some(l) = m.current_leader {
            if last_leader != Some((l, m.current_term)) {
                last_leader = Some((l, m.current_term));
                if let Some(name) = name_of(&m, l) {
                    (engine.shared.sink)(RaftEvent::LeaderElected {
                        leader: name,
                        term: m.current_term,
                    });
                }
            }
        }
        if m.state != last_state {
            if m.state == ServerState::Follower
                && matches!(last_state, ServerState::Leader | ServerState::Candidate)
            {
                (engine.shared.sink)(RaftEvent::BecameFollower {
                    term: m.current_term,
                });
            }
            last_state = m.state;
        }
        let mid = *m.membership_config.log_id();
        if mid.is_some() && mid != last_members {
            last_members = mid;
            let st = engine.state();
            (engine.shared.sink)(RaftEvent::Members {
                voters: st.voters,
                learners: st.learners,
            });
        }
        tokio::select! {
            _ = engine.stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// Pings every known peer on its own connection; reports when one comes and goes.
async fn probe_peers(engine: Arc<RaftEngine>) {
    let every = Duration::from_millis((engine.shared.cfg.heartbeat_interval * 2).max(100));
    let ttl = Duration::from_millis(engine.shared.cfg.election_timeout_max.max(200));
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let mut up: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = engine.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let peers = engine.peers();
        for (name, addr) in &peers {
            let s = &engine.shared;
            let ok = async {
                if !sessions.contains_key(name) {
                    let c = tokio::time::timeout(
                        ttl,
                        Session::connect(addr, &s.me.name, s.cfg.secret.as_deref(), s.limits),
                    )
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                    sessions.insert(name.clone(), c);
                }
                let sess = sessions.get_mut(name).expect("inserted");
                match sess.call(&Request::Ping, ttl).await? {
                    Reply::Status(st) if &st.name == name => Ok(()),
                    _ => Err(io::Error::other("unexpected ping reply")),
                }
            }
            .await
            .is_ok();
            if !ok {
                sessions.remove(name);
            }
            if ok && up.insert(name.clone()) {
                (s.sink)(RaftEvent::PeerConnected(name.clone()));
            } else if !ok && up.remove(name) {
                (s.sink)(RaftEvent::PeerDisconnected(name.clone()));
            }
        }
        // Peers removed from the cluster are no longer watched.
        up.retain(|n| {
            let keep = peers.contains_key(n);
            if !keep {
                (engine.shared.sink)(RaftEvent::PeerDisconnected(n.clone()));
            }
            keep
        });
        sessions.retain(|n, _| peers.contains_key(n));
    }
}

/// openraft's view of the network: one connection per target per replication stream.
struct NetFactory {
    shared: Arc<Shared>,
}

struct NetConn {
    shared: Arc<Shared>,
    target: Member,
    // openraft wants the network Sync; the lock is never contended (calls take &mut self).
    session: tokio::sync::Mutex<Option<Session>>,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetConn;

    async fn new_client(&mut self, _target: u64, node: &Member) -> NetConn {
        NetConn {
            shared: self.shared.clone(),
            target: node.clone(),
            session: tokio::sync::Mutex::new(None),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, Member, RaftError<u64, E>>;

impl NetConn {
    async fn call(&mut self, req: Request, ttl: Duration) -> Result<Reply, io::Error> {
        let mut slot = self.session.lock().await;
        if slot.is_none() {
            let s = &self.shared;
            let c = tokio::time::timeout(
                ttl,
                Session::connect(
                    &self.target.addr,
                    &s.me.name,
                    s.cfg.secret.as_deref(),
                    s.limits,
                ),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            *slot = Some(c);
        }
        let s = slot.as_mut().expect("connected");
        let r = s.call(&req, ttl).await;
        if r.is_err() {
            *slot = None;
        }
        r
    }

    fn io_err<E: std::error::Error>(&self, e: io::Error) -> RPCError<u64, Member, E> {
        match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::TimedOut
            | io::ErrorKind::NotConnected => RPCError::Unreachable(Unreachable::new(&e)),
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<u64, E>,
    ) -> RPCError<u64, Member, RaftError<u64, E>> {
        RPCError::RemoteError(RemoteError::new_with_node(
            node_id(&self.target.name),
            self.target.clone(),
            e,
        ))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, Member, E> {
    RPCError::Network(NetworkError::new(&io::Error::other("unexpected reply")))
}

impl RaftNetwork<TypeConfig> for NetConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self.call(Request::Append(rpc), option.hard_ttl()).await {
            Ok(Reply::Append(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self.call(Request::Snapshot(rpc), option.hard_ttl()).await {
            Ok(Reply::Snapshot(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e)),
        }
    }
}
