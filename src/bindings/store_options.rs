//! The store's options as JS passes them (`#[napi(object)]` structs), checked and turned
//! into the engine's: `StoreConfig`, endpoints, TLS and logins (`Access`), a replicated
//! server's `RaftConfig`, WebSocket policy. Each invalid option is an `ERR_INVALID_CONFIG`
//! naming it.

use super::error::{from_core, js_error, Code};
use crate::config::StoreConfig;
use crate::consensus::engine::RaftConfig;
use crate::consensus::NodeId;
use crate::error::ErrorCode;
use crate::protocol::Mode;
use crate::store::auth::Logins;
use crate::store::ban::BanPolicy;
use crate::store::client::Credentials;
use crate::store::{Access, Caps};
use crate::transport::tls::{client_config, server_config};
use crate::transport::Endpoint;
use napi_derive::napi;
use std::path::PathBuf;
use std::time::Duration;

type Result<T, S> = std::result::Result<T, napi::Error<S>>;

/// Engine tuning shared by servers and clients. Every field is optional.
#[napi(object)]
#[derive(Default)]
pub struct EngineOptions {
    /// Largest frame (one message, after decompression) sent or accepted, in bytes.
    /// @default 268435456 (256 MiB)
    pub max_frame_size: Option<f64>,
    /// Frames larger than this are deflate-compressed, in bytes.
    /// @default 262144 (256 KiB)
    pub compress_threshold: Option<f64>,
    /// Most dispatched actions a client holds until the server acknowledges them.
    /// @default 1000000
    pub queue_limit: Option<f64>,
    /// Ordered actions a server keeps for reconnecting clients.
    /// @default 100000
    pub log_retention: Option<f64>,
    /// First reconnect delay of a client, in ms.
    /// @default 100
    pub reconnect_initial_ms: Option<f64>,
    /// Largest reconnect delay of a client, in ms.
    /// @default 5000
    pub reconnect_max_ms: Option<f64>,
    /// Time a peer has to complete the handshake, in ms.
    /// @default 10000
    pub handshake_timeout_ms: Option<f64>,
    /// A server silent this long (no byte, no heartbeat) is left by its client, in ms; a
    /// server drops a client silent for twenty times this (10 s by default).
    /// @default 500
    pub liveness_timeout_ms: Option<f64>,
    /// An idle server sends its clients a heartbeat this often, in ms (an idle client,
    /// every three intervals).
    /// @default 150 (at most 3/10 of livenessTimeoutMs)
    pub heartbeat_interval_ms: Option<f64>,
}

pub(super) fn count(v: Option<f64>, name: &str, default: usize) -> Result<usize, Code> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9.0e15 => Ok(x as usize),
        Some(x) => Err(js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: {name} must be a non-negative integer, got {x}"),
        )),
    }
}

pub(super) fn config(o: Option<EngineOptions>) -> Result<StoreConfig, Code> {
    let o = o.unwrap_or_default();
    let d = StoreConfig::default();
    let ms = |v: Option<f64>, name: &str, default: Duration| -> Result<Duration, Code> {
        Ok(Duration::from_millis(
            count(v, name, default.as_millis() as usize)? as u64,
        ))
    };
    let mut c = d.clone();
    c.limits.max_frame = count(o.max_frame_size, "maxFrameSize", d.limits.max_frame)?;
    c.limits.compress_threshold = count(
        o.compress_threshold,
        "compressThreshold",
        d.limits.compress_threshold,
    )?;
    c.queue_limit = count(o.queue_limit, "queueLimit", d.queue_limit)?;
    c.log_retention = count(o.log_retention, "logRetention", d.log_retention)?;
    c.reconnect_initial = ms(
        o.reconnect_initial_ms,
        "reconnectInitialMs",
        d.reconnect_initial,
    )?;
    c.reconnect_max = ms(o.reconnect_max_ms, "reconnectMaxMs", d.reconnect_max)?;
    c.handshake_timeout = ms(
        o.handshake_timeout_ms,
        "handshakeTimeoutMs",
        d.handshake_timeout,
    )?;
    c.liveness.timeout = ms(
        o.liveness_timeout_ms,
        "livenessTimeoutMs",
        d.liveness.timeout,
    )?;
    // Given only a timeout, the heartbeat scales with it (three fit inside it).
    let heartbeat = d.liveness.heartbeat.min(c.liveness.timeout * 3 / 10);
    c.liveness.heartbeat = ms(o.heartbeat_interval_ms, "heartbeatIntervalMs", heartbeat)?;
    c.batch_bytes = c.batch_bytes.min(c.limits.max_frame / 2);
    c.validate().map_err(from_core)?;
    Ok(c)
}

