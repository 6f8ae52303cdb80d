//! The Raft log, vote and committed id. Always held in memory (openraft reads what it
//! appended at once); with a [`Disk`] every change is also queued to the durable log
//! writer, and an append is reported persisted, or a vote returns, only after fsync.
//! A clone shares the same log, which is how openraft's log reader sees what the writer
//! appended.

use super::disk::{Disk, Write};
use super::types::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Inner {
    last_purged: Option<LogId<u64>>,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    committed: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
}

#[derive(Debug, Clone, Default)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    disk: Option<Disk>,
}

/// The in-memory store (no `dataDir`).
pub type MemLogStore = LogStore;

impl LogStore {
    /// A store backed by `disk`, starting from what it holds.
    pub fn open(disk: Disk) -> std::io::Result<LogStore> {
        let l = disk.load()?;
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                last_purged: l.purged,
                log: l.log,
                committed: l.committed,
                vote: l.vote,
            })),
            disk: Some(disk),
        })
    }

    /// A memory store holding `vote` and `entries` (a RaftNode's `loadState`).
    pub fn preloaded(vote: Option<Vote<u64>>, entries: Vec<Entry<TypeConfig>>) -> LogStore {
        LogStore {
            inner: Arc::new(Mutex::new(Inner {
                vote,
                log: entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
                ..Inner::default()
            })),
            disk: None,
        }
    }

    /// The entries held from `from` through `to`.
    pub fn range(&self, from: u64, to: u64) -> Vec<Entry<TypeConfig>> {
        let inner = self.inner.lock();
        inner.log.range(from..=to).map(|(_, e)| e.clone()).collect()
    }

    /// The vote and every entry held (a RaftNode's `getState`).
    pub fn contents(&self) -> (Option<Vote<u64>>, Vec<Entry<TypeConfig>>) {
        let inner = self.inner.lock();
        (inner.vote, inner.log.values().cloned().collect())
    }

    /// The log's last index and the vote's term (for status reports).
    pub fn last_index(&self) -> Option<u64> {
        let inner = self.inner.lock();
        inner
            .log
            .keys()
            .next_back()
            .copied()
            .or(inner.last_purged.map(|l| l.index))
    }
}

/// About how many bytes one append to a follower carries at most (always one entry).
///
/// Why: openraft gives an append the heartbeat interval to be answered, and a new leader
/// probes a follower with up to `max_entries` (4,096) entries at once. Megabytes of them
/// could never be sent, written and answered in 50 ms on a busy host, so every attempt
/// timed out and a follower never caught up (found by the chaos run). Bounded in bytes,
/// a catch-up takes more appends, each of which can succeed.
pub const APPEND_BYTES: usize = 256 << 10;

