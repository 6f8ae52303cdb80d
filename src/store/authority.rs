//! The ordering authority: the one place that gives accepted actions their sequence
//! numbers. On a single server that is the server process ([`LocalAuthority`]); when
//! servers form a Raft group, the group's log does (`super::replicated::RaftAuthority`)
//! behind the same [`OrderingAuthority`] trait, so the network side of the server
//! (`server.rs`) does not change.

use super::action_log::ActionLog;
use super::outbox::{Event, Outbox, Wake};
use super::sequencer::{Admitted, Refused, Sequencer, MAX_CLIENTS};
use crate::config::StoreConfig;
use crate::error::Error;
use crate::error::ErrorCode;
use crate::protocol::frame::write_frame;
use crate::protocol::{FrameError, FrameLimits, Message, Mode, Ordered};
use crate::reducer::{Divergence, Failure, NativeState};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::sync::{watch, Notify};

/// The whole state as of `seq`, as JSON text, with its encoded frame built once and shared
/// by every client that needs it.
pub struct Snapshot {
    pub seq: u64,
    pub state: Bytes,
    frame: OnceLock<Result<Bytes, String>>,
}

impl Snapshot {
    pub fn new(seq: u64, state: Bytes) -> Snapshot {
        Snapshot {
            seq,
            state,
            frame: OnceLock::new(),
        }
    }

