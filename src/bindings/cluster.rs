//! noex's `Cluster` on the membership runtime: `NativeCluster` (one running node) and the
//! `NodeId` helpers. The JS layer (`src/js/cluster.js`) adds the singleton API, events
//! and error classes.

use super::error::{from_io, js_error, Code};
use super::js::{JsQueue, WakeFn};
use super::runtime::{handle, on_engine};
use crate::error::ErrorCode;
use crate::membership::runtime::{Cluster, ClusterConfig, ClusterEvent};
use crate::membership::state::MembershipConfig;
use crate::membership::NodeId;
use crate::protocol::FrameLimits;
use napi::Result;
use napi_derive::napi;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[napi(object)]
pub struct ClusterOptions {
    pub node_name: String,
    /// @default '0.0.0.0'
    pub host: Option<String>,
    /// @default 4369
    pub port: Option<u32>,
    /// The host in this node's id, as other machines reach it.
    /// @default host, or the machine's hostname when host is a wildcard address
    pub advertise_host: Option<String>,
    pub seeds: Option<Vec<String>>,
    pub cluster_secret: Option<String>,
    /// TLS under every membership link, accepted and dialed.
    pub tls: Option<ClusterTls>,
    /// @default 5000
    pub heartbeat_interval_ms: Option<f64>,
    /// @default 3
    pub heartbeat_miss_threshold: Option<u32>,
    /// @default 1000
    pub reconnect_base_delay_ms: Option<f64>,
    /// @default 30000
    pub reconnect_max_delay_ms: Option<f64>,
}

/// One certificate per node, presented either way (it needs both the serverAuth and the
/// clientAuth usage when `ca` is given).
#[napi(object)]
pub struct ClusterTls {
    /// The node's certificate chain (PEM).
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
    /// The CA peers' certificates must be signed by; with it, TLS is mutual.
    /// @default the system's roots, and no client certificates asked for
    pub ca: Option<String>,
}

#[napi(object)]
pub struct NodeInfoJs {
    pub id: String,
    pub host: String,
    pub port: u32,
    pub status: String,
    pub process_count: u32,
    /// Unix ms of the last heartbeat (0 when none yet).
    pub last_heartbeat_at: f64,
    pub uptime_ms: f64,
}

// napi registers the exported functions only outside `cfg(test)`.
#[cfg_attr(test, allow(dead_code))]
#[napi(object)]
pub struct NodeIdVerdict {
    /// The id in canonical form (`name@host:port`, an IPv6 host bare), when valid.
    pub id: Option<String>,
    /// When invalid: the part at fault (noex's `InvalidNodeIdError.value`)…
    pub value: Option<String>,
    /// …and noex's reason.
    pub reason: Option<String>,
}

impl NodeIdVerdict {
    fn of(r: std::result::Result<NodeId, crate::link::InvalidNodeId>) -> NodeIdVerdict {
        match r {
            Ok(n) => NodeIdVerdict {
                id: Some(n.to_string()),
                value: None,
                reason: None,
            },
            Err(e) => NodeIdVerdict {
                id: None,
                value: Some(e.value),
                reason: Some(e.reason.into()),
            },
        }
    }
}

fn invalid(reason: impl Into<String>) -> napi::Error<Code> {
    js_error(ErrorCode::InvalidConfig, reason.into())
}

fn ms(
    v: Option<f64>,
    name: &str,
    default: u64,
) -> std::result::Result<Duration, napi::Error<Code>> {
    match v {
        None => Ok(Duration::from_millis(default)),
        Some(x) if x.is_finite() && x >= 1.0 && x.fract() == 0.0 => {
            Ok(Duration::from_millis(x as u64))
        }
        Some(x) => Err(invalid(format!(
            "{name} must be a positive integer, got {x}"
        ))),
    }
}

fn config(o: ClusterOptions) -> std::result::Result<ClusterConfig, napi::Error<Code>> {
    let port = o.port.unwrap_or(4369);
    if port > 65535 {
        return Err(invalid(format!(
            "port must be between 0 and 65535, got {port}"
        )));
    }
    let host = o.host.unwrap_or_else(|| "0.0.0.0".into());
    // The id must be valid before anything binds.
    let probe_host = o.advertise_host.clone().unwrap_or_else(|| host.clone());
    NodeId::create(&o.node_name, &probe_host, port.max(1)).map_err(|e| invalid(e.reason))?;
    let seeds = o
        .seeds
        .unwrap_or_default()
        .iter()
        .map(|s| NodeId::parse(s).map_err(|e| invalid(format!("seed {s:?}: {}", e.reason))))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let heartbeat_interval = ms(o.heartbeat_interval_ms, "heartbeatIntervalMs", 5000)?;
    let miss_threshold = o.heartbeat_miss_threshold.unwrap_or(3);
    if miss_threshold == 0 {
        return Err(invalid("heartbeatMissThreshold must be at least 1"));
    }
    let reconnect_base = ms(o.reconnect_base_delay_ms, "reconnectBaseDelayMs", 1000)?;
    let reconnect_max = ms(o.reconnect_max_delay_ms, "reconnectMaxDelayMs", 30000)?;
    if reconnect_base > reconnect_max {
        return Err(invalid(
            "reconnectBaseDelayMs must not exceed reconnectMaxDelayMs",
        ));
    }
    if o.cluster_secret.as_deref() == Some("") {
        return Err(invalid("clusterSecret must not be empty"));
    }
    let tls = match &o.tls {
        Some(t) => Some(
            crate::transport::tls::PeerTls::new(&t.cert, &t.key, t.ca.as_deref())
                .map_err(|e| invalid(e.to_string()))?,
        ),
        None => None,
    };
    Ok(ClusterConfig {
        tls,
        node_name: o.node_name,
        host,
        port: port as u16,
        advertise_host: o.advertise_host,
        seeds,
        cluster_secret: o.cluster_secret,
        membership: MembershipConfig {
            heartbeat_interval,
            miss_threshold,
            reconnect_base,
            reconnect_max,
            rng_seed: rand::random(),
        },
        limits: FrameLimits {
            max_frame: 1 << 20,
            compress_threshold: usize::MAX,
        },
    })
}

