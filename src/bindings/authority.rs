//! A server store's native side, used by `src/js/store/server.js` and `replicated.js`:
//! `NativeAuthority` (the ordering authority and log, or, for the servers of a Raft
//! group, the log the group orders) and `NativeListener` (one bound endpoint).

use super::error::{from_io, io_code, js_error, refused, rejection, Code};
use super::js::WakeFn;
use super::reducer::{divergences, failures, JsDivergence, JsFailure, NativeReducer};
use super::runtime::{handle, on_engine, Background};
use super::store::{events, json_array, JsEvent, JsWake};
use super::store_options::{
    access_config, config, endpoint, mode_of, raft_config, seeds, ws_policy, AccessOptions,
    ClusterStoreOptions, EngineOptions, WsOptions,
};
use crate::config::StoreConfig;
use crate::error::ErrorCode;
use crate::store::metrics::ClientMetrics;
use crate::store::replicated::RaftAuthority;
use crate::store::{Access, Event, LocalAuthority, OrderingAuthority, ServerHandle};
use crate::transport::{Endpoint, Listener};
use bytes::Bytes;
use napi::Result;
use napi_derive::napi;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[napi(object)]
pub struct AuthorityPoll {
    pub first_seq: f64,
    /// Ordered actions as a JSON array text, or null when none.
    pub actions: Option<String>,
    pub more: bool,
    pub want_snapshot: bool,
    /// A state (JSON) replacing the JS side's, as of `resetSeq`, before `actions` (a
    /// replica that installed a Raft snapshot); null otherwise.
    pub reset_state: Option<String>,
    pub reset_seq: f64,
    pub events: Vec<JsEvent>,
    /// With a native reducer: the last sequence number it applied (nothing in `actions`)
    /// and the actions it refused since the last poll (and how many more, not listed).
    pub applied: f64,
    pub failures: Option<Vec<JsFailure>>,
    pub failures_dropped: f64,
    /// With a native reducer: the divergences it found since the last poll (issue 28's
    /// guard), absent when none, and how many more were not listed.
    pub divergences: Option<Vec<JsDivergence>>,
    pub divergences_dropped: f64,
}

/// A server store's ordering authority: assigns sequence numbers and keeps the log, or,
/// for the servers of a Raft group, holds the log the group orders.
#[napi]
pub struct NativeAuthority {
    inner: Arc<LocalAuthority>,
    raft: Option<Replicated>,
    cfg: StoreConfig,
    /// A replicated server's port, bound before its Raft node started, until `listen`.
    bound: Mutex<Option<(Listener, Arc<Access>)>>,
    /// What its endpoints count of their clients.
    clients: Arc<ClientMetrics>,
}

/// A replicated server's Raft node, started in the background: opening `dataDir` and
/// replaying its log take as long as they take, and Node's thread must not wait for
/// them. Its result: the node, or why it did not start (an error code and a message).
#[derive(Clone)]
struct Replicated {
    name: String,
    node: Arc<Background<Arc<RaftAuthority>, (ErrorCode, String)>>,
}

impl Replicated {
    /// The node, if it has started.
    fn now(&self) -> Option<Arc<RaftAuthority>> {
        self.node.now().and_then(|r| r.ok())
    }

    /// The node once started, or the refusal a call gets when it did not start.
    async fn ready(&self) -> std::result::Result<Arc<RaftAuthority>, (ErrorCode, String)> {
        self.node
            .ready()
            .await
            .unwrap_or_else(|| Err((ErrorCode::Closed, "the Raft node stopped".into())))
    }
}

/// A replicated store's log on this server (made at once; the group feeds it later).
fn log_of(
    hash: String,
    mode: crate::protocol::Mode,
    cfg: &StoreConfig,
    initial_state: String,
    wake: WakeFn,
    reducer: Option<&NativeReducer>,
) -> Result<Arc<LocalAuthority>, Code> {
    RaftAuthority::replica(
        hash,
        mode,
        cfg.clone(),
        Bytes::from(initial_state),
        Box::new(JsWake(wake)),
        reducer.map(|r| r.state.clone()),
    )
    .map_err(|e| from_io(e, "cannot open the store"))
}

