//! How a Raft node is set up: its name and address, Raft's timers, durability, and
//! whether followers forward writes.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub name: String,
    pub host: String,
    /// 0 picks a free port. Without `listen`, the port other nodes reach this one on
    /// (a replicated store's servers take their peers' connections on the store's port).
    pub port: u16,
    /// Binds `host:port` and serves peers there (else the embedder hands peer
    /// connections over through [`super::RaftEngine::serve_peer`]).
    pub listen: bool,
    /// Dial peers with TLS, trusting what this config trusts.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The host other nodes dial (default: `host`).
    pub advertise_host: Option<String>,
    pub election_timeout_min: u64,
    pub election_timeout_max: u64,
    pub heartbeat_interval: u64,
    /// Entries between snapshots (then the log before them is purged).
    pub snapshot_threshold: u64,
    pub data_dir: Option<PathBuf>,
    pub secret: Option<String>,
    /// Forward writes made on a follower to the leader (else `ERR_NOT_LEADER`).
    pub forward: bool,
    /// How long a write or a membership change may wait for its commit.
    pub commit_timeout: Duration,
    pub bootstrap: bool,
    /// Most entries per append request.
    pub max_entries: u64,
}

impl RaftConfig {
    pub fn local(name: &str) -> RaftConfig {
        RaftConfig {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 0,
            listen: true,
            tls: None,
            advertise_host: None,
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            snapshot_threshold: 1000,
            data_dir: None,
            secret: None,
            forward: true,
            commit_timeout: Duration::from_secs(5),
            bootstrap: false,
            max_entries: 4096,
        }
    }
}
