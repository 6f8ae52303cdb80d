//! Durable Raft state under `dataDir`: the log in an append-only segmented file
//! ([`super::wal`], `dataDir/log/`), the last snapshot in `dataDir/snapshot` (replaced
//! by rename), and the vote, the committed id and the log's epoch in a redb database
//! (`raft.redb`).
//!
//! Why three: the log is written on every entry and must be cheap to make durable (an
//! append and one `fdatasync`); a snapshot is megabytes written at once; the small
//! values want atomic, durable updates, which redb, a maintained pure-Rust store whose
//! commit returns only after fsync, gives for free.
//!
//! One writer thread writes the log and group-commits: everything queued while it
//! syncs goes out together in the next write, one `fdatasync` for all of it. The
//! metadata is committed on a thread of its own, so that no append waits for it.
//!
//! The log is also kept in memory (openraft reads entries right after `append` returns,
//! before they are durable); the disk copy is what a restart reloads.

use super::state_machine::StoredSnapshot;
use super::types::{NodeId, TypeConfig};
use super::wal::{Rec, Replay, Wal};
use crate::metrics::Histogram;
use openraft::storage::LogFlushed;
use openraft::{Entry, LogId, SnapshotMeta, StorageError, StorageIOError, Vote};
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// What `dataDir/FORMAT` holds: how the log's entries are encoded. Versions before it
/// wrote JSON entries and no such file; reading those as postcard would give garbage
/// (or worse, a plausible wrong entry), so a directory without it is refused.
const FORMAT: &str = "redux-cluster-rs raft log: postcard 1\n";

/// A `dataDir` this version cannot read (`ERR_DATA_FORMAT`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OldFormat(String);

