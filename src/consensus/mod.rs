//! Layer 4: consensus, on openraft (0.9.25, storage-v2), carrying opaque commands.
//!
//! The core (everything here but `machines`) knows no application: a log entry is an
//! application's bytes, the proposer's batch of them, or the engine's `Genesis`, and an
//! answer is bytes (see [`types`]). Each state machine declares its commands, answers
//! and their encoding ([`state_machine::Machine`], [`state_machine::Codec`]), and
//! whoever opens a node keeps a typed [`engine::Handle`] to its own machine.
//!
//! - The engine: [`engine`] (a Raft node and its API: write, read, state, shutdown),
//!   [`config`] and [`events`] (its settings and what it reports), [`metrics`] (what
//!   it counts and times for an operator), `formation` (its
//!   membership changes), [`proposer`] (concurrent writes batched into one entry),
//!   [`state_machine`] (Raft's side of every machine: applied ids, batches, events,
//!   snapshots) and [`types`] (the Raft type configuration).
//! - [`storage`]: the log and the vote, in memory and under `dataDir`.
//! - [`network`]: the sessions between nodes, openraft's client and server sides over
//!   them, and an in-process network for tests.
//! - [`machines`]: machines whose applications are only bindings (the @unrdf key-value
//!   machine, RaftNode's); the core does not import them. A store's machine lives with
//!   the store (`store::replicated`).

// openraft's storage traits return its (large) `StorageError`; our helpers return the
// same type so `?` needs no conversion.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod engine;
pub mod events;
mod formation;
pub mod machines;
pub mod metrics;
pub mod network;
pub mod proposer;
pub mod state_machine;
pub mod storage;
pub mod types;

pub use engine::RaftEngine;
pub use network::client::PeerTransport;
/// The peer sessions, at the path the link layer's users name.
pub use network::net;
pub use storage::disk::Disk;
pub use storage::log_store::{LogStore, MemLogStore};
pub use types::{raft_id, Command, NodeId, Response, TypeConfig};

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
