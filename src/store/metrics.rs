//! What a server store counts of its clients, for an operator: connections opened and
//! closed, clients that moved here from another server, and refusals by reason. One per
//! store, shared by its endpoints.

use crate::error::ErrorCode;
use crate::metrics::{Counter, Family, Labels, Snapshot};
use parking_lot::Mutex;
use std::collections::HashSet;

/// Transports as `ConnStats::transport` names them.
pub const TRANSPORTS: [&str; 5] = ["tcp", "tls", "unix", "ws", "wss"];

/// Why a client was refused, as `client_refusals_total{reason}` says it.
pub const REFUSALS: [&str; 7] = [
    "auth",
    "ban",
    "limit",
    "protocol",
    "frame_size",
    "mismatch",
    "tls",
];

/// Client ids remembered to tell a move from a reconnect; past it the memory starts over
/// (a client seen before then counts once more as a move).
const SEEN_MAX: usize = 100_000;

#[derive(Debug)]
pub struct ClientMetrics {
    pub opened: Family<Counter>,
    pub closed: Family<Counter>,
    pub moves: Counter,
    pub refusals: Family<Counter>,
    seen: Mutex<HashSet<u64>>,
}

impl Default for ClientMetrics {
    fn default() -> ClientMetrics {
        ClientMetrics {
            opened: Family::with(&["transport"], &TRANSPORTS),
            closed: Family::with(&["transport"], &TRANSPORTS),
            moves: Counter::default(),
            refusals: Family::with(&["reason"], &REFUSALS),
            seen: Mutex::new(HashSet::new()),
        }
    }
}

impl ClientMetrics {
    /// A client's session began here; `resuming`: it already holds a replica (its hello
    /// names a position), so a client id this server has not served means it moved here
    /// from another server (after a failover, or away from a silent one).
    pub fn opened(&self, transport: &str, client_id: u64, resuming: bool) {
        self.opened.get(&[transport]).inc();
        let mut seen = self.seen.lock();
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        if seen.insert(client_id) && resuming {
            self.moves.inc();
        }
    }

    pub fn closed(&self, transport: &str) {
        self.closed.get(&[transport]).inc();
    }

    /// A connection refused (or closed) with `code`; codes that are not refusals of a
    /// client (an I/O error, a server cut off from its group) are not counted.
    pub fn refused(&self, code: ErrorCode) {
        let reason = match code {
            ErrorCode::Auth => "auth",
            ErrorCode::Banned => "ban",
            ErrorCode::Busy => "limit",
            ErrorCode::Protocol | ErrorCode::InvalidAction => "protocol",
            ErrorCode::FrameTooLarge => "frame_size",
            ErrorCode::StoreMismatch => "mismatch",
            ErrorCode::Tls => "tls",
            _ => return,
        };
        self.refusals.get(&[reason]).inc();
    }

    pub fn snapshot(&self, events_dropped: u64) -> Snapshot {
        let none = Labels::new();
        let mut s = Snapshot::default();
        s.counters(
            "client_connections_opened_total",
            "Client sessions begun, by transport.",
            &none,
            &self.opened,
        );
        s.counters(
            "client_connections_closed_total",
            "Client sessions ended, by transport.",
            &none,
            &self.closed,
        );
        s.counter(
            "client_moves_total",
            "Clients that arrived resuming a replica this server had not served (after a failover or a silent server).",
            &none,
            &self.moves,
        );
        s.counters(
            "client_refusals_total",
            "Connections or frames refused, by reason.",
            &none,
            &self.refusals,
        );
        s.value(
            "events_dropped_total",
            "Events dropped because nobody read them in time.",
            crate::metrics::Kind::Counter,
            none,
            events_dropped as f64,
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_a_resuming_client_this_server_has_not_served() {
        let m = ClientMetrics::default();
        m.opened("tcp", 1, false); // a new client
        m.opened("tcp", 1, true); // it reconnects here: not a move
        m.opened("ws", 2, true); // arrives with a replica from elsewhere
        assert_eq!(m.moves.get(), 1);
        assert_eq!(m.opened.get(&["tcp"]).get(), 2);
        m.refused(ErrorCode::Banned);
        m.refused(ErrorCode::Io);
        assert_eq!(m.refusals.get(&["ban"]).get(), 1);
        let s = m.snapshot(0);
        let refusals =
            s.0.iter()
                .find(|f| f.name == "client_refusals_total")
                .unwrap();
        assert_eq!(refusals.samples.len(), REFUSALS.len());
    }
}
