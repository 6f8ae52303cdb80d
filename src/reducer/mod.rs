//! Reducers that run inside the engine, with their state held in Rust: the built-ins
//! ([`patch`], [`entities`]) and reducers users compile themselves ([`dylib`]).
//!
//! A store with a native reducer applies each action where it is ordered (the server's
//! authority, the Raft state machine's log, a client's poll) with no call into JS; JS
//! reads the state as JSON text, once per change ([`NativeState::state_since`]).

pub mod dylib;
pub mod entities;
pub mod patch;

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The engine's own sync action: its `payload` replaces the state (a resync, a backup).
pub const SYNC: &str = "REDUX_CLUSTER_SYNC";

/// Reducer failures kept for JS to collect; older ones are counted, not kept.
pub const FAILURES_KEPT: usize = 1024;

/// What the divergence guard's reserved action types start with (issue 28). They travel
/// through the ordered stream like any action, so that every replica meets them at the
/// same point, but they never reach a reducer and never change the state.
pub const GUARD_PREFIX: &str = "@@redux-cluster/";
/// `{"type":CHECK,"by":id}` at seq `s`: every replica records the digest of its state as
/// it is just before `s` (after `s - 1`), keyed by `s`.
pub const CHECK: &str = "@@redux-cluster/CHECK";
/// `{"type":DIGEST,"seq":s,"digest":hex}`: the authority's digest at the CHECK of `s`,
/// which every replica compares with its own record for `s`.
pub const DIGEST: &str = "@@redux-cluster/DIGEST";
/// `{"type":RESYNC,"by":id}`: a diverged replica asks the authority for its state (JS
/// answers it); replicas skip it.
pub const RESYNC: &str = "@@redux-cluster/RESYNC";

/// CHECK digests kept for a DIGEST to find: the authority publishes right after the
/// CHECK is ordered, so only a replica 64 checks behind misses one (and says nothing
/// rather than guess).
pub const CHECKS_KEPT: usize = 64;
/// Divergences kept for JS to collect; older ones are counted, not kept. One is enough
/// to resync; more only say it keeps happening.
pub const DIVERGENCES_KEPT: usize = 64;

/// The digest of a state as the divergence guard compares it: SHA-256 of its JSON text,
/// lowercase hex, its first 16 characters (64 bits: a collision between two replicas'
/// states is not a concern, and the DIGEST action stays short).
///
/// JS computes the same digest of a JS reducer's state (`stateDigest` in the addon), so
/// both kinds of store agree on one definition. Two replicas agree only if their JSON
/// texts are byte for byte the same: a reducer whose state serializes in an order that
/// varies between processes (a hash map's) is as nondeterministic as one that calls
/// `Math.random`.
pub fn digest(json: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    use std::fmt::Write as _;
    let d = Sha256::digest(json);
    let mut hex = String::with_capacity(16);
    for b in &d[..8] {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A replica whose state at a CHECK differed from its authority's: the reducer is not
/// deterministic (or mutates what it was given), and this replica has drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The CHECK's sequence number: the states compared are those just before it.
    pub seq: u64,
    /// The authority's digest.
    pub expected: String,
    /// This replica's digest.
    pub actual: String,
}

/// A reducer whose state lives in Rust.
pub trait Reducer: Send {
    /// Applies one action (JSON text of an object with a string `type`): `Ok(false)` when
    /// the state did not change (an action that is not the reducer's), so that JS keeps
    /// the same state object. On `Err` the state is left as it was.
    fn apply(&mut self, action: &[u8]) -> Result<bool, String>;
    /// The whole state as JSON text.
    fn state_json(&self) -> Result<Vec<u8>, String>;
    /// Replaces the state by a JSON text (a snapshot, a sync's payload, a backup).
    fn restore(&mut self, state: &[u8]) -> Result<(), String>;
}

/// An action a reducer refused (or panicked on), at its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seq: u64,
    pub message: String,
}

