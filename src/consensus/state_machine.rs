//! The replicated JSON key-value state machine (the shape of @unrdf/consensus's
//! distributed state): versioned keys, compare-and-set, atomic batches, a key limit, and
//! the workflow states `replicateCommand` records. Snapshots are JSON; with a
//! [`Disk`] they are written durably before openraft may purge the log they replace.

use super::disk::Disk;
use super::types::{Command, Member, Op, Response, TypeConfig};
use crate::store::sequencer::Sequencer;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Value,
    /// The log index of the write that set it.
    pub version: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvState {
    pub last_applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, Member>,
    pub data: BTreeMap<String, Versioned>,
    pub workflows: BTreeMap<String, Value>,
    /// The cluster's name, from its first `Genesis` entry.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Normal (non-membership, non-blank) entries ever applied.
    pub commands: u64,
    /// A replicated store's sequence numbers and per-client table (`Command::Store`).
    #[serde(default)]
    pub store: Sequencer,
    /// In a snapshot only: the store's state as of `store`'s head (see [`StoreHooks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_part: Option<StorePart>,
}

/// A replicated store's state at a sequence number, as a Raft snapshot carries it: its
/// reducer's state at `seq` (handed over by the JS side, which runs the reducer) and the
/// actions ordered after it, so that the snapshot needs no call into JS while it is
/// built, and a server that installs it needs nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorePart {
    pub seq: u64,
    pub state: String,
    /// Actions `seq + 1 ..= head`.
    pub actions: Vec<String>,
}

/// A store's state as captured under the state machine's lock: reference-counted
/// copies only; it becomes a [`StorePart`] (and JSON) outside the lock.
#[derive(Debug, Clone, Default)]
pub struct StoreCapture {
    pub seq: u64,
    pub state: bytes::Bytes,
    pub actions: Vec<bytes::Bytes>,
}

impl From<StoreCapture> for StorePart {
    fn from(c: StoreCapture) -> StorePart {
        let text = |b: &bytes::Bytes| String::from_utf8_lossy(b).into_owned();
        StorePart {
            seq: c.seq,
            state: text(&c.state),
            actions: c.actions.iter().map(text).collect(),
        }
    }
}

/// What the state machine asks of the store whose batches it orders (`Command::Store`)
/// when it builds or installs a snapshot. Called under the state machine's lock, so the
/// store is exactly at the sequencer's head: the batches' events are delivered under that
/// lock too.
pub trait StoreHooks: Send + Sync {
    /// The store's state at sequence `head`; `None` only if the store cannot say (a bug).
    fn capture(&self, head: u64) -> Option<StoreCapture>;
    /// Replaces the store's state with a snapshot's.
    fn restore(&self, part: StorePart);
}

