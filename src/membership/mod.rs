//! Layer 3: cluster membership (noex's `Cluster`). So far: node identities.
//!
//! - [`node_id`]: `name@host:port` identities with noex's validation rules.

pub mod node_id;

pub use node_id::{InvalidNodeId, NodeId};