struct Cell {
    reducer: Box<dyn Reducer>,
    /// The last sequence number applied.
    seq: u64,
    /// Bumped on every change of the state (not on refused actions).
    version: u64,
    /// The state's JSON at `json.0` (a version), made on demand and kept until it changes.
    json: Option<(u64, Bytes)>,
    failures: VecDeque<Failure>,
    /// Failures dropped from `failures` since the last `take_failures`.
    dropped: u64,
    /// The digests recorded at the last [`CHECKS_KEPT`] CHECKs, by their seq.
    checks: VecDeque<(u64, String)>,
    divergences: VecDeque<Divergence>,
    /// Divergences dropped from `divergences` since the last `take_divergences`.
    divergences_dropped: u64,
    /// A RESYNC was met since the last `take_resync` (the authority's JS answers it:
    /// only JS knows whether this store is the authority).
    resync: bool,
    /// What the answer to a resync is brought forward by: from the first RESYNC not
    /// answered yet, every action applied after it (see [`Kept`]).
    kept: Option<Kept>,
}

/// Most actions kept for a resync's answer (one that never comes: its leader was lost).
/// Past it nothing is kept, alike on every replica, and a SYNC is taken as it is.
const KEPT_MAX: usize = 100_000;

/// A resync's answer is the authority's state as of a point `at` (`{"type":SYNC,
/// "payload":…,"at":n}`); actions ordered while it travelled land between `at` and it.
/// Every replica keeps what it applies from the RESYNC on, and applies those ordered
/// after `at` again on top of the payload (the rule of `src/js/store/replay.js`, which
/// JS replicas follow): none of them is lost.
struct Kept {
    /// The seq of the first RESYNC not answered yet.
    from: u64,
    /// The seqs of the RESYNCs met since, in order.
    marks: Vec<u64>,
    /// What was applied after `from`, by seq.
    actions: Vec<(u64, Bytes)>,
}

/// One store's native reducer and its state, shared by whoever applies to it (the store
/// itself, its server's authority, its client) and JS, which reads it.
pub struct NativeState {
    /// What stores sync by: only stores of the same reducer (and config) talk.
    identity: String,
    cell: Mutex<Cell>,
}

/// The action types the engine handles itself rather than the reducer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reserved {
    Sync,
    Check,
    Digest,
    Resync,
}

fn reserved(action: &[u8]) -> Option<Reserved> {
    // Cheap first: only an action that mentions a reserved type is parsed for its type
    // (every action goes through here, and almost none is reserved).
    let sync = memchr::memmem::find(action, SYNC.as_bytes()).is_some();
    if !sync && memchr::memmem::find(action, GUARD_PREFIX.as_bytes()).is_none() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        ty: std::borrow::Cow<'a, str>,
    }
    let head = serde_json::from_slice::<Head>(action).ok()?;
    match head.ty.as_ref() {
        SYNC => Some(Reserved::Sync),
        CHECK => Some(Reserved::Check),
        DIGEST => Some(Reserved::Digest),
        RESYNC => Some(Reserved::Resync),
        _ => None,
    }
}

/// A CHECK or RESYNC must name who sent it, as JS sends them; one without is malformed.
fn guard_by(action: &[u8], ty: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct By {
        by: Option<String>,
    }
    match serde_json::from_slice::<By>(action) {
        Ok(By { by: Some(_) }) => Ok(()),
        _ => Err(format!("a {ty} action needs `by`, a string")),
    }
}

/// A DIGEST's `seq` and `digest`.
fn guard_digest(action: &[u8]) -> Result<(u64, String), String> {
    #[derive(serde::Deserialize)]
    struct Published {
        seq: Option<u64>,
        digest: Option<String>,
    }
    match serde_json::from_slice::<Published>(action) {
        Ok(Published {
            seq: Some(seq),
            digest: Some(digest),
        }) => Ok((seq, digest)),
        _ => Err(format!(
            "a {DIGEST} action needs `seq`, a sequence number, and `digest`, a string"
        )),
    }
}

