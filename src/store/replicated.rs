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
use std::future::Future;
use std::io;
use std::sync::Arc;
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
}

/// A batch of this server's own actions, and who waits for where it went.
type Own = (Vec<String>, oneshot::Sender<Result<Admitted, ApiError>>);

/// The store's state machine: its sequence numbers and per-client table, replicated;
/// its log and reducer state, which live in this server's [`LocalAuthority`], go into
/// each Raft snapshot and come back from an installed one.
pub(crate) struct StoreMachine(Arc<LocalAuthority>);

#[cfg(test)]
impl StoreMachine {
    /// A store machine over a log of its own, for tests of the engine.
    pub(crate) fn for_tests() -> StoreMachine {
        struct Quiet;
        impl Wake for Quiet {
            fn wake(&self) {}
        }
        StoreMachine(LocalAuthority::new(
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
}

impl Machine for StoreMachine {
    type State = StoreData;
    type Extra = StorePart;
    type Captured = StoreCapture;
    type Command = StoreBatch;
    type Response = StoreAnswer;

    fn apply(&self, st: &mut StoreData, b: StoreBatch, _index: u64) -> StoreAnswer {
        match st.store.submit(b.client, b.first_counter, b.actions.len()) {
            Ok(admitted) => StoreAnswer::Admitted(admitted),
            // The batch does not follow what this client sent before: nothing applied.
            Err(_) => StoreAnswer::Refused(ErrorCode::Protocol),
        }
    }

    fn refuse(_why: &str) -> StoreAnswer {
        StoreAnswer::Refused(ErrorCode::Invalid)
    }

    fn capture(&self, st: &StoreData) -> Result<Option<StoreCapture>, String> {
        let head = st.store.head();
        if head == 0 {
            return Ok(None);
        }
        match self.0.capture(head) {
            Some(c) => Ok(Some(c)),
            None => Err(format!("the store could not give its state at #{head}")),
        }
    }

    fn encode(captured: StoreCapture) -> StorePart {
        captured.into()
    }

    fn restore(&self, part: StorePart) {
        self.0.restore(part)
    }

    fn restored(st: StoreData) -> StoreData {
        StoreData {
            store: st.store.restored(),
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
        // Called in apply order, on every server, for every committed batch (and again
        // for the whole log when a server restarts from its dataDir).
        let sink: EventSink = Arc::new(move |e| match e {
            RaftEvent::State(SmEvent::Applied {
                command, response, ..
            }) => {
                if let Some((b, StoreAnswer::Admitted(a))) =
                    applied::<StoreMachine>(&command, &response)
                {
                    if let Some(run) = a.run {
                        let new = b.actions.into_iter().skip(a.skip).collect();
                        feed.append_ordered(run.first_seq, new);
                    }
                }
            }
            RaftEvent::Role { role, term } => feed.report(Event {
                kind: EventKind::Role(role.to_string()),
                message: term.to_string(),
            }),
            RaftEvent::LeaderElected { leader, term } => feed.report(Event {
                kind: EventKind::Leader(leader),
                message: term.to_string(),
            }),
            RaftEvent::Warning { code, message } => feed.report(Event::error(code, message)),
            _ => {}
        });
        let engine = RaftEngine::start_with(raft, sink, StoreMachine(local.clone())).await?;
        let (own, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let tracker = crate::tasks::Tasks::new();
        tracker.spawn(propose_own(engine.clone(), rx, cancel.clone()));
        tracker.spawn(watch_group(
            engine.engine().clone(),
            local.clone(),
            cancel.clone(),
        ));
        Ok(Arc::new(RaftAuthority {
            local,
            engine,
            own,
            cancel,
            tracker,
        }))
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
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.engine.shutdown().await;
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
        };
        let result = loop {
            match engine.write_as(&cmd, Resend::Safe).await {
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
        self.sm().read(|s| s.store.acked(client_id))
    }

    fn recent(&self, client_id: u64) -> Vec<Ordered> {
        self.sm().read(|s| s.store.recent(client_id))
    }

    fn submit_remote(
        &self,
        client_id: u64,
        first_counter: u64,
        actions: Vec<Bytes>,
    ) -> impl Future<Output = Result<(u64, Vec<Ordered>), FrameError>> + Send {
        let engine = self.engine.clone();
        async move {
            let cmd = StoreBatch {
                client: client_id,
                first_counter,
                actions,
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
        let json = serde_json::to_vec(&st).unwrap();
        let back: Full<StoreData, StorePart> = serde_json::from_slice(&json).unwrap();
        let back_store = StoreMachine::restored(back.app.clone()).store;
        assert_eq!(back_store.head(), 3);
        assert_eq!(back_store.acked(11_969_433_801_037_937_980), 3);
        assert_eq!((back.commands, back.extra), (7, st.extra));
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