    /// The `Snapshot` message as a ready-to-write frame (compressed when large).
    pub fn frame(&self, limits: &FrameLimits) -> Result<Bytes, String> {
        self.frame
            .get_or_init(|| {
                let mut buf = BytesMut::with_capacity(self.state.len() + 32);
                write_frame(&mut buf, limits, |d| {
                    Message::Snapshot {
                        seq: self.seq,
                        state: self.state.clone(),
                    }
                    .encode(d)
                })
                .map(|_| buf.freeze())
                .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// What a connection should send next, from a given sequence number.
pub enum Read {
    Entries {
        first_seq: u64,
        actions: Vec<Bytes>,
    },
    /// The entries asked for were trimmed: send this snapshot, then continue after it.
    Snapshot(Arc<Snapshot>),
    UpToDate,
}

/// A replicated store's state at a sequence number, as a Raft snapshot carries it: its
/// reducer's state at `seq` (handed over by the JS side, which runs the reducer) and the
/// actions ordered after it, so that the snapshot needs no call into JS while it is
/// built, and a server that installs it needs nothing else.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StorePart {
    pub seq: u64,
    pub state: String,
    /// Actions `seq + 1 ..= head`.
    pub actions: Vec<String>,
}

/// A store's state as captured under the Raft state machine's lock: reference-counted
/// copies only; it becomes a [`StorePart`] (and JSON) outside the lock.
#[derive(Debug, Clone, Default)]
pub struct StoreCapture {
    pub seq: u64,
    pub state: Bytes,
    pub actions: Vec<Bytes>,
}

impl From<StoreCapture> for StorePart {
    fn from(c: StoreCapture) -> StorePart {
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        StorePart {
            seq: c.seq,
            state: text(&c.state),
            actions: c.actions.iter().map(text).collect(),
        }
    }
}

/// Versions that connection writers watch to learn there is something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub head: u64,
    pub snapshot_seq: u64,
    /// A replicated server that has lost its group (no leader, or a leader no majority
    /// answers): its clients are sent away to servers that can order their actions.
    pub cut_off: bool,
}

/// What the network side of a server needs from whoever orders actions.
pub trait OrderingAuthority: Send + Sync + 'static {
    /// Changes each time the authority restarts with a fresh state; with `seq`, it tells a
    /// reconnecting client whether its position still means anything.
    fn epoch(&self) -> u64;
    fn mode(&self) -> Mode;
    /// The store identity (RCHash); clients of another store are refused.
    fn hash(&self) -> &str;
    /// The Raft node that the other servers of a replicated store reach on this port
    /// (none on a single server: a peer's hello is refused).
    fn raft(&self) -> Option<Arc<crate::consensus::RaftEngine>> {
        None
    }
    /// Another store served on this port (a replicated server's group hosts several):
    /// the one whose hash a client's handshake names, if it is open here.
    fn route(&self, _hash: &str) -> Option<Arc<Self>>
    where
        Self: Sized,
    {
        None
    }
    /// Whether the store `hash` is one this port's group orders, though not open on
    /// this server: its client is sent on to another server rather than refused.
    fn hosted_elsewhere(&self, _hash: &str) -> bool {
        false
    }
    /// The last dispatch counter of this client already ordered (0 when unknown).
    fn acked(&self, client_id: u64) -> u64;
    /// Where this client's latest dispatches went (its last runs), so that one whose
    /// acknowledgement was lost in a disconnect still learns its sequence.
    fn recent(&self, client_id: u64) -> Vec<Ordered>;
    /// Orders a client's actions, dropping those already ordered (resends after a
    /// reconnect). Resolves, once they are ordered (committed, in a Raft group), to the
    /// client's new acknowledged counter and the runs its batch's counters are in (the
    /// resends' earlier runs too, so that a client that lost their acknowledgement
    /// still learns where they went).
    fn submit_remote(
        &self,
        client_id: u64,
        first_counter: u64,
        actions: Vec<Bytes>,
    ) -> impl Future<Output = Result<(u64, Vec<Ordered>), FrameError>> + Send;
    /// Resolves when the authority can take more actions (backpressure).
    fn ready(&self) -> impl Future<Output = ()> + Send;
    fn read(&self, from: u64, max_count: usize, max_bytes: usize) -> Read;
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Whether a client at `(epoch, seq)` can continue from the log without a snapshot.
    fn can_resume(&self, epoch: u64, seq: u64) -> bool;
    fn watch(&self) -> watch::Receiver<Version>;
    /// Something for the store's owner to know (errors go to its `stderr`).
    fn report(&self, event: Event);
}

/// About how many bytes of actions JS takes per pull. JS parses and applies a pull in
/// one go and yields between pulls, so this bounds how long the event loop is held: a
/// server replaying 200 MB of 8 KB actions after a restart held it 380 ms per pull of
/// 8,192 of them; 4 MiB pulls hold it under 30 ms (1 MiB: 10 ms, but the replay took
/// twice as long in all). Small actions are bounded by the count first.
pub const JS_BATCH_BYTES: usize = 4 << 20;

struct Inner {
    log: ActionLog,
    snapshot: Arc<Snapshot>,
    want_snapshot: bool,
    /// The last sequence number the JS reducer has applied (as far as we know).
    js_applied: u64,
    /// Sequence numbers, and the per-client table that drops resends (bounded).
    seq: Sequencer,
    cut_off: bool,
}

/// The server process as the ordering authority: the log lives here, and the reducer
/// runs in JS, which pulls ordered batches through [`LocalAuthority::poll`], or in Rust
/// (a native reducer), which takes each action as it is ordered, under the same lock,
/// so that no JS runs on the path and snapshots are made here.
pub struct LocalAuthority {
    epoch: u64,
    native: Option<Arc<NativeState>>,
    mode: Mode,
    hash: String,
    cfg: StoreConfig,
    inner: Mutex<Inner>,
    version: watch::Sender<Version>,
    progress: Notify,
    pub outbox: Outbox,
}

/// One pull of the JS side.
pub struct Poll {
    pub first_seq: u64,
    pub actions: Vec<Bytes>,
    /// More entries are waiting after these.
    pub more: bool,
    /// JS should hand over a snapshot of its state (`set_snapshot`).
    pub want_snapshot: bool,
    /// JS is behind what the log holds (a replica that installed a Raft snapshot): it
    /// takes this state first; `actions` follow it.
    pub reset: Option<Arc<Snapshot>>,
    pub events: Vec<Event>,
    /// With a native reducer: the last sequence number it applied, and the actions it
    /// refused since the last pull (with how many more were not kept).
    pub applied: u64,
    pub failures: Vec<Failure>,
    pub failures_dropped: u64,
    /// With a native reducer: the divergences it found since the last pull (a DIGEST
    /// that differed from its record), with how many more were not kept.
    pub divergences: Vec<Divergence>,
    pub divergences_dropped: u64,
}

impl LocalAuthority {
    pub fn new(
        hash: String,
        mode: Mode,
        cfg: StoreConfig,
        initial_state: Bytes,
        waker: Box<dyn Wake>,
    ) -> Arc<Self> {
        Self::with_epoch(
            hash,
            mode,
            cfg,
            initial_state,
            waker,
            rand::random::<u64>() | 1,
            None,
        )
    }

