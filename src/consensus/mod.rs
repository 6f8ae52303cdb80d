//! Layer 4: consensus, on openraft (0.9.25, storage-v2).
//!
//! - [`engine`]: a Raft node and its API (write, read, state, shutdown); [`config`]
//!   and [`events`] its settings and what it reports; `formation`, `rpc` and `network`
//!   its membership changes, its server side and openraft's client side.
//! - [`net`]: the framed, authenticated request/response sessions between nodes.
//! - [`types`]: the Raft type configuration: opaque commands and answers, members.
//! - [`log_store`]: the log, the vote and the committed id (memory, or durable).
//! - [`disk`]: the durable store under `dataDir`: the log in [`wal`], the rest in redb.
//! - [`wal`]: the append-only, segmented, checksummed log file.
//! - [`proposer`]: concurrent writes batched into one entry.
//! - [`state_machine`]: the state machine, generic over what it replicates (a
//!   [`state_machine::Machine`] declares its commands, answers and their encoding),
//!   with snapshots.
//! - [`machines`]: machines whose applications are only bindings (the @unrdf key-value
//!   machine, RaftNode's); the core does not import them. A store's machine lives with
//!   the store (`store::replicated`).
//! - [`router`]: an in-process network with cuttable links, for tests.

// openraft's storage traits return its (large) `StorageError`; our helpers return the
// same type so `?` needs no conversion.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod disk;
pub mod engine;
pub mod events;
mod formation;
pub mod log_store;
pub mod machines;
pub mod net;
mod network;
pub mod proposer;
pub mod router;
mod rpc;
pub mod state_machine;
pub mod types;
pub mod wal;

pub use disk::Disk;
pub use engine::RaftEngine;
pub use log_store::{LogStore, MemLogStore};
pub use network::PeerTransport;
pub use types::{node_id, Command, Member, Response, TypeConfig};

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
