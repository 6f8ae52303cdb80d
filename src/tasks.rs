//! The tasks a component owns. Each is spawned on the component's tracker and also
//! watches a second, hard token: `shutdown` closes the tracker and waits a grace period
//! for the tasks to end on their own (they watch the component's cancellation), then
//! drops whatever is still running instead of leaving it behind, and waits for that.
//!
//! Dropping a task's future is what tokio's `abort` does: it stops at its next await and
//! its destructors run, so sockets and files it held are released.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    hard: CancellationToken,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Spawns `f` as one of these tasks. Must run inside a tokio runtime.
    pub fn spawn<F>(&self, f: F)
    where
        F: Future + Send + 'static,
    {
        let hard = self.hard.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = hard.cancelled() => {}
                _ = f => {}
            }
        });
    }

    /// Takes no new tasks, waits up to `grace` for the running ones, then drops the rest
    /// (and waits up to `grace` again for them to unwind). Returns whether it had to.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return false;
        }
        self.hard.cancel();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
        true
    }

    /// Takes no new tasks (without waiting for the running ones).
    pub fn close(&self) {
        self.tracker.close();
    }

    /// Whether it takes no new tasks.
    pub fn is_closed(&self) -> bool {
        self.tracker.is_closed()
    }

    /// Whether every task has ended.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A task that ignores every cancellation is dropped after the grace period, and its
    /// destructor runs; a task that ends on its own is waited for.
    #[tokio::test]
    async fn what_outlives_the_grace_period_is_dropped() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let tasks = Tasks::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let held = Flag(dropped.clone());
        tasks.spawn(async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
        let polite = Tasks::new();
        polite.spawn(tokio::time::sleep(Duration::from_millis(10)));
        assert!(
            !polite.shutdown(Duration::from_secs(5)).await,
            "ended on its own"
        );
        let start = std::time::Instant::now();
        assert!(
            tasks.shutdown(Duration::from_millis(100)).await,
            "had to drop one"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(dropped.load(Ordering::SeqCst), "its destructor ran");
        assert!(tasks.is_empty());
    }
}
