//! The network side of a server: accepts connections, runs the handshake, feeds client
//! dispatches to the [`OrderingAuthority`] and streams ordered actions (or snapshots) back.
//! Each connection has its own reader and writer; a slow or broken peer only ever
//! affects its own connection.

use super::auth::{self, Logins};
use super::authority::{validate_action, OrderingAuthority, Read};
use super::ban::{human, BanPolicy, Bans};
use super::metrics::ClientMetrics;
use super::outbox::Event;
use crate::config::StoreConfig;
use crate::error::ErrorCode;
use crate::link::{self, labelled, Kind};
use crate::protocol::frame::write_frame;
use crate::protocol::message::encode_actions;
use crate::protocol::message::MAX_ORDERED;
use crate::protocol::{FrameCodec, FrameError, Message, Mode, Ordered};
use crate::transport::caps::Caps;
use crate::transport::{Endpoint, Listener, Liveness, Peer, ReadHalf, Stream, WriteHalf};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Largest number of actions in one `Actions` frame.
const MAX_BATCH: usize = 16 * 1024;

/// What a connection's write buffer may keep while it waits for something to send.
pub(crate) const IDLE_BUFFER: usize = 4 * 1024;

/// Who may connect to a server endpoint: TLS (optionally requiring client
/// certificates), its logins (none: anyone) and its ban table.
pub struct Access {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub logins: Logins,
    pub bans: Bans,
    /// When each refused peer name was last reported (bounded: the oldest go first).
    peer_reports: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// A WebSocket endpoint: connections are upgraded (under this policy) first.
    pub ws: Option<Arc<crate::transport::ws::WsPolicy>>,
    /// The clients connected through this endpoint now (for metrics).
    pub conns: Registry,
    /// Caps on open connections: in all, and from one address.
    pub caps: Arc<Caps>,
    /// The store's client metrics (shared by its endpoints).
    pub metrics: Arc<ClientMetrics>,
}

/// What one client connection has done, updated as it goes (for `metrics()`).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub client_id: u64,
    pub peer: String,
    pub login: String,
    pub transport: &'static str,
    /// The hash of the store it is a client of: a group's port serves several stores,
    /// and each store's `metrics()` lists its own clients.
    pub store: String,
    /// The last sequence number sent to it (its replica is there or on its way).
    pub position: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dispatched: AtomicU64,
}

/// The connections of one endpoint.
#[derive(Debug, Default)]
pub struct Registry {
    live: Mutex<std::collections::HashMap<u64, Arc<ConnStats>>>,
    next: AtomicU64,
}

impl Registry {
    fn add(&self, stats: ConnStats) -> (u64, Arc<ConnStats>) {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(stats);
        self.live.lock().insert(key, stats.clone());
        (key, stats)
    }

    fn remove(&self, key: u64) {
        self.live.lock().remove(&key);
    }

    /// The connections now.
    pub fn list(&self) -> Vec<Arc<ConnStats>> {
        let mut v: Vec<_> = self.live.lock().values().cloned().collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }
}

/// Removes a connection from its registry when the connection ends.
struct Registered<'a>(&'a Registry, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// How often one peer's refusals are reported on `stderr`.
const PEER_REPORT_EVERY: Duration = Duration::from_secs(30);