    /// A server whose reducer runs in the engine: the state starts as `native`'s, and
    /// every action ordered here is applied to it as it is ordered.
    pub fn native(
        hash: String,
        mode: Mode,
        cfg: StoreConfig,
        native: Arc<NativeState>,
        waker: Box<dyn Wake>,
        epoch: Option<u64>,
    ) -> Result<Arc<Self>, String> {
        native.rebase(0);
        let (_, state) = native.snapshot()?;
        let epoch = epoch.unwrap_or_else(|| rand::random::<u64>() | 1);
        Ok(Self::with_epoch(
            hash,
            mode,
            cfg,
            state,
            waker,
            epoch,
            Some(native),
        ))
    }

    /// As `new`, with a given epoch: the servers of one Raft group share theirs, so a
    /// client's position is valid on every one of them.
    pub fn with_epoch(
        hash: String,
        mode: Mode,
        cfg: StoreConfig,
        initial_state: Bytes,
        waker: Box<dyn Wake>,
        epoch: u64,
        native: Option<Arc<NativeState>>,
    ) -> Arc<Self> {
        let (version, _) = watch::channel(Version::default());
        Arc::new(LocalAuthority {
            epoch,
            native,
            mode,
            hash,
            cfg,
            inner: Mutex::new(Inner {
                log: ActionLog::new(),
                snapshot: Arc::new(Snapshot::new(0, initial_state)),
                want_snapshot: false,
                js_applied: 0,
                seq: Sequencer::new(MAX_CLIENTS),
                cut_off: false,
            }),
            version,
            progress: Notify::new(),
            outbox: Outbox::new(waker),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    fn publish(&self, inner: &Inner) {
        let v = Version {
            head: inner.log.head(),
            snapshot_seq: inner.snapshot.seq,
            cut_off: inner.cut_off,
        };
        self.version.send_if_modified(|cur| {
            let changed = *cur != v;
            *cur = v;
            changed
        });
    }

    /// In snapshot mode every change needs a new snapshot; in action mode one is needed
    /// when the log outgrows its retention (so it can be trimmed).
    fn needs_snapshot(&self, inner: &Inner) -> bool {
        let behind = inner.log.head() - inner.snapshot.seq;
        match self.mode {
            Mode::Snapshot => behind > 0,
            Mode::Action => behind > self.cfg.log_retention as u64,
        }
    }

    fn after_append(&self, inner: &mut Inner, publish: bool) -> bool {
        if let Some(native) = &self.native {
            // The engine holds the state: the snapshot is made here, at once.
            inner.js_applied = inner.log.head();
            if self.needs_snapshot(inner) {
                match native.snapshot() {
                    Ok((seq, state)) => self.install_snapshot(inner, seq, state),
                    Err(e) => self.report(Event::error(ErrorCode::Reducer, e)),
                }
            }
            if publish {
                self.publish(inner);
            }
            return false;
        }
        let need = self.needs_snapshot(inner);
        let newly = need && !inner.want_snapshot;
        inner.want_snapshot |= need;
        if publish {
            self.publish(inner);
        }
        newly
    }

    /// An action dispatched on the server's own store. JS applies it right after, having
    /// first applied everything before it (see `poll` with `upto`). Connections are not
    /// woken per action: JS calls [`LocalAuthority::flush`] once its synchronous burst of
    /// dispatches is over, so a loop of 10,000 dispatches wakes each connection once.
    pub fn submit_local(&self, action: Bytes) -> u64 {
        self.submit_checked(action).0
    }

    /// As [`LocalAuthority::submit_local`], with what a native reducer said of the
    /// action (ordered either way: every replica refuses it alike).
    pub fn submit_checked(&self, action: Bytes) -> (u64, Result<(), String>) {
        let mut inner = self.inner.lock();
        let seq = inner.seq.local();
        let applied = match &self.native {
            Some(n) => n.apply_at(seq, &action),
            None => Ok(()),
        };
        let logged = inner.log.append(action);
        debug_assert_eq!(seq, logged, "the log follows the sequencer");
        inner.js_applied = seq;
        let wake = self.after_append(&mut inner, false);
        drop(inner);
        if wake {
            self.outbox.wake();
        }
        (seq, applied)
    }

    /// Hands ordered actions to the native reducer (under the lock that orders them).
    fn apply_native(&self, first_seq: u64, actions: &[Bytes]) {
        if let Some(n) = &self.native {
            n.apply_ordered(first_seq, actions);
        }
    }

    /// Makes locally submitted actions visible to the connections.
    pub fn flush(&self) {
        let inner = self.inner.lock();
        self.publish(&inner);
    }

    /// Ordered actions from `from` up to `upto` for the JS reducer, at most `max_count`
    /// and about [`JS_BATCH_BYTES`]; `from - 1` is what JS has applied.
    pub fn poll(&self, from: u64, upto: u64, max_count: usize) -> Poll {
        self.outbox.begin_pull();
        let events = self.outbox.take_events();
        if let Some(native) = &self.native {
            // Nothing for JS to apply: it learns how far the engine got, and what failed.
            let (failures, failures_dropped) = native.take_failures();
            let (divergences, divergences_dropped) = native.take_divergences();
            return Poll {
                first_seq: from,
                actions: Vec::new(),
                more: false,
                want_snapshot: false,
                reset: None,
                events,
                applied: native.seq(),
                failures,
                failures_dropped,
                divergences,
                divergences_dropped,
            };
        }
        let mut inner = self.inner.lock();
        // JS only ever reads entries it has not applied, and snapshots come from JS at
        // its applied position, so the log holds them; unless this replica's state was
        // replaced by a Raft snapshot: then JS takes that snapshot and goes on after it.
        let mut from = from;
        let mut reset = None;
        if from < inner.log.first_seq() && from <= inner.snapshot.seq {
            reset = Some(inner.snapshot.clone());
            from = inner.snapshot.seq + 1;
        }
        inner.js_applied = inner.js_applied.max(from.saturating_sub(1));
        let actions = inner
            .log
            .read(from, upto, max_count, JS_BATCH_BYTES)
            .unwrap_or_default();
        // The next sequence number JS will need is `from + len`; more is waiting if the
        // log already holds it.
        let more = from + actions.len() as u64 <= inner.log.head();
        let want_snapshot = inner.want_snapshot;
        drop(inner);
        self.progress.notify_waiters();
        Poll {
            first_seq: from,
            more,
            actions,
            want_snapshot,
            reset,
            events,
            applied: 0,
            failures: Vec::new(),
            failures_dropped: 0,
            divergences: Vec::new(),
            divergences_dropped: 0,
        }
    }

    /// A snapshot of the JS state as of `seq` (the last sequence number JS applied).
    pub fn set_snapshot(&self, seq: u64, state: Bytes) {
        let mut inner = self.inner.lock();
        if seq < inner.snapshot.seq || seq > inner.log.head() {
            return;
        }
        self.install_snapshot(&mut inner, seq, state);
        let again = inner.want_snapshot;
        self.publish(&inner);
        drop(inner);
        if again {
            self.outbox.wake();
        }
    }

    fn install_snapshot(&self, inner: &mut Inner, seq: u64, state: Bytes) {
        inner.snapshot = Arc::new(Snapshot::new(seq, state));
        inner.js_applied = inner.js_applied.max(seq);
        // Actions ordered while JS was making this snapshot still need one of their own;
        // their wake-up may already have been taken, so ask again.
        inner.want_snapshot = self.native.is_none() && self.needs_snapshot(inner);
        // Keep `log_retention` entries for clients that reconnect, but never drop entries
        // the snapshot does not cover.
        let keep_from = inner
            .log
            .head()
            .saturating_sub(self.cfg.log_retention as u64);
        inner.log.trim_through(seq.min(keep_from));
    }

    /// Orders a client's actions here (this process is the authority).
    fn order_now(
        &self,
        client_id: u64,
        first_counter: u64,
        actions: Vec<Bytes>,
    ) -> Result<(u64, Admitted), FrameError> {
        let mut inner = self.inner.lock();
        let admitted = inner
            .seq
            .submit(client_id, first_counter, actions.len())
            .map_err(|e| {
                FrameError::Malformed(match e {
                    Refused::Gap => "gap in the client's dispatch counters",
                    Refused::Overflow => "dispatch counter overflow",
                })
            })?;
        if admitted.run.is_none() {
            return Ok((admitted.acked, admitted));
        }
        if let Some(run) = admitted.run {
            self.apply_native(run.first_seq, &actions[admitted.skip..]);
        }
        for a in actions.into_iter().skip(admitted.skip) {
            inner.log.append(a);
        }
        debug_assert_eq!(inner.log.head(), inner.seq.head());
        self.after_append(&mut inner, true);
        drop(inner);
        self.outbox.wake();
        Ok((admitted.acked, admitted))
    }

    /// Actions ordered elsewhere (committed by the Raft group), from `first_seq` on: the
    /// log takes them in order, as if they had been ordered here. Ones it already has
    /// are skipped; a gap is a bug, reported rather than papered over.
    pub fn append_ordered(&self, first_seq: u64, actions: Vec<Bytes>) {
        let mut inner = self.inner.lock();
        let head = inner.log.head();
        if first_seq > head + 1 {
            drop(inner);
            self.report(Event::error(
                ErrorCode::Internal,
                format!("ordered actions from #{first_seq} arrived after #{head}: a gap (this is a bug, please report it)"),
            ));
            return;
        }
        let skip = (head + 1 - first_seq) as usize;
        if skip >= actions.len() {
            return;
        }
        self.apply_native(head + 1, &actions[skip..]);
        for a in actions.into_iter().skip(skip) {
            inner.log.append(a);
        }
        self.after_append(&mut inner, true);
        drop(inner);
        self.outbox.wake();
    }

    /// The store's state at sequence `head` (the last one this log holds): the latest
    /// snapshot from JS and the actions after it. `None` when the log is elsewhere.
    pub fn capture(&self, head: u64) -> Option<StoreCapture> {
        let inner = self.inner.lock();
        let snap = &inner.snapshot;
        if inner.log.head() != head || snap.seq > head {
            return None;
        }
        if let Some(native) = &self.native {
            // The reducer's own state at `head`: no actions to replay after it.
            let (seq, state) = native.snapshot().ok()?;
            return (seq == head).then(|| StoreCapture {
                seq,
                state,
                actions: Vec::new(),
            });
        }
        let actions = match head - snap.seq {
            0 => Vec::new(),
            n => inner.log.read(snap.seq + 1, head, n as usize, usize::MAX)?,
        };
        if actions.len() as u64 != head - snap.seq {
            return None;
        }
        Some(StoreCapture {
            seq: snap.seq,
            state: snap.state.clone(),
            actions,
        })
    }

    /// Replaces the log and the snapshot with a Raft snapshot's store part. JS catches
    /// up from it on its next pull (see `Poll::reset`); clients behind it get the
    /// snapshot, as they would after trimming.
    pub fn restore(&self, part: StorePart) {
        let mut inner = self.inner.lock();
        let head = part.seq + part.actions.len() as u64;
        if head <= inner.log.head() && part.seq <= inner.snapshot.seq {
            return; // nothing newer than what this replica holds
        }
        // At #0 the state is the reducer's first one, which this store knows as well as
        // any: a part taken where the store was not open has none to give.
        let state = match (part.seq, inner.snapshot.seq) {
            (0, 0) => inner.snapshot.state.clone(),
            _ => Bytes::from(part.state),
        };
        let actions: Vec<Bytes> = part.actions.into_iter().map(Bytes::from).collect();
        if let Some(native) = &self.native {
            if let Err(e) = native.restore(part.seq, &state) {
                self.report(Event::error(
                    ErrorCode::Reducer,
                    format!(
                        "the reducer refused the group's snapshot at #{}: {e}",
                        part.seq
                    ),
                ));
            }
            native.apply_ordered(part.seq + 1, &actions);
        }
        inner.snapshot = Arc::new(Snapshot::new(part.seq, state));
        let mut log = ActionLog::starting_at(part.seq + 1);
        for a in actions {
            log.append(a);
        }
        inner.log = log;
        inner.want_snapshot = false;
        self.after_append(&mut inner, true);
        drop(inner);
        self.outbox.wake();
    }

    /// Marks a replicated server as cut off from its group, or back (see `Version`).
    pub fn set_cut_off(&self, cut_off: bool) {
        let mut inner = self.inner.lock();
        inner.cut_off = cut_off;
        self.publish(&inner);
    }

    /// The last sequence number ordered (how many actions the store has ordered).
    pub fn head(&self) -> u64 {
        self.inner.lock().log.head()
    }

    /// Entries in the log and their bytes (for tests and stats).
    pub fn log_stats(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.log.len(), inner.log.bytes())
    }
}

impl OrderingAuthority for LocalAuthority {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    fn acked(&self, client_id: u64) -> u64 {
        self.inner.lock().seq.acked(client_id)
    }

    fn recent(&self, client_id: u64) -> Vec<Ordered> {
        self.inner.lock().seq.recent(client_id)
    }

    fn submit_remote(
        &self,
        client_id: u64,
        first_counter: u64,
        actions: Vec<Bytes>,
    ) -> impl Future<Output = Result<(u64, Vec<Ordered>), FrameError>> + Send {
        std::future::ready(
            self.order_now(client_id, first_counter, actions)
                .map(|(acked, a)| (acked, a.runs())),
        )
    }

    async fn ready(&self) {
        loop {
            let notified = self.progress.notified();
            {
                let inner = self.inner.lock();
                if inner.log.head() - inner.js_applied < self.cfg.max_apply_lag as u64 {
                    return;
                }
            }
            notified.await;
        }
    }

    fn read(&self, from: u64, max_count: usize, max_bytes: usize) -> Read {
        let inner = self.inner.lock();
        if from > inner.log.head() {
            return Read::UpToDate;
        }
        match inner.log.read(from, u64::MAX, max_count, max_bytes) {
            Some(actions) => Read::Entries {
                first_seq: from,
                actions,
            },
            None => Read::Snapshot(inner.snapshot.clone()),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.lock().snapshot.clone()
    }

    fn can_resume(&self, epoch: u64, seq: u64) -> bool {
        let inner = self.inner.lock();
        epoch == self.epoch && seq + 1 >= inner.log.first_seq() && seq <= inner.log.head()
    }

    fn watch(&self) -> watch::Receiver<Version> {
        self.version.subscribe()
    }

    fn report(&self, event: Event) {
        self.outbox.push(event);
    }
}

/// Checks that a client's action is a JSON object with a string `type` (what Redux
/// requires), and not the engine's own sync type.
pub fn validate_action(raw: &[u8]) -> Result<(), Error> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        ty: std::borrow::Cow<'a, str>,
    }
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Error::InvalidAction(
            "an action must be a JSON object".into(),
        ));
    }
    let head: Head =
        serde_json::from_slice(raw).map_err(|e| Error::InvalidAction(e.to_string()))?;
    if head.ty == "REDUX_CLUSTER_SYNC" {
        return Err(Error::InvalidAction(
            "Please don't use REDUX_CLUSTER_SYNC action type!".into(),
        ));
    }
    // The divergence guard's checkpoints come from the authority only: a client that could
    // order them could make every replica report a divergence. A client may ask for a
    // resync (the authority rate-limits those).
    if head.ty.starts_with("@@redux-cluster/") && head.ty != "@@redux-cluster/RESYNC" {
        return Err(Error::InvalidAction(format!(
            "{}: the divergence guard's action types are the server's",
            head.ty
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default, Clone)]
    struct Count(Arc<AtomicUsize>);
    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn auth(mode: Mode, retention: usize) -> (Arc<LocalAuthority>, Count) {
        let c = Count::default();
        let cfg = StoreConfig {
            log_retention: retention,
            ..StoreConfig::local()
        };
        let a = LocalAuthority::new(
            "h".into(),
            mode,
            cfg,
            Bytes::from_static(b"{}"),
            Box::new(c.clone()),
        );
        (a, c)
    }

    fn acts(n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| Bytes::from(format!("{{\"type\":\"A\",\"i\":{i}}}")))
            .collect()
    }

    #[test]
    fn resends_are_ordered_once() {
        let (a, _) = auth(Mode::Action, 1000);
        let run = |c, s, n| Ordered {
            first_counter: c,
            first_seq: s,
            count: n,
        };
        let order = |c, n| {
            let (acked, ad): (u64, Admitted) = a.order_now(7, c, acts(n)).unwrap();
            (acked, ad.run, ad.earlier)
        };
        assert_eq!(order(1, 3), (3, Some(run(1, 1, 3)), vec![]));
        a.submit_local(Bytes::from_static(b"{\"type\":\"L\"}"));
        // The client reconnects and resends 2..=5: only 4 and 5 are new, and they come
        // after the server's own action.
        // The resent 2 and 3 come with the run they were first ordered in.
        assert_eq!(order(2, 4), (5, Some(run(4, 5, 2)), vec![run(1, 1, 3)]));
        assert_eq!(order(4, 2), (5, None, vec![run(4, 5, 2)]));
        assert_eq!(a.acked(7), 5);
        assert_eq!(a.recent(7), vec![run(1, 1, 3), run(4, 5, 2)]);
        let p = a.poll(1, u64::MAX, 100);
        assert_eq!(p.actions.len(), 6);
        assert!(!p.more);
        // A gap is a protocol error.
        assert!(a.order_now(7, 9, acts(1)).is_err());
        // A client the server never saw may start anywhere (server restarted).
        assert_eq!(a.order_now(8, 40, acts(2)).unwrap().0, 41);
    }

    #[test]
    fn js_is_woken_once_per_pull() {
        let (a, c) = auth(Mode::Action, 1000);
        a.order_now(1, 1, acts(1)).unwrap();
        a.order_now(1, 2, acts(1)).unwrap();
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        let p = a.poll(1, u64::MAX, 1);
        assert!(p.more);
        a.order_now(1, 3, acts(1)).unwrap();
        assert_eq!(c.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn trimmed_entries_are_served_by_snapshot() {
        let (a, _) = auth(Mode::Action, 2);
        let mut seen = a.watch();
        for _ in 0..10 {
            a.submit_local(Bytes::from_static(b"{\"type\":\"A\"}"));
        }
        assert!(!seen.has_changed().unwrap(), "local submits wait for flush");
        a.flush();
        assert_eq!(seen.borrow_and_update().head, 10);
        assert!(a.poll(11, u64::MAX, 10).want_snapshot);
        a.set_snapshot(10, Bytes::from_static(b"{\"n\":10}"));
        assert_eq!(a.log_stats().0, 2, "retention keeps 2 entries");
        match a.read(1, 100, usize::MAX) {
            Read::Snapshot(s) => assert_eq!(s.seq, 10),
            _ => panic!("expected a snapshot"),
        }
        match a.read(9, 100, usize::MAX) {
            Read::Entries { first_seq, actions } => {
                assert_eq!((first_seq, actions.len()), (9, 2))
            }
            _ => panic!("expected entries"),
        }
        assert!(matches!(a.read(11, 100, usize::MAX), Read::UpToDate));
        assert!(a.can_resume(a.epoch(), 8));
        assert!(!a.can_resume(a.epoch(), 7));
        assert!(!a.can_resume(a.epoch() + 2, 9));
    }

    #[test]
    fn a_snapshot_older_than_the_log_asks_for_another() {
        let (a, woken) = auth(Mode::Snapshot, 1000);
        a.order_now(1, 1, acts(2)).unwrap();
        let p = a.poll(1, u64::MAX, 100);
        assert!(p.want_snapshot);
        // While JS builds the snapshot of seq 2, more actions arrive.
        let before = woken.0.load(Ordering::SeqCst);
        a.order_now(1, 3, acts(1)).unwrap();
        a.set_snapshot(2, Bytes::from_static(b"{}"));
        assert!(woken.0.load(Ordering::SeqCst) > before, "a pull is pending");
        let p = a.poll(3, u64::MAX, 100);
        assert_eq!(p.actions.len(), 1);
        assert!(p.want_snapshot, "seq 3 still needs its snapshot");
        a.set_snapshot(3, Bytes::from_static(b"{}"));
        assert!(!a.poll(4, u64::MAX, 100).want_snapshot);
    }

    #[test]
    fn action_validation() {
        validate_action(br#"{"type":"INC","x":[1,2]}"#).unwrap();
        validate_action(br#" {"x":1,"type":"a\"b"}"#).unwrap();
        validate_action(br#"{"type":"@@redux-cluster/RESYNC","by":"x"}"#).unwrap();
        assert!(
            validate_action(br#"{"type":"@@redux-cluster/DIGEST","seq":1,"digest":"0"}"#).is_err()
        );
        assert!(validate_action(br#"{"type":"@@redux-cluster/CHECK"}"#).is_err());
        for bad in [
            &br#"[1]"#[..],
            br#"{"x":1}"#,
            br#"{"type":1}"#,
            br#"{"type":"A""#,
            br#"{"type":"A"} x"#,
            br#"{"type":"REDUX_CLUSTER_SYNC"}"#,
            b"\xff\xfe",
        ] {
            assert!(
                validate_action(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
