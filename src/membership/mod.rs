//! Layer 3: cluster membership (noex's `Cluster`): node identities, the membership logic
//! without IO, and its socket runtime. Its JS API is `NativeCluster` in
//! `src/bindings/cluster.rs` under the singleton and events of `src/js/cluster.js`.
//!
//! - `node_id`: `name@host:port` identities with noex's validation rules (the link
//!   layer's `identity`, shared with Raft).
//! - [`state`]: links, heartbeats, gossip, failure detection and reconnect timing.
//! - [`wire`]: membership messages (the bodies, in `protocol::codec`'s layout;
//!   `link::Session` authenticates them).
//! - [`runtime`]: the TCP listener, one link per peer, and the driver task.

pub mod runtime;
pub mod state;
pub mod wire;

pub use crate::link::identity as node_id;
pub use crate::link::identity::{InvalidNodeId, NodeId};
