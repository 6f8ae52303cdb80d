//! Layer 4: consensus, on openraft (0.9.25, storage-v2). So far: the type configuration
//! and in-memory log and state-machine stores, checked with openraft's own storage
//! conformance suite. The network over the framed transport, persistence under
//! `dataDir`, and the JS APIs come next.
//!
//! - [`types`]: the Raft type configuration: JSON commands, responses.
//! - [`log_store`]: the log, the vote and the committed id.
//! - [`state_machine`]: a JSON key-value state machine with snapshots.
//! - [`router`]: an in-process network with cuttable links, for tests.

pub mod log_store;
pub mod router;
pub mod state_machine;
pub mod types;

pub use log_store::MemLogStore;
pub use state_machine::KvStateMachine;
pub use types::{Command, Response, TypeConfig};
