//! The @unrdf key-value machine: versioned keys, compare-and-set, atomic batches, a key
//! limit, and the workflow states `replicateCommand` records.
//!
//! Its commands are JSON in the log, as JS writes them (`{"Set": {...}}`): their values
//! are JSON already, and JSON text is their cheapest faithful encoding.

use crate::consensus::engine::{EventSink, Handle, RaftConfig, RaftEngine};
use crate::consensus::state_machine::{Codec, Full, Machine, SmSink, StateMachine};
use crate::consensus::Disk;
use crate::error::ErrorCode;
use bytes::Bytes;
use openraft::StorageError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One write of a batch: a value to set, or `None` to delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub key: String,
    pub value: Option<Value>,
}

/// A command of the key-value machine. The key limit travels in the entry so that
/// every replica enforces the same one (a node-local limit would let replicas diverge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KvCommand {
    Set {
        key: String,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    Delete {
        key: String,
    },
    /// Applies only if the key's version is still `version` (0: the key is absent).
    Cas {
        key: String,
        version: u64,
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// All or nothing, as one entry.
    Batch {
        ops: Vec<Op>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// Any JSON command (as `replicateCommand` takes). Not interpreted, except that a
    /// `workflowId` string records the command as that workflow's state.
    Custom(Value),
}

/// What applying a key-value command answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvResponse {
    /// The key's previous value, for `Set`, `Delete` and `Cas`.
    pub previous: Option<Value>,
    /// The key's version after the command (the log index that last wrote it).
    pub version: u64,
    /// Why the command changed nothing: `ERR_CONFLICT` (a stale `Cas`),
    /// `ERR_STATE_FULL` (the key limit) or `ERR_INVALID` (not a key-value command).
    pub error: Option<ErrorCode>,
}

fn json_codec<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON values always encode"))
}

impl Codec for KvCommand {
    fn encode(&self) -> Bytes {
        json_codec(self)
    }
    fn decode(b: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
}

impl Codec for KvResponse {
    fn encode(&self) -> Bytes {
        json_codec(self)
    }
    fn decode(b: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Value,
    /// The log index of the write that set it.
    pub version: u64,
}

/// The key-value machine's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvData {
    #[serde(default)]
    pub data: BTreeMap<String, Versioned>,
    #[serde(default)]
    pub workflows: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct KvMachine;

impl Machine for KvMachine {
    type State = KvData;
    type Extra = ();
    type Captured = ();
    type Command = KvCommand;
    type Response = KvResponse;

    fn apply(&self, st: &mut KvData, cmd: KvCommand, index: u64) -> KvResponse {
        apply_kv(st, cmd, index)
    }

    fn refuse(_why: &str) -> KvResponse {
        refused(ErrorCode::Invalid)
    }

    fn encode(_: ()) {}

