//! The state machines that live with the engine because their applications are only
//! bindings: the @unrdf coordinator's key-value machine ([`kv`], `src/js/consensus.js`
//! through `bindings::raft`) and the RaftNode API's ([`node`], `bindings::raftnode`).
//! The store's machine lives with the store (`store::replicated`). The core
//! (`consensus`'s engine, storage and network) never imports this folder: each machine
//! declares its own commands and answers and their encoding, and the core carries them
//! as bytes.

pub mod kv;
pub mod node;
