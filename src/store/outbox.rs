//! What the engine hands to the JS thread: a coalesced wake-up plus a bounded queue of
//! events. The engine never calls into JS per action; it wakes JS once, and JS pulls
//! ordered batches until it is caught up.

use crate::error::ErrorCode;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Something that schedules a pull on the JS thread (a ThreadsafeFunction in the
/// bindings; a counter in tests).
pub trait Wake: Send + Sync + 'static {
    fn wake(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Connected,
    Disconnected,
    Error,
    /// A replicated server learned of a leader: `code` is its name, `message` the term.
    Leader,
    /// A replicated server's own role changed: `code` is the role, `message` the term.
    Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub code: String,
    pub message: String,
}

impl Event {
    pub fn error(code: &str, message: impl Into<String>) -> Event {
        Event {
            kind: EventKind::Error,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

const MAX_EVENTS: usize = 256;

pub struct Outbox {
    waker: Mutex<Option<Box<dyn Wake>>>,
    scheduled: AtomicBool,
    events: Mutex<VecDeque<Event>>,
    dropped: AtomicU64,
}

impl Outbox {
    pub fn new(waker: Box<dyn Wake>) -> Outbox {
        Outbox {
            waker: Mutex::new(Some(waker)),
            scheduled: AtomicBool::new(false),
            events: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Schedules one pull on the JS thread unless one is already pending.
    pub fn wake(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            if let Some(w) = self.waker.lock().as_ref() {
                w.wake();
            }
        }
    }

    /// Called by JS at the start of a pull: anything that arrives after this wakes again.
    pub fn begin_pull(&self) {
        self.scheduled.store(false, Ordering::Release);
    }

    /// Queues an event for JS. Under a flood (garbage on a port, say) the queue stays
    /// bounded and a count of what was dropped is reported instead.
    pub fn push(&self, e: Event) {
        {
            let mut q = self.events.lock();
            if q.len() >= MAX_EVENTS {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.push_back(e);
        }
        self.wake();
    }

    pub fn take_events(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self.events.lock().drain(..).collect();
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            out.push(Event::error(
                ErrorCode::EventsDropped.as_str(),
                format!("{dropped} further events were dropped"),
            ));
        }
        out
    }

    /// Drops the waker (on close), so nothing keeps the JS event loop alive any more.
    pub fn detach(&self) {
        self.waker.lock().take();
    }
}