fn entry_bytes(e: &Entry<TypeConfig>) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(c) => c.approx_bytes(),
        _ => 64,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let inner = self.inner.lock();
        Ok(inner.log.range(range).map(|(_, e)| e.clone()).collect())
    }

    /// The entries of `start..end` that fit in [`APPEND_BYTES`] (at least one):
    /// openraft sends what this returns and asks again for the rest.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let inner = self.inner.lock();
        let mut bytes = 0;
        let mut out = Vec::new();
        for (_, e) in inner.log.range(start..end) {
            bytes += entry_bytes(e);
            if bytes > APPEND_BYTES && !out.is_empty() {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let inner = self.inner.lock();
        let last = inner
            .log
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        // Durable before it is acted on: a node must never vote twice in one term, even
        // across a crash.
        if let Some(d) = &self.disk {
            let v = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
            d.put_durable("vote", v)
                .await
                .map_err(|e| StorageIOError::write_vote(&e))?;
        }
        self.inner.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Queued, not waited for: it only saves re-applying entries after a restart.
        if let Some(d) = &self.disk {
            let v = serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(&e))?;
            d.send(Write::Meta("committed", v, None));
        }
        self.inner.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        {
            let mut inner = self.inner.lock();
            for e in entries {
                if self.disk.is_some() {
                    let b = super::types::to_bytes(&e)
                        .map_err(|err| StorageIOError::write_logs(&err))?;
                    rows.push((e.log_id.index, b));
                }
                inner.log.insert(e.log_id.index, e);
            }
        }
        match &self.disk {
            // Reported persisted by the writer, after its fsync.
            Some(d) => d.send(Write::Append(rows, callback)),
            // In memory, "persisted" is now.
            None => callback.log_io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // Ordered before any later append by the writer's queue.
        if let Some(d) = &self.disk {
            d.send(Write::Truncate(log_id.index));
        }
        let mut inner = self.inner.lock();
        inner.log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        if let Some(d) = &self.disk {
            let id = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write(&e))?;
            d.send(Write::Purge(log_id.index, id));
        }
        let mut inner = self.inner.lock();
        inner.last_purged = Some(log_id);
        let keep = inner.log.split_off(&(log_id.index + 1));
        inner.log = keep;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::state_machine::testing::Sum;
    use crate::consensus::state_machine::StateMachine;
    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::{StoreBuilder, Suite};

    /// The conformance suite against the durable store (each build a fresh directory).
    struct DiskBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine<Sum>, tempdir::Dir> for DiskBuilder {
        async fn build(
            &self,
        ) -> Result<(tempdir::Dir, LogStore, StateMachine<Sum>), StorageError<u64>> {
            let dir = tempdir::Dir::new("suite");
            let disk = Disk::open(&dir.0).map_err(|e| StorageIOError::read(&e))?;
            let log = LogStore::open(disk.clone()).map_err(|e| StorageIOError::read(&e))?;
            let sm = StateMachine::open_with(Sum, Some(disk), None)?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_storage_conformance_suite_on_disk() {
        Suite::test_all(DiskBuilder).unwrap();
    }

    /// One append carries about `APPEND_BYTES` of entries, from the start of the range,
    /// and always at least one entry, however big.
    #[tokio::test]
    async fn an_append_is_bounded_in_bytes_not_only_in_entries() {
        let entry = |i: u64, action_bytes: usize| Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), i),
            payload: openraft::EntryPayload::Normal(crate::consensus::Command::App(
                vec![b'x'; action_bytes].into(),
            )),
        };
        let mut log = LogStore::default();
        log.blocking_append((1..=100).map(|i| entry(i, 10_000)))
            .await
            .unwrap();
        let got = log.limited_get_log_entries(1, 101).await.unwrap();
        let indexes: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (1..=indexes.len() as u64).collect::<Vec<_>>());
        // Within the bound, and one more entry would have passed it.
        let bytes: usize = got.iter().map(entry_bytes).sum();
        assert!(
            bytes <= APPEND_BYTES && bytes + entry_bytes(&got[0]) > APPEND_BYTES,
            "{} entries, {bytes} bytes",
            got.len()
        );
        // Small entries: the whole range.
        log.blocking_append((101..=200).map(|i| entry(i, 10)))
            .await
            .unwrap();
        assert_eq!(
            log.limited_get_log_entries(101, 201).await.unwrap().len(),
            100
        );
        // One entry larger than the bound still goes, alone.
        log.blocking_append([entry(201, APPEND_BYTES * 2), entry(202, 10)])
            .await
            .unwrap();
        let got = log.limited_get_log_entries(201, 203).await.unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_reopened_store_has_the_durable_log_and_vote() {
        let dir = tempdir::Dir::new("reopen");
        {
            let disk = Disk::open(&dir.0).unwrap();
            let mut log = LogStore::open(disk).unwrap();
            log.save_vote(&Vote::new(3, 7)).await.unwrap();
            let entries: Vec<Entry<TypeConfig>> = (1..=5)
                .map(|i| Entry {
                    log_id: LogId::new(openraft::CommittedLeaderId::new(3, 7), i),
                    payload: openraft::EntryPayload::Blank,
                })
                .collect();
            log.blocking_append(entries).await.unwrap();
            log.truncate(LogId::new(openraft::CommittedLeaderId::new(3, 7), 4))
                .await
                .unwrap();
            log.purge(LogId::new(openraft::CommittedLeaderId::new(3, 7), 1))
                .await
                .unwrap();
            // A durable write after them flushes them too (one ordered queue).
            log.save_vote(&Vote::new(4, 7)).await.unwrap();
        }
        let disk = Disk::open(&dir.0).unwrap();
        let mut log = LogStore::open(disk).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, 7)));
        let st = log.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(1));
        assert_eq!(st.last_log_id.map(|l| l.index), Some(3));
        let got = log.try_get_log_entries(0..10).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [2, 3]
        );
    }
}

/// A directory under the temp dir, removed on drop (tests only).
#[cfg(test)]
pub(crate) mod tempdir {
    use std::path::PathBuf;

    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "rcrs-{tag}-{}-{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
