//! The replicated state machine, generic over what it replicates.
//!
//! [`StateMachine`] does what every Raft state machine here needs: the applied log id and
//! membership, the cluster's name (`Genesis`), `Multi` entries (see `proposer`), events
//! in apply order, and snapshots (JSON; with a [`Disk`], written durably before openraft
//! may purge the log they replace). What the state *is* comes from a [`Machine`]: the
//! @unrdf key-value machine ([`KvMachine`]: versioned keys, compare-and-set, atomic
//! batches, a key limit, workflow states) or a replicated store's sequencer
//! (`store::replicated`). Both run on the same log, network, storage and formation code.

use super::disk::Disk;
use super::types::{Command, Member, Op, Response, TypeConfig};
use crate::error::ErrorCode;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a Raft group replicates, beyond Raft's own bookkeeping.
pub trait Machine: Send + Sync + 'static {
    /// The replicated state (in every snapshot).
    type State: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a snapshot carries besides `State`: state the machine's owner holds outside
    /// the lock (a store's log and its reducer's state).
    type Extra: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// `Extra` as copied under the lock (cheaply); encoded outside it.
    type Captured: Send + 'static;

    /// Applies one command of this machine's kind (another kind is refused with
    /// `ERR_INVALID`, changing nothing).
    fn apply(&self, st: &mut Self::State, cmd: &Command, index: u64) -> Response;

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
    pub membership: StoredMembership<u64, Member>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Value,
    /// The log index of the write that set it.
    pub version: u64,
}

/// The @unrdf key-value machine's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvData {
    #[serde(default)]
    pub data: BTreeMap<String, Versioned>,
    #[serde(default)]
    pub workflows: BTreeMap<String, Value>,
}

/// The shape of @unrdf/consensus's distributed state: versioned keys, compare-and-set,
/// atomic batches, a key limit, and the workflow states `replicateCommand` records.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvMachine;

impl Machine for KvMachine {
    type State = KvData;
    type Extra = ();
    type Captured = ();

    fn apply(&self, st: &mut KvData, cmd: &Command, index: u64) -> Response {
        apply_kv(st, cmd, index)
    }

    fn encode(_: ()) {}

    fn size(st: &KvData) -> usize {
        st.data.len()
    }
}

pub type KvState = Full<KvData, ()>;
pub type KvStateMachine = StateMachine<KvMachine>;

/// What the state machine tells its owner, in apply order.
#[derive(Debug, Clone)]
pub enum SmEvent {
    Applied {
        index: u64,
        /// The term of the entry's leader.
        term: u64,
        /// The command's position in its entry (0 unless the entry is a `Multi`).
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
    pub meta: SnapshotMeta<u64, Member>,
    pub data: Vec<u8>,
}

pub struct StateMachine<M: Machine> {
    state: Arc<Mutex<Full<M::State, M::Extra>>>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots: Arc<AtomicU64>,
    disk: Option<Disk>,
    sink: Option<SmSink>,
    machine: Arc<M>,
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

impl KvStateMachine {
    /// A key-value state machine that persists its snapshots to `disk` and starts from
    /// the last one there (openraft then re-applies the committed log after it).
    pub fn open(disk: Option<Disk>, sink: Option<SmSink>) -> Result<Self, StorageError<u64>> {
        Self::open_with(KvMachine, disk, sink)
    }

    /// A key's value, read locally.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read(|s| s.data.get(key).map(|v| v.value.clone()))
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
        }
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
        meta: &SnapshotMeta<u64, Member>,
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
        match cmd {
            Command::Genesis { cluster } => {
                st.cluster.get_or_insert_with(|| cluster.clone());
                Response::default()
            }
            // Only the proposer builds these, one level deep.
            Command::Multi(_) => {
                st.commands += 1;
                refused(ErrorCode::Invalid.as_str())
            }
            cmd => {
                st.commands += 1;
                self.machine.apply(&mut st.app, cmd, index)
            }
        }
    }
}

