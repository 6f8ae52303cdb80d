//! redux-cluster-rs: Redux stores kept identical across processes and machines.
//!
//! # Layout (bottom up; each layer knows only those below it)
//! - [`protocol`]: length-prefixed, versioned frames and the messages they carry.
//! - [`transport`]: TCP and Unix domain sockets (and TLS) behind one stream type; backoff.
//! - [`membership`]: cluster membership: node ids, logic without IO, signed wire, runtime.
//! - [`consensus`]: Raft on openraft, carrying opaque commands: the engine, its
//!   `storage/` and `network/`, and in `machines/` the state machines whose
//!   applications are only bindings (the key-value and RaftNode machines).
//! - [`reducer`]: reducers that run in the engine (JSON Patch, RTK entities, loaded
//!   from a user's shared library), their state held in Rust.
//! - [`store`]: the ordering authority, the server's connections, the client replica,
//!   and the store's own Raft state machine.
//! - `bindings` (feature `napi`): the only module that imports napi; thin classes over
//!   the core for the JS layer in `src/js/`.
//! - [`config`], [`error`]: settings with `validate()`, errors with stable codes;
//!   [`tasks`]: the tasks a component owns, dropped if they outlive its shutdown's grace;
//!   [`metrics`]: counters and histograms kept in atomics, read as families when scraped.

pub mod config;
pub mod consensus;
pub mod error;
pub mod link;
pub mod membership;
pub mod metrics;
pub mod protocol;
pub mod reducer;
pub mod store;
pub mod tasks;
pub mod transport;

#[cfg(test)]
mod props;

#[cfg(feature = "napi")]
mod bindings;

// serde_json inside Node runs several times slower with glibc's allocator (ARCHITECTURE.md,
// "Choices the code relies on").
#[cfg(feature = "napi")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use config::StoreConfig;
pub use error::Error;
