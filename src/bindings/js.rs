//! How the engine reaches the JS thread, shared by the bindings: the wake-up callback,
//! and a queue of JSON events that JS pulls once per wake-up (so a burst crosses the
//! boundary once).

use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::AnyCode;
use crate::store::outbox::Bounded;

/// Most events a queue holds for JS. Events only pile up while the JS thread does not run
/// (a long synchronous task); past this bound the newest are dropped and counted, and JS
/// is told with an error event (`ERR_EVENTS_DROPPED`; RaftNode's `EVENTS_DROPPED`). Nothing JS needs to stay correct
/// travels this way alone: committed RaftNode entries are pulled from the log, and a
/// coordinator's state lives in the engine.
pub const MAX_EVENTS: usize = 65_536;

/// A JS function called (with no arguments) when the engine has something for JS.
pub type WakeFn = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

/// Events for JS, and the callback that says there are some.
pub struct JsQueue {
    queue: Bounded<Value>,
    /// The code of the error event that reports dropped events (each API spells it its way).
    dropped_code: AnyCode,
    wake: Mutex<Option<WakeFn>>,
    /// Whether JS listens to the per-entry events (set from its `newListener`); until it
    /// does, their payloads are not even built.
    entry_events: AtomicBool,
}

impl JsQueue {
    pub fn new(wake: WakeFn, dropped_code: impl Into<AnyCode>) -> JsQueue {
        JsQueue {
            queue: Bounded::new(MAX_EVENTS),
            dropped_code: dropped_code.into(),
            wake: Mutex::new(Some(wake)),
            entry_events: AtomicBool::new(false),
        }
    }

    pub fn set_entry_events(&self, on: bool) {
        self.entry_events.store(on, Ordering::Relaxed);
    }

    pub fn entry_events(&self) -> bool {
        self.entry_events.load(Ordering::Relaxed)
    }

    /// Queues an event; the first one since the last pull wakes JS.
    pub fn push(&self, event: Value) {
        if self.queue.push(event) {
            if let Some(w) = self.wake.lock().as_ref() {
                w.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        }
    }

    /// Everything queued, as one JSON array text.
    pub fn take(&self) -> String {
        let (mut events, dropped) = self.queue.take();
        if dropped > 0 {
            events.push(json!({
                "type": "error",
                "code": self.dropped_code,
                "message": format!("{dropped} events were dropped: the JS thread did not read them in time"),
            }));
        }
        Value::Array(events).to_string()
    }

    /// Releases the callback, so that it no longer keeps the process alive.
    pub fn detach(&self) {
        self.wake.lock().take();
    }
}