pub(crate) fn refused(code: &str) -> Response {
    Response {
        error: Some(code.into()),
        ..Default::default()
    }
}

/// Would `ops` push the number of keys over `limit`?
fn over_limit(data: &BTreeMap<String, Versioned>, ops: &[Op], limit: Option<u64>) -> bool {
    let Some(limit) = limit else { return false };
    let mut n = data.len() as i64;
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        if !seen.insert(op.key.as_str()) {
            continue;
        }
        match (&op.value, data.contains_key(&op.key)) {
            (Some(_), false) => n += 1,
            (None, true) => n -= 1,
            _ => {}
        }
    }
    n > limit as i64
}

fn write(st: &mut KvData, key: String, value: Option<Value>, index: u64) -> Response {
    let previous = match value {
        Some(value) => st
            .data
            .insert(
                key,
                Versioned {
                    value,
                    version: index,
                },
            )
            .map(|v| v.value),
        None => st.data.remove(&key).map(|v| v.value),
    };
    Response {
        previous,
        version: index,
        ..Default::default()
    }
}

/// Applies a key-value command (the core has taken `Genesis` and `Multi`).
fn apply_kv(st: &mut KvData, cmd: &Command, index: u64) -> Response {
    match cmd.clone() {
        Command::Set { key, value, limit } => {
            let op = [Op {
                key: key.clone(),
                value: Some(Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused(ErrorCode::StateFull.as_str());
            }
            write(st, key, Some(value), index)
        }
        Command::Delete { key } => write(st, key, None, index),
        Command::Cas {
            key,
            version,
            value,
            limit,
        } => {
            let current = st.data.get(&key).map_or(0, |v| v.version);
            if current != version {
                let mut r = refused(ErrorCode::Conflict.as_str());
                r.version = current;
                r.previous = st.data.get(&key).map(|v| v.value.clone());
                return r;
            }
            let op = [Op {
                key: key.clone(),
                value: value.as_ref().map(|_| Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused(ErrorCode::StateFull.as_str());
            }
            write(st, key, value, index)
        }
        Command::Batch { ops, limit } => {
            if over_limit(&st.data, &ops, limit) {
                return refused(ErrorCode::StateFull.as_str());
            }
            for op in ops {
                write(st, op.key, op.value, index);
            }
            Response {
                version: index,
                ..Default::default()
            }
        }
        // Another machine's commands.
        Command::Multi(_)
        | Command::Genesis { .. }
        | Command::Store { .. }
        | Command::Node { .. } => refused(ErrorCode::Invalid.as_str()),
        Command::Custom(v) => {
            if let Some(id) = v.get("workflowId").and_then(Value::as_str) {
                let state = v.get("state").cloned().unwrap_or_else(|| v.clone());
                st.workflows.insert(id.to_string(), state);
            }
            Response {
                version: index,
                ..Default::default()
            }
        }
    }
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for StateMachine<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
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
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, Member>), StorageError<u64>> {
        let st = self.state.lock();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut st = self.state.lock();
        for e in entries {
            st.last_applied = Some(e.log_id);
            let index = e.log_id.index;
            let r = match e.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(Command::Multi(cmds)) => {
                    let mut each = Vec::with_capacity(cmds.len());
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
                    Response {
                        version: index,
                        each,
                        ..Default::default()
                    }
                }
                EntryPayload::Normal(cmd) => {
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
                    Response::default()
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
        meta: &SnapshotMeta<u64, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::MemLogStore;
    use openraft::testing::{StoreBuilder, Suite};

    struct Builder;

    impl StoreBuilder<TypeConfig, MemLogStore, KvStateMachine> for Builder {
        async fn build(&self) -> Result<((), MemLogStore, KvStateMachine), StorageError<u64>> {
            Ok(((), MemLogStore::default(), KvStateMachine::default()))
        }
    }

    #[test]
    fn openraft_storage_conformance_suite() {
        Suite::test_all(Builder).unwrap();
    }

    /// Snapshots written before the state machine became generic still load.
    #[test]
    fn an_older_key_value_snapshot_loads() {
        let old = r#"{"last_applied":null,"membership":{"log_id":null,"membership":{"configs":[],"nodes":{}}},
            "data":{"k":{"value":1,"version":3}},"workflows":{"w":"done"},"cluster":"c1","commands":4,
            "store":{"head":0}}"#;
        let st: KvState = serde_json::from_str(old).unwrap();
        assert_eq!((st.cluster.as_deref(), st.commands), (Some("c1"), 4));
        assert_eq!(st.data["k"].version, 3);
        assert_eq!(st.workflows["w"], Value::from("done"));
    }

    #[test]
    fn cas_batch_and_limit() {
        let mut st = KvData::default();
        let apply_command = apply_kv;
        let set = |k: &str, limit| Command::Set {
            key: k.into(),
            value: Value::from(1),
            limit,
        };
        assert_eq!(apply_command(&mut st, &set("a", Some(2)), 1).version, 1);
        assert_eq!(apply_command(&mut st, &set("b", Some(2)), 2).error, None);
        let full = apply_command(&mut st, &set("c", Some(2)), 3);
        assert_eq!(full.error.as_deref(), Some(ErrorCode::StateFull.as_str()));
        // Overwriting an existing key is fine at the limit.
        assert_eq!(apply_command(&mut st, &set("a", Some(2)), 4).error, None);
        let cas = |version| Command::Cas {
            key: "a".into(),
            version,
            value: Some(Value::from(9)),
            limit: None,
        };
        let stale = apply_command(&mut st, &cas(1), 5);
        assert_eq!(stale.error.as_deref(), Some(ErrorCode::Conflict.as_str()));
        assert_eq!(stale.version, 4);
        assert_eq!(apply_command(&mut st, &cas(4), 6).version, 6);
        let batch = Command::Batch {
            ops: vec![
                Op {
                    key: "x".into(),
                    value: Some(Value::from(1)),
                },
                Op {
                    key: "a".into(),
                    value: None,
                },
            ],
            limit: Some(2),
        };
        // 2 keys - a + x = 2: allowed, applied together.
        assert_eq!(apply_command(&mut st, &batch, 7).error, None);
        assert!(st.data.contains_key("x") && !st.data.contains_key("a"));
    }
}

#[cfg(test)]
mod multi_tests {
    use super::*;
    use openraft::CommittedLeaderId;

    /// A `Multi` entry applies its commands in order, each with its own result and event,
    /// exactly as consecutive entries would (the proposer relies on this).
    #[tokio::test]
    async fn a_multi_entry_applies_each_command_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let sink: SmSink = Arc::new(move |e| {
            if let SmEvent::Applied { index, sub, .. } = e {
                s.lock().push((index, sub));
            }
        });
        let mut sm = KvStateMachine::open(None, Some(sink)).unwrap();
        let cas = |version| Command::Cas {
            key: "k".into(),
            version,
            value: Some(Value::from("v")),
            limit: None,
        };
        let multi = Command::Multi(vec![
            cas(0),
            cas(0),
            Command::Set {
                key: "j".into(),
                value: Value::from(1),
                limit: None,
            },
            Command::Delete { key: "k".into() },
        ]);
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), 5),
            payload: EntryPayload::Normal(multi),
        };
        let out = sm.apply([entry]).await.unwrap();
        let each = &out[0].each;
        assert_eq!(each.len(), 4);
        assert_eq!((each[0].error.as_deref(), each[0].version), (None, 5));
        assert_eq!(each[1].error.as_deref(), Some(ErrorCode::Conflict.as_str()));
        assert_eq!(each[2].version, 5);
        assert_eq!(each[3].previous, Some(Value::from("v")));
        assert_eq!(sm.get("k"), None);
        assert_eq!(sm.get("j"), Some(Value::from(1)));
        assert_eq!(sm.read(|st| st.commands), 4);
        assert_eq!(*seen.lock(), vec![(5, 0), (5, 1), (5, 2), (5, 3)]);
    }
}
