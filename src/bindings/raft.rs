//! The Raft engine for the JS layer (`src/js/consensus.js`): `NativeRaft`, one node.
//! Events are queued as JSON and JS is woken once per batch (it pulls them with
//! `poll()`), so a burst of applied commands crosses the boundary once.
//! Results cross as JSON `{ ok, ... }` objects; a failure rejects with the `code` the
//! engine chose (the JS layer rethrows it as the seed's RaftError).

use super::error::{from_io, js_error, refused, rejected, rejection, Code};
use super::js::{JsQueue, WakeFn};
use super::runtime::on_engine;
use crate::consensus::engine::{Handle, RaftConfig, RaftEvent};
use crate::consensus::machines::kv::{self, KvCommand, KvMachine};
use crate::consensus::state_machine::{applied, SmEvent};
use crate::consensus::NodeId;
use crate::error::ErrorCode;
use napi::Result;
use napi_derive::napi;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

#[napi(object)]
pub struct RaftOptions {
    pub node_id: String,
    /// @default '127.0.0.1'
    pub host: Option<String>,
    /// @default 0 (any free port)
    pub port: Option<u32>,
    pub advertise_host: Option<String>,
    /// @default 150
    pub election_timeout_min: Option<u32>,
    /// @default 300
    pub election_timeout_max: Option<u32>,
    /// @default 50
    pub heartbeat_interval: Option<u32>,
    /// @default 1000
    pub snapshot_threshold: Option<u32>,
    pub data_dir: Option<String>,
    pub cluster_secret: Option<String>,
    /// @default true
    pub forward_to_leader: Option<bool>,
    /// @default 5000
    pub commit_timeout: Option<u32>,
    /// @default false
    pub bootstrap: Option<bool>,
}

fn invalid(msg: impl Into<String>) -> napi::Error<Code> {
    js_error(ErrorCode::InvalidConfig, msg.into())
}

fn config(o: RaftOptions) -> std::result::Result<RaftConfig, napi::Error<Code>> {
    let port = o.port.unwrap_or(0);
    if port > 65535 {
        return Err(invalid(format!("port must be 0..65535, got {port}")));
    }
    let d = RaftConfig::local(&o.node_id);
    let cfg = RaftConfig {
        host: o.host.unwrap_or(d.host.clone()),
        port: port as u16,
        advertise_host: o.advertise_host,
        election_timeout_min: o
            .election_timeout_min
            .map_or(d.election_timeout_min, u64::from),
        election_timeout_max: o
            .election_timeout_max
            .map_or(d.election_timeout_max, u64::from),
        heartbeat_interval: o.heartbeat_interval.map_or(d.heartbeat_interval, u64::from),
        snapshot_threshold: o.snapshot_threshold.map_or(d.snapshot_threshold, u64::from),
        data_dir: o.data_dir.map(Into::into),
        secret: o.cluster_secret,
        forward: o.forward_to_leader.unwrap_or(d.forward),
        commit_timeout: o.commit_timeout.map_or(d.commit_timeout, |ms| {
            Duration::from_millis(ms.max(1) as u64)
        }),
        bootstrap: o.bootstrap.unwrap_or(d.bootstrap),
        ..d
    };
    cfg.validate().map_err(invalid)?;
    Ok(cfg)
}

/// The JSON a JS listener sees for a command: the user's own object for
/// `replicateCommand`, a `{ type, ... }` description for the state machine's writes.
fn command_js(c: KvCommand) -> Value {
    match c {
        KvCommand::Custom(v) => v,
        KvCommand::Set { key, value, .. } => json!({"type": "set", "key": key, "value": value}),
        KvCommand::Delete { key } => json!({"type": "delete", "key": key}),
        KvCommand::Cas { key, value, .. } => match value {
            Some(v) => json!({"type": "update", "key": key, "value": v}),
            None => json!({"type": "delete", "key": key}),
        },
        KvCommand::Batch { ops, .. } => json!({"type": "batch", "changes": ops
            .iter()
            .map(|o| match &o.value {
                Some(v) => json!({"key": o.key, "value": v}),
                None => json!({"key": o.key, "delete": true}),
            })
            .collect::<Vec<_>>()}),
    }
}

fn members_js(ms: &[NodeId]) -> Value {
    ms.iter()
        .map(|m| json!({"nodeId": m.name(), "address": m.addr()}))
        .collect()
}

