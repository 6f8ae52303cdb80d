//! The durable Raft log: an append-only write-ahead log in segment files.
//!
//! Why not the redb database that holds the vote and snapshots: a redb commit rewrites
//! B-tree pages and its header before its fsync (about 420 µs here), while appending to
//! a zero-filled file and `fdatasync` costs about 180 µs, and openraft 0.9 waits for the
//! leader's append before it replicates, so every entry pays two of these in a row.
//!
//! Format. Segment files `NNNNNNNNNN.wal`, each a sequence of records:
//! `len u32 | crc32 u32 | kind u32 | epoch u64 | seq u64 | payload[len]`, little endian,
//! the CRC over everything after itself. `kind` is an entry (payload: index u64 + the
//! entry in postcard, see `types::to_bytes`), a truncation (payload: first removed index) or a purge (payload: the
//! purged log id's JSON). Truncation and purge are records too, so a segment is never
//! rewritten in place.
//!
//! Recovery reads records in order while each is whole (its CRC matches), its `seq`
//! follows the previous one's, and its `epoch` is not older. The epoch is a number
//! stored (durably) in the database and increased at every open, so bytes left behind
//! a torn write by an earlier run can never pass for records after a newer one. Within
//! the last segment the first record that fails is the end of the log (a write the crash
//! interrupted, never acknowledged); a gap between segments is corruption and an error.
//!
//! Space is zero-filled ahead of the write position: overwriting allocated blocks is
//! what makes the `fdatasync` cheap. A segment is closed (synced) when the next write
//! would pass [`SEGMENT_MAX`]; a new one starts with the current purge mark, so whole
//! segments below the mark can be deleted.
//!
//! The next segment is made on a thread of its own (a *spare*: created under its final
//! name, zero-filled to [`SEGMENT_MAX`] around the page cache and paced, synced with
//! its directory) once the current one
//! holds [`FILL_STEP`] (half, in a smaller segment), and the log moves to it when it is ready and the current one
//! would need filling. Why: filling in the write path made the next `fdatasync` carry a
//! megabyte of zeros and the file's new size, a stall of several milliseconds for every
//! commit waiting on it, twice a second per server at 10,000 actions/s (it was the
//! replicated store's p99.9: 55 ms, 13 ms without). Zeros in the same file, filled
//! ahead by another thread, would not do: any `fdatasync` of the file writes out its
//! dirty pages and its pending size. Nor would zeros written at full speed: the log's
//! syncs then waited behind them (see [`make_spare`]). A spare that is never used (a crash) is an empty
//! last segment to recovery, which is what it is. Small logs (tests, idle stores) fill
//! in place and make no spare.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const SEGMENT_MAX: u64 = 64 << 20;
pub const FILL_STEP: u64 = 1 << 20;
const HEADER: usize = 28;
/// Larger than any frame the transport accepts, so a real entry always fits.
const MAX_RECORD: u32 = 256 << 20;

const ENTRY: u32 = 1;
const TRUNCATE: u32 = 2;
const PURGE: u32 = 3;