pub(super) fn endpoint(
    host: Option<String>,
    port: Option<u32>,
    path: Option<String>,
    default_host: &str,
) -> Result<Endpoint, Code> {
    // A WebSocket server, as redux-cluster-ws's client names it: `host: 'ws://name'`
    // (or `wss://`), `port`, and an optional path.
    if let Some(h) = host
        .as_deref()
        .filter(|h| h.starts_with("ws://") || h.starts_with("wss://"))
    {
        let mut url = h.trim_end_matches('/').to_string();
        if let Some(port) = port {
            url = format!("{url}:{port}");
        }
        url.push_str(path.as_deref().unwrap_or("/"));
        return crate::transport::ws::WsUrl::parse(&url)
            .map(Endpoint::Ws)
            .map_err(|e| {
                js_error(
                    ErrorCode::InvalidConfig,
                    format!("invalid configuration: {e}"),
                )
            });
    }
    if let Some(p) = path {
        return Ok(Endpoint::Unix(PathBuf::from(p)));
    }
    let port = port.unwrap_or(10001);
    if port > 65535 {
        return Err(js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: port must be 0..65535, got {port}"),
        ));
    }
    Ok(Endpoint::Tcp {
        host: host.unwrap_or_else(|| default_host.to_string()),
        port: port as u16,
    })
}

/// Who may connect to a server endpoint.
#[napi(object)]
pub struct AccessOptions {
    /// Login name → password. Without it, anyone may connect.
    pub logins: Option<std::collections::HashMap<String, String>>,
    /// Failed logins from one address before it is locked out.
    /// @default 5
    pub ban_attempts: Option<f64>,
    /// How long a locked-out address stays locked, in ms.
    /// @default 10800000 (3 hours)
    pub ban_duration_ms: Option<f64>,
    /// TLS: the server's certificate chain (PEM). With `tlsKey`, the endpoint speaks TLS.
    pub tls_cert: Option<String>,
    /// TLS: the server's private key (PEM).
    pub tls_key: Option<String>,
    /// TLS: when set, clients must present a certificate signed by this CA (PEM).
    pub tls_ca: Option<String>,
    /// Most clients served at once (past it: ERR_BUSY). Default: no cap.
    pub limit: Option<f64>,
    /// Most clients served at once from one address. Default: no cap.
    pub limit_per_address: Option<f64>,
}

/// A client's login and TLS settings.
#[napi(object)]
#[derive(Default)]
pub struct ClientSecurity {
    pub login: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS (to a TCP endpoint).
    pub tls: Option<bool>,
    /// The CA to trust (PEM); without it, the system's roots.
    pub tls_ca: Option<String>,
    /// The client's certificate (PEM), for servers that require one.
    pub tls_cert: Option<String>,
    /// The client's private key (PEM).
    pub tls_key: Option<String>,
}

pub(super) fn tls_error(e: crate::transport::tls::TlsConfigError) -> napi::Error<Code> {
    js_error(ErrorCode::InvalidConfig, e.to_string())
}

pub(super) fn credentials(o: ClientSecurity) -> Result<Credentials, Code> {
    let mut c = match (o.login, o.password) {
        (None, None) => Credentials::default(),
        (Some(l), Some(p)) => Credentials::new(&l, &p),
        _ => {
            return Err(js_error(
                ErrorCode::InvalidConfig,
                "invalid configuration: login and password go together",
            ))
        }
    };
    if o.tls.unwrap_or(false) {
        let identity = match (&o.tls_cert, &o.tls_key) {
            (Some(c), Some(k)) => Some((c.as_str(), k.as_str())),
            (None, None) => None,
            _ => {
                return Err(js_error(
                    ErrorCode::InvalidConfig,
                    "invalid configuration: tls cert and key go together",
                ))
            }
        };
        c.tls = Some(client_config(o.tls_ca.as_deref(), identity).map_err(tls_error)?);
    }
    Ok(c)
}