impl Access {
    pub fn new(logins: Logins, ban: BanPolicy) -> Access {
        Access {
            tls: None,
            logins,
            bans: Bans::new(ban),
            peer_reports: Mutex::default(),
            ws: None,
            conns: Registry::default(),
            caps: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts this endpoint's clients in `m` (the store's, shared by its endpoints).
    pub fn with_metrics(mut self, m: Arc<ClientMetrics>) -> Access {
        self.metrics = m;
        self
    }

    pub fn with_caps(mut self, caps: Caps) -> Access {
        self.caps = Arc::new(caps);
        self
    }

    /// Whether a refusal of the peer that calls itself `name` is worth reporting now.
    fn first_report(&self, name: &str) -> bool {
        let now = std::time::Instant::now();
        let mut seen = self.peer_reports.lock();
        if seen
            .get(name)
            .is_some_and(|t| now.duration_since(*t) < PEER_REPORT_EVERY)
        {
            return false;
        }
        if seen.len() >= 1024 {
            seen.retain(|_, t| now.duration_since(*t) < PEER_REPORT_EVERY);
            if seen.len() >= 1024 {
                seen.clear();
            }
        }
        seen.insert(name.to_string(), now);
        true
    }

    pub fn with_tls(mut self, tls: Option<Arc<rustls::ServerConfig>>) -> Access {
        self.tls = tls;
        self
    }

    /// Serves WebSocket connections under `policy`.
    pub fn with_ws(mut self, policy: crate::transport::ws::WsPolicy) -> Access {
        self.ws = Some(Arc::new(policy));
        self
    }
}

impl Default for Access {
    fn default() -> Self {
        Access::new(Logins::default(), BanPolicy::default())
    }
}

/// A listening server. Dropping it does not stop it; call [`ServerHandle::close`].
pub struct ServerHandle {
    cancel: CancellationToken,
    tracker: crate::tasks::Tasks,
    port: Option<u16>,
    access: Arc<Access>,
}

impl ServerHandle {
    /// Binds `endpoint` and starts serving. Must run inside the engine's runtime context.
    pub fn listen<A: OrderingAuthority>(
        auth: Arc<A>,
        endpoint: &Endpoint,
        cfg: StoreConfig,
        access: Arc<Access>,
    ) -> std::io::Result<ServerHandle> {
        Ok(ServerHandle::serve(
            auth,
            Listener::bind(endpoint)?,
            cfg,
            access,
        ))
    }

    /// Serves on a listener bound beforehand (a replicated server binds its port before
    /// its Raft node starts, so that the node's address is the port's).
    pub fn serve<A: OrderingAuthority>(
        auth: Arc<A>,
        listener: Listener,
        cfg: StoreConfig,
        access: Arc<Access>,
    ) -> ServerHandle {
        ServerHandle::serve_when(async move { Some(auth) }, listener, cfg, access)
    }