/// Checks (or, in a fresh directory, writes) the format mark. Written before the
/// database is created, so a directory with a database and no mark is an older
/// version's, never a crash in between.
fn check_format(dir: &Path) -> io::Result<()> {
    let mark = dir.join("FORMAT");
    let old = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            OldFormat(format!(
                "{} {what}: it was written by an older version of redux-cluster-rs, \
                 whose Raft log this version cannot read; start from an empty dataDir \
                 (the group's other members send this node their state)",
                dir.display()
            )),
        )
    };
    match std::fs::read(&mark) {
        Ok(b) if b == FORMAT.as_bytes() => Ok(()),
        Ok(b) => Err(old(format!(
            "has a log of format {:?}",
            String::from_utf8_lossy(&b).trim()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dir.join("raft.redb").exists() {
                return Err(old("has no FORMAT mark".into()));
            }
            let tmp = dir.join("FORMAT.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(FORMAT.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &mark)?;
            std::fs::File::open(dir)?.sync_all()
        }
        Err(e) => Err(e),
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Everything a restart needs, as read from the database.
#[derive(Default)]
pub struct Loaded {
    pub log: BTreeMap<u64, Entry<TypeConfig>>,
    pub vote: Option<Vote<u64>>,
    pub committed: Option<LogId<u64>>,
    pub purged: Option<LogId<u64>>,
}

/// One write for the log writer thread; applied in the order sent.
pub enum Write {
    Append(Vec<(u64, Vec<u8>)>, LogFlushed<TypeConfig>),
    /// Removes every entry at or after the index.
    Truncate(u64),
    /// Removes every entry up to and including the index, and records the purged log
    /// id (its JSON, encoded by the caller as entries are).
    Purge(u64, Vec<u8>),
    Meta(
        &'static str,
        Vec<u8>,
        Option<oneshot::Sender<io::Result<()>>>,
    ),
}

#[derive(Clone)]
pub struct Disk {
    dir: PathBuf,
    db: Arc<parking_lot::Mutex<Option<Arc<Database>>>>,
    writer: Arc<Writer>,
    /// What the log held at open, until `load` takes it.
    replay: Arc<parking_lot::Mutex<Option<Replay>>>,
    /// The writer thread's `fdatasync` times (the node's metrics read them).
    fsync: Arc<Histogram>,
}

/// The writer thread; the last `Disk` handle to go closes its queue and waits for it, so
/// the database file is unlocked (and everything queued written) once the store is gone.
struct Writer {
    tx: parking_lot::Mutex<Option<mpsc::Sender<Write>>>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    fn stop(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

/// redb's page cache, in bytes.
const DISK_CACHE: usize = 4 << 20;

/// Most time, and most commits, between two durable metadata commits. redb reuses the
/// pages a commit frees only after durable commits, and the committed id is written (not
/// durably) at every commit of the log: without these the file grew by every commit,
/// 6.5 GB per server in 15 minutes at 2,000 actions/s (found by the soak bench). With
/// them it holds the pages of a few hundred commits.
const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const DURABLE_AFTER: u32 = 256;

/// Least time between two metadata commits nobody waits for (the committed id, saved
/// at every commit of the log): it only spares a restart re-applying entries, and each
/// redb commit writes pages that share the disk with the log's syncs. A vote, which is
/// waited for, goes at once (with whatever is held).
const META_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// When the metadata was last committed durably, and how many commits since.
struct Durable {
    at: Instant,
    since: u32,
}

impl Disk {
    pub fn open(dir: &Path) -> io::Result<Disk> {
        std::fs::create_dir_all(dir)?;
        check_format(dir)?;
        // The log is served from memory (`LogStore`); the file is read only at start, so
        // redb's page cache (1 GiB by default) would only hold copies.
        let db = Database::builder()
            .set_cache_size(DISK_CACHE)
            .create(dir.join("raft.redb"))
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot open {}: {e}",
                    dir.join("raft.redb").display()
                ))
            })?;
        // Create the table so that readers never meet a missing one, and take this
        // open's log epoch: durable before the log is written, larger than every
        // earlier one (see `wal`).
        let tx = db.begin_write().map_err(io_err)?;
        let epoch = {
            let mut t = tx.open_table(META).map_err(io_err)?;
            let last = t
                .get("wal_epoch")
                .map_err(io_err)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(0);
            t.insert("wal_epoch", (last + 1).to_le_bytes().as_slice())
                .map_err(io_err)?;
            last + 1
        };
        tx.commit().map_err(io_err)?;
        let (wal, replay) = Wal::open(&dir.join("log"), epoch)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let wdb = db.clone();
        let fsync = Arc::new(Histogram::default());
        let times = fsync.clone();
        let thread = std::thread::Builder::new()
            .name("redux-cluster-rs-raft-log".into())
            .spawn(move || write_loop(wdb, wal, rx, &times))?;
        Ok(Disk {
            dir: dir.to_path_buf(),
            db: Arc::new(parking_lot::Mutex::new(Some(db))),
            writer: Arc::new(Writer {
                tx: parking_lot::Mutex::new(Some(tx)),
                thread: parking_lot::Mutex::new(Some(thread)),
            }),
            replay: Arc::new(parking_lot::Mutex::new(Some(replay))),
            fsync,
        })
    }

    /// The log's `fdatasync` times, for the node's metrics.
    pub fn fsync_histogram(&self) -> Arc<Histogram> {
        self.fsync.clone()
    }

    fn db(&self) -> io::Result<Arc<Database>> {
        self.db
            .lock()
            .clone()
            .ok_or_else(|| io_err("the raft store is closed"))
    }

    /// Writes out what is queued and releases the database file (so a node can be
    /// started again on the same directory while stale handles linger).
    pub fn close(&self) {
        self.writer.stop();
        self.db.lock().take();
    }

    pub fn send(&self, w: Write) {
        // The writer only stops when every handle is gone.
        if let Some(tx) = self.writer.tx.lock().as_ref() {
            let _ = tx.send(w);
        }
    }

    /// Writes a metadata value and waits until it is on disk.
    pub async fn put_durable(&self, key: &'static str, value: Vec<u8>) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Write::Meta(key, value, Some(tx)));
        rx.await
            .map_err(|_| io_err("the raft log writer stopped"))?
    }

    pub fn get_meta(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let tx = self.db()?.begin_read().map_err(io_err)?;
        let t = tx.open_table(META).map_err(io_err)?;
        Ok(t.get(key).map_err(io_err)?.map(|v| v.value().to_vec()))
    }

    /// What the store held at open (once: the log is handed over, not copied).
    pub fn load(&self) -> io::Result<Loaded> {
        fn json<T: serde::de::DeserializeOwned>(b: Option<Vec<u8>>) -> io::Result<Option<T>> {
            b.map(|b| serde_json::from_slice(&b).map_err(io_err))
                .transpose()
        }
        let replay = self.replay.lock().take().unwrap_or_default();
        let mut out = Loaded {
            vote: json(self.get_meta("vote")?)?,
            committed: json::<Option<LogId<u64>>>(self.get_meta("committed")?)?.flatten(),
            purged: json(replay.purged.map(|(_, id)| id))?,
            ..Default::default()
        };
        for (i, bytes) in replay.entries {
            let e: Entry<TypeConfig> = super::types::from_bytes(&bytes).map_err(io_err)?;
            out.log.insert(i, e);
        }
        Ok(out)
    }

    /// [`Disk::save_snapshot`] on a blocking thread: a snapshot can be megabytes, and
    /// writing and syncing it must not hold up a runtime worker (and the commits on it).
    pub async fn store_snapshot(
        &self,
        s: StoredSnapshot,
    ) -> Result<StoredSnapshot, StorageError<u64>> {
        let d = self.clone();
        let sig = s.meta.signature();
        tokio::task::spawn_blocking(move || d.save_snapshot(&s).map(|()| s))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(sig), &io_err(e)))?
    }

    /// Writes the snapshot to `dataDir/snapshot` (a temporary file, synced, renamed over
    /// the old one, directory synced: a crash leaves the old snapshot or the new one).
    /// A file of its own, not the database: a snapshot can be megabytes, and a redb
    /// write transaction that long would hold up the log writer's metadata commits.
    pub fn save_snapshot(&self, s: &StoredSnapshot) -> Result<(), StorageError<u64>> {
        let fail = |e: io::Error| StorageIOError::write_snapshot(Some(s.meta.signature()), &e);
        let meta = serde_json::to_vec(&s.meta).map_err(|e| fail(io_err(e)))?;
        let tmp = self.dir.join("snapshot.tmp");
        let write = || -> io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&(meta.len() as u32).to_le_bytes())?;
            f.write_all(&meta)?;
            f.write_all(&s.data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join("snapshot"))?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| fail(e).into())
    }

    pub fn load_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError<u64>> {
        let fail = |e: io::Error| StorageIOError::read_snapshot(None, &e);
        let bytes = match std::fs::read(self.dir.join("snapshot")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(e).into()),
        };
        let bad = || StorageError::from(fail(io_err("the snapshot file is truncated")));
        let len = u32::from_le_bytes(bytes.get(..4).ok_or_else(bad)?.try_into().unwrap());
        let meta = bytes.get(4..4 + len as usize).ok_or_else(bad)?;
        let meta: SnapshotMeta<u64, NodeId> =
            serde_json::from_slice(meta).map_err(|e| fail(io_err(e)))?;
        let data = bytes[4 + len as usize..].to_vec();
        Ok(Some(StoredSnapshot { meta, data }))
    }
}

