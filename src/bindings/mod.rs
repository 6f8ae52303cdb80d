//! Layer 6: the Node.js bindings, the only module that imports napi. Thin classes holding
//! handles to the core; the Redux semantics live in the JS layer (`src/js/`).
//!
//! - [`runtime`]: the engine's own tokio runtime, shared with napi's async functions.
//! - [`js`]: the wake-up callback, the JSON event queue JS pulls, failed calls as JSON.
//! - [`error`]: core errors to JS errors with a stable `code`.
//! - [`raft`]: `NativeRaft`, one Raft node (consensus layer) with its key-value state.
//! - [`reducer`]: `NativeReducer`, a store's reducer in the engine.
//! - [`raftnode`]: `NativeRaftNode`, the RaftNode API's node, with a JS transport.
//! - [`authority`]: `NativeAuthority` (a server store) and `NativeListener` (an endpoint);
//!   [`client`]: `NativeClient` (a client replica); [`store`]: what the two share;
//!   [`store_options`]: their options, checked, and every `RaftConfig` built from them.

mod authority;
mod client;
mod cluster;
mod error;
mod js;
mod raft;
mod raftnode;
mod reducer;
mod runtime;
mod store;
mod store_options;
