//! The socket runtime around [`Membership`]: a TCP listener, one framed link per peer,
//! a ticker, and a driver task that feeds link events to the state machine and carries
//! out what it returns.

use super::node_id::NodeId;
use super::state::{
    DownReason, Input, Membership, MembershipConfig, NodeStatus, Output, Peer, Target,
};
use super::wire::Wire;
use crate::link::{self, Kind, Local, Session, SessionReader};
use crate::protocol::FrameLimits;
use crate::transport::{Endpoint, Listener, Stream};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_name: String,
    /// Interface to bind.
    pub host: String,
    pub port: u16,
    /// The host other nodes reach this one at (in its id); defaults to `host`, or to the
    /// machine's hostname when `host` is a wildcard address.
    pub advertise_host: Option<String>,
    pub seeds: Vec<NodeId>,
    pub cluster_secret: Option<String>,
    /// TLS under every link, accepted and dialed.
    pub tls: Option<crate::transport::tls::PeerTls>,
    pub membership: MembershipConfig,
    pub limits: FrameLimits,
}

impl ClusterConfig {
    /// A node on loopback with a free port and fast timers (100 ms heartbeats × 3,
    /// reconnect 50 → 500 ms): for tests and benchmarks.
    pub fn local(
        node_name: &str,
        seeds: Vec<NodeId>,
        cluster_secret: Option<&str>,
    ) -> ClusterConfig {
        ClusterConfig {
            node_name: node_name.into(),
            host: "127.0.0.1".into(),
            port: 0,
            advertise_host: None,
            seeds,
            cluster_secret: cluster_secret.map(String::from),
            tls: None,
            membership: MembershipConfig {
                heartbeat_interval: Duration::from_millis(100),
                miss_threshold: 3,
                reconnect_base: Duration::from_millis(50),
                reconnect_max: Duration::from_millis(500),
                rng_seed: 1,
            },
            limits: FrameLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterStatus {
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Starting => "starting",
            ClusterStatus::Running => "running",
            ClusterStatus::Stopping => "stopping",
            ClusterStatus::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone)]
pub enum ClusterEvent {
    NodeUp(NodeId),
    NodeDown(NodeId, DownReason),
    Status(ClusterStatus),
    /// A link refused or broken for a reason its owner should hear of (a peer with a
    /// wrong cluster secret, garbage on the port).
    Warning {
        code: crate::error::ErrorCode,
        message: String,
    },
}

/// One node's view, as `getNodes()` reports it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: NodeId,
    pub status: NodeStatus,
    pub process_count: u32,
    /// Milliseconds since the last heartbeat, if any.
    pub since_heartbeat_ms: Option<u64>,
    pub uptime_ms: u64,
}

type Sink = Arc<dyn Fn(ClusterEvent) + Send + Sync>;

const GOSSIP_EVERY: u32 = 10;
/// Messages waiting to be written to one peer. Only heartbeats and a last word travel
/// this way, so a full queue means the peer reads nothing: further beats are dropped
/// (the next one replaces them) instead of piling up while it is stopped.
const LINK_QUEUE: usize = 16;
/// Inputs waiting for the membership logic; past it, the links' readers wait (and so
/// do the peers sending to them) instead of queueing.
const MAX_INPUTS: usize = 1024;

struct Link {
    generation: u64,
    /// Which of two links of one pair both sides keep (see `link`).
    rank: (bool, [u8; 16]),
    /// Hash of the member list last gossiped on this link, and heartbeats since.
    gossiped: u64,
    beats: u32,
    tx: mpsc::Sender<Wire>,
    cancel: CancellationToken,
}

struct Shared {
    local: NodeId,
    cfg: ClusterConfig,
    started: Instant,
    membership: Mutex<Membership>,
    links: Mutex<HashMap<NodeId, Link>>,
    inputs: mpsc::Sender<Input>,
    sink: Sink,
    generation: AtomicU64,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    cancel: CancellationToken,
    tracker: crate::tasks::Tasks,
}

pub struct Cluster {
    shared: Arc<Shared>,
    status: Mutex<ClusterStatus>,
}

fn advertised(cfg: &ClusterConfig) -> String {
    if let Some(h) = &cfg.advertise_host {
        return h.clone();
    }
    let wildcard = cfg
        .host
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_unspecified())
        .unwrap_or(false);
    if !wildcard {
        return cfg.host.clone();
    }
    // Binding every interface must not advertise loopback to other machines.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Cluster {
    /// Binds, then starts dialing the seeds. Must run inside a tokio runtime.
    pub fn start(cfg: ClusterConfig, sink: Sink) -> std::io::Result<Cluster> {
        let listener = Listener::bind(&Endpoint::Tcp {
            host: cfg.host.clone(),
            port: cfg.port,
        })
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}:{}: {e}", cfg.host, cfg.port),
            )
        })?;
        // Port 0 binds a free port; the id carries the real one.
        let port = listener.port().unwrap_or(cfg.port);
        let local = NodeId::create(&cfg.node_name, &advertised(&cfg), port as u32)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        sink(ClusterEvent::Status(ClusterStatus::Starting));
        let (inputs, rx) = mpsc::channel(MAX_INPUTS);
        let shared = Arc::new(Shared {
            membership: Mutex::new(Membership::new(local.clone(), cfg.membership.clone())),
            local,
            started: Instant::now(),
            links: Mutex::new(HashMap::new()),
            inputs,
            sink: sink.clone(),
            generation: AtomicU64::new(1),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            tracker: crate::tasks::Tasks::new(),
            cfg,
        });
        let s = shared.clone();
        shared
            .tracker
            .spawn(async move { accept_loop(s, listener).await });
        let s = shared.clone();
        shared.tracker.spawn(async move { drive(s, rx).await });
        let _ = shared
            .inputs
            .try_send(Input::Seeds(shared.cfg.seeds.clone()));
        sink(ClusterEvent::Status(ClusterStatus::Running));
        Ok(Cluster {
            shared,
            status: Mutex::new(ClusterStatus::Running),
        })
    }

    pub fn local(&self) -> &NodeId {
        &self.shared.local
    }

    /// Frames and bytes this node has sent (for the cost benchmark).
    pub fn sent(&self) -> (u64, u64) {
        (
            self.shared.frames_sent.load(Ordering::Relaxed),
            self.shared.bytes_sent.load(Ordering::Relaxed),
        )
    }

    pub fn status(&self) -> ClusterStatus {
        *self.status.lock()
    }

    pub fn nodes(&self) -> Vec<NodeView> {
        let now = Instant::now();
        let m = self.shared.membership.lock();
        m.peers().map(|(id, p)| view(id, p, now)).collect()
    }

    /// Stops at once without telling anyone, as a crash would (for tests).
    pub fn crash(&self) {
        *self.status.lock() = ClusterStatus::Stopped;
        self.shared.cancel.cancel();
        self.shared.tracker.close();
    }

    /// Tells every peer we are leaving (bounded), then closes everything.
    pub async fn stop(&self) {
        {
            let mut st = self.status.lock();
            if *st != ClusterStatus::Running {
                return;
            }
            *st = ClusterStatus::Stopping;
        }
        (self.shared.sink)(ClusterEvent::Status(ClusterStatus::Stopping));
        let links: Vec<(mpsc::Sender<Wire>, CancellationToken)> = self
            .shared
            .links
            .lock()
            .values()
            .map(|l| (l.tx.clone(), l.cancel.clone()))
            .collect();
        for (tx, cancel) in &links {
            // A peer that reads nothing gets no goodbye; its link just closes.
            if tx.try_send(Wire::Leave).is_err() {
                cancel.cancel();
            }
        }
        // Writers flush the goodbye, then the links close.
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            for (tx, _) in &links {
                tx.closed().await;
            }
        })
        .await;
        self.shared.cancel.cancel();
        self.shared.tracker.shutdown(Duration::from_secs(2)).await;
        *self.status.lock() = ClusterStatus::Stopped;
        (self.shared.sink)(ClusterEvent::Status(ClusterStatus::Stopped));
    }
}