    fn size(st: &KvData) -> usize {
        st.data.len()
    }
}

pub type KvState = Full<KvData, ()>;
pub type KvStateMachine = StateMachine<KvMachine>;

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

/// Starts a node of the key-value machine.
pub async fn start(cfg: RaftConfig, sink: EventSink) -> std::io::Result<Handle<KvMachine>> {
    RaftEngine::start_with(cfg, sink, KvMachine).await
}

impl Handle<KvMachine> {
    /// The node's key-value state machine.
    pub fn kv(&self) -> &KvStateMachine {
        self.machine()
    }
}

fn refused(code: ErrorCode) -> KvResponse {
    KvResponse {
        error: Some(code),
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

fn write(st: &mut KvData, key: String, value: Option<Value>, index: u64) -> KvResponse {
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
    KvResponse {
        previous,
        version: index,
        ..Default::default()
    }
}

fn apply_kv(st: &mut KvData, cmd: KvCommand, index: u64) -> KvResponse {
    match cmd {
        KvCommand::Set { key, value, limit } => {
            let op = [Op {
                key: key.clone(),
                value: Some(Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused(ErrorCode::StateFull);
            }
            write(st, key, Some(value), index)
        }
        KvCommand::Delete { key } => write(st, key, None, index),
        KvCommand::Cas {
            key,
            version,
            value,
            limit,
        } => {
            let current = st.data.get(&key).map_or(0, |v| v.version);
            if current != version {
                let mut r = refused(ErrorCode::Conflict);
                r.version = current;
                r.previous = st.data.get(&key).map(|v| v.value.clone());
                return r;
            }
            let op = [Op {
                key: key.clone(),
                value: value.as_ref().map(|_| Value::Null),
            }];
            if over_limit(&st.data, &op, limit) {
                return refused(ErrorCode::StateFull);
            }
            write(st, key, value, index)
        }
        KvCommand::Batch { ops, limit } => {
            if over_limit(&st.data, &ops, limit) {
                return refused(ErrorCode::StateFull);
            }
            for op in ops {
                write(st, op.key, op.value, index);
            }
            KvResponse {
                version: index,
                ..Default::default()
            }
        }
        KvCommand::Custom(v) => {
            if let Some(id) = v.get("workflowId").and_then(Value::as_str) {
                let state = v.get("state").cloned().unwrap_or_else(|| v.clone());
                st.workflows.insert(id.to_string(), state);
            }
            KvResponse {
                version: index,
                ..Default::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::state_machine::{answer, command};
    use crate::consensus::types::{Command, Response};
    use crate::consensus::MemLogStore;
    use openraft::storage::RaftStateMachine;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    struct Builder;

    impl StoreBuilder<crate::consensus::TypeConfig, MemLogStore, KvStateMachine> for Builder {
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
        let set = |k: &str, limit| KvCommand::Set {
            key: k.into(),
            value: Value::from(1),
            limit,
        };
        assert_eq!(apply_kv(&mut st, set("a", Some(2)), 1).version, 1);
        assert_eq!(apply_kv(&mut st, set("b", Some(2)), 2).error, None);
        let full = apply_kv(&mut st, set("c", Some(2)), 3);
        assert_eq!(full.error, Some(ErrorCode::StateFull));
        // Overwriting an existing key is fine at the limit.
        assert_eq!(apply_kv(&mut st, set("a", Some(2)), 4).error, None);
        let cas = |version| KvCommand::Cas {
            key: "a".into(),
            version,
            value: Some(Value::from(9)),
            limit: None,
        };
        let stale = apply_kv(&mut st, cas(1), 5);
        assert_eq!(stale.error, Some(ErrorCode::Conflict));
        assert_eq!(stale.version, 4);
        assert_eq!(apply_kv(&mut st, cas(4), 6).version, 6);
        let batch = KvCommand::Batch {
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
        assert_eq!(apply_kv(&mut st, batch, 7).error, None);
        assert!(st.data.contains_key("x") && !st.data.contains_key("a"));
    }

    /// A batch of key-value commands applies each in order with its own answer.
    #[tokio::test]
    async fn a_batch_entry_answers_each_command() {
        let mut sm = KvStateMachine::open(None, None).unwrap();
        let cas = |version| KvCommand::Cas {
            key: "k".into(),
            version,
            value: Some(Value::from("v")),
            limit: None,
        };
        let cmds = [
            cas(0),
            cas(0),
            KvCommand::Set {
                key: "j".into(),
                value: Value::from(1),
                limit: None,
            },
            KvCommand::Delete { key: "k".into() },
        ];
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), 5),
            payload: EntryPayload::Normal(Command::Batch(
                cmds.iter().map(command::<KvMachine>).collect(),
            )),
        };
        let out = sm.apply([entry]).await.unwrap();
        let Response::Batch(each) = &out[0] else {
            panic!("{out:?}")
        };
        let each: Vec<KvResponse> = each.iter().map(answer::<KvMachine>).collect();
        assert_eq!((each[0].error, each[0].version), (None, 5));
        assert_eq!(each[1].error, Some(ErrorCode::Conflict));
        assert_eq!(each[2].version, 5);
        assert_eq!(each[3].previous, Some(Value::from("v")));
        assert_eq!(sm.get("k"), None);
        assert_eq!(sm.get("j"), Some(Value::from(1)));
        assert_eq!(sm.read(|st| st.commands), 4);
    }
}
