//! What a Raft node counts and times, for an operator: leader changes, proposals and how
//! they ended, commit / apply / fsync / snapshot latencies, and each peer's round trip,
//! bytes and missed probes. Kept where it happens (the engine's write path, the state
//! machine, the log's writer thread, the peer probe and links); read as a
//! [`crate::metrics::Snapshot`] with the gauges openraft's own metrics give.

use super::engine::RaftEngine;
use crate::error::ErrorCode;
use crate::metrics::{labels, Counter, Family, Histogram, Kind, Snapshot};
use openraft::ServerState;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

/// Why a proposal failed, as `raft_proposals_failed_total{reason}` says it.
pub const FAILURE_REASONS: [&str; 6] = [
    "timeout",
    "no_quorum",
    "full",
    "not_leader",
    "closed",
    "other",
];

pub const SNAPSHOT_PHASES: [&str; 3] = ["build", "send", "install"];

#[derive(Debug)]
pub struct NodeMetrics {
    pub leader_changes: Counter,
    pub committed: Counter,
    pub applied: Counter,
    pub failed: Family<Counter>,
    /// Proposals accepted by this node and not answered yet.
    pub pending: AtomicI64,
    pub commit: Histogram,
    pub apply: Histogram,
    /// The log writer's `fdatasync` (shared with the writer thread of a `dataDir`).
    pub fsync: Arc<Histogram>,
    pub snapshot: Family<Histogram>,
    pub peer_rtt: Family<Histogram>,
    pub peer_sent: Family<Counter>,
    pub peer_received: Family<Counter>,
    pub heartbeats_missed: Family<Counter>,
}

impl Default for NodeMetrics {
    fn default() -> NodeMetrics {
        NodeMetrics {
            leader_changes: Counter::default(),
            committed: Counter::default(),
            applied: Counter::default(),
            failed: Family::with(&["reason"], &FAILURE_REASONS),
            pending: AtomicI64::new(0),
            commit: Histogram::default(),
            apply: Histogram::default(),
            fsync: Arc::default(),
            snapshot: Family::with(&["phase"], &SNAPSHOT_PHASES),
            peer_rtt: Family::new(&["peer"]),
            peer_sent: Family::new(&["peer"]),
            peer_received: Family::new(&["peer"]),
            heartbeats_missed: Family::new(&["peer"]),
        }
    }
}

impl NodeMetrics {
    /// Counts a failed proposal under the reason its code stands for.
    pub fn failed(&self, code: ErrorCode) {
        let reason = match code {
            ErrorCode::Timeout => "timeout",
            // No leader to be found within the deadline, or none reachable.
            ErrorCode::Unavailable => "no_quorum",
            ErrorCode::QueueFull => "full",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::Closed => "closed",
            _ => "other",
        };
        self.failed.get(&[reason]).inc();
    }

    /// The peer families made for `peer` now (so a peer's series exist at 0 from the
    /// moment it is known).
    pub fn peer(&self, peer: &str) -> PeerMeter {
        self.peer_rtt.get(&[peer]);
        self.heartbeats_missed.get(&[peer]);
        PeerMeter {
            sent: self.peer_sent.get(&[peer]),
            received: self.peer_received.get(&[peer]),
        }
    }

    /// Forgets peers no longer in the group.
    pub fn retain_peers(&self, keep: impl Fn(&str) -> bool) {
        let keep = |k: &[String]| keep(&k[0]);
        self.peer_rtt.retain(keep);
        self.peer_sent.retain(keep);
        self.peer_received.retain(keep);
        self.heartbeats_missed.retain(keep);
    }
}

/// The byte counters of one peer's links.
#[derive(Debug, Clone)]
pub struct PeerMeter {
    pub sent: Arc<Counter>,
    pub received: Arc<Counter>,
}

/// Counts a proposal pending while it lives.
pub struct PendingGuard<'a>(&'a AtomicI64);