    /// Serves once `ready` gives the authority (a replicated server's Raft node starting
    /// in the background); until then connections wait in the listener's queue. `None`
    /// (the start failed, and said why) closes the port.
    pub fn serve_when<A, F>(
        ready: F,
        listener: Listener,
        cfg: StoreConfig,
        access: Arc<Access>,
    ) -> ServerHandle
    where
        A: OrderingAuthority,
        F: Future<Output = Option<Arc<A>>> + Send + 'static,
    {
        let port = listener.port();
        let registry = access.clone();
        let cancel = CancellationToken::new();
        let tracker = crate::tasks::Tasks::new();
        let (c, t) = (cancel.clone(), tracker.clone());
        tracker.spawn(async move {
            let auth = tokio::select! {
                _ = c.cancelled() => return,
                a = ready => match a {
                    Some(a) => a,
                    None => return,
                },
            };
            loop {
                let accepted = tokio::select! {
                    _ = c.cancelled() => break,
                    r = listener.accept() => r,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        tracing::debug!(peer = %peer.name, "connection accepted");
                        let (auth, cfg, c, access) =
                            (auth.clone(), cfg.clone(), c.clone(), access.clone());
                        t.spawn(serve(auth, stream, peer, cfg, c, access));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: say so, and do not spin.
                        auth.report(Event::error(
                            ErrorCode::Io,
                            format!("ReduxCluster.createServer accept error: {e}"),
                        ));
                        tokio::select! {
                            _ = c.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                }
            }
            // The listener drops here: the port is free and a Unix socket file removed.
        });
        ServerHandle {
            cancel,
            tracker,
            port,
            access: registry,
        }
    }

    /// The clients connected through this endpoint now.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        self.access.conns.list()
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Stops accepting, closes every connection, and waits (bounded) for the tasks.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.tracker.shutdown(Duration::from_secs(2)).await;
    }
}

/// State the reader hands to the writer of one connection.
struct Conn {
    stats: Arc<ConnStats>,
    acked: AtomicU64,
    /// Where the client's dispatches went since the last Ack was written.
    ordered: Mutex<Vec<Ordered>>,
    wake: Notify,
    fatal: Mutex<Option<(ErrorCode, String)>>,
}

async fn serve<A: OrderingAuthority>(
    auth: Arc<A>,
    stream: Stream,
    peer: Peer,
    cfg: StoreConfig,
    cancel: CancellationToken,
    access: Arc<Access>,
) {
    let Peer { name: peer, ip } = peer;
    let stream = match &access.tls {
        None => stream,
        Some(tls) => {
            let handshake = tokio::select! {
                _ = cancel.cancelled() => return,
                h = tokio::time::timeout(cfg.handshake_timeout, Box::pin(stream.tls_accept(tls.clone()))) => h,
            };
            match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    access.metrics.refused(ErrorCode::Tls);
                    let m = format!("ReduxCluster.createServer: connection from {peer} refused: TLS handshake failed: {e}");
                    return auth.report(Event::error(ErrorCode::Tls, m));
                }
                Err(_) => {
                    access.metrics.refused(ErrorCode::Tls);
                    let m = format!("ReduxCluster.createServer: connection from {peer} refused: no TLS handshake within the timeout");
                    return auth.report(Event::error(ErrorCode::Tls, m));
                }
            }
        }
    };
    // A WebSocket endpoint: the upgrade (Origin, limit, X-Forwarded-For), then the same
    // protocol inside binary messages. `_live` holds its place under the limit.
    let (stream, ip, _live, peer) = match &access.ws {
        None => (stream, ip, None, peer),
        Some(policy) => {
            let upgraded = tokio::select! {
                _ = cancel.cancelled() => return,
                a = tokio::time::timeout(cfg.handshake_timeout, Box::pin(crate::transport::ws::accept(stream, ip, policy.clone()))) => a,
            };
            match upgraded {
                Ok(Ok(a)) => {
                    // Behind a trusted proxy the client is the address it forwards for:
                    // messages (and bans) name that one, and the proxy beside it.
                    let peer = match a.ip {
                        Some(client) if Some(client) != ip => format!("{client} (via {peer})"),
                        _ => peer,
                    };
                    (a.stream, a.ip, Some(a.guard), peer)
                }
                Ok(Err(e)) => {
                    access.metrics.refused(ErrorCode::Protocol);
                    // The client got the reason (an HTTP status and text); a flood of
                    // them is reported once per 30 s, not once each.
                    if access.first_report("websocket upgrade") {
                        let m = format!(
                            "ReduxCluster.createWSServer: connection from {peer} refused: {e}"
                        );
                        auth.report(Event::error(ErrorCode::Protocol, m));
                    }
                    return;
                }
                Err(_) => return,
            }
        }
    };
    let (r, mut w) = stream.into_split();
    let live = Liveness::new();
    // The label says what the connection is (none: a client of an earlier build or a
    // browser); one port serves clients and, in a replicated store, the other servers.
    let opening = async {
        let (kind, mut frames) = labelled(live.watch(r), cfg.limits).await?;
        let first = match kind {
            Some(Kind::Client) | None => frames.next().await,
            Some(_) => None,
        };
        Ok::<_, std::io::Error>((kind, frames, first))
    };
    let opened = tokio::select! {
        _ = cancel.cancelled() => return,
        h = tokio::time::timeout(cfg.handshake_timeout, Box::pin(opening)) => h,
    };
    let hello = match opened {
        Err(_) => Err((
            ErrorCode::Protocol,
            "no handshake within the timeout".to_string(),
        )),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return, // a port probe
        Ok(Err(e)) => Err((ErrorCode::Protocol, e.to_string())),
        // Another server of a replicated store.
        Ok(Ok((Some(Kind::Raft), frames, _))) if auth.raft().is_some() => {
            return Box::pin(serve_peer(&*auth, frames, w, (&peer, ip), &cancel, &access)).await;
        }
        Ok(Ok((Some(kind @ (Kind::Raft | Kind::Membership)), _, _))) => {
            let why = format!(
                "{} connected, but this port serves store clients{}",
                kind.as_str(),
                if auth.raft().is_some() {
                    " and Raft peers"
                } else {
                    ""
                }
            );
            access.metrics.refused(ErrorCode::Protocol);
            let _ = link::Session::refuse(&mut w, &cfg.limits, ErrorCode::Protocol, &why).await;
            if access.first_report("wrong kind") {
                auth.report(Event::error(
                    ErrorCode::Protocol,
                    format!("ReduxCluster.createServer: connection from {peer} refused: {why}"),
                ));
            }
            return;
        }
        Ok(Ok((_, _, None))) => return, // connected and left (a port probe)
        Ok(Ok((_, _, Some(Err(e))))) => Err((e.code(), e.to_string())),
        Ok(Ok((_, frames, Some(Ok(payload))))) => match Message::decode(payload) {
            Ok(Message::Hello {
                hash,
                client_id,
                epoch,
                seq,
                login,
            }) => Ok((frames, (hash, client_id, epoch, seq, login))),
            Ok(_) => Err((ErrorCode::Protocol, "expected a handshake".to_string())),
            Err(e) => Err((e.code(), e.to_string())),
        },
    };
    let (mut frames, (hash, client_id, epoch, seq, login)) = match hello {
        Ok(h) => h,
        Err((code, message)) => {
            return refuse(&*auth, &access, &mut w, &cfg, &peer, code, message).await
        }
    };
    // The caps count clients (another server of a replicated store is not one), by the
    // client's address: behind a trusted proxy the one it forwards for.
    let _slot = match access.caps.admit(ip) {
        Ok(slot) => slot,
        Err(why) => {
            access.metrics.refused(ErrorCode::Busy);
            if access.first_report("connection limit") {
                auth.report(Event::error(
                    ErrorCode::Busy,
                    format!("ReduxCluster.createServer: connection from {peer} refused: {why} (said once per 30 s)"),
                ));
            }
            return tell(&mut w, &cfg, ErrorCode::Busy, why).await;
        }
    };
    // A store the group hosts besides this port's own: served alike, by its authority.
    let auth = match auth.route(&hash) {
        Some(other) if hash != auth.hash() => other,
        _ => auth,
    };
    if hash != auth.hash() && auth.hosted_elsewhere(&hash) {
        let msg = format!(
            "store {hash} is ordered by this server's group but not open on this server; \
             try another server"
        );
        return tell(&mut w, &cfg, ErrorCode::Unavailable, msg).await;
    }
    if hash != auth.hash() {
        let msg = format!(
            "client store {hash} does not match this server's store {}; connection refused",
            auth.hash()
        );
        return refuse(
            &*auth,
            &access,
            &mut w,
            &cfg,
            &peer,
            ErrorCode::StoreMismatch,
            msg,
        )
        .await;
    }
    // The handshakes above and this one are boxed: each lives only while it runs, and
    // inline they would size every connection's task for the largest of them.
    if let Err((code, message)) = Box::pin(authenticate(
        &*auth,
        &access,
        &mut frames,
        &mut w,
        &cfg,
        ip,
        client_id,
        &login,
    ))
    .await
    {
        return refuse(&*auth, &access, &mut w, &cfg, &peer, code, message).await;
    }
    if auth.watch().borrow().cut_off {
        let msg = "this server has lost contact with its group and cannot order actions; \
                   try another server"
            .to_string();
        // Not reported per client: the server said once that it is cut off.
        return tell(&mut w, &cfg, ErrorCode::Unavailable, msg).await;
    }
    let acked = auth.acked(client_id);
    let welcome = Message::Welcome {
        epoch: auth.epoch(),
        acked,
        mode: auth.mode(),
    };
    let resume = (auth.mode() == Mode::Action && auth.can_resume(epoch, seq)).then_some(seq);
    let mut buf = BytesMut::new();
    if write_frame(&mut buf, &cfg.limits, |d| welcome.encode(d)).is_err()
        || w.write_all(&buf).await.is_err()
    {
        return;
    }
    // The first Ack repeats where the client's latest dispatches went: the one that
    // would have said so may have been lost with the previous connection.
    let transport = match (&access.ws, &access.tls) {
        (Some(_), Some(_)) => "wss",
        (Some(_), None) => "ws",
        (None, Some(_)) => "tls",
        (None, None) if ip.is_none() => "unix",
        (None, None) => "tcp",
    };
    let (key, stats) = access.conns.add(ConnStats {
        client_id,
        peer: peer.clone(),
        login: login.clone(),
        transport,
        store: hash,
        ..ConnStats::default()
    });
    let _registered = Registered(&access.conns, key);
    access.metrics.opened(transport, client_id, seq > 0);
    let conn = Conn {
        stats,
        acked: AtomicU64::new(acked),
        ordered: Mutex::new(auth.recent(client_id)),
        wake: Notify::new(),
        fatal: Mutex::new(None),
    };
    let reader = read_loop(&*auth, &mut frames, &conn, client_id, &live);
    let writer = write_loop(&*auth, &mut w, &conn, &cfg, resume);
    tokio::pin!(reader, writer);
    let result = tokio::select! {
        // The reader first, so that bytes already in the socket count as a sign of life
        // before the watch looks.
        biased;
        _ = cancel.cancelled() => Ok(()),
        r = &mut reader => {
            if let Err(e) = &r {
                // Tell the peer why before closing; bounded, as the peer may not read.
                *conn.fatal.lock() = Some((e.code(), e.to_string()));
                conn.wake.notify_one();
                let _ = tokio::time::timeout(Duration::from_millis(200), &mut writer).await;
            }
            r
        }
        r = &mut writer => r,
        // A client that stopped (SIGSTOP, a frozen VM, a dead path) without closing: it
        // is dropped and what it held is freed; it resumes elsewhere or here later.
        quiet = live.silent_for(cfg.liveness.drop_after()) => Err(FrameError::Silent(quiet)),
    };
    tracing::debug!(%peer, ?result, "connection closed");
    access.metrics.closed(transport);
    if let Err(e) = result {
        access.metrics.refused(e.code());
        if !matches!(&e, FrameError::Io(io) if is_disconnect(io)) {
            auth.report(Event::error(
                e.code(),
                format!("ReduxCluster.createServer: connection from {peer} closed: {e}"),
            ));
        }
    }
}

