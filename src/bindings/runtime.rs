//! The engine's tokio runtime. It is built once when the addon loads and also handed to
//! napi, so `#[napi] async fn` and the engine's own tasks run on the same threads.

use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle};

static HANDLE: OnceLock<Handle> = OnceLock::new();

#[napi_derive::module_init]
fn init() {
    // Two workers: the JS thread does the reducing, the engine mostly waits on sockets,
    // and the target machines have few cores.
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
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
