//! A client replica's native side, used by `src/js/store/client.js`: `NativeClient`,
//! its connection to a server store (or to the next of its servers).

use super::error::{from_core, js_error, Code};
use super::js::WakeFn;
use super::reducer::{divergences, failures, JsDivergence, JsFailure, NativeReducer};
use super::runtime::{handle, on_engine};
use super::store::{events, json_array, text, JsEvent, JsWake};
use super::store_options::{config, credentials, endpoint, ClientSecurity, EngineOptions};
use crate::error::ErrorCode;
use crate::store::{Client, Event};
use crate::transport::Endpoint;
use bytes::Bytes;
use napi::Result;
use napi_derive::napi;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[napi(object)]
pub struct ClientPollJs {
    /// A state (JSON) replacing the local one, applied before `actions`.
    pub snapshot: Option<String>,
    pub snapshot_seq: f64,
    pub first_seq: f64,
    pub actions: Option<String>,
    pub more: bool,
    pub events: Vec<JsEvent>,
    /// Where dispatches went, while tracked: `[firstCounter, firstSeq, count, ...]`.
    pub ordered: Option<Vec<f64>>,
    /// With a native reducer: the last sequence number it applied (the snapshot and
    /// actions went to it, not into `snapshot` / `actions`), what it refused, and how
    /// many more refusals were not listed.
    pub applied: f64,
    pub failures: Option<Vec<JsFailure>>,
    pub failures_dropped: f64,
    /// With a native reducer: the divergences it found since the last poll (issue 28's
    /// guard), absent when none, and how many more were not listed.
    pub divergences: Option<Vec<JsDivergence>>,
    pub divergences_dropped: f64,
}

#[napi(object)]
pub struct Queued {
    /// Actions waiting for the server's acknowledgement.
    pub pending: u32,
    /// The counter of the last action queued (the batch's counters end here).
    pub last_counter: f64,
}

/// One server a client may connect to: TCP (`host`, `port`) or a Unix socket (`path`).
#[napi(object)]
pub struct ServerAddress {
    pub host: Option<String>,
    pub port: Option<u32>,
    pub path: Option<String>,
}

/// A client replica's connection to a server store.
#[napi]
pub struct NativeClient {
    inner: Arc<Client>,
    native: Option<Arc<crate::reducer::NativeState>>,
    // Set by close()/shutdown(): a drop after that must not cut a flush short.
    closed: AtomicBool,
}

