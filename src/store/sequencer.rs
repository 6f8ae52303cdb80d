//! The ordering core of a store, with no IO: gives accepted actions their sequence
//! numbers and drops a client's resends, by a per-client counter table.
//!
//! Deterministic: the same calls in the same order leave the same state on every replica,
//! so the Raft tier can apply committed entries through it on every server, and its state
//! (serde) can travel in snapshots. The table is bounded: past `max_clients`, the client
//! that was ordered least recently is forgotten (all replicas pick the same one). A
//! forgotten client that comes back is taken as new, so a resend of dispatches it sent
//! before it was forgotten would be ordered again; it takes `max_clients` other clients
//! ordering after it for that to be possible.

use crate::protocol::Ordered;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Runs of dispatches remembered per client, to tell a reconnecting client where the
/// ones whose acknowledgement it lost went.
pub const RECENT_RUNS: usize = 64;

/// Clients remembered by default.
pub const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ClientEntry {
    /// The last dispatch counter ordered.
    acked: u64,
    /// The sequence number of its latest ordered action (what eviction goes by).
    last_seq: u64,
    recent: VecDeque<Ordered>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("gap in the client's dispatch counters")]
    Gap,
    #[error("dispatch counter overflow")]
    Overflow,
}

/// What to do with a client's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    /// Leading actions of the batch already ordered (resends): drop them.
    pub skip: usize,
    /// Where the rest went (none when all were resends).
    pub run: Option<Ordered>,
    /// The client's last ordered counter now.
    pub acked: u64,
    /// Where the resends went when they were first ordered (as far as the client's
    /// latest runs tell): a client that lost those acknowledgements learns them here.
    pub earlier: Vec<Ordered>,
}