/// A SYNC's payload, and its `at` when it is a resync's answer (see [`Kept`]).
fn sync_payload(action: &[u8]) -> Result<(Box<serde_json::value::RawValue>, Option<u64>), String> {
    #[derive(serde::Deserialize)]
    struct Sync {
        payload: Option<Box<serde_json::value::RawValue>>,
        at: Option<u64>,
    }
    let s = serde_json::from_slice::<Sync>(action).map_err(|e| e.to_string())?;
    let payload = s
        .payload
        .ok_or_else(|| format!("a {SYNC} action needs the state as its payload"))?;
    Ok((payload, s.at))
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let m = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(format!("the reducer panicked in {what}: {m}"))
        }
    }
}

impl Cell {
    /// Applies the action ordered at `self.seq`. Every native apply goes through here, so
    /// the guard's actions are handled here, once, whoever ordered them.
    fn apply(&mut self, action: &[u8]) -> Result<(), String> {
        let changed = match reserved(action) {
            None => {
                self.keep(action);
                guarded("apply", || self.reducer.apply(action))?
            }
            Some(Reserved::Sync) => {
                let (payload, at) = sync_payload(action)?;
                match at {
                    // A restored backup: taken as it is, and kept like an action.
                    None => {
                        self.keep(action);
                        guarded("restore", || self.reducer.restore(payload.get().as_bytes()))?;
                    }
                    // A resync's answer: brought forward by what was kept after `at`.
                    Some(at) => self.land(payload.get().as_bytes(), at)?,
                }
                true
            }
            // The guard's actions never change the state: no version bump, so JS keeps
            // its state object and nothing is sent for them.
            Some(Reserved::Check) => {
                guard_by(action, CHECK)?;
                // The state as it is before this seq: nothing of `seq` is applied yet.
                let d = digest(&self.json()?);
                if self.checks.len() == CHECKS_KEPT {
                    self.checks.pop_front();
                }
                self.checks.push_back((self.seq, d));
                false
            }
            Some(Reserved::Digest) => {
                let (seq, expected) = guard_digest(action)?;
                // No record (a replica that joined after the CHECK, or fell too far
                // behind): nothing to compare, and no guess.
                if let Some(actual) = self.check_digest(seq) {
                    if actual != expected {
                        if self.divergences.len() == DIVERGENCES_KEPT {
                            self.divergences.pop_front();
                            self.divergences_dropped += 1;
                        }
                        self.divergences.push_back(Divergence {
                            seq,
                            expected,
                            actual,
                        });
                    }
                }
                false
            }
            Some(Reserved::Resync) => {
                guard_by(action, RESYNC)?;
                self.resync = true;
                let seq = self.seq;
                self.kept
                    .get_or_insert_with(|| Kept {
                        from: seq,
                        marks: Vec::new(),
                        actions: Vec::new(),
                    })
                    .marks
                    .push(seq);
                false
            }
        };
        if changed {
            self.version += 1;
        }
        Ok(())
    }

    /// Keeps the action applied at `self.seq` while a resync's answer is awaited.
    fn keep(&mut self, action: &[u8]) {
        if let Some(k) = &mut self.kept {
            if k.actions.len() < KEPT_MAX {
                k.actions.push((self.seq, Bytes::copy_from_slice(action)));
            } else {
                self.kept = None;
            }
        }
    }

    /// A resync's answer (`state`, as of `at`) met at `self.seq`: the state, then what
    /// was kept after `at` on top, if all of it is here (keeping started at or before
    /// `at`).
    fn land(&mut self, state: &[u8], at: u64) -> Result<(), String> {
        let kept = self.kept.take();
        guarded("restore", || self.reducer.restore(state))?;
        let Some(k) = kept else { return Ok(()) };
        if k.from <= at {
            for (_, a) in k.actions.iter().filter(|(s, _)| *s > at) {
                // Refused as when it was first applied (and reported then): skipped.
                let _ = self.apply_kept(a);
            }
        }
        // A RESYNC met after `at` is not answered by this SYNC: keep on from it, with
        // this SYNC's outcome among what is kept (an answer as of a point before it
        // needs it).
        let marks: Vec<u64> = k.marks.into_iter().filter(|m| *m > at).collect();
        if let Some(&from) = marks.first() {
            let mut actions: Vec<(u64, Bytes)> =
                k.actions.into_iter().filter(|(s, _)| *s > from).collect();
            let now = guarded("snapshot", || self.reducer.state_json())?;
            let outcome = format!(
                r#"{{"type":"{SYNC}","payload":{}}}"#,
                String::from_utf8_lossy(&now)
            );
            actions.push((self.seq, Bytes::from(outcome)));
            self.kept = Some(Kept {
                from,
                marks,
                actions,
            });
        }
        Ok(())
    }

