//! The Raft type configuration: what a log entry carries and what applying it returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
// The default snapshot type the macro names.
use std::io::Cursor;

/// A command replicated through the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Set {
        key: String,
        value: Value,
    },
    Delete {
        key: String,
    },
    /// Any JSON command (as `replicateCommand` takes); recorded, not interpreted.
    Custom(Value),
}

/// What applying a command returns to whoever submitted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The key's previous value, for `Set` and `Delete`.
    pub previous: Option<Value>,
}

openraft::declare_raft_types!(
    /// The type configuration of redux-cluster-rs's Raft groups.
    pub TypeConfig:
        D = Command,
        R = Response,
);