/// Group commit: takes everything queued, writes the log's records with one
/// `fdatasync` and answers the appends at once; the metadata goes on, in order, to
/// [`meta_loop`]'s thread.
///
/// Why two threads: an append is what every commit waits for, and a metadata commit
/// (the committed id at every commit, a durable redb commit every [`DURABLE_AFTER`]
/// of them, two syncs) is not; on one thread an append queued behind a durable
/// metadata commit waited a millisecond or more, a round's worth. The metadata is only
/// handed on after everything queued before it is durable, so the committed id on disk
/// is never ahead of the log on disk (a restart applies up to it).
fn write_loop(db: Arc<Database>, mut wal: Wal, rx: mpsc::Receiver<Write>, fsync: &Histogram) {
    let (meta_tx, meta_rx) = mpsc::channel::<Meta>();
    let meta = std::thread::Builder::new()
        .name("redux-cluster-rs-raft-meta".into())
        .spawn(move || {
            let mut last_durable = Durable {
                at: Instant::now(),
                since: 0,
            };
            meta_loop(meta_rx, |batch| write_meta(&db, batch, &mut last_durable))
        });
    let meta = match meta {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("cannot start the raft metadata writer: {e}");
            None
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = write_log(&mut wal, &batch, fsync);
        let r = || {
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| io::Error::new(e.kind(), e.to_string()))
        };
        for w in batch {
            match w {
                Write::Append(_, cb) => cb.log_io_completed(r()),
                Write::Meta(k, v, done) => match (&meta, &result) {
                    (Some(_), Ok(())) => {
                        let _ = meta_tx.send((k, v, done));
                    }
                    // The log before it failed (or there is no metadata writer): not
                    // written, so a waiter hears of it.
                    (_, res) => {
                        if let Some(done) = done {
                            let _ = done.send(match res {
                                Ok(()) => Err(io_err("the raft metadata writer did not start")),
                                Err(_) => r(),
                            });
                        }
                    }
                },
                _ => {}
            }
        }
    }
    drop(meta_tx);
    if let Some(t) = meta {
        let _ = t.join();
    }
}

/// A metadata value, and who waits for it to be durable.
type Meta = (
    &'static str,
    Vec<u8>,
    Option<oneshot::Sender<io::Result<()>>>,
);