fn event_js(e: RaftEvent) -> Value {
    match e {
        RaftEvent::LeaderElected { leader, term } => {
            json!({"type": "leader_elected", "leaderId": leader, "term": term})
        }
        RaftEvent::BecameFollower { term } => json!({"type": "became_follower", "term": term}),
        RaftEvent::Role { role, term } => json!({"type": "role", "role": role, "term": term}),
        RaftEvent::PeerConnected(n) => json!({"type": "peer_connected", "nodeId": n}),
        RaftEvent::PeerDisconnected(n) => json!({"type": "peer_disconnected", "nodeId": n}),
        RaftEvent::Members { voters, learners } => json!({
            "type": "members", "voters": members_js(&voters), "learners": members_js(&learners)
        }),
        RaftEvent::State(SmEvent::Applied {
            index,
            command,
            response,
            ..
        }) => match applied::<KvMachine>(&command, &response) {
            Some((command, response)) => json!({
                "type": "command_applied",
                "command": command_js(command),
                "entry": {"index": index},
                "error": response.error,
            }),
            // Not a key-value command (a peer's garbage): refused, said as such.
            None => json!({
                "type": "command_applied",
                "command": null,
                "entry": {"index": index},
                "error": ErrorCode::Invalid,
            }),
        },
        RaftEvent::State(SmEvent::SnapshotCreated { id, index, size }) => json!({
            "type": "snapshot_created", "snapshotId": id, "index": index, "stateSize": size
        }),
        RaftEvent::State(SmEvent::SnapshotRestored { id, index, size }) => json!({
            "type": "snapshot_restored", "snapshotId": id, "index": index, "stateSize": size
        }),
        RaftEvent::Warning { code, message } => {
            json!({"type": "error", "code": code, "message": message})
        }
    }
}

/// One Raft node.
#[napi]
pub struct NativeRaft {
    engine: Handle<KvMachine>,
    events: Arc<JsQueue>,
}

/// Starts a Raft node off Node's thread (opening `dataDir` and replaying its log take as
/// long as they take; the event loop runs on meanwhile): resolves to the node, or rejects
/// with the error's code (`ERR_INVALID_CONFIG`, `ERR_ADDR_IN_USE`, `ERR_DATA_FORMAT`...).
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub async fn start_raft(
    options: RaftOptions,
    #[napi(ts_arg_type = "() => void")] wake: WakeFn,
) -> Result<NativeRaft> {
    let cfg = config(options).map_err(rejected)?;
    let events = Arc::new(JsQueue::new(wake, ErrorCode::EventsDropped));
    let ev = events.clone();
    let sink = Arc::new(move |e: RaftEvent| {
        if matches!(e, RaftEvent::Role { .. }) {
            return; // @unrdf/consensus has no such event (its state changes are above)
        }
        // One per committed command: built only while JS listens for them.
        if matches!(e, RaftEvent::State(SmEvent::Applied { .. })) && !ev.entry_events() {
            return;
        }
        ev.push(event_js(e));
    });
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let engine = on_engine(kv::start(cfg, sink))
        .await?
        .map_err(|e| rejected(from_io(e, &format!("cannot start the Raft node on {addr}"))))?;
    Ok(NativeRaft { engine, events })
}

#[napi]
impl NativeRaft {
    /// The queued events, as a JSON array.
    #[napi(catch_unwind)]
    pub fn poll(&self) -> String {
        self.events.take()
    }

    /// The current leader's nodeId, if known (without building the whole `state()`).
    #[napi(getter, catch_unwind)]
    pub fn leader(&self) -> Option<String> {
        self.engine.status().leader
    }

    #[napi(getter, catch_unwind)]
    pub fn address(&self) -> String {
        self.engine.member().addr()
    }

    /// `getState()` as JSON.
    #[napi(catch_unwind)]
    pub fn state(&self) -> String {
        let s = self.engine.state();
        json!({
            "nodeId": s.name, "address": s.addr, "role": s.role, "term": s.term,
            "leaderId": s.leader, "votedFor": s.voted_for, "lastLogIndex": s.last_log_index,
            "commitIndex": s.commit_index, "lastApplied": s.last_applied,
            "snapshotIndex": s.snapshot_index, "voters": members_js(&s.voters),
            "learners": members_js(&s.learners), "initialized": s.initialized,
        })
        .to_string()
    }

    /// Commits a command (JSON of the engine's `Command`); resolves to `{ ok, ... }`.
    #[napi(catch_unwind)]
    pub async fn write(&self, command: String) -> Result<String> {
        let cmd: KvCommand = serde_json::from_str(&command)
            .map_err(|e| napi::Error::from_reason(format!("bad command: {e}")))?;
        let c = self.engine.write(&cmd).await.map_err(refused)?;
        Ok(json!({
            "ok": true, "index": c.index, "previous": c.response.previous,
            "version": c.response.version, "error": c.response.error,
        })
        .to_string())
    }

