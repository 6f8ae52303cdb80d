//! The one link layer: every connection between two parties of this engine (a store
//! client and its server, two servers of a replicated store, two Raft peers, two
//! membership peers) starts the same way and is authenticated the same way.
//!
//! - [`label`]: the first bytes of a connection say what it is ([`Kind`]), before any
//!   application protocol, so one port can serve every kind and no application message
//!   carries another's hello (memberlist's label, read before its protocol).
//! - [`session`]: the peer session: a hello and a welcome with a nonce each way, a
//!   session key derived from the cluster secret, names and both nonces, a proof of the
//!   key each way before anything else, then a tag with a per-direction sequence number
//!   on every frame. Raft and membership links are sessions; store clients log in with
//!   a challenge–response keyed the same way (`store::auth`), on [`mac`].
//!
//! - [`identity`]: the one node identity, `name@host:port`, and the one function from it
//!   to openraft's id.
//!
//! Frames are `protocol`'s; streams (TCP, Unix, TLS, WebSocket) are `transport`'s.
//! Liveness (heartbeats on an idle link, a watch on silence) is
//! `transport::liveness`, shared by every link that has no detector of its own.

pub mod identity;
pub mod label;
pub mod session;

pub use identity::{raft_id, InvalidNodeId, NodeId};
pub use label::{labelled, read_label, Kind};
pub use session::{mac, Local, Session, SessionReader, SessionWriter};
