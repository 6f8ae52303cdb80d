//! The client side of a store: a replica that sends its dispatches to the server and
//! applies what comes back, in order.
//!
//! Dispatches get consecutive counters and stay queued until the server acknowledges
//! them, so a reconnect resends exactly the unacknowledged ones and the server drops
//! any it had already ordered: each action is applied once. Received actions carry
//! sequence numbers; a gap closes the connection and the reconnect asks for what is
//! missing (or gets a snapshot).

use super::outbox::{Event, EventKind, Outbox, Wake};
use crate::config::StoreConfig;
use crate::error::Error;
use crate::error::ErrorCode;
use crate::link::Kind;
use crate::protocol::frame::write_frame;
use crate::protocol::message::encode_dispatch;
use crate::protocol::{FrameCodec, FrameError, Message, Ordered};
use crate::transport::{Backoff, Endpoint, Liveness, ReadHalf, Stream, WriteHalf};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 16 * 1024;

/// Errors from the server after which retrying cannot help.
const FATAL_CODES: &[ErrorCode] = &[ErrorCode::StoreMismatch, ErrorCode::Auth, ErrorCode::Banned];

/// A client's credentials: the login name and the key derived from its password, and
/// the TLS settings (whom to trust, and its own certificate if the server wants one).
#[derive(Clone, Default)]
pub struct Credentials {
    pub login: String,
    pub key: Option<[u8; 32]>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Credentials {
    pub fn new(login: &str, password: &str) -> Credentials {
        Credentials {
            login: login.to_string(),
            key: Some(super::auth::derive_key(password)),
            tls: None,
        }
    }
}

enum Inbound {
    Snapshot { seq: u64, state: Bytes },
    Actions { first_seq: u64, actions: Vec<Bytes> },
}

impl Inbound {
    fn bytes(&self) -> usize {
        match self {
            Inbound::Snapshot { state, .. } => state.len(),
            Inbound::Actions { actions, .. } => actions.iter().map(|a| a.len()).sum(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Dispatched, not yet acknowledged; `pending[0]` has counter `first_counter`.
    pending: VecDeque<Bytes>,
    first_counter: u64,
    /// Highest counter written on the current connection.
    sent_through: u64,
    inbox: VecDeque<Inbound>,
    inbox_bytes: usize,
    /// Highest sequence number received (and queued for JS).
    delivered: u64,
    epoch: u64,
    connected: bool,
    closed: bool,
    /// Someone waits to learn where dispatches went (`dispatchAsync`): keep the runs the
    /// server reports for the next poll.
    track_ordered: bool,
    ordered: VecDeque<Ordered>,
}

/// Runs kept for JS between two polls; past it the oldest go (JS then times out on them).
const MAX_ORDERED_KEPT: usize = 1 << 16;

impl State {
    fn ack(&mut self, counter: u64) {
        while self.first_counter <= counter && self.pending.pop_front().is_some() {
            self.first_counter += 1;
        }
        self.sent_through = self.sent_through.max(self.first_counter - 1);
    }
}

struct Shared {
    /// The servers to try, in turn; `current` is the one of the latest session.
    endpoints: Vec<Endpoint>,
    current: std::sync::atomic::AtomicUsize,
    credentials: Credentials,
    hash: String,
    client_id: u64,
    cfg: StoreConfig,
    state: Mutex<State>,
    to_writer: Notify,
    /// JS took data from the inbox (the reader may be waiting for room).
    drained: Notify,
    /// The queue of unacknowledged dispatches became empty.
    flushed: Notify,
    outbox: Outbox,
}

/// What a dispatch left behind: how many actions wait for the server's acknowledgement,
/// and the counter of the last one queued.
#[derive(Debug, Clone, Copy)]
pub struct Queued {
    pub pending: usize,
    pub last_counter: u64,
}

/// What one pull of the JS side gets.
#[derive(Default)]
pub struct ClientPoll {
    /// A state to replace the local one with, before `actions`.
    pub snapshot: Option<(u64, Bytes)>,
    pub first_seq: u64,
    pub actions: Vec<Bytes>,
    pub more: bool,
    pub events: Vec<Event>,
    /// Where dispatches went, since the last poll (only while tracking).
    pub ordered: Vec<Ordered>,
}

pub struct Client {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tracker: crate::tasks::Tasks,
}

impl Client {
    /// Starts connecting (in the background, with retries) to the first of `endpoints`
    /// that answers, moving on to the next when a session fails or ends. Must run inside
    /// the engine's runtime context.
    pub fn start(
        endpoints: Vec<Endpoint>,
        hash: String,
        cfg: StoreConfig,
        credentials: Credentials,
        waker: Box<dyn Wake>,
    ) -> Client {
        assert!(
            !endpoints.is_empty(),
            "a client needs a server to connect to"
        );
        let shared = Arc::new(Shared {
            endpoints,
            current: Default::default(),
            credentials,
            hash,
            client_id: rand::random(),
            cfg,
            state: Mutex::new(State {
                first_counter: 1,
                ..State::default()
            }),
            to_writer: Notify::new(),
            drained: Notify::new(),
            flushed: Notify::new(),
            outbox: Outbox::new(waker),
        });
        let cancel = CancellationToken::new();
        let tracker = crate::tasks::Tasks::new();
        tracker.spawn(run(shared.clone(), cancel.clone()));
        Client {
            shared,
            cancel,
            tracker,
        }
    }

    /// Queues one action (JSON text) for the server. Returns at once; the action shows up
    /// in the store when the server's ordered stream brings it back.
    pub fn dispatch(&self, action: Bytes) -> Result<Queued, Error> {
        self.dispatch_batch(vec![action])
    }

    /// Starts (or stops) keeping where the server ordered dispatches, for [`Client::poll`].
    pub fn track_ordered(&self, on: bool) {
        let mut st = self.shared.state.lock();
        st.track_ordered = on;
        if !on {
            st.ordered.clear();
        }
    }

    /// Queues several actions at once (all or none). The actions get consecutive
    /// counters ending at the returned `last_counter`.
    pub fn dispatch_batch(&self, actions: Vec<Bytes>) -> Result<Queued, Error> {
        let max = self.shared.cfg.limits.max_frame;
        // 32 bytes: the message header and the action's length prefix.
        if let Some(a) = actions.iter().find(|a| a.len() + 32 > max) {
            return Err(Error::FrameTooLarge { size: a.len(), max });
        }
        let mut st = self.shared.state.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.pending.len() + actions.len() > self.shared.cfg.queue_limit {
            return Err(Error::QueueFull {
                limit: self.shared.cfg.queue_limit,
            });
        }
        st.pending.extend(actions);
        let (connected, pending) = (st.connected, st.pending.len());
        let last_counter = st.first_counter + pending as u64 - 1;
        drop(st);
        if connected {
            self.shared.to_writer.notify_one();
        }
        Ok(Queued {
            pending,
            last_counter,
        })
    }

    /// The server of the latest session (or the one being tried).
    pub fn server(&self) -> &Endpoint {
        self.shared.endpoint()
    }

    pub fn is_connected(&self) -> bool {
        self.shared.state.lock().connected
    }

    /// Dispatched actions the server has not acknowledged yet.
    pub fn pending(&self) -> usize {
        self.shared.state.lock().pending.len()
    }

    /// Takes what arrived, in order: at most one snapshot, then up to `max_actions`.
    pub fn poll(&self, max_actions: usize) -> ClientPoll {
        self.shared.outbox.begin_pull();
        let mut out = ClientPoll {
            events: self.shared.outbox.take_events(),
            ..ClientPoll::default()
        };
        let mut st = self.shared.state.lock();
        out.ordered = st.ordered.drain(..).collect();
        let mut taken = 0;
        while let Some(item) = st.inbox.pop_front() {
            taken += item.bytes();
            match item {
                Inbound::Snapshot { seq, state } => {
                    if out.snapshot.is_some() || !out.actions.is_empty() {
                        st.inbox.push_front(Inbound::Snapshot { seq, state });
                        taken -= st.inbox[0].bytes();
                        out.more = true;
                        break;
                    }
                    out.snapshot = Some((seq, state));
                }
                Inbound::Actions {
                    first_seq,
                    mut actions,
                } => {
                    if out.actions.is_empty() {
                        out.first_seq = first_seq;
                    }
                    let room = max_actions - out.actions.len();
                    if actions.len() > room {
                        let rest = actions.split_off(room);
                        taken -= rest.iter().map(|a| a.len()).sum::<usize>();
                        st.inbox.push_front(Inbound::Actions {
                            first_seq: first_seq + room as u64,
                            actions: rest,
                        });
                    }
                    out.actions.append(&mut actions);
                    if out.actions.len() >= max_actions {
                        out.more = !st.inbox.is_empty();
                        break;
                    }
                }
            }
        }
        st.inbox_bytes -= taken;
        drop(st);
        self.shared.drained.notify_waiters();
        out
    }

    /// Stops the client. Waits up to `flush` for queued dispatches to be acknowledged
    /// first, then closes the connection; bounded either way.
    pub async fn close(&self, flush: Duration) {
        let deadline = tokio::time::Instant::now() + flush;
        loop {
            let flushed = self.shared.flushed.notified();
            {
                let st = self.shared.state.lock();
                if st.pending.is_empty() || !st.connected {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, flushed).await.is_err() {
                break;
            }
        }
        self.shutdown();
        self.tracker.shutdown(Duration::from_secs(2)).await;
    }

    /// Stops at once, without waiting; the store refuses further dispatches.
    pub fn shutdown(&self) {
        self.shared.state.lock().closed = true;
        self.cancel.cancel();
        self.tracker.close();
        self.shared.outbox.detach();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

enum SessionEnd {
    /// Retrying cannot help (e.g. a different store on that address).
    Fatal(ErrorCode, String),
    /// Lost or never made; retry with backoff. `bool`: the session had connected.
    Retry(ErrorCode, String, bool),
}

impl Shared {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoints[self.current.load(std::sync::atomic::Ordering::Relaxed)]
    }
}

async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut backoff = Backoff::new(shared.cfg.reconnect_initial, shared.cfg.reconnect_max);
    let n = shared.endpoints.len();
    // Each server's last failure, reported once rather than on every retry.
    let mut last_error = vec![String::new(); n];
    // Servers tried since one last answered: the backoff waits only after a whole round.
    let mut failed_in_round = 0;
    loop {
        let started = tokio::time::Instant::now();
        let end = tokio::select! {
            _ = cancel.cancelled() => break,
            e = session(&shared) => e,
        };
        let was_connected = {
            let mut st = shared.state.lock();
            std::mem::replace(&mut st.connected, false)
        };
        match end {
            SessionEnd::Fatal(code, message) => {
                shared.outbox.push(Event::error(
                    code,
                    format!("ReduxCluster.createClient: {message}"),
                ));
                break;
            }
            SessionEnd::Retry(code, message, connected) => {
                if was_connected {
                    shared.outbox.push(Event {
                        kind: EventKind::Disconnected(code),
                        message: message.clone(),
                    });
                }
                // Report a failure once, not on every retry of the same failure.
                let i = shared.current.load(std::sync::atomic::Ordering::Relaxed);
                if message != last_error[i] {
                    shared.outbox.push(Event::error(
                        code,
                        format!("ReduxCluster.createClient: {message}"),
                    ));
                    last_error[i] = message;
                }
                // A session that lasted counts as a server that works; one dropped at once
                // (a server that cannot order, say, while its group elects a leader) is a
                // failure, so a client does not spin through such servers.
                if connected && started.elapsed() >= Duration::from_millis(500) {
                    backoff.reset();
                    failed_in_round = 0;
                } else {
                    failed_in_round += 1;
                }
            }
        }
        // Fail over: the next server at once, unless every one was tried in vain.
        let next = (shared.current.load(std::sync::atomic::Ordering::Relaxed) + 1) % n;
        shared
            .current
            .store(next, std::sync::atomic::Ordering::Relaxed);
        if n > 1 && failed_in_round < n {
            continue;
        }
        failed_in_round = 0;
        let delay = backoff.next_delay();
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn retry(e: impl std::fmt::Display, code: ErrorCode, connected: bool) -> SessionEnd {
    SessionEnd::Retry(code, e.to_string(), connected)
}

/// One step of setting up a connection, bounded by the handshake timeout; a failure ends
/// the session with a retry.
async fn bounded<T>(
    shared: &Shared,
    what: &str,
    code: ErrorCode,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, SessionEnd> {
    match tokio::time::timeout(shared.cfg.handshake_timeout, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(retry(
            format!("{what} {} failed: {e}", shared.endpoint()),
            code,
            false,
        )),
        Err(_) => Err(retry(
            format!("{what} {} timed out", shared.endpoint()),
            code,
            false,
        )),
    }
}

async fn session(shared: &Arc<Shared>) -> SessionEnd {
    let cfg = &shared.cfg;
    let stream = match bounded(
        shared,
        "connecting to",
        ErrorCode::Connect,
        Stream::connect(shared.endpoint()),
    )
    .await
    {
        Ok(s) => s,
        Err(end) => return end,
    };
    let stream = match (&shared.credentials.tls, &shared.endpoint()) {
        (Some(tls), Endpoint::Tcp { host, .. }) => {
            match bounded(
                shared,
                "TLS handshake with",
                ErrorCode::Tls,
                stream.tls_connect(tls.clone(), host),
            )
            .await
            {
                Ok(s) => s,
                Err(end) => return end,
            }
        }
        (tls, Endpoint::Ws(url)) => {
            // wss://: TLS first (the configured trust, else the system's roots).
            let stream = if url.tls {
                let cfg = match tls.clone() {
                    Some(c) => Ok(c),
                    None => crate::transport::tls::client_config(None, None),
                };
                let cfg = match cfg {
                    Ok(c) => c,
                    Err(e) => return retry(format!("TLS for {url}: {e}"), ErrorCode::Tls, false),
                };
                match bounded(
                    shared,
                    "TLS handshake with",
                    ErrorCode::Tls,
                    stream.tls_connect(cfg, &url.host),
                )
                .await
                {
                    Ok(s) => s,
                    Err(end) => return end,
                }
            } else {
                stream
            };
            // Room for the largest frame and its WebSocket framing.
            let max = cfg.limits.max_frame.saturating_add(64 * 1024);
            match bounded(
                shared,
                "WebSocket handshake with",
                ErrorCode::Connect,
                crate::transport::ws::connect(stream, url, max),
            )
            .await
            {
                Ok(s) => s,
                Err(end) => return end,
            }
        }
        _ => stream,
    };
    let (r, mut w) = stream.into_split();
    let live = Liveness::new();
    let mut frames = FramedRead::new(live.watch(r), FrameCodec::new(cfg.limits));
    let hello = {
        let st = shared.state.lock();
        Message::Hello {
            hash: shared.hash.clone(),
            client_id: shared.client_id,
            epoch: st.epoch,
            seq: st.delivered,
            login: shared.credentials.login.clone(),
        }
    };
    // The label first: a server's port also serves the other servers of its group.
    if let Err(end) = send_after(shared, &mut w, &Kind::Client.label(), &hello).await {
        return end;
    }
    let mut answer = match next_handshake_frame(shared, &mut frames).await {
        Ok(m) => m,
        Err(end) => return end,
    };
    if let Message::Challenge { nonce } = &answer {
        let Some(key) = shared.credentials.key else {
            return SessionEnd::Fatal(
                ErrorCode::Auth,
                format!(
                    "the server at {} requires a login and password",
                    shared.endpoint()
                ),
            );
        };
        let proof = super::auth::prove(
            &key,
            nonce,
            shared.client_id,
            &shared.hash,
            &shared.credentials.login,
        );
        let reply = Message::Auth {
            proof: Bytes::from(proof),
        };
        if let Err(end) = send(shared, &mut w, &reply).await {
            return end;
        }
        answer = match next_handshake_frame(shared, &mut frames).await {
            Ok(m) => m,
            Err(end) => return end,
        };
    }
    match answer {
        Message::Welcome { epoch, acked, .. } => {
            let mut st = shared.state.lock();
            st.epoch = epoch;
            st.ack(acked);
            // Everything not acknowledged goes again on this connection.
            st.sent_through = st.first_counter - 1;
            st.connected = true;
        }
        Message::Error { code, message } => {
            // A code that is not one of ours is the server's garbage (see `read_loop`).
            let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::Protocol);
            return if FATAL_CODES.contains(&code) {
                SessionEnd::Fatal(code, message)
            } else {
                SessionEnd::Retry(code, message, false)
            };
        }
        _ => return retry("unexpected handshake answer", ErrorCode::Protocol, false),
    }
    tracing::debug!(endpoint = %shared.endpoint(), "connected");
    shared.outbox.push(Event {
        kind: EventKind::Connected,
        message: format!("connected to {}", shared.endpoint()),
    });
    let end = tokio::select! {
        // The reader first, so that bytes already in the socket count as a sign of life
        // before the watch looks.
        biased;
        e = read_loop(shared, &mut frames, &live) => e,
        e = write_loop(shared, &mut w) => e.map_err(ReadEnd::Frame),
        // A server that stopped without closing (SIGSTOP, a GC or VM pause, a path that
        // drops packets): leave it for the next server, as after a close.
        quiet = live.silent_for(cfg.liveness.timeout) => Err(ReadEnd::Frame(FrameError::Silent(quiet))),
    };
    match end {
        Ok(()) => retry(
            format!("the server at {} closed the connection", shared.endpoint()),
            ErrorCode::Disconnected,
            true,
        ),
        Err(ReadEnd::Server { code, message }) => retry(
            format!(
                "the server at {} ended the session: {message}",
                shared.endpoint()
            ),
            code,
            true,
        ),
        Err(ReadEnd::Frame(e @ FrameError::Silent(_))) => retry(
            format!(
                "the server at {} stopped answering ({e}); trying the next server",
                shared.endpoint()
            ),
            e.code(),
            true,
        ),
        Err(ReadEnd::Frame(FrameError::Io(e))) => retry(
            format!("connection to {} lost: {e}", shared.endpoint()),
            ErrorCode::Disconnected,
            true,
        ),
        Err(ReadEnd::Frame(e)) => retry(
            format!("connection to {} closed: {e}", shared.endpoint()),
            e.code(),
            true,
        ),
    }
}

/// Writes one handshake message, or says how the session ends.
async fn send(shared: &Shared, w: &mut WriteHalf, msg: &Message) -> Result<(), SessionEnd> {
    send_after(shared, w, &[], msg).await
}

/// Sends `prefix` (the connection's label) and then a message, in one write.
async fn send_after(
    shared: &Shared,
    w: &mut WriteHalf,
    prefix: &[u8],
    msg: &Message,
) -> Result<(), SessionEnd> {
    let mut buf = BytesMut::from(prefix);
    write_frame(&mut buf, &shared.cfg.limits, |d| msg.encode(d))
        .map_err(|e| retry(e, ErrorCode::Protocol, false))?;
    w.write_all(&buf).await.map_err(|e| {
        retry(
            format!("connection to {} failed: {e}", shared.endpoint()),
            ErrorCode::Connect,
            false,
        )
    })
}

/// The server's next handshake message, or how the session ends.
async fn next_handshake_frame(
    shared: &Shared,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
) -> Result<Message, SessionEnd> {
    match tokio::time::timeout(shared.cfg.handshake_timeout, frames.next()).await {
        Err(_) => Err(retry(
            "the server did not answer the handshake",
            ErrorCode::Protocol,
            false,
        )),
        Ok(None) => Err(retry(
            "the server closed the connection during the handshake",
            ErrorCode::Connect,
            false,
        )),
        Ok(Some(Err(e))) => Err(retry(e.to_string(), e.code(), false)),
        Ok(Some(Ok(p))) => Message::decode(p).map_err(|e| retry(e.to_string(), e.code(), false)),
    }
}

fn check_json(raw: &[u8]) -> Result<(), FrameError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw)
        .map(|_| ())
        .map_err(|_| FrameError::Malformed("invalid JSON from the server"))
}

/// Why a connected session ended badly.
enum ReadEnd {
    Frame(FrameError),
    /// The server said why it ends the session (cut off from its group, say).
    Server {
        code: ErrorCode,
        message: String,
    },
}

impl<E: Into<FrameError>> From<E> for ReadEnd {
    fn from(e: E) -> ReadEnd {
        ReadEnd::Frame(e.into())
    }
}

async fn read_loop(
    shared: &Shared,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
    live: &Liveness,
) -> Result<(), ReadEnd> {
    while let Some(frame) = frames.next().await {
        let item = match Message::decode(frame?)? {
            Message::Actions { first_seq, actions } => {
                for a in &actions {
                    check_json(a)?;
                }
                Inbound::Actions { first_seq, actions }
            }
            Message::Snapshot { seq, state } => {
                if state.len() > 1 << 20 {
                    super::heavy(|| check_json(&state))?;
                } else {
                    check_json(&state)?;
                }
                Inbound::Snapshot { seq, state }
            }
            Message::Ack { counter, ordered } => {
                let mut st = shared.state.lock();
                st.ack(counter);
                if st.pending.is_empty() {
                    shared.flushed.notify_waiters();
                }
                let report = st.track_ordered && !ordered.is_empty();
                if report {
                    for o in ordered {
                        if st.ordered.len() == MAX_ORDERED_KEPT {
                            st.ordered.pop_front();
                        }
                        st.ordered.push_back(o);
                    }
                }
                drop(st);
                if report {
                    shared.outbox.wake();
                }
                continue;
            }
            Message::Heartbeat => continue,
            Message::Error { code, message } => {
                // The server's own code, when it is one of ours (a peer's text is not
                // trusted to invent codes).
                let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::Protocol);
                return Err(ReadEnd::Server { code, message });
            }
            _ => return Err(FrameError::Malformed("unexpected message from the server").into()),
        };
        let size = item.bytes();
        {
            let mut st = shared.state.lock();
            match &item {
                Inbound::Actions { first_seq, actions } => {
                    let last = first_seq + actions.len() as u64 - 1;
                    if *first_seq != st.delivered + 1 {
                        // Out of order: reconnect and ask again from what we hold.
                        return Err(FrameError::Malformed("gap in the action sequence").into());
                    }
                    st.delivered = last;
                }
                Inbound::Snapshot { seq, .. } => {
                    // A snapshot replaces everything before it.
                    st.inbox.clear();
                    st.inbox_bytes = 0;
                    st.delivered = *seq;
                }
            }
            st.inbox.push_back(item);
            st.inbox_bytes += size;
        }
        shared.outbox.wake();
        // Backpressure: stop reading while JS has a lot left to apply. The server's
        // silence meanwhile is ours, not a sign that it stopped.
        loop {
            let drained = shared.drained.notified();
            if shared.state.lock().inbox_bytes <= shared.cfg.inbox_bytes {
                break;
            }
            live.pause();
            drained.await;
        }
        live.resume();
    }
    Ok(())
}

async fn write_loop(shared: &Shared, w: &mut WriteHalf) -> Result<(), FrameError> {
    // Grown while dispatching, given back when idle (see the server's write loop).
    let mut buf = BytesMut::new();
    loop {
        let notified = shared.to_writer.notified();
        let batch = {
            let st = shared.state.lock();
            let start = (st.sent_through + 1 - st.first_counter) as usize;
            let mut size = 0;
            let mut batch = Vec::new();
            for a in st.pending.iter().skip(start) {
                if batch.len() >= MAX_BATCH || (size > 0 && size + a.len() > shared.cfg.batch_bytes)
                {
                    break;
                }
                size += a.len();
                batch.push(a.clone());
            }
            (!batch.is_empty()).then(|| (st.sent_through + 1, batch))
        };
        let Some((first, batch)) = batch else {
            if buf.capacity() > super::server::IDLE_BUFFER {
                buf = BytesMut::new();
            }
            // Idle: a heartbeat, so the server can tell a quiet client from a stopped one.
            if tokio::time::timeout(shared.cfg.liveness.client_heartbeat(), notified)
                .await
                .is_err()
            {
                buf.clear();
                write_frame(&mut buf, &shared.cfg.limits, |d| {
                    Message::Heartbeat.encode(d)
                })?;
                w.write_all(&buf).await?;
            }
            continue;
        };
        buf.clear();
        write_frame(&mut buf, &shared.cfg.limits, |d| {
            encode_dispatch(d, first, batch.iter().map(|a| &a[..]))
        })?;
        w.write_all(&buf).await?;
        let mut st = shared.state.lock();
        st.sent_through = st.sent_through.max(first + batch.len() as u64 - 1);
    }
}
