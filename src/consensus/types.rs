//! The Raft type configuration: what a log entry carries, what applying it returns, and
//! how a member is addressed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
// The default snapshot type the macro names.
use std::io::Cursor;

/// A member as the membership config records it: its name (the JS `nodeId`) and the
/// `host:port` its Raft listener is reached at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub addr: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

/// openraft wants integer node ids; users name nodes with strings. The id is the first
/// 8 bytes of the name's SHA-256, so every node derives the same id from the same name
/// with no coordination (a collision needs ~2^32 names).
pub fn node_id(name: &str) -> u64 {
    let d = Sha256::digest(name.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// One write of a batch: a value to set, or `None` to delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub key: String,
    pub value: Option<Value>,
}

/// A command replicated through the log. The key limit travels in the entry so that
/// every replica enforces the same one (a node-local limit would let replicas diverge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
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
    /// Commands proposed together (see `proposer`): applied in order, each with its own
    /// result, as if they were consecutive entries.
    Multi(Vec<Command>),
    /// Names the cluster (the first one applied wins), so that a node of another cluster
    /// can be told apart. Internal: not counted, no event.
    Genesis {
        cluster: String,
    },
    /// A store client's batch of actions (JSON texts), numbered from `first_counter`.
    /// Applying it gives the new ones the store's next sequence numbers and drops the
    /// resends, by a per-client table replicated with the state (`store::Sequencer`):
    /// the same on every server, whichever one the client sent it through.
    Store {
        client: u64,
        first_counter: u64,
        actions: Vec<String>,
    },
    /// A RaftNode proposal (the @ruvector/raft API): the user's command, applied by the
    /// user's state machine in JS, and when the leader took it (ms since the epoch).
    Node {
        command: Value,
        timestamp: u64,
    },
}

/// About how many bytes a JSON value takes on the wire (walks it; no encoding).
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| value_bytes(x) + 1).sum::<usize>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| k.len() + 4 + value_bytes(x))
                .sum::<usize>()
        }
        _ => 8,
    }
}

impl Command {
    /// About how many bytes the command takes in an append, without encoding it: what
    /// bounds the size of one append (see `LogStore::limited_get_log_entries`).
    pub fn approx_bytes(&self) -> usize {
        const HEAD: usize = 32;
        HEAD + match self {
            Command::Set { key, value, .. } => key.len() + value_bytes(value),
            Command::Delete { key } => key.len(),
            Command::Cas { key, value, .. } => key.len() + value.as_ref().map_or(0, value_bytes),
            Command::Batch { ops, .. } => ops
                .iter()
                .map(|o| HEAD + o.key.len() + o.value.as_ref().map_or(0, value_bytes))
                .sum(),
            Command::Custom(v) | Command::Node { command: v, .. } => value_bytes(v),
            Command::Multi(cmds) => cmds.iter().map(Command::approx_bytes).sum(),
            Command::Genesis { cluster } => cluster.len(),
            // Each action is JSON text inside a JSON string: escaped quotes grow it.
            Command::Store { actions, .. } => actions.iter().map(|a| a.len() * 5 / 4 + 3).sum(),
        }
    }
}

/// What applying a command returns to whoever submitted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The key's previous value, for `Set`, `Delete` and `Cas`.
    pub previous: Option<Value>,
    /// The key's version after the command (the log index that last wrote it).
    pub version: u64,
    /// Why the command changed nothing: `ERR_CONFLICT` (a stale `Cas`) or
    /// `ERR_STATE_FULL` (the key limit).
    pub error: Option<String>,
    /// For a `Multi`, the result of each command, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub each: Vec<Response>,
    /// For a `Store` batch: how many were resends, where the rest went, the client's
    /// last ordered counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Box<crate::store::sequencer::Admitted>>,
}

openraft::declare_raft_types!(
    /// The type configuration of redux-cluster-rs's Raft groups.
    pub TypeConfig:
        D = Command,
        R = Response,
        Node = Member,
);
