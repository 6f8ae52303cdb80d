//! The replicated state machine, generic over what it replicates.
//!
//! [`StateMachine`] does what every Raft state machine here needs: the applied log id and
//! membership, the cluster's name (`Genesis`), `Batch` entries (see `proposer`), events
//! in apply order, and snapshots (JSON; with a [`Disk`], written durably before openraft
//! may purge the log they replace). What the state *is*, and what its commands are,
//! comes from a [`Machine`], which the core knows only through this trait: the @unrdf
//! key-value machine and RaftNode's (`consensus::machines`), a replicated store's
//! sequencer (`store::replicated`). All run on the same log, network, storage and
//! formation code.

use super::storage::disk::Disk;
use super::types::{Blob, Command, NodeId, Response, TypeConfig};
use bytes::Bytes;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a machine's commands and answers travel in the log: each machine picks its own
/// encoding (the core never reads it).
pub trait Codec: Sized {
    fn encode(&self) -> Bytes;
    /// `b` is the whole encoding (a decoder may keep slices of it: no copy).
    fn decode(b: &Bytes) -> Result<Self, String>;
}

/// The log's command carrying a machine's `cmd`.
pub fn command<M: Machine>(cmd: &M::Command) -> Command {
    Command::App(Blob(cmd.encode()))
}

/// A machine's answer, from what applying its command returned.
pub fn answer<M: Machine>(r: &Response) -> M::Response {
    match r {
        Response::App(b) => M::Response::decode(b).unwrap_or_else(|e| M::refuse(&e)),
        _ => M::refuse("the entry carried no command of this machine"),
    }
}

/// An applied command and its answer, as `M` declared them (for a sink of `M`'s node:
/// `None` for the engine's own commands).
pub fn applied<M: Machine>(cmd: &Command, r: &Response) -> Option<(M::Command, M::Response)> {
    match cmd {
        Command::App(b) => Some((M::Command::decode(b).ok()?, answer::<M>(r))),
        _ => None,
    }
}

/// What a Raft group replicates, beyond Raft's own bookkeeping.
pub trait Machine: Send + Sync + 'static {
    /// The replicated state (in every snapshot).
    type State: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a snapshot carries besides `State`: state the machine's owner holds outside
    /// the lock (a store's log and its reducer's state).
    type Extra: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// `Extra` as copied under the lock (cheaply); encoded outside it.
    type Captured: Send + 'static;

    /// What the machine's users propose, and what applying it answers.
    type Command: Codec + Send;
    type Response: Codec + Send;

    /// Applies one command.
    fn apply(&self, st: &mut Self::State, cmd: Self::Command, index: u64) -> Self::Response;

    /// The answer to bytes that are not one of this machine's commands (changing
    /// nothing): a bug or a peer's garbage, said as the machine says refusals.
    fn refuse(why: &str) -> Self::Response;

    /// Called under the lock while a snapshot is built, so the owner's part is exactly
    /// at `st` (events are delivered under the lock too). `Err` is a bug.
    fn capture(&self, _st: &Self::State) -> Result<Option<Self::Captured>, String> {
        Ok(None)
    }

    /// Turns a capture into what the snapshot carries (outside the lock, off the
    /// runtime's threads).
    fn encode(captured: Self::Captured) -> Self::Extra;

    /// A snapshot's extra part, handed back under the lock as the snapshot is installed.
    fn restore(&self, _extra: Self::Extra) {}

    /// A state decoded from a snapshot, before it is used (to rebuild what is not stored).
    fn restored(st: Self::State) -> Self::State {
        st
    }

    /// How big the state is, for the snapshot events (keys, for the key-value machine).
    fn size(_st: &Self::State) -> usize {
        0
    }
}

/// Raft's bookkeeping and a machine's state, under one lock and in one snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(bound(serialize = "S: Serialize, X: Serialize"))]
pub struct Full<S, X> {
    pub last_applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, NodeId>,
    /// The cluster's name, from its first `Genesis` entry.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Normal (non-membership, non-blank) entries ever applied.
    pub commands: u64,
    /// The machine's state (its fields sit beside these in the JSON, as they always did).
    #[serde(flatten)]
    pub app: S,
    /// In a snapshot only: the machine's extra part (see [`Machine::Extra`]).
    #[serde(
        default,
        rename = "store_part",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<X>,
}