pub(super) fn access_config(o: Option<AccessOptions>) -> Result<Access, Code> {
    let Some(o) = o else {
        return Ok(Access::default());
    };
    let d = BanPolicy::default();
    let attempts = count(o.ban_attempts, "ban.attempts", d.attempts as usize)?;
    if attempts == 0 || attempts > u32::MAX as usize {
        return Err(js_error(
            ErrorCode::InvalidConfig,
            "invalid configuration: ban.attempts must be at least 1",
        ));
    }
    let duration = count(
        o.ban_duration_ms,
        "ban.durationMs",
        d.duration.as_millis() as usize,
    )?;
    let tls = match (&o.tls_cert, &o.tls_key) {
        (Some(c), Some(k)) => Some(server_config(c, k, o.tls_ca.as_deref()).map_err(tls_error)?),
        (None, None) if o.tls_ca.is_none() => None,
        _ => {
            return Err(js_error(
                ErrorCode::InvalidConfig,
                "invalid configuration: tls needs both cert and key",
            ))
        }
    };
    let cap = |v: Option<f64>, what: &str| -> Result<Option<usize>, Code> {
        match v {
            None => Ok(None),
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
            Some(_) => Err(js_error(
                ErrorCode::InvalidConfig,
                format!("invalid configuration: {what} must be an integer of at least 1"),
            )),
        }
    };
    let caps = Caps::new(
        cap(o.limit, "limit")?,
        cap(o.limit_per_address, "limitPerAddress")?,
    );
    let logins = o.logins.unwrap_or_default();
    Ok(Access::new(
        Logins::new(logins.iter().map(|(u, p)| (u.as_str(), p.as_str()))),
        BanPolicy {
            attempts: attempts as u32,
            duration: Duration::from_millis(duration as u64),
        },
    )
    .with_tls(tls)
    .with_caps(caps))
}

/// How a server joins the Raft group of its store (`createServer({ cluster })`).
#[napi(object)]
pub struct ClusterStoreOptions {
    /// This server's name in the group (unique, stable across restarts).
    pub node_name: String,
    /// Other servers, as `name@host:port` (the port they serve the store on); some or
    /// all of them.
    pub seeds: Option<Vec<String>>,
    /// The host the others dial (in this server's address): the server's `host`, or
    /// 127.0.0.1 when that is a wildcard.
    pub advertise_host: Option<String>,
    /// The port the others dial, when it is not the one this server listens on (a
    /// proxy, a NAT). @default the server's port
    pub advertise_port: Option<u32>,
    /// With TLS: the CA the other servers' certificates are signed by (PEM).
    /// @default the server's `tls.ca`, else the system's roots
    pub ca: Option<String>,
    /// Where the Raft log and vote are kept (durable); without it, memory only.
    pub data_dir: Option<String>,
    /// Shared by the servers of the group: authenticates their connections.
    pub secret: Option<String>,
    /// Lowest election timeout in ms (the highest is twice it). @default 150
    pub election_timeout: Option<u32>,
    /// @default 50
    pub heartbeat_interval: Option<u32>,
    /// Raft log entries between snapshots of the store (the log before one is then
    /// dropped, so a restart replays only what came after it). @default 10000
    pub snapshot_threshold: Option<u32>,
    /// Founds a one-server group at once (else the smallest name among fresh servers
    /// told about each other founds it). @default false
    pub bootstrap: Option<bool>,
    /// Joins the group as a replica: it applies the committed order and serves clients
    /// like any server (their dispatches go to the leader), but never votes, never
    /// counts toward a quorum and never becomes the leader, so replicas add fan-out
    /// without slowing commits. Needs `seeds` (voters of a running or forming group).
    /// @default false
    pub replica: Option<bool>,
}