/// Hands a Raft peer's connection to this server's Raft node; says why on `stderr` when
/// it is refused (a wrong cluster secret) or broken (a malformed message).
async fn serve_peer<A: OrderingAuthority + ?Sized>(
    auth: &A,
    frames: FramedRead<ReadHalf, FrameCodec>,
    w: WriteHalf,
    (peer, ip): (&str, Option<std::net::IpAddr>),
    cancel: &CancellationToken,
    access: &Access,
) {
    let Some(engine) = auth.raft() else { return };
    let r = tokio::select! {
        _ = cancel.cancelled() => return,
        r = engine.serve_peer(frames, w, ip) => r,
    };
    if let Err(e) = r {
        if !access.first_report(peer) {
            return; // a misconfigured server retries several times a second: say it once
        }
        let code = match e.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorCode::Auth,
            std::io::ErrorKind::TimedOut => ErrorCode::Timeout,
            _ if is_disconnect(&e) => return,
            _ => ErrorCode::Protocol,
        };
        auth.report(Event::error(
            code,
            format!("ReduxCluster.createServer: Raft peer at {peer}: {e}"),
        ));
    }
}

/// Bans first, then (when the endpoint has logins) the challenge–response. A failed
/// answer counts towards the address's ban.
#[allow(clippy::too_many_arguments)]
async fn authenticate<A: OrderingAuthority + ?Sized>(
    auth: &A,
    access: &Access,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
    w: &mut WriteHalf,
    cfg: &StoreConfig,
    ip: Option<std::net::IpAddr>,
    client_id: u64,
    login: &str,
) -> Result<(), (ErrorCode, String)> {
    let now = std::time::Instant::now();
    let locked = || {
        format!(
            "your ip is locked for {}",
            human(access.bans.policy().duration)
        )
    };
    if let Some(ip) = ip {
        if access.bans.is_banned(ip, now) {
            return Err((ErrorCode::Banned, locked()));
        }
    }
    if access.logins.is_empty() {
        return Ok(());
    }
    let nonce = auth::nonce();
    let mut buf = BytesMut::new();
    let challenge = Message::Challenge {
        nonce: bytes::Bytes::copy_from_slice(&nonce),
    };
    write_frame(&mut buf, &cfg.limits, |d| challenge.encode(d))
        .map_err(|e| (e.code(), e.to_string()))?;
    w.write_all(&buf)
        .await
        .map_err(|e| (ErrorCode::Io, e.to_string()))?;
    let answer = match tokio::time::timeout(cfg.handshake_timeout, frames.next()).await {
        Err(_) => Err((
            ErrorCode::Auth,
            "no answer to the login challenge within the timeout".to_string(),
        )),
        Ok(None) => Err((
            ErrorCode::Auth,
            "closed without answering the login challenge".to_string(),
        )),
        Ok(Some(Err(e))) => Err((e.code(), e.to_string())),
        Ok(Some(Ok(p))) => Message::decode(p).map_err(|e| (e.code(), e.to_string())),
    };
    let refusal = match answer {
        Ok(Message::Auth { proof })
            if access
                .logins
                .verify(login, &nonce, client_id, auth.hash(), &proof) =>
        {
            if let Some(ip) = ip {
                access.bans.succeed(ip);
            }
            return Ok(());
        }
        Ok(_) => (
            ErrorCode::Auth,
            format!("authentication failed for login '{login}'"),
        ),
        Err(e) => e,
    };
    // Anything but a right answer counts as a failed login.
    if let Some(ip) = ip {
        if access.bans.fail(ip, now) {
            return Err((ErrorCode::Banned, locked()));
        }
    }
    Err(refusal)
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | BrokenPipe | UnexpectedEof | ConnectionAborted
    )
}

