//! Layer 5: the replicated store. One ordering authority gives every accepted action the
//! next sequence number; every replica applies each action once, in that order.
//!
//! - [`authority`]: the [`OrderingAuthority`] trait and the server-process authority.
//! - [`action_log`]: the ordered log with trimming behind snapshots.
//! - [`sequencer`]: sequence numbers and the bounded per-client table that drops resends.
//! - [`replicated`]: the authority of servers that form a Raft group, and its state
//!   machine; [`entry`]: what that machine's commands and answers are in the Raft log.
//! - [`server`]: listeners and per-connection reader/writer tasks.
//! - [`client`]: the replica side, with its queue of unacknowledged dispatches.
//! - [`outbox`]: the coalesced wake-up and event queue towards the JS thread.
//! - [`metrics`]: what a server counts of its clients (sessions, moves, refusals).
//! - [`auth`], [`ban`]: challenge–response logins and address bans.

pub mod action_log;
pub mod auth;
pub mod authority;
pub mod ban;
pub mod client;
pub mod entry;
pub mod metrics;
pub mod outbox;
pub mod replicated;
pub mod sequencer;
pub mod server;

pub use crate::transport::caps::Caps;
pub use authority::{LocalAuthority, OrderingAuthority};
pub use client::{Client, ClientPoll};
pub use outbox::{Event, EventKind, Wake};
pub use server::{Access, ServerHandle};

/// Runs CPU-heavy work (a large state's encoding or validation) so the runtime can move
/// other connections to another thread meanwhile; inline where that is not possible.
pub(crate) fn heavy<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests;