/// One running cluster node.
#[napi]
pub struct NativeCluster {
    inner: Arc<Cluster>,
    /// Its events for JS, on the same bounded queue as the other bindings' (JS pulls
    /// them with `takeEvents` when woken).
    events: Arc<JsQueue>,
}

#[napi]
impl NativeCluster {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        options: ClusterOptions,
        #[napi(ts_arg_type = "() => void")] wake: WakeFn,
    ) -> Result<Self, Code> {
        let cfg = config(options)?;
        let events = Arc::new(JsQueue::new(wake, ErrorCode::EventsDropped));
        let ev = events.clone();
        // `kind`: up | down | status | warning; `id`: the node (a warning's code);
        // `reason`: the down reason, the new status, or the warning's message.
        let sink = Arc::new(move |e: ClusterEvent| {
            ev.push(match e {
                ClusterEvent::NodeUp(id) => {
                    json!({"kind": "up", "id": id.to_string(), "reason": ""})
                }
                ClusterEvent::NodeDown(id, r) => {
                    json!({"kind": "down", "id": id.to_string(), "reason": r.as_str()})
                }
                ClusterEvent::Status(s) => {
                    json!({"kind": "status", "id": "", "reason": s.as_str()})
                }
                ClusterEvent::Warning { code, message } => {
                    json!({"kind": "warning", "id": code, "reason": message})
                }
            })
        });
        let _guard = handle().enter();
        let inner = Cluster::start(cfg, sink).map_err(|e| from_io(e, "Cluster.start"))?;
        Ok(NativeCluster {
            inner: Arc::new(inner),
            events,
        })
    }

    /// Every event queued since the last call, as a JSON array text.
    #[napi(catch_unwind)]
    pub fn take_events(&self) -> String {
        self.events.take()
    }

    #[napi(getter, catch_unwind)]
    pub fn local_id(&self) -> String {
        self.inner.local().to_string()
    }

    #[napi(getter, catch_unwind)]
    pub fn status(&self) -> String {
        self.inner.status().as_str().into()
    }

    #[napi(catch_unwind)]
    pub fn nodes(&self) -> Vec<NodeInfoJs> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as f64;
        self.inner
            .nodes()
            .into_iter()
            .map(|n| NodeInfoJs {
                host: n.id.host().to_string(),
                port: n.id.port() as u32,
                id: n.id.to_string(),
                status: n.status.as_str().into(),
                process_count: n.process_count,
                last_heartbeat_at: n.since_heartbeat_ms.map(|d| now - d as f64).unwrap_or(0.0),
                uptime_ms: n.uptime_ms as f64,
            })
            .collect()
    }

    /// Announces the leave to every peer, closes everything, then releases the wake-up.
    #[napi(catch_unwind)]
    pub async fn stop(&self) -> Result<()> {
        let c = self.inner.clone();
        on_engine(async move { c.stop().await }).await?;
        // What stop() said last is queued: JS takes it after this resolves. The callback
        // goes now, so that it no longer keeps the process alive.
        self.events.detach();
        Ok(())
    }
}

/// noex's `NodeId.parse`, answered rather than thrown: the JS `NodeId` makes its
/// `InvalidNodeIdError` from the verdict, so the rules live here only.
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub fn node_id_parse(id: String) -> NodeIdVerdict {
    NodeIdVerdict::of(NodeId::parse(&id))
}

/// noex's `NodeId.create`: the name, the host, then the port (noex's order; a port that
/// is not an integer is refused as noex refuses it).
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub fn node_id_create(name: String, host: String, port: f64) -> NodeIdVerdict {
    if let Err(e) = NodeId::create(&name, &host, 1) {
        return NodeIdVerdict::of(Err(e));
    }
    let refused = |reason: &str| NodeIdVerdict {
        id: None,
        value: Some(format!("{name}@{host}:{port}")),
        reason: Some(reason.into()),
    };
    if port.fract() != 0.0 || !port.is_finite() {
        return refused("port must be an integer");
    }
    if !(1.0..=65535.0).contains(&port) {
        return refused("port must be between 1 and 65535");
    }
    NodeIdVerdict::of(NodeId::create(&name, &host, port as u32))
}