async fn refuse<A: OrderingAuthority + ?Sized>(
    auth: &A,
    access: &Access,
    w: &mut WriteHalf,
    cfg: &StoreConfig,
    peer: &str,
    code: ErrorCode,
    message: String,
) {
    access.metrics.refused(code);
    auth.report(Event::error(
        code,
        format!("ReduxCluster.createServer: connection from {peer} refused: {message}"),
    ));
    tell(w, cfg, code, message).await;
}

/// Tells the peer why its connection closes (bounded, as it may not read).
async fn tell(w: &mut WriteHalf, cfg: &StoreConfig, code: ErrorCode, message: String) {
    let mut buf = BytesMut::new();
    let msg = Message::Error {
        code: code.as_str().to_string(),
        message,
    };
    if write_frame(&mut buf, &cfg.limits, |d| msg.encode(d)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(200), w.write_all(&buf)).await;
    }
}

/// Most dispatched actions a connection holds while its previous batch is being ordered;
/// past it the connection stops reading (backpressure).
const MAX_QUEUED: usize = 8 * 1024;

/// What ordering a batch resolves to: the acknowledged counter and where the batch went.
type OrderResult = Result<(u64, Vec<Ordered>), FrameError>;

async fn read_loop<A: OrderingAuthority + ?Sized>(
    auth: &A,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
    conn: &Conn,
    client_id: u64,
    live: &Liveness,
) -> Result<(), FrameError> {
    // One batch of this connection is being ordered at a time (so the client's order is
    // kept); what arrives meanwhile is queued and goes as the next batch. On a single
    // server ordering is immediate; in a Raft group a commit takes a round trip and an
    // fsync, and everything that arrived during one is committed by the next.
    let mut queued: Option<(u64, Vec<Bytes>)> = None;
    let mut inflight: Option<std::pin::Pin<Box<dyn Future<Output = OrderResult> + Send + '_>>> =
        None;
    let mut eof = false;
    loop {
        if inflight.is_none() {
            match queued.take() {
                Some((first, actions)) => {
                    // Waiting for this server's own reducer is not the client's silence.
                    live.pause();
                    auth.ready().await;
                    inflight = Some(Box::pin(auth.submit_remote(client_id, first, actions)));
                }
                None if eof => return Ok(()),
                None => {}
            }
        }
        let room = queued.as_ref().map_or(0, |(_, a)| a.len()) < MAX_QUEUED;
        // Not reading (backpressure) is this side's choice: the client's silence
        // meanwhile does not count against it.
        if room {
            live.resume();
        } else {
            live.pause();
        }
        tokio::select! {
            biased;
            r = async { inflight.as_mut().expect("guarded").await }, if inflight.is_some() => {
                inflight = None;
                let (acked, runs) = r?;
                if !runs.is_empty() {
                    // Bounded for a client that dispatches without reading: it then
                    // learns only where its latest runs went.
                    let mut ordered = conn.ordered.lock();
                    ordered.extend(runs);
                    let over = ordered.len().saturating_sub(MAX_ORDERED);
                    ordered.drain(..over);
                }
                conn.acked.store(acked, Ordering::Release);
                conn.wake.notify_one();
            }
            frame = frames.next(), if !eof && room => {
                let Some(frame) = frame else {
                    eof = true;
                    continue;
                };
                let frame = frame?;
                conn.stats.bytes_in.fetch_add(frame.len() as u64, Ordering::Relaxed);
                let (first_counter, actions) = match Message::decode(frame)? {
                    Message::Dispatch { first_counter, actions } => (first_counter, actions),
                    Message::Heartbeat => continue,
                    _ => return Err(FrameError::Malformed("unexpected message from a client")),
                };
                conn.stats.dispatched.fetch_add(actions.len() as u64, Ordering::Relaxed);
                for a in &actions {
                    validate_action(a).map_err(|_| {
                        FrameError::Malformed(
                            "invalid action (not a JSON object with a string type)",
                        )
                    })?;
                }
                match &mut queued {
                    None => queued = Some((first_counter, actions)),
                    // A client numbers its dispatches on one connection consecutively.
                    Some((first, q)) if *first + q.len() as u64 == first_counter => {
                        q.extend(actions)
                    }
                    Some(_) => {
                        return Err(FrameError::Malformed(
                            "dispatch counters out of sequence on one connection",
                        ))
                    }
                }
            }
        }
    }
}

