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
