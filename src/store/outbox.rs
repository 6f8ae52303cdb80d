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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Connected,
    /// The connection was lost, for this reason.
    Disconnected(ErrorCode),
    Error(ErrorCode),
    /// A replicated server learned of a leader (its name); `message` is the term.
    Leader(String),
    /// A replicated server's own role changed (to this one); `message` is the term.
    Role(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub message: String,
}

impl Event {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Event {
        Event {
            kind: EventKind::Error(code),
            message: message.into(),
        }
    }

    /// The error code of an error or a disconnection.
    pub fn code(&self) -> Option<ErrorCode> {
        match self.kind {
            EventKind::Error(c) | EventKind::Disconnected(c) => Some(c),
            _ => None,
        }
    }
}

const MAX_EVENTS: usize = 256;

/// A queue of events for JS with a bound: events only pile up while the JS thread does
/// not run, and past the bound the newest are counted instead of kept, so a flood (or a
/// JS thread stuck in a long task) costs a counter, not memory.
pub struct Bounded<T> {
    items: Mutex<VecDeque<T>>,
    cap: usize,
    dropped: AtomicU64,
    /// Every drop since the queue was made (for the metrics).
    dropped_total: AtomicU64,
}

impl<T> Bounded<T> {
    pub fn new(cap: usize) -> Bounded<T> {
        Bounded {
            items: Mutex::new(VecDeque::new()),
            cap,
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// Queues `item`, or counts it when the queue is full. True when it is the first
    /// queued since the last `take` (the moment to wake JS).
    pub fn push(&self, item: T) -> bool {
        let mut q = self.items.lock();
        if q.len() >= self.cap {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        q.push_back(item);
        q.len() == 1
    }

    /// How many were dropped since the queue was made.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Everything queued, and how many were dropped since the last `take`.
    pub fn take(&self) -> (Vec<T>, u64) {
        let items = self.items.lock().drain(..).collect();
        (items, self.dropped.swap(0, Ordering::Relaxed))
    }
}

pub struct Outbox {
    waker: Mutex<Option<Box<dyn Wake>>>,
    scheduled: AtomicBool,
    events: Bounded<Event>,
}

impl Outbox {
    /// Events dropped since the store began (nobody read them in time).
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped_total()
    }

    pub fn new(waker: Box<dyn Wake>) -> Outbox {
        Outbox {
            waker: Mutex::new(Some(waker)),
            scheduled: AtomicBool::new(false),
            events: Bounded::new(MAX_EVENTS),
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
        self.events.push(e);
        self.wake();
    }

    pub fn take_events(&self) -> Vec<Event> {
        let (mut out, dropped) = self.events.take();
        if dropped > 0 {
            out.push(Event::error(
                ErrorCode::EventsDropped,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_queue_counts_what_it_cannot_hold_and_wakes_once_per_pull() {
        let q = Bounded::new(3);
        assert!(q.push(1), "the first event since a pull wakes JS");
        assert!(!q.push(2));
        assert!(!q.push(3));
        assert!(!q.push(4), "past the bound: counted, not kept");
        assert!(!q.push(5));
        assert_eq!(q.take(), (vec![1, 2, 3], 2));
        assert_eq!(q.take(), (vec![], 0), "the count starts again after a pull");
        assert!(q.push(6), "an empty queue wakes JS again");
    }
}
