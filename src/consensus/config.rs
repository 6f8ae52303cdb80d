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
    /// Joins as a replica: a member that follows the committed log but never votes,
    /// never counts toward a quorum and never founds a group (it asks its seeds to add
    /// it, and stays a non-voter).
    pub replica: bool,
}

/// The defaults every API starts from (@unrdf/consensus's 150–300 ms elections and 50 ms
/// heartbeats); each binding overrides what its options name, then [`RaftConfig::validate`].
impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            name: String::new(),
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
            replica: false,
        }
    }
}

impl RaftConfig {
    /// A node on loopback with a free port and the defaults.
    pub fn local(name: &str) -> RaftConfig {
        RaftConfig {
            name: name.into(),
            ..RaftConfig::default()
        }
    }

    /// The rules every way of building a config must meet. A heartbeat must come well
    /// inside the election timeout, or followers would start elections against a live
    /// leader.
    pub fn validate(&self) -> Result<(), String> {
        let (hb, min, max) = (
            self.heartbeat_interval,
            self.election_timeout_min,
            self.election_timeout_max,
        );
        if self.name.is_empty() {
            return Err("the node's name (nodeId) must not be empty".into());
        }
        if hb == 0 || min <= hb || max <= min {
            return Err(format!(
                "the timers need 0 < heartbeatInterval ({hb} ms) < the election timeout's \
                 minimum ({min} ms) < its maximum ({max} ms)"
            ));
        }
        if self.snapshot_threshold == 0 {
            return Err("snapshotThreshold must be at least 1".into());
        }
        if self.max_entries == 0 {
            return Err("the entries per request must be at least 1".into());
        }
        if self.replica && self.bootstrap {
            return Err(
                "a replica cannot bootstrap a group: it joins one through its seeds".into(),
            );
        }
        if self.secret.as_deref() == Some("") {
            return Err("clusterSecret must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_rule_is_checked() {
        assert_eq!(RaftConfig::local("a").validate(), Ok(()));
        let bad = [
            RaftConfig::local(""),
            RaftConfig {
                heartbeat_interval: 150,
                ..RaftConfig::local("a")
            },
            RaftConfig {
                election_timeout_max: 150,
                ..RaftConfig::local("a")
            },
            RaftConfig {
                snapshot_threshold: 0,
                ..RaftConfig::local("a")
            },
            RaftConfig {
                max_entries: 0,
                ..RaftConfig::local("a")
            },
            RaftConfig {
                secret: Some(String::new()),
                ..RaftConfig::local("a")
            },
            RaftConfig {
                replica: true,
                bootstrap: true,
                ..RaftConfig::local("a")
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
