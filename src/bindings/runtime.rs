//! The engine's tokio runtime. It is built once when the addon loads and also handed to
//! napi, so `#[napi] async fn` and the engine's own tasks run on the same threads.

use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle};

static HANDLE: OnceLock<Handle> = OnceLock::new();
// Measured on 2 cores: one worker gave lower latency and no less throughput than two.
const DEFAULT_WORKERS: usize = 1;

#[napi_derive::module_init]
fn init() {
    // The JS thread does the reducing and the engine mostly waits on sockets, so few
    // workers serve best: every extra thread adds wake-ups and context switches on the
    // latency path. REDUX_CLUSTER_RS_THREADS overrides the default.
    let workers = std::env::var("REDUX_CLUSTER_RS_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(DEFAULT_WORKERS);
    let rt = Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("redux-cluster-rs")
        .enable_all()
        .build()
        .expect("cannot start the redux-cluster-rs runtime");
    let _ = HANDLE.set(rt.handle().clone());
    napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("redux-cluster-rs: internal error; this is a bug, please report it with the message below.");
        previous(info);
    }));
}

pub fn handle() -> &'static Handle {
    HANDLE
        .get()
        .expect("redux-cluster-rs runtime not initialised")
}

/// Runs `f` on the engine's runtime and waits for it from an `#[napi] async fn` (whose
/// own executor is napi's); a panic in `f` becomes an error instead of an abort.
pub async fn on_engine<T, F>(f: F) -> napi::Result<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    handle()
        .spawn(f)
        .await
        .map_err(|e| napi::Error::from_reason(format!("redux-cluster-rs internal error: {e}")))
}

/// A value made in the background on the engine's runtime (a Raft node opening its
/// dataDir and replaying its log), so that a factory returns at once: `now` answers
/// without waiting, `ready` waits for it, `join` waits for the task itself (shutdown).
pub struct Background<T, E> {
    done: tokio::sync::watch::Receiver<Option<Result<T, E>>>,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl<T, E> Background<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Runs `make`; once its result can be read, `then` runs (to wake whoever reads it).
    pub fn start<F>(make: F, then: impl FnOnce(&Result<T, E>) + Send + 'static) -> Self
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    {
        let (tx, done) = tokio::sync::watch::channel(None);
        let task = handle().spawn(async move {
            let r = make.await;
            let _ = tx.send(Some(r.clone()));
            then(&r);
        });
        Background {
            done,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    /// The result if there is one yet.
    pub fn now(&self) -> Option<Result<T, E>> {
        self.done.borrow().clone()
    }

    /// The result, once there is one (at once when there is).
    pub async fn ready(&self) -> Option<Result<T, E>> {
        if let Some(r) = self.now() {
            return Some(r);
        }
        let mut rx = self.done.clone();
        let r = rx.wait_for(Option::is_some).await.ok()?.clone();
        r
    }

    /// Waits for the task to end (it ends once the result is there) and gives the result.
    pub async fn join(&self) -> Option<Result<T, E>> {
        let task = self.task.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
        self.now()
    }
}