    #[napi(catch_unwind)]
    pub async fn read_barrier(&self) -> Result<String> {
        let i = self.engine.read_barrier().await.map_err(refused)?;
        Ok(json!({"ok": true, "index": i}).to_string())
    }

    #[napi(catch_unwind)]
    pub async fn add_node(&self, node_id: String, address: String) -> Result<String> {
        let m = NodeId::at(&node_id, &address)
            .map_err(|e| rejection(ErrorCode::InvalidConfig, e.to_string(), None))?;
        self.engine.add_node(m).await.map_err(refused)?;
        Ok(json!({"ok": true}).to_string())
    }

    #[napi(catch_unwind)]
    pub async fn remove_node(&self, node_id: String) -> Result<String> {
        self.engine.remove_node(&node_id).await.map_err(refused)?;
        Ok(json!({"ok": true}).to_string())
    }

    /// Every peer's last probe by the engine, as JSON: `{ [name]: { up, failures,
    /// latencyMs, checkedAt } }`.
    #[napi(catch_unwind)]
    pub fn peer_health(&self) -> String {
        serde_json::to_string(&self.engine.peer_health()).unwrap_or_else(|_| "{}".into())
    }

    /// Pings a node by address; `{ ok, latencyMs, leaderId, term }`.
    #[napi(catch_unwind)]
    pub async fn ping(&self, address: String, timeout_ms: u32) -> Result<String> {
        let t = Duration::from_millis(timeout_ms.max(1) as u64);
        let start = std::time::Instant::now();
        let st = self.engine.ping(&address, t).await.map_err(refused)?;
        Ok(json!({
            "ok": true, "latencyMs": start.elapsed().as_secs_f64() * 1000.0,
            "leaderId": st.leader, "term": st.term,
        })
        .to_string())
    }

    #[napi(catch_unwind)]
    pub fn get(&self, key: String) -> Option<String> {
        self.engine.kv().get(&key).map(|v| v.to_string())
    }

    /// The key's version (0: absent) and value, as `[version, value]` JSON.
    #[napi(catch_unwind)]
    pub fn versioned(&self, key: String) -> String {
        self.engine.kv().read(|s| match s.data.get(&key) {
            Some(v) => json!([v.version, v.value]).to_string(),
            None => "[0,null]".into(),
        })
    }

    #[napi(catch_unwind)]
    pub fn has(&self, key: String) -> bool {
        self.engine.kv().read(|s| s.data.contains_key(&key))
    }

    #[napi(catch_unwind)]
    pub fn size(&self) -> u32 {
        self.engine.kv().read(|s| s.data.len() as u32)
    }

    /// All entries, in key order, as a JSON array of `[key, value]`.
    #[napi(catch_unwind)]
    pub fn entries(&self) -> String {
        self.engine.kv().read(|s| {
            Value::Array(s.data.iter().map(|(k, v)| json!([k, v.value])).collect()).to_string()
        })
    }

    #[napi(catch_unwind)]
    pub fn workflow(&self, id: String) -> Option<String> {
        self.engine
            .kv()
            .read(|s| s.workflows.get(&id).map(|v| v.to_string()))
    }

    /// Every recorded workflow, in id order, as a JSON array of `[id, state]`.
    #[napi(catch_unwind)]
    pub fn workflows(&self) -> String {
        self.engine.kv().read(|s| {
            Value::Array(s.workflows.iter().map(|(k, v)| json!([k, v])).collect()).to_string()
        })
    }

    /// Applied commands, and the number of commands ever applied.
    #[napi(catch_unwind)]
    pub fn commands(&self) -> f64 {
        self.engine.kv().read(|s| s.commands as f64)
    }

    /// Whether JS listens for `command_applied` (until it does, none is built or queued).
    #[napi(catch_unwind)]
    pub fn set_entry_events(&self, on: bool) {
        self.events.set_entry_events(on);
    }

    #[napi(catch_unwind)]
    pub fn set_snapshot_interval(&self, n: u32) {
        self.engine.set_snapshot_interval(n as u64);
    }

    /// Stops the node, then releases the event callback (so the process can exit). The
    /// node's tasks have all ended when its shutdown returns, so no event can follow.
    #[napi(catch_unwind)]
    pub async fn shutdown(&self) -> Result<()> {
        let e = self.engine.clone();
        let events = self.events.clone();
        on_engine(async move {
            e.shutdown().await;
            events.detach();
        })
        .await
    }
}