impl<'a> PendingGuard<'a> {
    pub fn new(g: &'a AtomicI64) -> PendingGuard<'a> {
        g.fetch_add(1, Relaxed);
        PendingGuard(g)
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl RaftEngine {
    /// This node's Raft metrics, labelled with its node's name.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let x = &self.shared.metrics;
        // The name, as `status().nodeId` and the other raft_* series give it.
        let base = labels([("node", self.shared.me.name())]);
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let voters: Vec<u64> = mem.voter_ids().collect();
        let reachable = {
            let health = self.shared.health.lock();
            voters
                .iter()
                .filter(|id| {
                    **id == self.id
                        || mem
                            .get_node(id)
                            .is_some_and(|n| health.get(n.name()).is_some_and(|h| h.up))
                })
                .count()
        };
        let mut s = Snapshot::default();
        let gauge = |s: &mut Snapshot, name, help, v: f64| {
            s.value(name, help, Kind::Gauge, base.clone(), v);
        };
        gauge(
            &mut s,
            "raft_has_leader",
            "1 when this node knows a leader, else 0.",
            m.current_leader.is_some() as u8 as f64,
        );
        gauge(
            &mut s,
            "raft_is_leader",
            "1 on the leader, else 0.",
            (m.state == ServerState::Leader) as u8 as f64,
        );
        gauge(
            &mut s,
            "raft_members",
            "Voters in the group's membership.",
            voters.len() as f64,
        );
        gauge(
            &mut s,
            "raft_replicas",
            "Members that do not vote: replicas (and a server being added, until it catches up).",
            (mem.nodes().count() - voters.len()) as f64,
        );
        gauge(
            &mut s,
            "raft_members_reachable",
            "Voters this node reaches now (by the peer probe), itself included.",
            reachable as f64,
        );
        gauge(
            &mut s,
            "raft_proposals_pending",
            "Proposals accepted by this node and not answered yet.",
            x.pending.load(Relaxed).max(0) as f64,
        );
        s.counter(
            "raft_leader_changes_seen_total",
            "Leader changes this node has seen.",
            &base,
            &x.leader_changes,
        );
        s.counter(
            "raft_proposals_committed_total",
            "Proposals made through this node that a majority committed.",
            &base,
            &x.committed,
        );
        s.counter(
            "raft_proposals_applied_total",
            "Committed commands applied by this node's state machine.",
            &base,
            &x.applied,
        );
        s.counters(
            "raft_proposals_failed_total",
            "Proposals made through this node that failed, by reason.",
            &base,
            &x.failed,
        );
        s.histogram(
            "raft_commit_duration_seconds",
            "A proposal's arrival at this node until a majority committed it.",
            &base,
            &x.commit,
        );
        s.histogram(
            "apply_duration_seconds",
            "Applying one run of committed entries to the state machine.",
            &base,
            &x.apply,
        );
        s.histogram(
            "raft_wal_fsync_duration_seconds",
            "The Raft log's fdatasync (a dataDir only).",
            &base,
            &x.fsync,
        );
        s.histograms(
            "raft_snapshot_duration_seconds",
            "Snapshot work, by phase: build, send (to a peer), install (from the leader).",
            &base,
            &x.snapshot,
        );
        s.histograms(
            "raft_peer_round_trip_seconds",
            "The peer probe's round trip to each peer.",
            &base,
            &x.peer_rtt,
        );
        s.counters(
            "raft_peer_sent_bytes_total",
            "Bytes sent on the links to each peer.",
            &base,
            &x.peer_sent,
        );
        s.counters(
            "raft_peer_received_bytes_total",
            "Bytes received on the links from each peer.",
            &base,
            &x.peer_received,
        );
        s.counters(
            "raft_peer_heartbeats_missed_total",
            "Probes of each peer that went unanswered.",
            &base,
            &x.heartbeats_missed,
        );
        s
    }
}
