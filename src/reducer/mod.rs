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
}

/// One store's native reducer and its state, shared by whoever applies to it (the store
/// itself, its server's authority, its client) and JS, which reads it.
pub struct NativeState {
    /// What stores sync by: only stores of the same reducer (and config) talk.
    identity: String,
    cell: Mutex<Cell>,
}

fn type_is_sync(action: &[u8]) -> bool {
    // Cheap first: only an action that mentions the sync type is parsed for it.
    memchr::memmem::find(action, SYNC.as_bytes()).is_some() && {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            ty: std::borrow::Cow<'a, str>,
        }
        serde_json::from_slice::<Head>(action).is_ok_and(|h| h.ty == SYNC)
    }
}

fn sync_payload(action: &[u8]) -> Result<Box<serde_json::value::RawValue>, String> {
    #[derive(serde::Deserialize)]
    struct Sync {
        payload: Option<Box<serde_json::value::RawValue>>,
    }
    serde_json::from_slice::<Sync>(action)
        .map_err(|e| e.to_string())?
        .payload
        .ok_or_else(|| format!("a {SYNC} action needs the state as its payload"))
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
    fn apply(&mut self, action: &[u8]) -> Result<(), String> {
        let changed = if type_is_sync(action) {
            let payload = sync_payload(action)?;
            guarded("restore", || self.reducer.restore(payload.get().as_bytes()))?;
            true
        } else {
            guarded("apply", || self.reducer.apply(action))?
        };
        if changed {
            self.version += 1;
        }
        Ok(())
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
}