impl NativeAuthority {
    /// A replicated store whose Raft side `start` makes on the engine's threads: this
    /// returns at once. Whatever waits for it (the port, submitOwn, removeMember,
    /// shutdown) waits there; a failure reaches the store's error output with its code.
    fn starting<F, Fut>(
        local: Arc<LocalAuthority>,
        name: String,
        cfg: StoreConfig,
        bound: Option<(Listener, Arc<Access>)>,
        clients: Arc<ClientMetrics>,
        start: F,
    ) -> NativeAuthority
    where
        F: FnOnce(Arc<LocalAuthority>) -> Fut + Send + 'static,
        Fut: std::future::Future<
                Output = std::result::Result<Arc<RaftAuthority>, (ErrorCode, String)>,
            > + Send
            + 'static,
    {
        let feed = local.clone();
        let node = Background::start(
            async move {
                start(feed.clone()).await.inspect_err(|(code, message)| {
                    feed.report(Event::error(*code, message.clone()));
                })
            },
            |_| {},
        );
        NativeAuthority {
            inner: local,
            raft: Some(Replicated {
                name,
                node: Arc::new(node),
            }),
            cfg,
            bound: Mutex::new(bound),
            clients,
        }
    }
}

#[napi]
impl NativeAuthority {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        hash: String,
        mode: String,
        initial_state: String,
        options: Option<EngineOptions>,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
        reducer: Option<&NativeReducer>,
    ) -> Result<Self, Code> {
        let cfg = config(options)?;
        let mode = mode_of(&mode)?;
        let wake = Box::new(JsWake(wake));
        let inner = match reducer {
            Some(r) => LocalAuthority::native(hash, mode, cfg.clone(), r.state.clone(), wake, None)
                .map_err(|e| js_error(ErrorCode::Reducer, e))?,
            None => LocalAuthority::new(hash, mode, cfg.clone(), Bytes::from(initial_state), wake),
        };
        Ok(NativeAuthority {
            inner,
            raft: None,
            cfg,
            bound: Mutex::new(None),
            clients: Arc::default(),
        })
    }

    /// A server of a replicated store: binds its port (which serves clients and the
    /// other servers alike), starts its Raft node on it, and joins the group through the
    /// seeds, in the background. The next `listen` serves on that port.
    #[napi(factory, catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn clustered(
        hash: String,
        mode: String,
        initial_state: String,
        options: Option<EngineOptions>,
        cluster: ClusterStoreOptions,
        host: Option<String>,
        port: Option<u32>,
        access: Option<AccessOptions>,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
        reducer: Option<&NativeReducer>,
    ) -> Result<Self, Code> {
        let cfg = config(options)?;
        let mode = mode_of(&mode)?;
        let ep = endpoint(host, port, None, "0.0.0.0")?;
        let Endpoint::Tcp { host, .. } = &ep else {
            unreachable!("no path given")
        };
        let host = host.clone();
        let seeds = seeds(&cluster)?;
        // One port serves clients and peers: without a secret, anyone could skip the
        // logins by speaking as a server.
        let logins = access
            .as_ref()
            .and_then(|a| a.logins.as_ref())
            .is_some_and(|l| !l.is_empty());
        if logins && cluster.secret.is_none() {
            return Err(js_error(
                ErrorCode::InvalidConfig,
                "invalid configuration: a replicated server with logins needs cluster.secret \
                 (its port serves clients and servers alike; without a secret anyone could \
                 speak to it as a server)",
            ));
        }
        let listener = {
            let _guard = handle().enter();
            Listener::bind(&ep).map_err(|e| from_io(e, &format!("cannot listen on {ep}")))?
        };
        let bound = listener.port().expect("a TCP listener has a port");
        let raft_cfg = raft_config(&cluster, &host, bound, access.as_ref())?;
        let clients = Arc::new(ClientMetrics::default());
        let access = Arc::new(access_config(access)?.with_metrics(clients.clone()));
        let local = log_of(hash, mode, &cfg, initial_state, wake, reducer)?;
        let name = raft_cfg.name.clone();
        let start = async move |feed: Arc<LocalAuthority>| {
            let raft = RaftAuthority::start_on(feed, raft_cfg).await.map_err(|e| {
                let code = io_code(&e);
                (
                    code,
                    format!("ReduxCluster.createServer: cannot start the Raft node: {e}"),
                )
            })?;
            raft.join(seeds);
            Ok(raft)
        };
        Ok(NativeAuthority::starting(
            local,
            name,
            cfg,
            Some((listener, access)),
            clients,
            start,
        ))
    }

    /// Another store on the group of `group` (a replicated server of this process): its
    /// actions go through the group's log with their own order, table and snapshots,
    /// and its clients reach it on the group's port by `hash`. Opened once the group's
    /// node has started (in the background, like the node).
    #[napi(factory, catch_unwind)]
    pub fn hosted(
        group: &NativeAuthority,
        hash: String,
        mode: String,
        initial_state: String,
        options: Option<EngineOptions>,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
        reducer: Option<&NativeReducer>,
    ) -> Result<Self, Code> {
        let cfg = config(options)?;
        let mode = mode_of(&mode)?;
        let Some(g) = group.raft.clone() else {
            return Err(js_error(
                ErrorCode::InvalidConfig,
                "invalid configuration: group must be a replicated server",
            ));
        };
        let local = log_of(hash, mode, &cfg, initial_state, wake, reducer)?;
        let name = g.name.clone();
        let open = async move |feed: Arc<LocalAuthority>| g.ready().await?.host(feed);
        Ok(NativeAuthority::starting(
            local,
            name,
            cfg,
            None,
            group.clients.clone(),
            open,
        ))
    }

    /// A replicated server's own actions (a JSON array text), ordered through the
    /// group. Resolves JSON `{ ok: true, run: [firstCounter, firstSeq, count] }` (count 0
    /// when none were new), or rejects with the code. The actions are applied here when
    /// `poll` brings them.
    #[napi(catch_unwind)]
    pub async fn submit_own(&self, actions: String) -> Result<String> {
        let raft = self.started().await?;
        let list: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&actions).map_err(|e| {
                rejection(
                    ErrorCode::InvalidAction,
                    format!("invalid action batch: {e}"),
                    None,
                )
            })?;
        let actions = list.into_iter().map(|r| r.get().to_string()).collect();
        let admitted = on_engine(async move { raft.submit_own(actions).await }).await?;
        let run = admitted.map_err(refused)?.run.map_or([0, 0, 0], |r| {
            [r.first_counter, r.first_seq, r.count as u64]
        });
        Ok(serde_json::json!({"ok": true, "run": run}).to_string())
    }

    /// The engine's metrics of this server as JSON text: `[{ name, help, type, samples:
    /// [{ labels, value } | { labels, buckets: [[le, count]], count, sum }] }]` (names
    /// without the `redux_cluster_` prefix; see the README's metrics table). Its clients,
    /// and in a replicated store its Raft node.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> String {
        let mut s = self.clients.snapshot(self.inner.outbox.events_dropped());
        if let Some(raft) = self.raft.as_ref().and_then(Replicated::now) {
            s.extend(raft.engine().metrics_snapshot());
        }
        serde_json::to_string(&s).unwrap_or_else(|_| "[]".into())
    }

    /// A replicated server's view of its group, as JSON text (null on a single server).
    #[napi(catch_unwind)]
    pub fn status(&self) -> Option<String> {
        let replicated = self.raft.as_ref()?;
        let Some(raft) = replicated.now() else {
            // Still opening its dataDir, or it did not start (the error said why).
            let role = match replicated.node.now() {
                Some(Err(_)) => "failed",
                _ => "starting",
            };
            return Some(
                serde_json::json!({
                    "nodeId": replicated.name, "address": null, "role": role,
                    "leaderId": null, "term": 0, "commitIndex": 0, "appliedIndex": 0,
                    "snapshotIndex": null, "members": [],
                })
                .to_string(),
            );
        };
        let st = raft.engine().state();
        // On the leader each member also says how far its log matches the leader's.
        let member = |m: &crate::consensus::NodeId, voter: bool| {
            serde_json::json!({
                "nodeId": m.name(),
                "address": m.addr(),
                "voter": voter,
                "matchIndex": st.matched.get(m.name()),
            })
        };
        let members: Vec<serde_json::Value> = st
            .voters
            .iter()
            .map(|m| member(m, true))
            .chain(st.learners.iter().map(|m| member(m, false)))
            .collect();
        Some(
            serde_json::json!({
                "nodeId": st.name,
                "address": st.addr,
                "role": st.role,
                "leaderId": st.leader,
                "term": st.term,
                "commitIndex": st.commit_index,
                "appliedIndex": st.last_applied,
                "snapshotIndex": st.snapshot_index,
                "members": members,
            })
            .to_string(),
        )
    }

    /// Removes a server from a replicated store's group (callable on any server; run by
    /// the leader). Resolves JSON `{ ok: true }`, or rejects with the code.
    #[napi(catch_unwind)]
    pub async fn remove_member(&self, node_name: String) -> Result<String> {
        let raft = self.started().await?;
        on_engine(async move { raft.engine().remove_node(&node_name).await })
            .await?
            .map_err(refused)?;
        Ok(serde_json::json!({"ok": true}).to_string())
    }

    /// Stops a replicated server's Raft node (bounded); nothing on a single server.
    #[napi(catch_unwind)]
    pub async fn shutdown(&self) -> Result<()> {
        // A node still starting is waited for, then stopped like a started one.
        if let Some(r) = self.raft.clone() {
            on_engine(async move {
                if let Some(Ok(raft)) = r.node.join().await {
                    raft.shutdown().await
                }
            })
            .await?;
        }
        Ok(())
    }

    /// The replicated server's Raft node once started, or the rejection a call gets.
    async fn started(&self) -> Result<Arc<RaftAuthority>> {
        let Some(r) = self.raft.clone() else {
            return Err(rejection(
                ErrorCode::InvalidConfig,
                "not a replicated server",
                None,
            ));
        };
        r.ready()
            .await
            .map_err(|(code, message)| rejection(code, message, None))
    }

    /// Orders an action dispatched on this store; returns its sequence number. With a
    /// native reducer, throws `ERR_REDUCER` when it refused the action (which is ordered
    /// all the same: every replica refuses it alike).
    #[napi(catch_unwind)]
    pub fn submit(&self, action: String) -> Result<f64, Code> {
        let (seq, applied) = self.inner.submit_checked(Bytes::from(action));
        applied.map_err(|e| js_error(ErrorCode::Reducer, e))?;
        Ok(seq as f64)
    }

    /// The last sequence number ordered.
    #[napi(getter, catch_unwind)]
    pub fn head(&self) -> f64 {
        self.inner.head() as f64
    }

    /// Wakes the connections for actions submitted since the last flush.
    #[napi(catch_unwind)]
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Ordered actions from `from` up to `upto`, at most `max`.
    #[napi(catch_unwind)]
    pub fn poll(&self, from: f64, upto: f64, max: u32) -> AuthorityPoll {
        let p = self
            .inner
            .poll(from as u64, upto as u64, max.max(1) as usize);
        AuthorityPoll {
            first_seq: p.first_seq as f64,
            actions: json_array(&p.actions),
            more: p.more,
            want_snapshot: p.want_snapshot,
            reset_state: p
                .reset
                .as_ref()
                .map(|s| String::from_utf8_lossy(&s.state).into_owned()),
            reset_seq: p.reset.as_ref().map_or(0.0, |s| s.seq as f64),
            events: events(p.events),
            applied: p.applied as f64,
            failures: failures(p.failures),
            failures_dropped: p.failures_dropped as f64,
            divergences: divergences(p.divergences),
            divergences_dropped: p.divergences_dropped as f64,
        }
    }

    /// The JS state (JSON) as of sequence number `seq`.
    #[napi(catch_unwind)]
    pub fn set_snapshot(&self, seq: f64, state: String) {
        self.inner.set_snapshot(seq as u64, Bytes::from(state));
    }

    /// Binds a TCP (`host`, `port`) or Unix (`path`) endpoint and serves this store on
    /// it; with `ws`, a WebSocket endpoint (on TCP).
    #[napi(catch_unwind)]
    pub fn listen(
        &self,
        host: Option<String>,
        port: Option<u32>,
        path: Option<String>,
        access: Option<AccessOptions>,
        ws: Option<WsOptions>,
    ) -> Result<NativeListener, Code> {
        let _guard = handle().enter();
        if let Some((listener, access)) = self.bound.lock().take() {
            let r = self
                .raft
                .clone()
                .expect("bound only for a replicated server");
            let ready = async move { r.ready().await.ok() };
            let h = ServerHandle::serve_when(ready, listener, self.cfg.clone(), access);
            return Ok(NativeListener {
                handle: Arc::new(h),
            });
        }
        let ep = endpoint(host, port, path, "0.0.0.0")?;
        let mut access = access_config(access)?.with_metrics(self.clients.clone());
        if let Some(ws) = ws {
            if matches!(ep, Endpoint::Unix(_)) {
                return Err(js_error(
                    ErrorCode::InvalidConfig,
                    "invalid configuration: a WebSocket server listens on TCP (host, port), not a Unix path",
                ));
            }
            access = access.with_ws(ws_policy(ws, &self.cfg)?);
        }
        let access = Arc::new(access);
        let h = match &self.raft {
            Some(r) => {
                let r = r.clone();
                let listener = Listener::bind(&ep)
                    .map_err(|e| from_io(e, &format!("cannot listen on {ep}")))?;
                let ready = async move { r.ready().await.ok() };
                ServerHandle::serve_when(ready, listener, self.cfg.clone(), access)
            }
            None => ServerHandle::listen(self.inner.clone(), &ep, self.cfg.clone(), access)
                .map_err(|e| from_io(e, &format!("cannot listen on {ep}")))?,
        };
        Ok(NativeListener {
            handle: Arc::new(h),
        })
    }

    /// Releases the JS callback so that this store no longer keeps the process alive.
    #[napi(catch_unwind)]
    pub fn detach(&self) {
        self.inner.outbox.detach();
    }
}