/// One change to the log (borrowing its bytes: a write copies them once, into the
/// write buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rec<'a> {
    /// An entry at its index, encoded (`types::to_bytes`).
    Entry(u64, &'a [u8]),
    /// Removes every entry at or after the index.
    Truncate(u64),
    /// Removes every entry up to the purged log id's index (its JSON).
    Purge(u64, &'a [u8]),
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Replay {
    pub entries: BTreeMap<u64, Vec<u8>>,
    /// The last purge mark: its index and the log id's JSON.
    pub purged: Option<(u64, Vec<u8>)>,
}

struct Segment {
    number: u64,
    path: PathBuf,
    /// The highest entry index written to it (0: none).
    max_index: u64,
}

pub struct Wal {
    dir: PathBuf,
    /// The next segment, being made (see the module's doc).
    spare: Option<Spare>,
    segment_max: u64,
    closed: Vec<Segment>,
    current: Segment,
    file: File,
    pos: u64,
    filled: u64,
    epoch: u64,
    seq: u64,
    purged: Option<(u64, Vec<u8>)>,
    buf: Vec<u8>,
}

/// A segment being zero-filled on its own thread.
struct Spare {
    number: u64,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<io::Result<File>>,
}

impl Spare {
    fn start(dir: &Path, number: u64, size: u64) -> io::Result<Spare> {
        let path = segment_path(dir, number);
        let stop = Arc::new(AtomicBool::new(false));
        let (d, p, halt) = (dir.to_path_buf(), path.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("redux-cluster-rs-raft-spare".into())
            .spawn(move || make_spare(&d, &p, size, &halt))?;
        Ok(Spare {
            number,
            path,
            stop,
            thread,
        })
    }

    /// Stops the filling (a partly filled spare is still a valid segment: the log fills
    /// the rest in place) and returns the file.
    fn finish(self) -> io::Result<File> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the raft log's spare segment thread panicked"))?
    }
}

/// Creates the segment, zero-fills it, syncs it and its directory.
///
/// The zeros go around the page cache (`O_DIRECT`) in [`SPARE_CHUNK`]s with a pause
/// after each: the log's own `fdatasync`s share the disk, and each of them waits behind
/// whatever the disk is writing. Written through the cache, the zeros would sit there
/// and go out in one burst at the final sync (64 MiB, hundreds of milliseconds of every
/// commit's time); paced, each sync waits at most for one chunk, and a segment is ready
/// in about 5 s, several times faster than a busy log fills one. Where the file system
/// refuses `O_DIRECT` (tmpfs) or the size is not a whole number of chunks (tests), the
/// zeros go through the cache.
fn make_spare(dir: &Path, path: &Path, size: u64, stop: &AtomicBool) -> io::Result<File> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let open = |direct: bool| {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
    };
    let chunk = SPARE_CHUNK as usize;
    let direct = size.is_multiple_of(SPARE_CHUNK);
    let (file, direct) = match direct.then(|| open(true)) {
        Some(Ok(f)) => (f, true),
        _ => (open(false)?, false),
    };
    // O_DIRECT wants the buffer aligned to the block size: a larger zeroed buffer holds
    // an aligned chunk.
    let buf = vec![0u8; chunk + 4096];
    let skip = buf.as_ptr().align_offset(4096);
    let zeros = &buf[skip..skip + chunk];
    let mut at = 0u64;
    while at < size && !stop.load(Ordering::Relaxed) {
        let n = chunk.min((size - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        if direct {
            std::thread::sleep(SPARE_PAUSE);
        }
    }
    file.sync_data()?;
    sync_dir(dir)?;
    Ok(file)
}

/// How a spare segment is filled: a chunk, then a pause (about 13 MB/s at most).
const SPARE_CHUNK: u64 = 64 << 10;
const SPARE_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:010}.wal"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode(buf: &mut Vec<u8>, epoch: u64, seq: u64, rec: &Rec<'_>) {
    let (kind, a, b): (u32, u64, &[u8]) = match rec {
        Rec::Entry(i, bytes) => (ENTRY, *i, bytes),
        Rec::Truncate(i) => (TRUNCATE, *i, &[]),
        Rec::Purge(i, bytes) => (PURGE, *i, bytes),
    };
    let start = buf.len();
    buf.extend_from_slice(&((8 + b.len()) as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&kind.to_le_bytes());
    buf.extend_from_slice(&epoch.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&a.to_le_bytes());
    buf.extend_from_slice(b);
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record at the start of `b`: (kind, epoch, seq, rec, its length).
fn decode(b: &[u8]) -> Option<(u32, u64, u64, Rec<'_>, usize)> {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    if b.len() < HEADER {
        return None;
    }
    let len = u32_at(0);
    if !(8..=MAX_RECORD).contains(&len) || b.len() < HEADER + len as usize {
        return None;
    }
    let end = HEADER + len as usize;
    if crc32fast::hash(&b[8..end]) != u32_at(4) {
        return None;
    }
    let (kind, epoch, seq, a) = (u32_at(8), u64_at(12), u64_at(20), u64_at(28));
    let rest = &b[HEADER + 8..end];
    let rec = match kind {
        ENTRY => Rec::Entry(a, rest),
        TRUNCATE => Rec::Truncate(a),
        PURGE => Rec::Purge(a, rest),
        _ => return None,
    };
    Some((kind, epoch, seq, rec, end))
}

impl Wal {
    /// Opens (or creates) the log in `dir` and replays it. `epoch` must be larger than
    /// any earlier open's and already durable.
    pub fn open(dir: &Path, epoch: u64) -> io::Result<(Wal, Replay)> {
        Wal::open_with(dir, epoch, SEGMENT_MAX)
    }

    pub fn open_with(dir: &Path, epoch: u64, segment_max: u64) -> io::Result<(Wal, Replay)> {
        std::fs::create_dir_all(dir)?;
        let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".wal")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        let mut replay = Replay::default();
        let mut segments = Vec::new();
        let (mut last_seq, mut last_epoch): (Option<u64>, u64) = (None, 0);
        let mut end = 0u64;
        for (i, &number) in numbers.iter().enumerate() {
            let path = segment_path(dir, number);
            let mut bytes = Vec::new();
            File::open(&path)?.read_to_end(&mut bytes)?;
            let mut off = 0usize;
            let mut max_index = 0;
            while let Some((_, rec_epoch, seq, rec, len)) = decode(&bytes[off..]) {
                let follows = last_seq.is_none_or(|s| seq == s + 1) && rec_epoch >= last_epoch;
                if !follows {
                    if off == 0 && last_seq.is_some() {
                        return Err(corrupt(format!(
                            "raft log segment {} does not follow the one before it (seq {seq})",
                            path.display()
                        )));
                    }
                    break;
                }
                match rec {
                    Rec::Entry(index, json) => {
                        max_index = max_index.max(index);
                        replay.entries.insert(index, json.to_vec());
                    }
                    Rec::Truncate(from) => {
                        replay.entries.split_off(&from);
                    }
                    Rec::Purge(upto, json) => {
                        replay.entries = replay.entries.split_off(&(upto + 1));
                        replay.purged = Some((upto, json.to_vec()));
                    }
                }
                (last_seq, last_epoch) = (Some(seq), rec_epoch);
                off += len;
            }
            if i + 1 == numbers.len() {
                end = off as u64;
            }
            segments.push(Segment {
                number,
                path,
                max_index,
            });
        }
        let current = match segments.pop() {
            Some(s) => s,
            None => {
                let path = segment_path(dir, 1);
                File::create(&path)?;
                sync_dir(dir)?;
                Segment {
                    number: 1,
                    path,
                    max_index: 0,
                }
            }
        };
        let file = OpenOptions::new().write(true).open(&current.path)?;
        let filled = file.metadata()?.len();
        let wal = Wal {
            dir: dir.to_path_buf(),
            spare: None,
            segment_max,
            closed: segments,
            current,
            file,
            pos: end,
            filled,
            epoch,
            seq: last_seq.map_or(0, |s| s + 1),
            purged: replay.purged.clone(),
            buf: Vec::new(),
        };
        Ok((wal, replay))
    }

    /// Writes records (not yet durable: see [`Wal::sync`]).
    pub fn write(&mut self, recs: &[Rec<'_>]) -> io::Result<()> {
        for rec in recs {
            let before = self.buf.len();
            encode(&mut self.buf, self.epoch, self.seq, rec);
            let start = self.pos + before as u64;
            let end = self.pos + self.buf.len() as u64;
            let full = end > self.segment_max;
            if start > 0 && (full || (end > self.filled && self.spare_ready())) {
                // This record starts the next segment (after the purge mark).
                self.buf.truncate(before);
                self.flush_buf()?;
                self.rotate()?;
                encode(&mut self.buf, self.epoch, self.seq, rec);
            }
            self.seq += 1;
            self.prepare_spare()?;
            match rec {
                Rec::Entry(i, _) => self.current.max_index = self.current.max_index.max(*i),
                Rec::Purge(i, json) => self.purged = Some((*i, json.to_vec())),
                Rec::Truncate(_) => {}
            }
        }
        self.flush_buf()
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let need = self.pos + self.buf.len() as u64;
        if need > self.filled {
            // Zero-fill ahead, so that later appends overwrite allocated blocks.
            let to = (need.div_ceil(FILL_STEP) * FILL_STEP).min(need.max(self.segment_max));
            self.file.seek(SeekFrom::Start(self.filled))?;
            let zeros = vec![0u8; (to - self.filled) as usize];
            self.file.write_all(&zeros)?;
            self.filled = to;
        }
        self.file.seek(SeekFrom::Start(self.pos))?;
        self.file.write_all(&self.buf)?;
        self.pos = need;
        self.buf.clear();
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn spare_ready(&self) -> bool {
        self.spare.as_ref().is_some_and(|s| s.thread.is_finished())
    }

    /// Starts making the next segment once the current one holds a fill step (or half of
    /// a smaller segment).
    fn prepare_spare(&mut self) -> io::Result<()> {
        let threshold = FILL_STEP.min(self.segment_max / 2);
        if self.spare.is_none() && self.pos + self.buf.len() as u64 >= threshold {
            let number = self.current.number + 1;
            self.spare = Some(Spare::start(&self.dir, number, self.segment_max)?);
        }
        Ok(())
    }

    /// Closes the current segment (durably) and starts the next with the purge mark: the
    /// spare if there is one (waiting at most for its current step), else a new file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        let number = self.current.number + 1;
        let (path, file, filled) = match self.spare.take() {
            Some(spare) => {
                debug_assert_eq!(spare.number, number);
                let path = spare.path.clone();
                // Written through its own (O_DIRECT) handle; the log's writes are not
                // aligned, so it gets a handle of its own.
                let filled = spare.finish()?.metadata()?.len();
                let file = OpenOptions::new().write(true).open(&path)?;
                (path, file, filled)
            }
            None => {
                let path = segment_path(&self.dir, number);
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&path)?;
                sync_dir(&self.dir)?;
                (path, file, 0)
            }
        };
        let old = std::mem::replace(
            &mut self.current,
            Segment {
                number,
                path,
                max_index: 0,
            },
        );
        self.closed.push(old);
        self.file = file;
        self.pos = 0;
        self.filled = filled;
        if let Some((i, json)) = &self.purged {
            encode(&mut self.buf, self.epoch, self.seq, &Rec::Purge(*i, json));
            self.seq += 1;
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Deletes closed segments holding nothing above the purge mark. Call after the
    /// purge record is durable.
    pub fn remove_purged(&mut self) -> io::Result<()> {
        let Some((upto, _)) = self.purged else {
            return Ok(());
        };
        // Oldest first, and only a prefix, so that what remains stays contiguous.
        while self.closed.first().is_some_and(|s| s.max_index <= upto) {
            let s = self.closed.remove(0);
            std::fs::remove_file(&s.path)?;
        }
        Ok(())
    }

    /// The number of segment files (for tests and stats; a spare is not one yet).
    pub fn segments(&self) -> usize {
        self.closed.len() + 1
    }
}

impl Drop for Wal {
    /// No filling goes on after the log is closed (the directory may be reopened).
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            let _ = spare.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::storage::log_store::tempdir::Dir;

    fn payload(i: u64) -> Vec<u8> {
        format!("{{\"entry\":{i}}}").into_bytes()
    }

    fn append(w: &mut Wal, indexes: std::ops::RangeInclusive<u64>) {
        let payloads: Vec<(u64, Vec<u8>)> = indexes.map(|i| (i, payload(i))).collect();
        let recs: Vec<Rec> = payloads.iter().map(|(i, b)| Rec::Entry(*i, b)).collect();
        w.write(&recs).unwrap();
    }

    fn indexes(r: &Replay) -> Vec<u64> {
        r.entries.keys().copied().collect()
    }

    #[test]
    fn replays_entries_truncations_and_purges_across_segments() {
        let d = Dir::new("wal");
        let (mut w, r) = Wal::open_with(&d.0, 1, 1024).unwrap();
        assert!(r.entries.is_empty() && r.purged.is_none());
        append(&mut w, 1..=50);
        w.write(&[Rec::Truncate(41)]).unwrap();
        append(&mut w, 41..=60);
        w.sync().unwrap();
        assert!(w.segments() > 1, "small segments rotate");
        drop(w);
        let (mut w, r) = Wal::open_with(&d.0, 2, 1024).unwrap();
        assert_eq!(indexes(&r), (1..=60).collect::<Vec<_>>());
        w.write(&[Rec::Purge(45, b"{\"p\":45}")]).unwrap();
        append(&mut w, 61..=70);
        w.sync().unwrap();
        let before = w.segments();
        w.remove_purged().unwrap();
        assert!(w.segments() < before, "segments below the mark are deleted");
        drop(w);
        let (_, r) = Wal::open_with(&d.0, 3, 1024).unwrap();
        assert_eq!(indexes(&r), (46..=70).collect::<Vec<_>>());
        assert_eq!(r.purged, Some((45, b"{\"p\":45}".to_vec())));
    }

    /// A crash in the middle of a write: the torn record and everything after it are
    /// not the log, and stale bytes behind later appends never come back.
    #[test]
    fn a_torn_tail_ends_the_log_and_stale_bytes_stay_dead() {
        let d = Dir::new("wal-torn");
        let (mut w, _) = Wal::open(&d.0, 1).unwrap();
        append(&mut w, 1..=10);
        w.sync().unwrap();
        let end_of_8 = {
            let mut b = Vec::new();
            for i in 1..=8 {
                encode(&mut b, 1, i - 1, &Rec::Entry(i, &payload(i)));
            }
            b.len()
        };
        drop(w);
        // Tear entry 9: flip a byte in its payload. Entry 10 stays intact behind it.
        let path = segment_path(&d.0, 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[end_of_8 + HEADER + 9] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (mut w, r) = Wal::open(&d.0, 2).unwrap();
        assert_eq!(indexes(&r), (1..=8).collect::<Vec<_>>());
        // A record of exactly the torn one's size: the stale entry 10 now sits right
        // behind it, with a seq that follows, but from an older epoch.
        w.write(&[Rec::Entry(9, b"{\"entry\":X}")]).unwrap();
        w.sync().unwrap();
        drop(w);
        let (_, r) = Wal::open(&d.0, 3).unwrap();
        assert_eq!(indexes(&r), (1..=9).collect::<Vec<_>>());
        assert_eq!(r.entries[&9], b"{\"entry\":X}".to_vec());
    }

    #[test]
    fn garbage_and_a_missing_segment_are_reported_or_ignored_never_replayed() {
        let d = Dir::new("wal-garbage");
        let (mut w, _) = Wal::open_with(&d.0, 1, 2048).unwrap();
        append(&mut w, 1..=100);
        w.sync().unwrap();
        assert!(w.segments() >= 3);
        let (last, pos) = (w.current.number, w.pos);
        drop(w);
        // Garbage where the next record would go is not a record.
        let mut f = OpenOptions::new()
            .write(true)
            .open(segment_path(&d.0, last))
            .unwrap();
        f.seek(SeekFrom::Start(pos)).unwrap();
        f.write_all(&[0x5a; 300]).unwrap();
        drop(f);
        let (_, r) = Wal::open_with(&d.0, 2, 2048).unwrap();
        assert_eq!(indexes(&r), (1..=100).collect::<Vec<_>>());
        // A segment lost in the middle is corruption, and said so.
        std::fs::remove_file(segment_path(&d.0, 2)).unwrap();
        let e = Wal::open_with(&d.0, 3, 2048)
            .err()
            .expect("a gap is an error");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
    /// The next segment is made ahead on its own thread and the log moves into it
    /// (filled, so no write fills in place); one made but never used (the process
    /// stopped first) is an empty last segment, and the log goes on in it. Both ways of
    /// filling: through the page cache (4 KiB) and around it (128 KiB, `O_DIRECT` where
    /// the file system has it).
    #[test]
    fn the_log_moves_into_spares_and_an_unused_spare_is_an_empty_segment() {
        for size in [4096u64, 2 * SPARE_CHUNK] {
            let d = Dir::new("wal-spare");
            let ready = |w: &Wal| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while !w.spare_ready() {
                    assert!(std::time::Instant::now() < deadline, "no spare");
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            };
            // Records here are 48 to 50 bytes: past half of the first segment, then
            // into the second and past its half, never past its end.
            let half = size / 2 / 48 + 2;
            let more = size * 3 / 2 / 48 + 20;
            let (mut w, _) = Wal::open_with(&d.0, 1, size).unwrap();
            append(&mut w, 1..=half);
            ready(&w);
            let spare = std::fs::metadata(segment_path(&d.0, 2)).unwrap().len();
            assert_eq!(spare, size, "the spare is filled whole");
            append(&mut w, half + 1..=more);
            w.sync().unwrap();
            assert_eq!(
                (w.current.number, w.filled),
                (2, size),
                "moved into the spare"
            );
            ready(&w);
            drop(w);
            let (mut w, r) = Wal::open_with(&d.0, 2, size).unwrap();
            assert_eq!(indexes(&r), (1..=more).collect::<Vec<_>>());
            assert_eq!(
                (w.current.number, w.pos),
                (3, 0),
                "the unused spare is empty"
            );
            append(&mut w, more + 1..=more + 10);
            w.sync().unwrap();
            drop(w);
            let (_, r) = Wal::open_with(&d.0, 3, size).unwrap();
            assert_eq!(indexes(&r), (1..=more + 10).collect::<Vec<_>>());
        }
    }
}