/// By hand, not derived: serde's `flatten` loses the integer keys of a machine's maps
/// (a store's per-client table) on the way back. The machine's fields are what is left
/// once Raft's are taken out.
impl<'de, S: DeserializeOwned, X: DeserializeOwned> Deserialize<'de> for Full<S, X> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Map::<String, Value>::deserialize(d)?;
        fn field<T: DeserializeOwned + Default, E: Error>(v: Option<Value>) -> Result<T, E> {
            match v {
                None | Some(Value::Null) => Ok(T::default()),
                Some(v) => serde_json::from_value(v).map_err(E::custom),
            }
        }
        Ok(Full {
            last_applied: field(v.remove("last_applied"))?,
            membership: field(v.remove("membership"))?,
            cluster: field(v.remove("cluster"))?,
            commands: field(v.remove("commands"))?,
            extra: match v.remove("store_part") {
                None | Some(Value::Null) => None,
                Some(x) => Some(serde_json::from_value(x).map_err(D::Error::custom)?),
            },
            app: serde_json::from_value(Value::Object(v)).map_err(D::Error::custom)?,
        })
    }
}

impl<S: Default, X> Default for Full<S, X> {
    fn default() -> Self {
        Full {
            last_applied: None,
            membership: StoredMembership::default(),
            cluster: None,
            commands: 0,
            app: S::default(),
            extra: None,
        }
    }
}

impl<S, X> std::ops::Deref for Full<S, X> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.app
    }
}

impl<S, X> std::ops::DerefMut for Full<S, X> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.app
    }
}

/// What the state machine tells its owner, in apply order.
#[derive(Debug, Clone)]
pub enum SmEvent {
    Applied {
        index: u64,
        /// The term of the entry's leader.
        term: u64,
        /// The command's position in its entry (0 unless the entry is a `Batch`).
        sub: usize,
        command: Command,
        response: Response,
    },
    SnapshotCreated {
        id: String,
        index: u64,
        size: usize,
    },
    SnapshotRestored {
        id: String,
        index: u64,
        size: usize,
    },
}

pub type SmSink = Arc<dyn Fn(SmEvent) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<u64, NodeId>,
    pub data: Vec<u8>,
}

pub struct StateMachine<M: Machine> {
    state: Arc<Mutex<Full<M::State, M::Extra>>>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots: Arc<AtomicU64>,
    disk: Option<Disk>,
    sink: Option<SmSink>,
    machine: Arc<M>,
    metrics: Arc<super::metrics::NodeMetrics>,
}