#[napi]
impl NativeClient {
    /// Connects to the first of `servers` that answers, and to the next when it goes.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        hash: String,
        servers: Vec<ServerAddress>,
        options: Option<EngineOptions>,
        security: Option<ClientSecurity>,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
        reducer: Option<&NativeReducer>,
    ) -> Result<Self, Code> {
        let cfg = config(options)?;
        if servers.is_empty() {
            return Err(js_error(
                ErrorCode::InvalidConfig,
                "invalid configuration: servers must list at least one server",
            ));
        }
        let eps = servers
            .into_iter()
            .map(|s| endpoint(s.host, s.port, s.path, "127.0.0.1"))
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = credentials(security.unwrap_or_default())?;
        let _guard = handle().enter();
        let inner = Arc::new(Client::start(
            eps,
            hash,
            cfg,
            credentials,
            Box::new(JsWake(wake)),
        ));
        let native = reducer.map(|r| r.state.clone());
        if let Some(n) = &native {
            // The server's numbering from here on.
            n.rebase(0);
        }
        Ok(NativeClient {
            inner,
            native,
            closed: AtomicBool::new(false),
        })
    }

    /// Queues actions, given as one JSON array text, for the server. All or none are
    /// queued.
    #[napi(catch_unwind)]
    pub fn dispatch_batch(&self, actions: String) -> Result<Queued, Code> {
        let ranges = {
            let list: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(&actions).map_err(|e| {
                    js_error(
                        ErrorCode::InvalidAction,
                        format!("invalid action batch: {e}"),
                    )
                })?;
            let base = actions.as_ptr() as usize;
            list.iter()
                .map(|r| (r.get().as_ptr() as usize - base, r.get().len()))
                .collect::<Vec<_>>()
        };
        // One buffer for the whole batch; each action is a slice of it.
        let whole = Bytes::from(actions);
        let batch = ranges
            .into_iter()
            .map(|(at, len)| whole.slice(at..at + len))
            .collect();
        self.inner
            .dispatch_batch(batch)
            .map(|q| Queued {
                pending: q.pending as u32,
                last_counter: q.last_counter as f64,
            })
            .map_err(from_core)
    }

    /// Keeps (or stops keeping) where the server ordered dispatches, for `poll`.
    #[napi(catch_unwind)]
    pub fn track_ordered(&self, on: bool) {
        self.inner.track_ordered(on);
    }

    #[napi(catch_unwind)]
    pub fn poll(&self, max: u32) -> ClientPollJs {
        let mut p = self.inner.poll(max.max(1) as usize);
        let mut applied = 0.0;
        let mut refused = (Vec::new(), 0);
        let mut diverged = (Vec::new(), 0);
        if let Some(n) = &self.native {
            // The replica's state is the engine's: the server's snapshot and actions go
            // to the reducer here, and JS learns how far it got.
            if let Some((seq, state)) = p.snapshot.take() {
                if let Err(e) = n.restore(seq, &state) {
                    p.events.push(Event::error(
                        ErrorCode::Reducer,
                        format!("the reducer refused the server's state at #{seq}: {e}"),
                    ));
                }
            }
            n.apply_ordered(p.first_seq, &std::mem::take(&mut p.actions));
            applied = n.seq() as f64;
            refused = n.take_failures();
            diverged = n.take_divergences();
        }
        let (snapshot_seq, snapshot) = match p.snapshot {
            Some((seq, state)) => (seq as f64, Some(text(state))),
            None => (0.0, None),
        };
        ClientPollJs {
            snapshot,
            snapshot_seq,
            first_seq: p.first_seq as f64,
            actions: json_array(&p.actions),
            more: p.more,
            events: events(p.events),
            ordered: (!p.ordered.is_empty()).then(|| {
                p.ordered
                    .iter()
                    .flat_map(|o| [o.first_counter as f64, o.first_seq as f64, o.count as f64])
                    .collect()
            }),
            applied,
            failures: failures(refused.0),
            failures_dropped: refused.1 as f64,
            divergences: divergences(diverged.0),
            divergences_dropped: diverged.1 as f64,
        }
    }

    #[napi(getter, catch_unwind)]
    pub fn connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// The server of the latest session, or the one being tried: `{ host, port }` or
    /// `{ path }`.
    #[napi(getter, catch_unwind)]
    pub fn server(&self) -> ServerAddress {
        match self.inner.server() {
            Endpoint::Tcp { host, port } => ServerAddress {
                host: Some(host.clone()),
                port: Some(*port as u32),
                path: None,
            },
            Endpoint::Unix(p) => ServerAddress {
                host: None,
                port: None,
                path: Some(p.to_string_lossy().into_owned()),
            },
            // As redux-cluster-ws names it: `host: 'ws://name'`, `port`, and the path.
            Endpoint::Ws(u) => ServerAddress {
                host: Some(format!("{}://{}", if u.tls { "wss" } else { "ws" }, u.host)),
                port: Some(u.port as u32),
                path: (u.path != "/").then(|| u.path.clone()),
            },
        }
    }

    /// Dispatched actions not yet acknowledged by the server.
    #[napi(getter, catch_unwind)]
    pub fn pending(&self) -> u32 {
        self.inner.pending() as u32
    }

    /// Stops the client, first waiting up to `flushMs` for queued actions to be
    /// acknowledged. The JS callback is released at once.
    #[napi(catch_unwind)]
    pub async fn close(&self, flush_ms: Option<u32>) -> Result<()> {
        self.closed.store(true, Ordering::Relaxed);
        let c = self.inner.clone();
        let flush = Duration::from_millis(flush_ms.unwrap_or(1000) as u64);
        on_engine(async move { c.close(flush).await }).await
    }

    /// Stops at once; queued actions are dropped.
    #[napi(catch_unwind)]
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.inner.shutdown();
    }
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Relaxed) {
            self.inner.shutdown();
        }
    }
}
