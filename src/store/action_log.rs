//! The ordered action log: sequence numbers are contiguous; old entries are trimmed once a
//! snapshot covers them.

use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct ActionLog {
    entries: VecDeque<Bytes>,
    /// Sequence number of `entries[0]`; `head() + 1` when empty.
    first_seq: u64,
    bytes: usize,
}

impl ActionLog {
    pub fn new() -> ActionLog {
        ActionLog {
            entries: VecDeque::new(),
            first_seq: 1,
            bytes: 0,
        }
    }

    /// An empty log whose next entry is `first_seq` (a replica restored from a
    /// snapshot at `first_seq - 1`).
    pub fn starting_at(first_seq: u64) -> ActionLog {
        ActionLog {
            entries: VecDeque::new(),
            first_seq: first_seq.max(1),
            bytes: 0,
        }
    }

    /// The last sequence number given out (0 before the first).
    pub fn head(&self) -> u64 {
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// The oldest sequence number still held.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn append(&mut self, action: Bytes) -> u64 {
        self.bytes += action.len();
        self.entries.push_back(action);
        self.head()
    }

    /// Entries from `from` on, at most `max_count` of them and about `max_bytes` (at least
    /// one entry when any is there). `None` when `from` was trimmed away.
    pub fn read(
        &self,
        from: u64,
        upto: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Option<Vec<Bytes>> {
        if from < self.first_seq {
            return None;
        }
        let upto = upto.min(self.head());
        let mut out = Vec::new();
        let mut size = 0;
        let mut seq = from;
        while seq <= upto && out.len() < max_count && (out.is_empty() || size < max_bytes) {
            let e = &self.entries[(seq - self.first_seq) as usize];
            size += e.len();
            out.push(e.clone());
            seq += 1;
        }
        Some(out)
    }

    /// Drops every entry with a sequence number up to and including `seq`.
    pub fn trim_through(&mut self, seq: u64) {
        while self.first_seq <= seq && !self.entries.is_empty() {
            let e = self.entries.pop_front().expect("non-empty");
            self.bytes -= e.len();
            self.first_seq += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn sequence_numbers_are_contiguous_across_trims() {
        let mut log = ActionLog::new();
        assert_eq!(log.head(), 0);
        for i in 1..=10u64 {
            assert_eq!(log.append(b(&i.to_string())), i);
        }
        assert_eq!(
            log.read(3, u64::MAX, 2, usize::MAX).unwrap(),
            vec![b("3"), b("4")]
        );
        assert_eq!(log.read(9, u64::MAX, 100, usize::MAX).unwrap().len(), 2);
        assert_eq!(log.read(4, 5, 100, usize::MAX).unwrap().len(), 2);
        assert!(log.read(11, u64::MAX, 100, usize::MAX).unwrap().is_empty());
        log.trim_through(6);
        assert_eq!(log.first_seq(), 7);
        assert!(log.read(6, u64::MAX, 10, usize::MAX).is_none());
        assert_eq!(log.read(7, u64::MAX, 10, usize::MAX).unwrap()[0], b("7"));
        log.trim_through(100);
        assert!(log.is_empty());
        assert_eq!(log.head(), 10);
        assert_eq!(log.bytes(), 0);
        assert_eq!(log.append(b("x")), 11);
    }

    #[test]
    fn byte_budget_still_returns_one_entry() {
        let mut log = ActionLog::new();
        log.append(b("0123456789"));
        log.append(b("0123456789"));
        assert_eq!(log.read(1, u64::MAX, 100, 5).unwrap().len(), 1);
        assert_eq!(log.read(1, u64::MAX, 100, 15).unwrap().len(), 2);
    }
}