async fn write_loop<A: OrderingAuthority + ?Sized>(
    auth: &A,
    w: &mut WriteHalf,
    conn: &Conn,
    cfg: &StoreConfig,
    resume: Option<u64>,
) -> Result<(), FrameError> {
    let mut version = auth.watch();
    // Grown while there is something to send, given back when the connection goes idle:
    // a server feeding thousands of quiet clients holds a few KB for each, not a batch.
    let mut buf = BytesMut::new();
    let mut sent_ack = 0u64;
    // The next sequence number this client needs; `None` until it has had a snapshot.
    let mut next: Option<u64> = resume.map(|s| s + 1);
    // A resuming client holds everything up to where it resumed from: that is its
    // position until something new is sent (else a client that moved after a failover,
    // with nothing new to receive, would show the whole log as its lag).
    if let Some(s) = resume {
        conn.stats.position.store(s, Ordering::Relaxed);
    }
    let mut sent_snapshot: Option<u64> = None;
    loop {
        let cut_off = version.borrow_and_update().cut_off;
        let mut fatal = conn.fatal.lock().take();
        if cut_off && fatal.is_none() {
            // Its clients move to a server that can order their actions (and that sends
            // them what is committed meanwhile).
            let msg = "this server lost contact with its group; try another server";
            fatal = Some((ErrorCode::Unavailable, msg.to_string()));
        }
        if let Some((code, message)) = fatal {
            let msg = Message::Error {
                code: code.as_str().to_string(),
                message,
            };
            buf.clear();
            write_frame(&mut buf, &cfg.limits, |d| msg.encode(d))?;
            w.write_all(&buf).await?;
            return Ok(());
        }
        buf.clear();
        let acked = conn.acked.load(Ordering::Acquire);
        if acked > sent_ack {
            let ordered = std::mem::take(&mut *conn.ordered.lock());
            write_frame(&mut buf, &cfg.limits, |d| {
                Message::Ack {
                    counter: acked,
                    ordered,
                }
                .encode(d)
            })?;
            sent_ack = acked;
        }
        let mut snapshot = None;
        match auth.mode() {
            Mode::Snapshot => {
                let s = auth.snapshot();
                if sent_snapshot != Some(s.seq) {
                    snapshot = Some(s);
                }
            }
            Mode::Action => match next {
                None => snapshot = Some(auth.snapshot()),
                Some(from) => match auth.read(from, MAX_BATCH, cfg.batch_bytes) {
                    Read::Entries { first_seq, actions } => {
                        write_frame(&mut buf, &cfg.limits, |d| {
                            encode_actions(d, first_seq, actions.iter().map(|a| &a[..]))
                        })?;
                        next = Some(first_seq + actions.len() as u64);
                        conn.stats
                            .position
                            .store(first_seq + actions.len() as u64 - 1, Ordering::Relaxed);
                    }
                    Read::Snapshot(s) => snapshot = Some(s),
                    Read::UpToDate => {}
                },
            },
        }
        if let Some(s) = snapshot {
            // Encoding (and compressing) a large state takes a while: let the runtime move
            // the other connections to another thread meanwhile.
            let frame = if s.state.len() > 1 << 20 {
                super::heavy(|| s.frame(&cfg.limits))
            } else {
                s.frame(&cfg.limits)
            };
            let frame = frame.map_err(|e| {
                auth.report(Event::error(
                    ErrorCode::FrameTooLarge,
                    format!("ReduxCluster.createServer: cannot send the state: {e}"),
                ));
                FrameError::TooLarge {
                    size: s.state.len(),
                    max: cfg.limits.max_frame,
                }
            })?;
            if !buf.is_empty() {
                w.write_all(&buf).await?;
                conn.stats
                    .bytes_out
                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
                buf.clear();
            }
            w.write_all(&frame).await?;
            conn.stats
                .bytes_out
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            conn.stats.position.store(s.seq, Ordering::Relaxed);
            sent_snapshot = Some(s.seq);
            next = Some(s.seq + 1);
            continue;
        }
        if !buf.is_empty() {
            w.write_all(&buf).await?;
            conn.stats
                .bytes_out
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            continue;
        }
        if buf.capacity() > IDLE_BUFFER {
            buf = BytesMut::new();
        }
        tokio::select! {
            r = version.changed() => if r.is_err() { return Ok(()) },
            _ = conn.wake.notified() => {}
            // Idle: a heartbeat, so the client can tell a quiet server from a stopped one.
            _ = tokio::time::sleep(cfg.liveness.heartbeat) => {
                write_frame(&mut buf, &cfg.limits, |d| Message::Heartbeat.encode(d))?;
                w.write_all(&buf).await?;
                conn.stats.bytes_out.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
        }
    }
}