/// The metadata thread: everything queued in one transaction, then its waiters.
fn meta_loop(rx: mpsc::Receiver<Meta>, mut commit: impl FnMut(&[Meta]) -> io::Result<()>) {
    let mut last: Option<Instant> = None;
    let mut batch: Vec<Meta> = Vec::new();
    let mut open = true;
    while open {
        // At once when nothing is held; else until what is held is due.
        let next = match last.filter(|_| !batch.is_empty()) {
            None => rx.recv().ok(),
            Some(at) => {
                match rx.recv_timeout((at + META_EVERY).saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        open = false;
                        None
                    }
                }
            }
        };
        match next {
            Some(m) => batch.push(m),
            None if batch.is_empty() => break,
            None => {}
        }
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // Held while nobody waits for it and the last commit was recent (see META_EVERY).
        let awaited = batch.iter().any(|m| m.2.is_some());
        if open && !awaited && last.is_some_and(|at| at.elapsed() < META_EVERY) {
            continue;
        }
        let result = commit(&batch);
        last = Some(Instant::now());
        for (_, _, done) in batch.drain(..) {
            if let Some(done) = done {
                let _ = done.send(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| io::Error::new(e.kind(), e.to_string())),
                );
            }
        }
    }
}

/// The log's records of a batch, written and (if an append or a purge is among them)
/// synced.
fn write_log(wal: &mut Wal, batch: &[Write], fsync: &Histogram) -> io::Result<()> {
    let mut recs = Vec::new();
    let (mut sync, mut purged) = (false, false);
    for w in batch {
        match w {
            Write::Append(entries, _) => {
                recs.extend(entries.iter().map(|(i, b)| Rec::Entry(*i, b)));
                sync = true;
            }
            // A truncation needs no sync of its own: the append that follows it (the
            // only thing anyone waits for) syncs it too, in order.
            Write::Truncate(from) => recs.push(Rec::Truncate(*from)),
            Write::Purge(index, id) => {
                recs.push(Rec::Purge(*index, id));
                (sync, purged) = (true, true);
            }
            Write::Meta(..) => {}
        }
    }
    if !recs.is_empty() {
        wal.write(&recs)?;
        if sync {
            let start = Instant::now();
            wal.sync()?;
            fsync.observe(start.elapsed());
        }
        if purged {
            wal.remove_purged()?;
        }
    }
    Ok(())
}

