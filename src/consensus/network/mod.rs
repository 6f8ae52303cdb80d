//! How nodes reach each other: [`net`], the framed, authenticated sessions and the
//! messages on them; `client`, openraft's client side over them (or over an embedder's
//! [`client::PeerTransport`]); `rpc`, the server side; [`router`], an in-process network
//! with cuttable links, for tests.

// The engine's parts these files name (as `super::...`, from before they had a folder).
use super::{engine, events, types};

pub(super) mod client;
pub mod net;
pub mod router;
pub(super) mod rpc;