/// One listening endpoint of a server store.
#[napi]
pub struct NativeListener {
    handle: Arc<ServerHandle>,
}

#[napi]
impl NativeListener {
    /// The bound TCP port (null for a Unix socket).
    #[napi(getter, catch_unwind)]
    pub fn port(&self) -> Option<u32> {
        self.handle.port().map(u32::from)
    }

    /// The clients connected through this endpoint, as JSON text: `[{ clientId,
    /// address, login, transport, store, position, bytesIn, bytesOut, dispatched }]`
    /// (`store`: the hash of the store it is a client of, one of several on a group's
    /// port).
    #[napi(catch_unwind)]
    pub fn connections(&self) -> String {
        let list: Vec<serde_json::Value> = self
            .handle
            .connections()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "clientId": format!("{:016x}", c.client_id),
                    "address": c.peer,
                    "login": c.login,
                    "transport": c.transport,
                    "store": c.store,
                    "position": c.position.load(Ordering::Relaxed),
                    "bytesIn": c.bytes_in.load(Ordering::Relaxed),
                    "bytesOut": c.bytes_out.load(Ordering::Relaxed),
                    "dispatched": c.dispatched.load(Ordering::Relaxed),
                })
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    /// Stops listening and closes every connection of this endpoint.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        let h = self.handle.clone();
        on_engine(async move { h.close().await }).await
    }
}