impl<M: Machine> Clone for StateMachine<M> {
    fn clone(&self) -> Self {
        StateMachine {
            state: self.state.clone(),
            current: self.current.clone(),
            snapshots: self.snapshots.clone(),
            disk: self.disk.clone(),
            sink: self.sink.clone(),
            machine: self.machine.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<M: Machine + Default> Default for StateMachine<M> {
    fn default() -> Self {
        Self::new(M::default(), None, None)
    }
}

/// What every state machine tells the engine, whatever it replicates.
pub trait Core: Send + Sync {
    /// The cluster's name, once a `Genesis` entry named it.
    fn cluster(&self) -> Option<String>;
}

impl<M: Machine> Core for StateMachine<M> {
    fn cluster(&self) -> Option<String> {
        self.state.lock().cluster.clone()
    }
}

impl<M: Machine> StateMachine<M> {
    fn new(machine: M, disk: Option<Disk>, sink: Option<SmSink>) -> Self {
        StateMachine {
            state: Arc::default(),
            current: Arc::default(),
            snapshots: Arc::default(),
            disk,
            sink,
            machine: Arc::new(machine),
            metrics: Arc::default(),
        }
    }

    /// Counts what this machine applies and how long its snapshots take in `m` (its
    /// node's metrics).
    pub fn with_metrics(mut self, m: Arc<super::metrics::NodeMetrics>) -> Self {
        self.metrics = m;
        self
    }

    /// A state machine for `machine` that persists its snapshots to `disk` and starts
    /// from the last one there.
    pub fn open_with(
        machine: M,
        disk: Option<Disk>,
        sink: Option<SmSink>,
    ) -> Result<Self, StorageError<u64>> {
        let sm = Self::new(machine, disk, sink);
        if let Some(Some(snap)) = sm.disk.as_ref().map(|d| d.load_snapshot()).transpose()? {
            let state = Self::decode(&snap.meta, &snap.data)?;
            let n = M::size(&state.app);
            sm.adopt(state);
            sm.emit(SmEvent::SnapshotRestored {
                id: snap.meta.snapshot_id.clone(),
                index: snap.meta.last_log_id.map_or(0, |l| l.index),
                size: n,
            });
            *sm.current.lock() = Some(snap);
        }
        Ok(sm)
    }

    fn emit(&self, e: SmEvent) {
        if let Some(s) = &self.sink {
            s(e)
        }
    }

    /// Reads the state under its lock (local reads: no consensus).
    pub fn read<T>(&self, f: impl FnOnce(&Full<M::State, M::Extra>) -> T) -> T {
        f(&self.state.lock())
    }

    /// A snapshot's state (its extra part still in it: see `adopt`).
    fn decode(
        meta: &SnapshotMeta<u64, NodeId>,
        data: &[u8],
    ) -> Result<Full<M::State, M::Extra>, StorageError<u64>> {
        let mut state: Full<M::State, M::Extra> = serde_json::from_slice(data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.app = M::restored(std::mem::take(&mut state.app));
        Ok(state)
    }

    /// Makes a decoded snapshot the state, its extra part the owner's, under the lock
    /// (so nothing is applied in between).
    fn adopt(&self, mut state: Full<M::State, M::Extra>) {
        let mut guard = self.state.lock();
        if let Some(extra) = state.extra.take() {
            self.machine.restore(extra);
        }
        *guard = state;
    }

    /// One command: the cluster's name here, the rest by the machine.
    fn apply_one(&self, st: &mut Full<M::State, M::Extra>, cmd: &Command, index: u64) -> Response {
        let r = match cmd {
            Command::Genesis { cluster } => {
                st.cluster.get_or_insert_with(|| cluster.clone());
                return Response::None;
            }
            Command::Batch(_) => M::refuse("a batch inside a batch"),
            Command::App(b) => match M::Command::decode(b) {
                Ok(c) => self.machine.apply(&mut st.app, c, index),
                Err(e) => M::refuse(&e),
            },
        };
        st.commands += 1;
        Response::App(Blob(r.encode()))
    }
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for StateMachine<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let start = std::time::Instant::now();
        let r = self.build().await;
        if r.is_ok() {
            self.metrics
                .snapshot
                .get(&["build"])
                .observe(start.elapsed());
        }
        r
    }
}

impl<M: Machine> StateMachine<M> {
    async fn build(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        // Copied under the lock (the owner's part as cheap copies), encoded outside it:
        // applying waits for the copy only.
        let (mut st, captured) = {
            let g = self.state.lock();
            let captured = self.machine.capture(&g.app).map_err(|e| {
                StorageIOError::read_state_machine(&std::io::Error::other(format!(
                    "cannot snapshot the state: {e} (a bug, please report it)"
                )))
            })?;
            (g.clone(), captured)
        };
        // Encoding an owner's part can take tens of milliseconds: off the runtime's
        // threads, so that heartbeats and replication are not held up by it.
        let (st, data) = tokio::task::spawn_blocking(move || {
            st.extra = captured.map(M::encode);
            let data = serde_json::to_vec(&st);
            st.extra = None;
            (st, data)
        })
        .await
        .map_err(|e| StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())))?;
        let data = data.map_err(|e| StorageIOError::read_state_machine(&e))?;
        let (last, membership, size) = (st.last_applied, st.membership.clone(), M::size(&st.app));
        let n = self.snapshots.fetch_add(1, Ordering::Relaxed) + 1;
        let id = match last {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("--{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: membership,
            snapshot_id: id.clone(),
        };
        let mut snap = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        // Durable before openraft learns of it: it purges the log up to here next.
        if let Some(d) = &self.disk {
            snap = d.store_snapshot(snap).await?;
        }
        *self.current.lock() = Some(snap);
        self.emit(SmEvent::SnapshotCreated {
            id,
            index: last.map_or(0, |l| l.index),
            size,
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<M: Machine> RaftStateMachine<TypeConfig> for StateMachine<M> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, NodeId>), StorageError<u64>> {
        let st = self.state.lock();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let start = std::time::Instant::now();
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut commands = 0u64;
        let mut st = self.state.lock();
        for e in entries {
            st.last_applied = Some(e.log_id);
            let index = e.log_id.index;
            let r = match e.payload {
                EntryPayload::Blank => Response::None,
                EntryPayload::Normal(Command::Batch(cmds)) => {
                    let mut each = Vec::with_capacity(cmds.len());
                    commands += cmds.len() as u64;
                    for (sub, cmd) in cmds.into_iter().enumerate() {
                        let r = self.apply_one(&mut st, &cmd, index);
                        if self.sink.is_some() && !matches!(cmd, Command::Genesis { .. }) {
                            events.push(SmEvent::Applied {
                                index,
                                term: e.log_id.leader_id.term,
                                sub,
                                command: cmd,
                                response: r.clone(),
                            });
                        }
                        each.push(r);
                    }
                    Response::Batch(each)
                }
                EntryPayload::Normal(cmd) => {
                    commands += 1;
                    let r = self.apply_one(&mut st, &cmd, index);
                    if self.sink.is_some() && !matches!(cmd, Command::Genesis { .. }) {
                        events.push(SmEvent::Applied {
                            index,
                            term: e.log_id.leader_id.term,
                            sub: 0,
                            command: cmd,
                            response: r.clone(),
                        });
                    }
                    r
                }
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(e.log_id), m);
                    Response::None
                }
            };
            out.push(r);
        }
        // Delivered under the lock: a snapshot built meanwhile sees the machine's owner
        // exactly where the state is (see `Machine::capture`).
        for e in events {
            self.emit(e);
        }
        drop(st);
        if commands > 0 {
            self.metrics.applied.add(commands);
            self.metrics.apply.observe(start.elapsed());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, NodeId>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let start = std::time::Instant::now();
        let data = snapshot.into_inner();
        let state = Self::decode(meta, &data)?;
        let size = M::size(&state.app);
        let mut snap = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        if let Some(d) = &self.disk {
            snap = d.store_snapshot(snap).await?;
        }
        self.adopt(state);
        *self.current.lock() = Some(snap);
        self.emit(SmEvent::SnapshotRestored {
            id: meta.snapshot_id.clone(),
            index: meta.last_log_id.map_or(0, |l| l.index),
            size,
        });
        self.metrics
            .snapshot
            .get(&["install"])
            .observe(start.elapsed());
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self.current.lock().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// A machine for the core's tests, which need no application.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Sums numbers.
    #[derive(Default)]
    pub(crate) struct Sum;

    #[derive(Debug, PartialEq)]
    pub(crate) struct N(pub(crate) i64);

    impl Codec for N {
        fn encode(&self) -> Bytes {
            Bytes::copy_from_slice(&self.0.to_le_bytes())
        }
        fn decode(b: &Bytes) -> Result<N, String> {
            let a: [u8; 8] = b[..].try_into().map_err(|_| "not 8 bytes".to_string())?;
            Ok(N(i64::from_le_bytes(a)))
        }
    }

    /// A struct, not a bare number: `Full` puts the machine's fields beside Raft's.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub(crate) struct Total {
        pub(crate) total: i64,
    }

    impl Machine for Sum {
        type State = Total;
        type Extra = ();
        type Captured = ();
        type Command = N;
        type Response = N;
        fn apply(&self, st: &mut Total, cmd: N, _index: u64) -> N {
            st.total += cmd.0;
            N(st.total)
        }
        fn refuse(_why: &str) -> N {
            N(-1)
        }
        fn encode(_: ()) {}
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Sum, N};
    use super::*;
    use crate::consensus::MemLogStore;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::CommittedLeaderId;

    struct Builder;

    impl StoreBuilder<TypeConfig, MemLogStore, StateMachine<Sum>> for Builder {
        async fn build(&self) -> Result<((), MemLogStore, StateMachine<Sum>), StorageError<u64>> {
            Ok(((), MemLogStore::default(), StateMachine::default()))
        }
    }

    #[test]
    fn openraft_storage_conformance_suite() {
        Suite::test_all(Builder).unwrap();
    }

    /// A `Batch` entry applies its commands in order, each with its own answer and event,
    /// exactly as consecutive entries would (the proposer relies on this); bytes that are
    /// not the machine's command are refused by the machine, and `Genesis` names the
    /// cluster without an event.
    #[tokio::test]
    async fn a_batch_entry_applies_each_command_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let sink: SmSink = Arc::new(move |e| {
            if let SmEvent::Applied { index, sub, .. } = e {
                s.lock().push((index, sub));
            }
        });
        let mut sm = StateMachine::open_with(Sum, None, Some(sink)).unwrap();
        let n = |v| command::<Sum>(&N(v));
        let batch = Command::Batch(vec![
            n(2),
            Command::Genesis {
                cluster: "c1".into(),
            },
            Command::App(Blob::from(b"garbage".to_vec())),
            n(3),
            Command::Batch(vec![n(100)]),
        ]);
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), 5),
            payload: EntryPayload::Normal(batch),
        };
        let out = sm.apply([entry]).await.unwrap();
        let Response::Batch(each) = &out[0] else {
            panic!("{out:?}")
        };
        let got: Vec<i64> = each.iter().map(|r| answer::<Sum>(r).0).collect();
        assert_eq!(got, [2, -1, -1, 5, -1]);
        assert_eq!(each[1], Response::None);
        assert_eq!(sm.read(|st| (st.total, st.commands)), (5, 4));
        assert_eq!(sm.cluster().as_deref(), Some("c1"));
        assert_eq!(*seen.lock(), vec![(5, 0), (5, 2), (5, 3), (5, 4)]);
    }
}
