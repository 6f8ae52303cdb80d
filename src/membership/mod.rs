//! Layer 3: cluster membership (noex's `Cluster`). So far: node identities and the
//! membership logic without IO; the socket runtime and the JS API come next.
//!
//! - [`node_id`]: `name@host:port` identities with noex's validation rules.
//! - [`state`]: links, heartbeats, gossip, failure detection and reconnect timing.
//! - [`wire`]: membership messages and their signed, replay-proof envelope.

pub mod node_id;
pub mod state;
pub mod wire;

pub use node_id::{InvalidNodeId, NodeId};
