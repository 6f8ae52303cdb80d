//! Where a node's Raft state lives: the log and the vote in memory ([`log_store`]),
//! and under `dataDir` ([`disk`]: the log in [`wal`], the rest in redb and a file).

// The engine's parts these files name (as `super::...`, from before they had a folder).
use super::{state_machine, types};

pub mod disk;
pub mod log_store;
pub mod wal;