fn view(id: &NodeId, p: &Peer, now: Instant) -> NodeView {
    NodeView {
        id: id.clone(),
        status: p.status,
        process_count: p.process_count,
        since_heartbeat_ms: p
            .last_heartbeat
            .map(|t| now.duration_since(t).as_millis() as u64),
        uptime_ms: p.uptime_ms,
    }
}

async fn accept_loop(s: Arc<Shared>, listener: Listener) {
    loop {
        let accepted = tokio::select! {
            _ = s.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let s2 = s.clone();
                s.tracker.spawn(async move { link(s2, stream, None).await });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn drive(s: Arc<Shared>, mut rx: mpsc::Receiver<Input>) {
    // Tick often enough to meet timeouts within a tenth of an interval.
    let tick = (s.cfg.membership.heartbeat_interval / 10).max(Duration::from_millis(5));
    let mut ticker = tokio::time::interval(tick);
    loop {
        let input = tokio::select! {
            biased;
            _ = s.cancel.cancelled() => return,
            i = rx.recv() => match i { Some(i) => i, None => return },
            _ = ticker.tick() => Input::Tick,
        };
        let out = s.membership.lock().handle(Instant::now(), input);
        for o in out {
            act(&s, o);
        }
    }
}

fn act(s: &Arc<Shared>, o: Output) {
    match o {
        Output::Dial { target, host, port } => {
            let s2 = s.clone();
            s.tracker.spawn(async move {
                let ep = Endpoint::Tcp {
                    host: host.clone(),
                    port,
                };
                let connect = tokio::time::timeout(
                    s2.cfg
                        .membership
                        .heartbeat_interval
                        .max(Duration::from_secs(1)),
                    Stream::connect(&ep),
                );
                let r = tokio::select! {
                    _ = s2.cancel.cancelled() => return,
                    r = connect => r,
                };
                match r {
                    Ok(Ok(stream)) => link(s2, stream, Some((target, host))).await,
                    _ => {
                        let _ = s2.inputs.send(Input::DialFailed(target)).await;
                    }
                }
            });
        }
        Output::Heartbeat(id) => {
            let known: Vec<String> = s
                .membership
                .lock()
                .known()
                .iter()
                .map(|k| k.to_string())
                .collect();
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                known.hash(&mut h);
                h.finish()
            };
            if let Some(l) = s.links.lock().get_mut(&id) {
                // The member list travels when it changed, and every tenth beat to repair
                // anything lost; otherwise heartbeats stay small, so a node's traffic per
                // interval grows linearly with the cluster, not quadratically.
                let send_list = l.gossiped != hash || l.beats % GOSSIP_EVERY == 0;
                l.beats = l.beats.wrapping_add(1);
                if send_list {
                    l.gossiped = hash;
                }
                let beat = Wire::Heartbeat {
                    uptime_ms: s.started.elapsed().as_millis() as u64,
                    process_count: 0,
                    known: if send_list { known } else { Vec::new() },
                };
                // A peer that reads nothing (stopped, or hostile) has a full queue: the
                // beat is dropped, the next one replaces it, and the list travels again.
                if l.tx.try_send(beat).is_err() {
                    l.gossiped = 0;
                }
            }
        }
        Output::Hangup(id) => {
            if let Some(l) = s.links.lock().remove(&id) {
                l.cancel.cancel();
            }
        }
        Output::NodeUp(id) => (s.sink)(ClusterEvent::NodeUp(id)),
        Output::NodeDown(id, r) => (s.sink)(ClusterEvent::NodeDown(id, r)),
    }
}

/// Sends one message; false when the link is gone.
async fn send(s: &Shared, w: &mut link::SessionWriter, m: &Wire) -> bool {
    match w.send(|d| m.encode(d)).await {
        Ok(n) => {
            s.frames_sent.fetch_add(1, Ordering::Relaxed);
            s.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    }
}

/// After a last word and our half-close: reads (and drops) what the peer still sends until
/// it closes too, bounded. Closing a socket with unread bytes in it sends a reset, and a
/// reset makes the peer's kernel drop the unread last word.
async fn linger(s: &Shared, reader: &mut SessionReader) {
    tokio::select! {
        _ = s.cancel.cancelled() => {}
        _ = tokio::time::timeout(s.cfg.membership.failure_timeout(), reader.drain()) => {}
    }
}

/// The session of a link: dialed, or accepted once its label says it is a membership
/// peer. Why it failed, for a warning, when the peer is not simply unreachable.
async fn open(s: &Shared, stream: Stream, dialed: Option<&str>) -> Result<Session, Option<String>> {
    let name = s.local.to_string();
    let local = Local {
        name: &name,
        secret: s.cfg.cluster_secret.as_deref(),
        limits: s.cfg.limits,
    };
    let handshake = async {
        let tls = s.cfg.tls.as_ref();
        if let Some(host) = dialed {
            let stream = match tls {
                Some(t) => stream.tls_connect(t.client.clone(), host).await?,
                None => stream,
            };
            return Session::connect(stream, Kind::Membership, local).await;
        }
        let stream = match tls {
            Some(t) => stream.tls_accept(t.server.clone()).await?,
            None => stream,
        };
        Session::accept_only(stream, Kind::Membership, local).await
    };
    let r = tokio::select! {
        _ = s.cancel.cancelled() => return Err(None),
        r = tokio::time::timeout(Duration::from_secs(5), handshake) => r,
    };
    match r {
        Ok(Ok(session)) => Ok(session),
        // A refusal (a wrong secret or certificate, garbage) is worth a warning; a peer
        // that is not there is not.
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidData
            ) || e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) =>
        {
            Err(Some(e.to_string()))
        }
        _ => Err(None),
    }
}

/// One link, dialed (`expected` is whom we dialed) or accepted.
async fn link(s: Arc<Shared>, stream: Stream, dialed: Option<(Target, String)>) {
    let (expected, host) = match dialed {
        Some((t, h)) => (Some(t), Some(h)),
        None => (None, None),
    };
    let fail = |s: &Shared| {
        let failed = expected.clone().map(Input::DialFailed);
        let inputs = s.inputs.clone();
        async move {
            if let Some(i) = failed {
                let _ = inputs.send(i).await;
            }
        }
    };
    let session = match open(&s, stream, host.as_deref()).await {
        Ok(session) => session,
        Err(why) => {
            if let Some(why) = why {
                (s.sink)(ClusterEvent::Warning {
                    code: crate::error::ErrorCode::Auth,
                    message: format!("Cluster: a membership link was refused: {why}"),
                });
            }
            return fail(&s).await;
        }
    };
    let Ok(peer) = NodeId::parse(&session.peer) else {
        (s.sink)(ClusterEvent::Warning {
            code: crate::error::ErrorCode::Protocol,
            message: format!(
                "Cluster: a membership peer named itself {:?}, not a node id",
                session.peer
            ),
        });
        return fail(&s).await;
    };
    let dialer_nonce = session.dialer_nonce;
    let (mut reader, mut writer) = session.split();
    // The hello, not the address, says who this is: a seed learns its node's id here.
    match &expected {
        Some(Target::Seed(seed)) => {
            let _ = s
                .inputs
                .send(Input::SeedAnswered {
                    seed: seed.clone(),
                    id: peer.clone(),
                })
                .await;
        }
        Some(Target::Member(m)) if m != &peer => return fail(&s).await,
        _ => {}
    }
    if peer == s.local {
        return; // we dialed ourselves under another spelling
    }
    // One link per pair. When there are two (both sides dialed at once, or one side
    // twice: a seed and then the member), both sides must keep the same one whatever
    // order they saw them in: the link dialed by the smaller id, and between two dialed
    // by the same node, the one whose dialer's nonce is larger.
    let dialer = if expected.is_some() { &s.local } else { &peer };
    let rank = (dialer == std::cmp::min(&s.local, &peer), dialer_nonce);
    let generation = s.generation.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Wire>(LINK_QUEUE);
    let cancel = s.cancel.child_token();
    let kept = {
        let mut links = s.links.lock();
        match links.get(&peer) {
            Some(old) if old.rank > rank => false,
            old => {
                // The other side may see the old link close before this one reaches it:
                // it is told, so it waits for this link instead of reporting a nodeDown.
                // The old link's writer ends after sending it.
                if let Some(old) = old {
                    if old.tx.try_send(Wire::Superseded).is_err() {
                        old.cancel.cancel();
                    }
                }
                links.insert(
                    peer.clone(),
                    Link {
                        generation,
                        rank,
                        gossiped: 0,
                        beats: 0,
                        tx,
                        cancel: cancel.clone(),
                    },
                );
                true
            }
        }
    };
    if !kept {
        // Keep the existing link; this one closes, and the other side is told why.
        if send(&s, &mut writer, &Wire::Superseded).await {
            writer.shutdown().await;
            linger(&s, &mut reader).await;
        }
        return;
    }
    let _ = s.inputs.send(Input::LinkUp(peer.clone())).await;
    let mut superseded = false;
    let reading = async {
        while let Ok(body) = reader.recv().await {
            match Wire::decode(body).ok() {
                Some(Wire::Heartbeat {
                    uptime_ms,
                    process_count,
                    known,
                }) => {
                    let known = known.iter().filter_map(|k| NodeId::parse(k).ok()).collect();
                    // Awaited: a peer that floods heartbeats waits for this node to
                    // take them (backpressure on its socket), it does not queue them.
                    let _ = s
                        .inputs
                        .send(Input::Heartbeat {
                            from: peer.clone(),
                            uptime_ms,
                            process_count,
                            known,
                        })
                        .await;
                }
                Some(Wire::Leave) => {
                    let _ = s.inputs.send(Input::Leaving(peer.clone())).await;
                    return;
                }
                Some(Wire::Superseded) => {
                    superseded = true;
                    return;
                }
                // Malformed, forged or replayed: drop the link.
                _ => return,
            }
        }
    };
    // Returns whether it said a last word (Leave or Superseded) that must be read.
    let writing = async {
        while let Some(m) = rx.recv().await {
            let last_word = m == Wire::Leave || m == Wire::Superseded;
            if !send(&s, &mut writer, &m).await {
                return false;
            }
            if last_word {
                writer.shutdown().await;
                return true;
            }
        }
        false
    };
    let said_last_word = tokio::select! {
        _ = cancel.cancelled() => false,
        _ = reading => false,
        said = writing => said,
    };
    if said_last_word {
        linger(&s, &mut reader).await;
    }
    if superseded {
        // The peer keeps the other link, which is on its way; report the node down only
        // if that link has not replaced this one within the silence a live node is
        // allowed (interval × threshold).
        tokio::select! {
            _ = s.cancel.cancelled() => return,
            _ = tokio::time::sleep(s.cfg.membership.failure_timeout()) => {}
        }
    }
    let current = {
        let mut links = s.links.lock();
        match links.get(&peer) {
            Some(l) if l.generation == generation => {
                links.remove(&peer);
                true
            }
            _ => false,
        }
    };
    if current && !s.cancel.is_cancelled() {
        let _ = s.inputs.send(Input::LinkClosed(peer)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = Arc<Mutex<Vec<(Instant, String)>>>;

    fn node(name: &str, seeds: Vec<NodeId>, secret: Option<&str>) -> (Cluster, Log) {
        let log: Log = Arc::default();
        let l2 = log.clone();
        let sink: Sink = Arc::new(move |e| {
            let line = match e {
                ClusterEvent::NodeUp(id) => format!("up {}", id.name()),
                ClusterEvent::NodeDown(id, r) => format!("down {} {}", id.name(), r.as_str()),
                ClusterEvent::Status(s) => format!("status {}", s.as_str()),
                ClusterEvent::Warning { code, .. } => format!("warning {code}"),
            };
            l2.lock().push((Instant::now(), line));
        });
        let cfg = ClusterConfig::local(name, seeds, secret);
        (Cluster::start(cfg, sink).unwrap(), log)
    }

    async fn until(what: &str, log: &Log, line: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some((t, _)) = log.lock().iter().find(|(_, l)| l == line) {
                return *t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                log.lock()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn join_gossip_stop_crash_and_wrong_secret_over_loopback() {
        let (a, la) = node("a", vec![], Some("s"));
        let (b, lb) = node("b", vec![a.local().clone()], Some("s"));
        let t0 = Instant::now();
        let (c, lc) = node("c", vec![b.local().clone()], Some("s"));
        // C joins through B, and meets A through gossip, both ways.
        let up = until("a sees c", &la, "up c")
            .await
            .max(until("c sees a", &lc, "up a").await);
        assert!(
            up - t0 < Duration::from_millis(500),
            "joined in {:?}",
            up - t0
        );
        assert_eq!(
            c.nodes()
                .iter()
                .filter(|n| n.status == NodeStatus::Connected)
                .count(),
            2
        );

        // A node with the wrong secret never comes up on either side, and nobody reports
        // it down (it never was up). A node with the right secret that dials after it
        // comes up: a's refusal of d has been decided by then.
        let (d, ld) = node("d", vec![a.local().clone()], Some("wrong"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (e, _) = node("e", vec![a.local().clone()], Some("s"));
        until("a sees e", &la, "up e").await;
        assert!(!la.lock().iter().any(|(_, l)| l.ends_with(" d")));
        assert!(!ld
            .lock()
            .iter()
            .any(|(_, l)| l.starts_with("up") || l.starts_with("down")));
        assert!(d.nodes().is_empty(), "an unanswered seed is not a member");
        e.stop().await;

        // Graceful stop: every peer hears it within a second.
        let t = Instant::now();
        c.stop().await;
        let seen = until("a: c left", &la, "down c graceful_shutdown").await;
        until("b: c left", &lb, "down c graceful_shutdown").await;
        assert!(seen - t < Duration::from_secs(1));

        // A crash: the closed connection is noticed at once.
        let t = Instant::now();
        b.crash();
        let seen = until("a: b closed", &la, "down b connection_closed").await;
        assert!(seen - t < Duration::from_secs(1), "{:?}", seen - t);
        a.stop().await;
        d.stop().await;
        assert_eq!(a.status(), ClusterStatus::Stopped);
    }

    #[test]
    fn a_wildcard_bind_advertises_the_hostname_not_loopback() {
        let c = ClusterConfig {
            node_name: "n".into(),
            host: "0.0.0.0".into(),
            port: 1,
            advertise_host: None,
            seeds: vec![],
            cluster_secret: None,
            tls: None,
            membership: MembershipConfig::default(),
            limits: FrameLimits::default(),
        };
        let h = advertised(&c);
        assert!(h != "0.0.0.0" && h != "127.0.0.1" && !h.is_empty(), "{h}");
        assert!(
            NodeId::create("n", &h, 1).is_ok(),
            "the hostname makes a valid id: {h}"
        );
        let explicit = ClusterConfig {
            advertise_host: Some("node1.internal".into()),
            ..c.clone()
        };
        assert_eq!(advertised(&explicit), "node1.internal");
        let specific = ClusterConfig {
            host: "127.0.0.1".into(),
            ..c
        };
        assert_eq!(advertised(&specific), "127.0.0.1");
    }
}