/// Metadata values in one redb transaction.
fn write_meta(db: &Database, metas: &[Meta], last_durable: &mut Durable) -> io::Result<()> {
    if metas.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().map_err(io_err)?;
    // Only an awaited value (the vote) promises durability; the committed id may wait
    // for the next durable commit, which redb makes carry it. But redb frees the pages
    // of non-durable commits only at durable ones, so one is made at least every
    // `DURABLE_EVERY` and `DURABLE_AFTER` commits, whatever is written.
    let durable = metas.iter().any(|m| m.2.is_some())
        || last_durable.since >= DURABLE_AFTER
        || last_durable.at.elapsed() >= DURABLE_EVERY;
    if !durable {
        tx.set_durability(redb::Durability::None);
    }
    {
        let mut meta = tx.open_table(META).map_err(io_err)?;
        for (k, v, _) in metas {
            meta.insert(*k, v.as_slice()).map_err(io_err)?;
        }
    }
    tx.commit().map_err(io_err)?;
    *last_durable = if durable {
        Durable {
            at: Instant::now(),
            since: 0,
        }
    } else {
        Durable {
            at: last_durable.at,
            since: last_durable.since + 1,
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::storage::log_store::tempdir;

    /// A directory an older version wrote (a database, JSON entries, no mark) is refused
    /// with its own error, and left as it was; a fresh one is marked and opens again.
    #[test]
    fn an_older_data_directory_is_refused_not_misread() {
        let dir = tempdir::Dir::new("disk-format");
        Disk::open(&dir.0).unwrap().close();
        assert!(dir.0.join("FORMAT").exists());
        Disk::open(&dir.0).unwrap().close();

        std::fs::remove_file(dir.0.join("FORMAT")).unwrap();
        let e = Disk::open(&dir.0).unwrap_err();
        assert!(e.get_ref().is_some_and(|x| x.is::<OldFormat>()), "{e}");
        assert!(e.to_string().contains("older version"), "{e}");
        assert!(
            !dir.0.join("FORMAT").exists(),
            "an old directory is not changed"
        );

        std::fs::write(dir.0.join("FORMAT"), "redux-cluster-rs raft log: json 0\n").unwrap();
        let e = Disk::open(&dir.0).unwrap_err();
        assert!(e.get_ref().is_some_and(|x| x.is::<OldFormat>()), "{e}");
    }

    /// The committed id is written at every commit of the log, not durably; the database
    /// file must still stop growing (redb reuses freed pages only after durable commits).
    /// Each `write_meta` call is one transaction, as a busy log's commits are.
    #[test]
    fn the_metadata_file_stops_growing_under_a_stream_of_commits() {
        let dir = tempdir::Dir::new("disk-growth");
        let path = dir.0.join("raft.redb");
        let db = Database::builder()
            .set_cache_size(DISK_CACHE)
            .create(&path)
            .unwrap();
        let mut durable = Durable {
            at: Instant::now(),
            since: 0,
        };
        let mut commit = |n: u64| {
            let m = ("committed", format!("{{\"index\":{n}}}").into_bytes(), None);
            write_meta(&db, &[m], &mut durable).unwrap();
        };
        for n in 0..5_000 {
            commit(n);
        }
        let settled = std::fs::metadata(&path).unwrap().len();
        for n in 5_000..20_000 {
            commit(n);
        }
        let end = std::fs::metadata(&path).unwrap().len();
        assert!(
            end <= settled && end < 32 << 20,
            "{settled} then {end} bytes"
        );
    }

    /// The holding policy alone: a burst nobody waits for is one commit (after the first
    /// one), an awaited value goes at once with what is held, and what is held when the
    /// queue closes is committed then.
    #[test]
    fn metadata_nobody_waits_for_is_held_and_committed_in_one_go() {
        let (tx, rx) = mpsc::channel::<Meta>();
        let commits = Arc::new(parking_lot::Mutex::new(Vec::<Vec<u64>>::new()));
        let seen = commits.clone();
        let t = std::thread::spawn(move || {
            meta_loop(rx, |b| {
                seen.lock()
                    .push(b.iter().map(|m| u64::from(m.1[0])).collect());
                Ok(())
            })
        });
        let send = |n: u8, done| tx.send(("committed", vec![n], done)).unwrap();
        let flat = || commits.lock().concat();
        send(1, None);
        // Held: the first commit was just now (the test allows a slow machine a second
        // commit for the burst, not one per value).
        for n in 2..=50 {
            send(n, None);
        }
        let t0 = Instant::now();
        while flat().len() < 50 {
            assert!(t0.elapsed() < std::time::Duration::from_secs(5));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(commits.lock().len() <= 3, "{:?}", commits.lock());
        // An awaited value goes at once, with whatever is held.
        send(51, None);
        let (done, answer) = oneshot::channel();
        send(52, Some(done));
        answer.blocking_recv().unwrap().unwrap();
        assert_eq!(commits.lock().last().unwrap().last(), Some(&52));
        // Held at close: committed then.
        send(53, None);
        drop(tx);
        t.join().unwrap();
        assert_eq!(
            flat(),
            (1..=53).collect::<Vec<u64>>(),
            "each once, in order"
        );
    }

    /// The committed id (which nobody waits for) is committed at most every
    /// `META_EVERY`: a burst of them ends on disk as its last one once due, a vote goes
    /// at once with what is held, and what is held at close is written then.
    #[tokio::test]
    async fn committed_ids_are_held_briefly_and_the_last_one_is_kept() {
        let dir = tempdir::Dir::new("disk-meta");
        let id = |n: u64| format!("{{\"index\":{n}}}").into_bytes();
        let d = Disk::open(&dir.0).unwrap();
        for n in 1..=1000 {
            d.send(Write::Meta("committed", id(n), None));
        }
        let t0 = Instant::now();
        while d.get_meta("committed").unwrap() != Some(id(1000)) {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(5),
                "the last committed id never reached the disk"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        d.send(Write::Meta("committed", id(1001), None));
        d.put_durable("vote", b"{\"term\":2}".to_vec())
            .await
            .unwrap();
        assert_eq!(d.get_meta("committed").unwrap(), Some(id(1001)));
        // Held (the vote was just committed), then written at close.
        d.send(Write::Meta("committed", id(1002), None));
        d.close();
        drop(d);
        let d = Disk::open(&dir.0).unwrap();
        assert_eq!(d.get_meta("committed").unwrap(), Some(id(1002)));
        assert_eq!(d.get_meta("vote").unwrap(), Some(b"{\"term\":2}".to_vec()));
        d.close();
    }
}