impl Admitted {
    /// Every run this batch's counters are in: the earlier ones, then the new one.
    pub fn runs(&self) -> Vec<Ordered> {
        self.earlier.iter().copied().chain(self.run).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequencer {
    /// The last sequence number given.
    seq: u64,
    clients: BTreeMap<u64, ClientEntry>,
    /// `(last_seq, client)`, least recent first: the eviction order.
    #[serde(skip)]
    by_age: BTreeSet<(u64, u64)>,
    max_clients: usize,
}

impl Default for Sequencer {
    fn default() -> Sequencer {
        Sequencer::new(MAX_CLIENTS)
    }
}

impl Sequencer {
    pub fn new(max_clients: usize) -> Sequencer {
        Sequencer {
            seq: 0,
            clients: BTreeMap::new(),
            by_age: BTreeSet::new(),
            max_clients: max_clients.max(1),
        }
    }

    /// Rebuilds what is not serialized (after a snapshot is read).
    pub fn restored(mut self) -> Sequencer {
        self.by_age = self
            .clients
            .iter()
            .map(|(id, c)| (c.last_seq, *id))
            .collect();
        self
    }

    /// The last sequence number given.
    pub fn head(&self) -> u64 {
        self.seq
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The last dispatch counter of this client already ordered (0 when unknown).
    pub fn acked(&self, client: u64) -> u64 {
        self.clients.get(&client).map_or(0, |c| c.acked)
    }

    /// Where this client's latest runs of dispatches went.
    pub fn recent(&self, client: u64) -> Vec<Ordered> {
        self.clients
            .get(&client)
            .map_or_else(Vec::new, |c| c.recent.iter().copied().collect())
    }

    /// The next sequence number, for an action of the server's own.
    pub fn local(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Admits `n` actions of `client` numbered from `first_counter`: the ones already
    /// ordered are skipped, the rest get the next sequence numbers. A client with no
    /// record (new, or forgotten) starts wherever it is. Counters come from a peer and
    /// are checked, never trusted to fit.
    pub fn submit(
        &mut self,
        client: u64,
        first_counter: u64,
        n: usize,
    ) -> Result<Admitted, Refused> {
        let acked = first_counter
            .checked_add(n as u64)
            .and_then(|end| end.checked_sub(1))
            .ok_or(Refused::Overflow)?;
        let last = match self.clients.get(&client) {
            Some(c) => c.acked,
            None => first_counter.saturating_sub(1),
        };
        if first_counter > last.saturating_add(1) {
            return Err(Refused::Gap);
        }
        // Runs of this client that hold the resent counters `first_counter..=last`.
        let earlier = |c: Option<&ClientEntry>| -> Vec<Ordered> {
            c.map_or_else(Vec::new, |c| {
                c.recent
                    .iter()
                    .filter(|r| {
                        r.first_counter <= last.min(acked)
                            && r.first_counter + r.count as u64 > first_counter
                    })
                    .copied()
                    .collect()
            })
        };
        if acked <= last {
            return Ok(Admitted {
                skip: n,
                run: None,
                acked: last,
                earlier: earlier(self.clients.get(&client)),
            });
        }
        let resent = if first_counter <= last {
            earlier(self.clients.get(&client))
        } else {
            Vec::new()
        };
        let count = acked - last;
        let run = Ordered {
            first_counter: last + 1,
            first_seq: self.seq + 1,
            count: u32::try_from(count).map_err(|_| Refused::Overflow)?,
        };
        self.seq += count;
        if !self.clients.contains_key(&client) && self.clients.len() >= self.max_clients {
            if let Some((_, old)) = self.by_age.pop_first() {
                self.clients.remove(&old);
            }
        }
        let entry = self.clients.entry(client).or_default();
        self.by_age.remove(&(entry.last_seq, client));
        entry.acked = acked;
        entry.last_seq = self.seq;
        if entry.recent.len() == RECENT_RUNS {
            entry.recent.pop_front();
        }
        entry.recent.push_back(run);
        self.by_age.insert((self.seq, client));
        Ok(Admitted {
            skip: (last + 1 - first_counter) as usize,
            run: Some(run),
            acked,
            earlier: resent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: u64, s: u64, n: u32) -> Ordered {
        Ordered {
            first_counter: c,
            first_seq: s,
            count: n,
        }
    }

    #[test]
    fn resends_are_skipped_and_runs_remembered() {
        let mut q = Sequencer::new(10);
        let a = q.submit(7, 1, 3).unwrap();
        assert_eq!((a.skip, a.run, a.acked), (0, Some(run(1, 1, 3)), 3));
        assert_eq!(q.local(), 4);
        // Resent 2..=5 after a reconnect: 4 and 5 are new, after the server's own action.
        let a = q.submit(7, 2, 4).unwrap();
        assert_eq!((a.skip, a.run, a.acked), (2, Some(run(4, 5, 2)), 5));
        let a = q.submit(7, 4, 2).unwrap();
        assert_eq!((a.skip, a.run), (2, None));
        assert_eq!(q.recent(7), vec![run(1, 1, 3), run(4, 5, 2)]);
        assert_eq!(q.submit(7, 9, 1), Err(Refused::Gap));
        assert_eq!(q.submit(8, u64::MAX, 2), Err(Refused::Overflow));
        assert_eq!(q.submit(8, 0, 0), Err(Refused::Overflow));
        // Unknown clients start anywhere.
        assert_eq!(q.submit(9, 40, 2).unwrap().acked, 41);
        for c in 6..6 + RECENT_RUNS as u64 + 5 {
            q.submit(7, c, 1).unwrap();
        }
        assert_eq!(q.recent(7).len(), RECENT_RUNS);
    }

    #[test]
    fn the_least_recently_ordered_client_is_forgotten_first() {
        let mut q = Sequencer::new(3);
        for c in [1, 2, 3] {
            q.submit(c, 1, 1).unwrap();
        }
        q.submit(1, 2, 1).unwrap(); // 1 is now the most recent; 2 the least
        q.submit(4, 1, 1).unwrap();
        assert_eq!(q.clients(), 3);
        assert_eq!(q.acked(2), 0, "forgotten");
        assert_eq!((q.acked(1), q.acked(3), q.acked(4)), (2, 1, 1));
    }

    /// A small deterministic generator (no dependency): replicas must agree whatever the
    /// workload, so many random workloads are run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn replicas_agree_and_every_counter_is_ordered_once() {
        // With room for every client, and with clients forgotten all the time.
        for max in [1000, 4] {
            for seed in 1..200u64 {
                let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                let mut a = Sequencer::new(max);
                // Per client: counters created, and the acknowledgement it has seen (an
                // ack may be lost, and then the client resends from there, as a real one).
                let mut have: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
                let mut once: BTreeSet<(u64, u64)> = BTreeSet::new(); // (client, counter)
                let mut seqs = Vec::new();
                let mut calls = Vec::new();
                for _ in 0..300 {
                    let client = rng.next(6);
                    let (created, known) = have.entry(client).or_default();
                    *created += 1 + rng.next(3);
                    let first = *known + 1;
                    let n = 1 + rng.next(*created - *known) as usize;
                    calls.push((client, first, n));
                    let adm = a
                        .submit(client, first, n)
                        .expect("no gaps in this workload");
                    if rng.next(3) != 0 {
                        *known = adm.acked;
                    }
                    assert_eq!(adm.skip + adm.run.map_or(0, |r| r.count as usize), n);
                    if let Some(r) = adm.run {
                        for i in 0..r.count as u64 {
                            let fresh = once.insert((client, r.first_counter + i));
                            // Only a forgotten client's resend can be ordered again.
                            assert!(fresh || max < 6, "seed {seed}: a counter ordered twice");
                            seqs.push(r.first_seq + i);
                        }
                    }
                }
                // Sequence numbers are dense: each given exactly once.
                seqs.sort();
                assert_eq!(seqs, (1..=a.head()).collect::<Vec<_>>(), "seed {seed}");
                // A replica given the same calls, or a snapshot, is identical.
                let mut b = Sequencer::new(max);
                for (c, f, n) in &calls {
                    b.submit(*c, *f, *n).unwrap();
                }
                assert_eq!(a, b, "seed {seed}");
                let text = serde_json::to_string(&a).unwrap();
                let copy = serde_json::from_str::<Sequencer>(&text).unwrap().restored();
                assert_eq!(copy, a, "seed {seed}: snapshot round trip");
            }
        }
    }
}