    /// An action kept for a resync's answer, applied again on top of it (a restored
    /// backup among them replaces the state again).
    fn apply_kept(&mut self, action: &[u8]) -> Result<bool, String> {
        match reserved(action) {
            Some(Reserved::Sync) => {
                let (payload, _) = sync_payload(action)?;
                guarded("restore", || self.reducer.restore(payload.get().as_bytes()))?;
                Ok(true)
            }
            _ => guarded("apply", || self.reducer.apply(action)),
        }
    }

    fn check_digest(&self, seq: u64) -> Option<String> {
        self.checks
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, d)| d.clone())
    }

    fn fail(&mut self, seq: u64, message: String) {
        if self.failures.len() == FAILURES_KEPT {
            self.failures.pop_front();
            self.dropped += 1;
        }
        self.failures.push_back(Failure { seq, message });
    }

    fn json(&mut self) -> Result<Bytes, String> {
        if let Some((v, j)) = &self.json {
            if *v == self.version {
                return Ok(j.clone());
            }
        }
        let j = Bytes::from(guarded("snapshot", || self.reducer.state_json())?);
        self.json = Some((self.version, j.clone()));
        Ok(j)
    }
}

impl NativeState {
    pub fn new(identity: String, reducer: Box<dyn Reducer>) -> NativeState {
        NativeState {
            identity,
            cell: Mutex::new(Cell {
                reducer,
                seq: 0,
                version: 1,
                json: None,
                failures: VecDeque::new(),
                dropped: 0,
                checks: VecDeque::new(),
                divergences: VecDeque::new(),
                divergences_dropped: 0,
                resync: false,
                kept: None,
            }),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Cell> {
        // A reducer that panicked did so inside `guarded`, never with the lock poisoned.
        self.cell.lock()
    }

    /// The last sequence number applied.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Numbers the actions from `seq + 1` on (a store that starts serving, or becomes a
    /// client, counts from its server's numbering).
    pub fn rebase(&self, seq: u64) {
        self.lock().seq = seq;
    }

    /// Applies an action as the next one; `Err` when the reducer refused it (the state is
    /// unchanged). Not kept as a failure: the caller answers for it.
    pub fn apply_own(&self, action: &[u8]) -> (u64, Result<(), String>) {
        let mut c = self.lock();
        c.seq += 1;
        let r = c.apply(action);
        (c.seq, r)
    }

    /// Applies the action ordered as `seq` (the next one), answering for it directly.
    pub fn apply_at(&self, seq: u64, action: &[u8]) -> Result<(), String> {
        let mut c = self.lock();
        c.seq = seq;
        c.apply(action)
    }

    /// Applies ordered actions from `first_seq` on; ones at or before the last applied
    /// are skipped. Refusals are kept for [`NativeState::take_failures`].
    pub fn apply_ordered(&self, first_seq: u64, actions: &[Bytes]) {
        let mut c = self.lock();
        for (i, a) in actions.iter().enumerate() {
            let seq = first_seq + i as u64;
            if seq <= c.seq {
                continue;
            }
            c.seq = seq;
            if let Err(e) = c.apply(a) {
                c.fail(seq, e);
            }
        }
    }

    /// Replaces the state by `state` (JSON) as of `seq`.
    pub fn restore(&self, seq: u64, state: &[u8]) -> Result<(), String> {
        let mut c = self.lock();
        c.seq = seq;
        // What was kept for a resync's answer before `seq` is in this state.
        if let Some(k) = &mut c.kept {
            k.from = seq;
            k.actions.clear();
        }
        let r = guarded("restore", || c.reducer.restore(state));
        c.version += 1;
        r
    }

    /// The state's JSON and the sequence number it is at.
    pub fn snapshot(&self) -> Result<(u64, Bytes), String> {
        let mut c = self.lock();
        let j = c.json()?;
        Ok((c.seq, j))
    }

    /// A resync's answer: `{"type":SYNC,"payload":<the state>,"at":<its seq>}` (see
    /// [`Kept`]), the state and its seq read together.
    pub fn resync_answer(&self) -> Result<String, String> {
        let (seq, json) = self.snapshot()?;
        Ok(format!(
            r#"{{"type":"{SYNC}","payload":{},"at":{seq}}}"#,
            String::from_utf8_lossy(&json)
        ))
    }

    /// The state's version (it changes with the state).
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// The state's JSON and version, unless the version is still `known`.
    pub fn state_since(&self, known: u64) -> Result<Option<(u64, Bytes)>, String> {
        let mut c = self.lock();
        if c.version == known {
            return Ok(None);
        }
        let j = c.json()?;
        Ok(Some((c.version, j)))
    }

    /// Refusals since the last call, and how many more were not kept.
    pub fn take_failures(&self) -> (Vec<Failure>, u64) {
        let mut c = self.lock();
        let dropped = std::mem::take(&mut c.dropped);
        (c.failures.drain(..).collect(), dropped)
    }

    /// Divergences found since the last call (a DIGEST that differed from this replica's
    /// record), and how many more were not kept.
    pub fn take_divergences(&self) -> (Vec<Divergence>, u64) {
        let mut c = self.lock();
        let dropped = std::mem::take(&mut c.divergences_dropped);
        (c.divergences.drain(..).collect(), dropped)
    }

    /// Whether a replica asked for a resync (a RESYNC met) since the last call.
    pub fn take_resync(&self) -> bool {
        std::mem::take(&mut self.lock().resync)
    }

    /// The digest this replica recorded at the CHECK ordered as `seq` (an authority
    /// publishes its own in a DIGEST); `None` when there was none, or it is no longer
    /// kept.
    pub fn check_digest(&self, seq: u64) -> Option<String> {
        self.lock().check_digest(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_state(initial: &str) -> NativeState {
        NativeState::new(
            "p".into(),
            Box::new(patch::PatchReducer::new(
                serde_json::from_str(initial).unwrap(),
            )),
        )
    }

    #[test]
    fn refusals_are_kept_and_change_nothing() {
        let s = patch_state(r#"{"n":0}"#);
        let v0 = s.version();
        let good = Bytes::from_static(
            br#"{"type":"PATCH","ops":[{"op":"replace","path":"/n","value":1}]}"#,
        );
        let bad = Bytes::from_static(br#"{"type":"PATCH","ops":[{"op":"replace","path":"/n","value":2},{"op":"test","path":"/n","value":9}]}"#);
        s.apply_ordered(1, &[good.clone(), bad, good]);
        assert_eq!(s.seq(), 3);
        let (f, dropped) = s.take_failures();
        assert_eq!((f.len(), f[0].seq, dropped), (1, 2, 0));
        assert_eq!(s.snapshot().unwrap().1.as_ref(), br#"{"n":1}"#);
        assert_eq!(s.version(), v0 + 2);
        // Already applied: skipped.
        s.apply_ordered(
            2,
            &[Bytes::from_static(
                br#"{"type":"PATCH","ops":[{"op":"remove","path":"/n"}]}"#,
            )],
        );
        assert_eq!(s.snapshot().unwrap().1.as_ref(), br#"{"n":1}"#);
    }

    #[test]
    fn sync_replaces_the_state_and_json_is_made_once_per_change() {
        let s = patch_state(r#"{"n":0}"#);
        let (v, j) = s.state_since(0).unwrap().unwrap();
        assert_eq!(j.as_ref(), br#"{"n":0}"#);
        assert!(s.state_since(v).unwrap().is_none());
        let (seq, r) = s.apply_own(br#"{"type":"REDUX_CLUSTER_SYNC","payload":{"m":[1]}}"#);
        assert_eq!((seq, r), (1, Ok(())));
        let (v2, j) = s.state_since(v).unwrap().unwrap();
        assert!(v2 > v);
        assert_eq!(j.as_ref(), br#"{"m":[1]}"#);
        let (_, r) = s.apply_own(br#"{"type":"REDUX_CLUSTER_SYNC"}"#);
        assert!(r.is_err());
        // An action whose text mentions the sync type elsewhere is a normal action.
        let (_, r) = s.apply_own(
            br#"{"type":"PATCH","ops":[{"op":"add","path":"/x","value":"REDUX_CLUSTER_SYNC"}]}"#,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn a_panicking_reducer_is_a_refusal() {
        struct Boom;
        impl Reducer for Boom {
            fn apply(&mut self, _: &[u8]) -> Result<bool, String> {
                panic!("kaput")
            }
            fn state_json(&self) -> Result<Vec<u8>, String> {
                Ok(b"null".to_vec())
            }
            fn restore(&mut self, _: &[u8]) -> Result<(), String> {
                Ok(())
            }
        }
        let s = NativeState::new("b".into(), Box::new(Boom));
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let (_, r) = s.apply_own(br#"{"type":"A"}"#);
        std::panic::set_hook(hook);
        assert!(r.unwrap_err().contains("kaput"));
        assert_eq!(s.snapshot().unwrap().1.as_ref(), b"null");
    }

    #[test]
    fn failures_are_bounded() {
        let s = patch_state("{}");
        let bad = Bytes::from_static(br#"{"type":"PATCH","ops":[{"op":"remove","path":"/x"}]}"#);
        let batch = vec![bad; FAILURES_KEPT + 10];
        s.apply_ordered(1, &batch);
        let (f, dropped) = s.take_failures();
        assert_eq!((f.len(), dropped), (FAILURES_KEPT, 10));
        assert_eq!(f[0].seq, 11);
    }

    /// A DIGEST action for `seq` with `digest`.
    fn published(seq: u64, digest: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"type":"@@redux-cluster/DIGEST","seq":{seq},"digest":"{digest}"}}"#
        ))
    }

    const CHECK_ACTION: &[u8] = br#"{"type":"@@redux-cluster/CHECK","by":"a"}"#;
    const INC: &[u8] = br#"{"type":"PATCH","ops":[{"op":"replace","path":"/n","value":2}]}"#;

    #[test]
    fn digest_is_the_first_16_hex_of_sha256() {
        // printf '%s' '{"n":1}' | sha256sum
        assert_eq!(digest(br#"{"n":1}"#), "2bfd14f43d17fc7c");
    }

    #[test]
    fn a_check_records_the_state_before_it_and_a_matching_digest_is_no_divergence() {
        let s = patch_state(r#"{"n":1}"#);
        let v0 = s.version();
        s.apply_ordered(
            1,
            &[
                Bytes::from_static(CHECK_ACTION),
                Bytes::from_static(INC),
                published(1, "2bfd14f43d17fc7c"),
            ],
        );
        // The state before seq 1, not after the PATCH at 2.
        assert_eq!(s.check_digest(1).as_deref(), Some("2bfd14f43d17fc7c"));
        assert_eq!(s.check_digest(2), None);
        assert_eq!(s.take_divergences(), (vec![], 0));
        assert_eq!(s.take_failures(), (vec![], 0));
        // Only the PATCH changed the state.
        assert_eq!(s.version(), v0 + 1);
    }

    #[test]
    fn another_digest_is_a_divergence_with_both_digests() {
        let s = patch_state(r#"{"n":1}"#);
        s.apply_ordered(
            5,
            &[
                Bytes::from_static(CHECK_ACTION),
                published(5, "0123456789abcdef"),
            ],
        );
        assert_eq!(
            s.take_divergences(),
            (
                vec![Divergence {
                    seq: 5,
                    expected: "0123456789abcdef".into(),
                    actual: "2bfd14f43d17fc7c".into(),
                }],
                0
            )
        );
        // Taken: not reported twice.
        assert_eq!(s.take_divergences(), (vec![], 0));
    }

    #[test]
    fn a_digest_for_a_seq_never_checked_is_nothing() {
        let s = patch_state(r#"{"n":1}"#);
        s.apply_ordered(
            1,
            &[
                Bytes::from_static(CHECK_ACTION),
                published(7, "0123456789abcdef"),
            ],
        );
        assert_eq!(s.take_divergences(), (vec![], 0));
        assert_eq!(s.take_failures(), (vec![], 0));
    }

    /// Refuses every action it is given, and counts them: a guard action that reached it
    /// would be a failure. (The patch reducer would not do: it ignores types not its own.)
    struct RefusesAll(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Reducer for RefusesAll {
        fn apply(&mut self, _: &[u8]) -> Result<bool, String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err("refused".into())
        }
        fn state_json(&self) -> Result<Vec<u8>, String> {
            Ok(br#"{"n":1}"#.to_vec())
        }
        fn restore(&mut self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn the_guards_actions_never_reach_the_reducer_nor_change_the_state() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = NativeState::new("r".into(), Box::new(RefusesAll(seen.clone())));
        let v0 = s.version();
        s.apply_ordered(
            1,
            &[
                Bytes::from_static(CHECK_ACTION),
                published(1, "0123456789abcdef"),
                Bytes::from_static(br#"{"type":"@@redux-cluster/RESYNC","by":"b"}"#),
            ],
        );
        assert_eq!(s.seq(), 3);
        assert_eq!(s.take_failures(), (vec![], 0));
        assert_eq!(s.version(), v0);
        assert!(s.state_since(v0).unwrap().is_none());
        // As the store's own and as an authority's ordered action alike.
        let (seq, r) = s.apply_own(CHECK_ACTION);
        assert_eq!((seq, r), (4, Ok(())));
        assert_eq!(s.apply_at(5, &published(4, "2bfd14f43d17fc7c")), Ok(()));
        assert_eq!(s.version(), v0);
        assert_eq!(s.take_divergences().0.len(), 1);
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 0);
        // Another @@redux-cluster/ type, or a guard type mentioned elsewhere than in
        // `type`, is the reducer's.
        let (_, r) = s.apply_own(br#"{"type":"@@redux-cluster/OTHER"}"#);
        assert!(r.is_err());
        let (_, r) = s.apply_own(br#"{"type":"A","note":"@@redux-cluster/CHECK"}"#);
        assert!(r.is_err());
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn with_the_patch_reducer_the_state_and_its_version_stay_as_they_were() {
        let s = patch_state(r#"{"n":1}"#);
        let v0 = s.version();
        let (_, j0) = s.snapshot().unwrap();
        s.apply_ordered(
            1,
            &[
                Bytes::from_static(CHECK_ACTION),
                published(1, "2bfd14f43d17fc7c"),
                Bytes::from_static(br#"{"type":"@@redux-cluster/RESYNC","by":"b"}"#),
            ],
        );
        assert_eq!(s.take_failures(), (vec![], 0));
        assert_eq!((s.version(), s.snapshot().unwrap().1), (v0, j0));
    }

    #[test]
    fn a_malformed_guard_action_is_a_failure_and_changes_nothing() {
        let s = patch_state(r#"{"n":1}"#);
        let v0 = s.version();
        s.apply_ordered(
            1,
            &[
                Bytes::from_static(br#"{"type":"@@redux-cluster/CHECK"}"#),
                Bytes::from_static(br#"{"type":"@@redux-cluster/DIGEST","seq":1}"#),
                Bytes::from_static(br#"{"type":"@@redux-cluster/DIGEST","digest":"00"}"#),
                Bytes::from_static(br#"{"type":"@@redux-cluster/RESYNC","by":7}"#),
            ],
        );
        let (f, _) = s.take_failures();
        assert_eq!(f.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(s.check_digest(1), None);
        assert_eq!(s.version(), v0);
    }

    #[test]
    fn checks_and_divergences_are_bounded() {
        let s = patch_state(r#"{"n":1}"#);
        let n = (DIVERGENCES_KEPT + 10) as u64;
        let mut batch = Vec::new();
        for i in 0..n {
            batch.push(Bytes::from_static(CHECK_ACTION));
            batch.push(published(2 * i + 1, "0123456789abcdef"));
        }
        s.apply_ordered(1, &batch);
        let (d, dropped) = s.take_divergences();
        assert_eq!((d.len(), dropped), (DIVERGENCES_KEPT, 10));
        assert_eq!(d[0].seq, 2 * 10 + 1);
        // Only the last CHECKS_KEPT checks are kept.
        assert_eq!(s.check_digest(1), None);
        assert!(s.check_digest(2 * (n - 1) + 1).is_some());
        assert!(s.check_digest(2 * (n - CHECKS_KEPT as u64) + 1).is_some());
        assert!(s
            .check_digest(2 * (n - CHECKS_KEPT as u64 - 1) + 1)
            .is_none());
    }

    /// The stream of the JS replicas' test (`__test__/guard.spec.mjs`, "a resync's
    /// answer…"), through the engine: the same states after each pull.
    #[test]
    fn a_resyncs_answer_is_brought_forward_by_what_was_ordered_after_its_point() {
        let s = patch_state(r#"{"log":[]}"#);
        let push = |by: &str| {
            Bytes::from(format!(
                r#"{{"type":"PATCH","ops":[{{"op":"add","path":"/log/-","value":"{by}"}}]}}"#
            ))
        };
        let resync = || Bytes::from_static(br#"{"type":"@@redux-cluster/RESYNC","by":"x"}"#);
        let sync = |log: &str, at: Option<u64>| {
            let at = at.map(|a| format!(r#","at":{a}"#)).unwrap_or_default();
            Bytes::from(format!(
                r#"{{"type":"REDUX_CLUSTER_SYNC","payload":{{"log":{log}}}{at}}}"#
            ))
        };
        let log = |s: &NativeState| s.snapshot().unwrap().1;
        let pulls: [(u64, Vec<Bytes>, &str); 7] = [
            (
                1,
                vec![
                    push("a"),
                    resync(),
                    push("b"),
                    push("c"),
                    sync(r#"["a"]"#, Some(2)),
                    push("d"),
                ],
                r#"{"log":["a","b","c","d"]}"#,
            ),
            (
                7,
                vec![resync(), push("e")],
                r#"{"log":["a","b","c","d","e"]}"#,
            ),
            (
                9,
                vec![sync(r#"["r"]"#, None), push("f")],
                r#"{"log":["r","f"]}"#,
            ),
            (
                11,
                vec![sync(r#"["a","b","c","d"]"#, Some(7)), push("g")],
                r#"{"log":["r","f","g"]}"#,
            ),
            (
                13,
                vec![push("h"), sync(r#"["z"]"#, Some(12))],
                r#"{"log":["z"]}"#,
            ),
            // Two RESYNCs before the first answer lands: the second's is brought forward too.
            (
                15,
                vec![
                    resync(),
                    push("i"),
                    resync(),
                    push("j"),
                    sync(r#"["z","i"]"#, Some(16)),
                    push("k"),
                ],
                r#"{"log":["z","i","j","k"]}"#,
            ),
            (
                21,
                vec![sync(r#"["z","i","j"]"#, Some(18))],
                r#"{"log":["z","i","j","k"]}"#,
            ),
        ];
        for (first, actions, expected) in pulls {
            s.apply_ordered(first, &actions);
            assert_eq!(
                String::from_utf8_lossy(&log(&s)),
                expected,
                "after #{first}"
            );
        }
        assert!(s.take_failures().0.is_empty());
        // The answer a leader sends: the state and its seq, read together.
        assert_eq!(
            s.resync_answer().unwrap(),
            r#"{"type":"REDUX_CLUSTER_SYNC","payload":{"log":["z","i","j","k"]},"at":21}"#
        );
    }
}