pub(super) fn raft_config(
    c: &ClusterStoreOptions,
    host: &str,
    port: u16,
    access: Option<&AccessOptions>,
) -> Result<RaftConfig, Code> {
    let invalid = |m: String| {
        js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: cluster.{m}"),
        )
    };
    NodeId::create(&c.node_name, "localhost", 1)
        .map_err(|e| invalid(format!("nodeName: {}", e.reason)))?;
    let advertise = c.advertise_host.clone().or_else(|| {
        let wildcard = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        wildcard.then(|| "127.0.0.1".to_string())
    });
    let port = match c.advertise_port {
        Some(p) if p == 0 || p > 65535 => {
            return Err(invalid(format!("advertisePort must be 1..65535, got {p}")))
        }
        Some(p) => p as u16,
        None => port,
    };
    // The servers dial each other as they are served: with TLS when the port speaks it,
    // presenting their own certificate (for ports that require client certificates).
    let tls = match access.map(|a| (&a.tls_cert, &a.tls_key, &a.tls_ca)) {
        Some((Some(cert), Some(key), tls_ca)) => {
            let ca = c.ca.as_deref().or(tls_ca.as_deref());
            Some(client_config(ca, Some((cert, key))).map_err(tls_error)?)
        }
        _ => None,
    };
    let d = RaftConfig::local(&c.node_name);
    // One electionTimeout here: the range is it and twice it.
    let min = c.election_timeout.map_or(d.election_timeout_min, u64::from);
    let cfg = RaftConfig {
        host: host.to_string(),
        port,
        listen: false,
        tls,
        advertise_host: advertise,
        election_timeout_min: min,
        election_timeout_max: min * 2,
        heartbeat_interval: c.heartbeat_interval.map_or(d.heartbeat_interval, u64::from),
        // A store's log is its action log: snapshots less often than a key-value store.
        snapshot_threshold: c.snapshot_threshold.map_or(10_000, u64::from),
        data_dir: c.data_dir.as_ref().map(PathBuf::from),
        secret: c.secret.clone(),
        bootstrap: c.bootstrap.unwrap_or(false),
        replica: c.replica.unwrap_or(false),
        ..d
    };
    if cfg.replica && c.seeds.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(invalid(
            "replica needs seeds: a replica joins a group through its voters".into(),
        ));
    }
    cfg.validate().map_err(|m| {
        js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: cluster: {m}"),
        )
    })?;
    Ok(cfg)
}

pub(super) fn seeds(c: &ClusterStoreOptions) -> Result<Vec<NodeId>, Code> {
    c.seeds
        .iter()
        .flatten()
        .map(|s| {
            NodeId::parse(s).map_err(|e| {
                js_error(
                    ErrorCode::InvalidConfig,
                    format!("invalid configuration: cluster.seeds: {s:?}: {}", e.reason),
                )
            })
        })
        .filter(|m: &Result<NodeId, Code>| m.as_ref().map_or(true, |m| m.name() != c.node_name))
        .collect()
}

pub(super) fn mode_of(mode: &str) -> Result<Mode, Code> {
    Mode::parse(mode).ok_or_else(|| {
        js_error(
            ErrorCode::InvalidConfig,
            format!("invalid configuration: mode must be 'action' or 'snapshot', got '{mode}'"),
        )
    })
}

/// A WebSocket endpoint's own settings (redux-cluster-ws's names).
#[napi(object)]
pub struct WsOptions {
    /// Allowed `Origin` headers; without it, any origin (and none, as Node clients send).
    pub origin: Option<Vec<String>>,
    /// Addresses of proxies whose `X-Forwarded-For` is believed (for bans); everyone
    /// else's is ignored.
    pub trust_proxy: Option<Vec<String>>,
    /// Most connections open at once; past it, the upgrade is refused (HTTP 503).
    /// @default unlimited
    pub limit: Option<u32>,
}

pub(super) fn ws_policy(
    o: WsOptions,
    cfg: &StoreConfig,
) -> Result<crate::transport::ws::WsPolicy, Code> {
    let proxies = o
        .trust_proxy
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p.parse::<std::net::IpAddr>().map_err(|_| {
                js_error(
                    ErrorCode::InvalidConfig,
                    format!("invalid configuration: trustProxy: {p:?} is not an IP address"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::transport::ws::WsPolicy::new(
        o.origin.unwrap_or_default(),
        proxies,
        o.limit.unwrap_or(0) as usize,
        cfg.limits.max_frame.saturating_add(64 * 1024),
    ))
}
