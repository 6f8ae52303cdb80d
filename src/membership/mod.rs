//! Layer 3: cluster membership (noex's `Cluster`). So far: node identities and the
//! membership logic without IO, and its socket runtime; the JS API comes next.
//!
//! - [`node_id`]: `name@host:port` identities with noex's validation rules.
//! - [`state`]: links, heartbeats, gossip, failure detection and reconnect timing.
//! - [`wire`]: membership messages and their signed, replay-proof envelope.
//! - [`runtime`]: the TCP listener, one link per peer, and the driver task.

pub mod node_id;
pub mod runtime;
pub mod state;
pub mod wire;

pub use node_id::{InvalidNodeId, NodeId};
