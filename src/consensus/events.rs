//! What a Raft node tells its owner: leaders, step-downs, peers coming and going,
//! membership changes and the state machine's own events; and the tasks that watch for
//! them.

use super::engine::{name_of, RaftEngine};
use super::network::net::{Link, Reply, Request};
use super::state_machine::SmEvent;
use super::types::NodeId;
use openraft::ServerState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum RaftEvent {
    LeaderElected {
        leader: String,
        term: u64,
    },
    BecameFollower {
        term: u64,
    },
    /// This node's role changed (leader, follower, candidate, learner, shutdown).
    Role {
        role: &'static str,
        term: u64,
    },
    PeerConnected(String),
    PeerDisconnected(String),
    /// The voters and learners after a membership change was applied.
    Members {
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    },
    State(SmEvent),
    /// Something the owner should hear of that is not an error of a call: a peer refused
    /// at the handshake (a wrong secret, garbage), a peer's connection broken by a
    /// malformed message.
    Warning {
        code: crate::error::ErrorCode,
        message: String,
    },
}

pub type EventSink = Arc<dyn Fn(RaftEvent) + Send + Sync>;

/// A snapshot of the node's state, for `getState()`.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub name: String,
    pub addr: String,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<String>,
    pub voted_for: Option<String>,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub last_applied: u64,
    pub snapshot_index: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub initialized: bool,
    /// On the leader: how far each member's log is known to match its own (by name).
    pub matched: std::collections::BTreeMap<String, u64>,
}

/// Turns metric changes into events: a leader known (on every node), a step down.
pub(super) async fn watch_metrics(engine: Arc<RaftEngine>) {
    let mut rx = engine.raft.metrics();
    let mut last_leader: Option<(u64, u64)> = None;
    let mut last_state = ServerState::Learner;
    let mut last_members: Option<openraft::LogId<u64>> = None;
    loop {
        let m = rx.borrow_and_update().clone();
        if let Some(l) = m.current_leader {
            if last_leader != Some((l, m.current_term)) {
                // A new term with the same leader is a new election it won again.
                engine.shared.metrics.leader_changes.inc();
                last_leader = Some((l, m.current_term));
                if let Some(name) = name_of(&m, l) {
                    (engine.shared.sink)(RaftEvent::LeaderElected {
                        leader: name,
                        term: m.current_term,
                    });
                }
            }
        }
        if m.state != last_state {
            (engine.shared.sink)(RaftEvent::Role {
                role: super::engine::role_name(m.state, engine.shared.cfg.replica),
                term: m.current_term,
            });
            if m.state == ServerState::Follower
                && matches!(last_state, ServerState::Leader | ServerState::Candidate)
            {
                (engine.shared.sink)(RaftEvent::BecameFollower {
                    term: m.current_term,
                });
            }
            last_state = m.state;
        }
        let mid = *m.membership_config.log_id();
        if mid.is_some() && mid != last_members {
            last_members = mid;
            let st = engine.state();
            (engine.shared.sink)(RaftEvent::Members {
                voters: st.voters,
                learners: st.learners,
            });
        }
        tokio::select! {
            _ = engine.stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// The last probe of one peer.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerHealth {
    pub up: bool,
    /// Probes failed in a row (0 while it answers).
    pub failures: u32,
    /// The last answer's round trip.
    pub latency_ms: Option<f64>,
    /// When it was probed last (ms since the epoch): a new value is a new probe.
    pub checked_at: u64,
}

impl RaftEngine {
    /// Every peer's last probe, by name.
    pub fn peer_health(&self) -> std::collections::BTreeMap<String, PeerHealth> {
        self.shared.health.lock().clone()
    }
}

/// Probes every known peer, all at once, each on its own connection; records what it
/// found (`peer_health`) and reports when a peer comes and goes. The one detector of a
/// Raft group's peers besides openraft's own replication.
pub(super) async fn probe_peers(engine: Arc<RaftEngine>) {
    let every = Duration::from_millis((engine.shared.cfg.heartbeat_interval * 2).max(100));
    let ttl = Duration::from_millis(engine.shared.cfg.election_timeout_max.max(200));
    let mut links: HashMap<String, Link> = HashMap::new();
    loop {
        tokio::select! {
            _ = engine.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let peers = engine.peers();
        let s = &engine.shared;
        // A peer that does not answer holds up nobody else's probe.
        let probes = peers.iter().map(|(name, addr)| {
            let mut link = links.remove(name).unwrap_or_default();
            async move {
                let start = std::time::Instant::now();
                let ok = matches!(
                    link.call(&s.dialer, addr, &Request::Ping, ttl).await,
                    Ok(Reply::Status(st)) if &st.name == name
                );
                (name, ok.then_some(link), start.elapsed())
            }
        });
        let results = futures_util::future::join_all(probes).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // What changed is told after the lock is released (the sink calls out).
        let mut changes = Vec::new();
        {
            let mut health = s.health.lock();
            for (name, link, took) in results {
                let ok = link.is_some();
                match ok {
                    true => s.metrics.peer_rtt.get(&[name]).observe(took),
                    false => s.metrics.heartbeats_missed.get(&[name]).inc(),
                }
                if let Some(link) = link {
                    links.insert(name.clone(), link);
                }
                let h = health.entry(name.clone()).or_insert(PeerHealth {
                    up: false,
                    failures: 0,
                    latency_ms: None,
                    checked_at: 0,
                });
                if h.up != ok {
                    changes.push(match ok {
                        true => RaftEvent::PeerConnected(name.clone()),
                        false => RaftEvent::PeerDisconnected(name.clone()),
                    });
                }
                h.up = ok;
                h.checked_at = now;
                if ok {
                    h.failures = 0;
                    h.latency_ms = Some(took.as_secs_f64() * 1000.0);
                } else {
                    h.failures = h.failures.saturating_add(1);
                }
            }
            // Peers removed from the cluster are no longer watched.
            health.retain(|n, h| {
                let keep = peers.contains_key(n);
                if !keep && h.up {
                    changes.push(RaftEvent::PeerDisconnected(n.clone()));
                }
                keep
            });
        }
        for e in changes {
            (s.sink)(e);
        }
        links.retain(|n, _| peers.contains_key(n));
        s.metrics.retain_peers(|n| peers.contains_key(n));
    }
}
