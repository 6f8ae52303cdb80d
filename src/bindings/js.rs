//! How the engine reaches the JS thread, shared by the bindings: the wake-up callback,
//! a queue of JSON events that JS pulls once per wake-up (so a burst crosses the boundary
//! once), and the `{ ok: false, code, message, leaderId }` JSON an async call resolves
//! to when it fails (the JS layer turns it into an error with that code).

use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use parking_lot::Mutex;
use serde_json::{json, Value};

/// A JS function called (with no arguments) when the engine has something for JS.
pub type WakeFn = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

/// Events for JS, and the callback that says there are some.
pub struct JsQueue {
    queue: Mutex<Vec<Value>>,
    wake: Mutex<Option<WakeFn>>,
}

impl JsQueue {
    pub fn new(wake: WakeFn) -> JsQueue {
        JsQueue {
            queue: Mutex::new(Vec::new()),
            wake: Mutex::new(Some(wake)),
        }
    }

    /// Queues an event; the first one since the last pull wakes JS.
    pub fn push(&self, event: Value) {
        let mut q = self.queue.lock();
        q.push(event);
        if q.len() == 1 {
            drop(q);
            if let Some(w) = self.wake.lock().as_ref() {
                w.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        }
    }

    /// Everything queued, as one JSON array text.
    pub fn take(&self) -> String {
        Value::Array(std::mem::take(&mut *self.queue.lock())).to_string()
    }

    /// Releases the callback, so that it no longer keeps the process alive.
    pub fn detach(&self) {
        self.wake.lock().take();
    }
}

/// A failed async call, as JSON.
pub fn refusal(code: &str, message: &str, leader: Option<&str>) -> String {
    json!({"ok": false, "code": code, "message": message, "leaderId": leader}).to_string()
}