/// What the state machine tells its owner, in apply order.
#[derive(Debug, Clone)]
pub enum SmEvent {
    Applied {
        index: u64,
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

#[derive(Clone, Default)]
pub struct KvStateMachine {
    state: Arc<Mutex<KvState>>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots: Arc<AtomicU64>,
    disk: Option<Disk>,
    sink: Option<SmSink>,
    hooks: Option<Arc<dyn StoreHooks>>,
}

impl KvStateMachine {
    /// A state machine that persists its snapshots to `disk` and starts from the last
    /// one there (openraft then re-applies the committed log after it).
    pub fn open(disk: Option<Disk>, sink: Option<SmSink>) -> Result<Self, StorageError<u64>> {
        Self::open_with(disk, sink, None)
    }

    /// As `open`, for a state machine that orders a store's batches and snapshots the
    /// store with itself.
    pub fn open_with(
        disk: Option<Disk>,
        sink: Option<SmSink>,
        hooks: Option<Arc<dyn StoreHooks>>,
    ) -> Result<Self, StorageError<u64>> {
        let sm = KvStateMachine {
            disk,
            sink,
            hooks,
            ..Default::default()
        };
        if let Some(Some(snap)) = sm.disk.as_ref().map(|d| d.load_snapshot()).transpose()? {
            {
                let state = decode(&snap.meta, &snap.data)?;
                let n = state.data.len();
                sm.adopt(state);
                sm.emit(SmEvent::SnapshotRestored {
                    id: snap.meta.snapshot_id.clone(),
                    index: snap.meta.last_log_id.map_or(0, |l| l.index),
                    size: n,
                });
                *sm.current.lock().unwrap() = Some(snap);
            }
        }
        Ok(sm)
    }

    fn emit(&self, e: SmEvent) {
        if let Some(s) = &self.sink {
            s(e)
        }
    }

    /// Reads the state under its lock (local reads: no consensus).
    pub fn read<T>(&self, f: impl FnOnce(&KvState) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// A key's value, read locally.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read(|s| s.data.get(key).map(|v| v.value.clone()))
    }
}

/// A snapshot's state (its store part still in it: see [`KvStateMachine::adopt`]).
fn decode(meta: &SnapshotMeta<u64, Member>, data: &[u8]) -> Result<KvState, StorageError<u64>> {
    let mut state: KvState = serde_json::from_slice(data)
        .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
    state.last_applied = meta.last_log_id;
    state.membership = meta.last_membership.clone();
    state.store = std::mem::take(&mut state.store).restored();
    Ok(state)
}

impl KvStateMachine {
    /// Makes a decoded snapshot the state, its store part the store's, under the lock
    /// (so nothing is applied in between).
    fn adopt(&self, mut state: KvState) {
        let mut guard = self.state.lock().unwrap();
        if let (Some(part), Some(h)) = (state.store_part.take(), &self.hooks) {
            h.restore(part);
        }
        *guard = state;
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

fn write(st: &mut KvState, key: String, value: Option<Value>, index: u64) -> Response {
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

fn refused(code: &str) -> Response {
    Response {
        error: Some(code.into()),
        ..Default::default()
    }
}

fn apply_command(st: &mut KvState, cmd: &Command, index: u64) -> Response {
    if let Command::Genesis { cluster } = cmd {
        st.cluster.get_or_insert_with(|| cluster.clone());
        return Response::default();
    }
    st.commands += 1;
    if let Command::Store {
        client,
        first_counter,
        actions,
    } = cmd
    {
        return match st.store.submit(*client, *first_counter, actions.len()) {
            Ok(admitted) => Response {
                version: index,
                store: Some(Box::new(admitted)),
                ..Default::default()
            },
            // The batch does not follow what this client sent before: nothing applied.
            Err(_) => refused("ERR_PROTOCOL"),
        };
    }
    match cmd.clone() {
        Command::Set { key, value, limit } => {
            let op = [Op {
                key: key.clone(),
                value: Some(Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused("ERR_STATE_FULL");
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
                let mut r = refused("ERR_CONFLICT");
                r.version = current;
                r.previous = st.data.get(&key).map(|v| v.value.clone());
                return r;
            }
            let op = [Op {
                key: key.clone(),
                value: value.as_ref().map(|_| Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused("ERR_STATE_FULL");
            }
            write(st, key, value, index)
        }
        Command::Batch { ops, limit } => {
            if over_limit(&st.data, &ops, limit) {
                return refused("ERR_STATE_FULL");
            }
            for op in ops {
                write(st, op.key, op.value, index);
            }
            Response {
                version: index,
                ..Default::default()
            }
        }
        // Only the proposer builds these, one level deep.
        Command::Multi(_) => refused("ERR_INVALID"),
        Command::Genesis { .. } | Command::Store { .. } => unreachable!("handled above"),
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

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        // Copied under the lock (the store's part as reference-counted bytes), encoded
        // outside it: applying waits for the copy only.
        let (mut st, capture) = {
            let g = self.state.lock().unwrap();
            let head = g.store.head();
            let capture = match &self.hooks {
                Some(h) if head > 0 => Some(h.capture(head).ok_or_else(|| {
                    let e = std::io::Error::other(format!(
                        "the store could not give its state at #{head} (a bug, please report it)"
                    ));
                    StorageIOError::read_state_machine(&e)
                })?),
                _ => None,
            };
            (g.clone(), capture)
        };
        // Encoding a store's part can take tens of milliseconds: off the runtime's
        // threads, so that heartbeats and replication are not held up by it.
        let (st, data) = tokio::task::spawn_blocking(move || {
            st.store_part = capture.map(StorePart::from);
            let data = serde_json::to_vec(&st);
            st.store_part = None;
            (st, data)
        })
        .await
        .map_err(|e| StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())))?;
        let data = data.map_err(|e| StorageIOError::read_state_machine(&e))?;
        let (last, membership, size) = (st.last_applied, st.membership, st.data.len());
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
        *self.current.lock().unwrap() = Some(snap);
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

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, Member>), StorageError<u64>> {
        let st = self.state.lock().unwrap();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut events = Vec::new();
        let mut out = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            for e in entries {
                st.last_applied = Some(e.log_id);
                let r = match e.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(Command::Multi(cmds)) => {
                        let index = e.log_id.index;
                        let mut each = Vec::with_capacity(cmds.len());
                        for (sub, cmd) in cmds.into_iter().enumerate() {
                            let r = apply_command(&mut st, &cmd, index);
                            if self.sink.is_some() && !matches!(cmd, Command::Genesis { .. }) {
                                events.push(SmEvent::Applied {
                                    index,
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
                        let r = apply_command(&mut st, &cmd, e.log_id.index);
                        if self.sink.is_some() && !matches!(cmd, Command::Genesis { .. }) {
                            events.push(SmEvent::Applied {
                                index: e.log_id.index,
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
            // Delivered under the lock: a snapshot built meanwhile sees the store exactly
            // where the sequencer is (see `StoreHooks`).
            for e in events {
                self.emit(e);
            }
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
        meta: &SnapshotMeta<u64, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let state = decode(meta, &data)?;
        let size = state.data.len();
        let mut snap = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        if let Some(d) = &self.disk {
            snap = d.store_snapshot(snap).await?;
        }
        self.adopt(state);
        *self.current.lock().unwrap() = Some(snap);
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
        Ok(self.current.lock().unwrap().clone().map(|s| Snapshot {
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

    #[test]
    fn cas_batch_and_limit() {
        let mut st = KvState::default();
        let set = |k: &str, limit| Command::Set {
            key: k.into(),
            value: Value::from(1),
            limit,
        };
        assert_eq!(apply_command(&mut st, &set("a", Some(2)), 1).version, 1);
        assert_eq!(apply_command(&mut st, &set("b", Some(2)), 2).error, None);
        let full = apply_command(&mut st, &set("c", Some(2)), 3);
        assert_eq!(full.error.as_deref(), Some("ERR_STATE_FULL"));
        // Overwriting an existing key is fine at the limit.
        assert_eq!(apply_command(&mut st, &set("a", Some(2)), 4).error, None);
        let cas = |version| Command::Cas {
            key: "a".into(),
            version,
            value: Some(Value::from(9)),
            limit: None,
        };
        let stale = apply_command(&mut st, &cas(1), 5);
        assert_eq!(stale.error.as_deref(), Some("ERR_CONFLICT"));
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
                s.lock().unwrap().push((index, sub));
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
        assert_eq!(each[1].error.as_deref(), Some("ERR_CONFLICT"));
        assert_eq!(each[2].version, 5);
        assert_eq!(each[3].previous, Some(Value::from("v")));
        assert_eq!(sm.get("k"), None);
        assert_eq!(sm.get("j"), Some(Value::from(1)));
        assert_eq!(sm.read(|st| st.commands), 4);
        assert_eq!(*seen.lock().unwrap(), vec![(5, 0), (5, 1), (5, 2), (5, 3)]);
    }
}
