//! Raft traffic over the project's framed TCP transport.
//!
//! A connection starts with a hello (the caller's node name and a nonce) and a welcome
//! (the callee's nonce). With a cluster secret, both ends then derive a session key
//! `HMAC(secret, names and both nonces)` and every frame carries
//! `HMAC(key, direction, counter, body)`: a frame from another connection, an earlier
//! frame, or one from a node without the secret fails the check and ends the connection.
//! Requests on one connection are answered in order; a caller that wants concurrency
//! opens more connections (see [`Pool`]).

use super::types::{Command, Member, Response, TypeConfig};
use crate::protocol::frame::write_frame;
use crate::protocol::{FrameCodec, FrameLimits, Message};
use crate::transport::{Endpoint, ReadHalf, Stream, WriteHalf};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

type HmacSha256 = Hmac<Sha256>;
const TAG: usize = 32;

/// Everything one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write, forwarded to the leader.
    Write(Command),
    /// "Confirm you are still the leader and wait until your state machine has applied
    /// everything committed" (a linearizable read's barrier).
    Read,
    /// Adds a voter (through a learner that catches up first). Answered by the leader.
    AddNode(Member),
    RemoveNode(String),
    /// A fresh node asks to be added; a fresh callee may found the cluster first.
    Join(Member),
    Ping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// The leader's name, when known (`ERR_NOT_LEADER`).
    pub leader: Option<String>,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
            leader: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A node's view of the cluster, as `Ping` answers it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub initialized: bool,
    pub leader: Option<String>,
    pub term: u64,
    /// The cluster's name once its founder added a first node (see `Command::Genesis`).
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    pub response: Response,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Written(Result<Committed, ApiError>),
    Done(Result<(), ApiError>),
    Status(Status),
}

fn nonce() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn proto(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One authenticated connection.
pub struct Session {
    reader: FramedRead<ReadHalf, FrameCodec>,
    writer: WriteHalf,
    buf: BytesMut,
    limits: FrameLimits,
    key: Option<Vec<u8>>,
    /// 0 on the side that connected, 1 on the side that accepted.
    side: u8,
    sent: u64,
    received: u64,
    /// The other end's node name.
    pub peer: String,
}

fn session_key(secret: &str, client: &str, nc: &str, server: &str, ns: &str) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in ["redux-cluster-rs raft v1", client, nc, server, ns] {
        m.update(part.as_bytes());
        m.update(&[0]);
    }
    m.finalize().into_bytes().to_vec()
}

impl Session {
    fn new(
        reader: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        limits: FrameLimits,
        side: u8,
    ) -> Session {
        Session {
            reader,
            writer,
            buf: BytesMut::new(),
            limits,
            key: None,
            side,
            sent: 0,
            received: 0,
            peer: String::new(),
        }
    }

    /// Connects to `addr` (`host:port`) as the dialer's node.
    pub async fn connect(addr: &str, d: &Dialer) -> io::Result<Session> {
        let (host, port) = split_addr(addr)?;
        let stream = Stream::connect(&Endpoint::Tcp {
            host: host.clone(),
            port,
        })
        .await?;
        Session::connect_over(stream, addr, d).await
    }

    /// The handshake of [`Session::connect`] over a connection already made to `addr`.
    pub async fn connect_over(mut stream: Stream, addr: &str, d: &Dialer) -> io::Result<Session> {
        let (host, _) = split_addr(addr)?;
        if let Some(tls) = &d.tls {
            stream = stream.tls_connect(tls.clone(), &host).await?;
        }
        let (r, w) = stream.into_split();
        let mut s = Session::new(
            FramedRead::new(r, FrameCodec::new(d.limits)),
            w,
            d.limits,
            0,
        );
        let nc = nonce();
        let secret = d.secret.as_deref();
        s.send_plain(&Message::PeerHello {
            from: d.local.clone(),
            nonce: nc.clone(),
            auth: secret.is_some(),
        })
        .await?;
        let (name, ns, auth) = match s.recv_plain().await? {
            Message::PeerWelcome { name, nonce, auth } => (name, nonce, auth),
            Message::Error { code, message } => {
                return Err(proto(format!("{addr} refused: {message} ({code})")))
            }
            _ => return Err(proto(format!("{addr} did not answer as a Raft peer"))),
        };
        if auth != secret.is_some() {
            return Err(proto(format!(
                "{name} {} a clusterSecret and this node {}",
                if auth { "uses" } else { "does not use" },
                if secret.is_some() { "does" } else { "does not" }
            )));
        }
        s.key = secret.map(|k| session_key(k, &d.local, &nc, &name, &ns));
        s.peer = name;
        Ok(s)
    }

    /// The accepting side of [`Session::connect`], on a connection of its own.
    pub async fn accept(
        stream: Stream,
        local: &str,
        secret: Option<&str>,
        limits: FrameLimits,
    ) -> io::Result<Session> {
        let (r, w) = stream.into_split();
        let mut reader = FramedRead::new(r, FrameCodec::new(limits));
        let first = match reader.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(proto(e.to_string())),
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        };
        match Message::decode(first) {
            Ok(Message::PeerHello { from, nonce, auth }) => {
                let hello = PeerHello { from, nonce, auth };
                Session::accept_hello(reader, w, hello, local, secret, limits).await
            }
            Ok(_) => Err(proto("expected a Raft peer's handshake")),
            Err(e) => Err(proto(format!("bad handshake: {e}"))),
        }
    }

    /// Answers a peer's hello, read by whoever accepted the connection (the store's
    /// port reads the first frame to tell its clients from its peers).
    pub async fn accept_hello(
        reader: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        h: PeerHello,
        local: &str,
        secret: Option<&str>,
        limits: FrameLimits,
    ) -> io::Result<Session> {
        let mut s = Session::new(reader, writer, limits, 1);
        let ns = nonce();
        s.send_plain(&Message::PeerWelcome {
            name: local.into(),
            nonce: ns.clone(),
            auth: secret.is_some(),
        })
        .await?;
        if h.auth != secret.is_some() {
            return Err(proto(format!(
                "{} disagrees on using a clusterSecret",
                h.from
            )));
        }
        s.key = secret.map(|k| session_key(k, &h.from, &h.nonce, local, &ns));
        s.peer = h.from;
        Ok(s)
    }

    async fn send_plain(&mut self, msg: &Message) -> io::Result<()> {
        self.buf.clear();
        write_frame(&mut self.buf, &self.limits, |d| msg.encode(d)).map_err(io::Error::other)?;
        self.writer.write_all(&self.buf).await
    }

    async fn recv_frame(&mut self) -> io::Result<Bytes> {
        match self.reader.next().await {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(proto(e.to_string())),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} closed the connection", self.peer_or("peer")),
            )),
        }
    }

    fn peer_or<'a>(&'a self, d: &'a str) -> &'a str {
        if self.peer.is_empty() {
            d
        } else {
            &self.peer
        }
    }

    async fn recv_plain(&mut self) -> io::Result<Message> {
        let f = self.recv_frame().await?;
        Message::decode(f).map_err(|e| proto(format!("bad handshake: {e}")))
    }

    fn tag(&self, side: u8, n: u64, body: &[u8]) -> Option<HmacSha256> {
        let key = self.key.as_ref()?;
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("any key length");
        m.update(&[side]);
        m.update(&n.to_be_bytes());
        m.update(body);
        Some(m)
    }

    pub async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let tag = self.tag(self.side, self.sent, &body);
        self.sent += 1;
        self.buf.clear();
        write_frame(&mut self.buf, &self.limits, |d| {
            if let Some(t) = tag {
                d.extend_from_slice(&t.finalize().into_bytes());
            }
            d.extend_from_slice(&body);
        })
        .map_err(io::Error::other)?;
        self.writer.write_all(&self.buf).await
    }

    pub async fn recv<T: DeserializeOwned>(&mut self) -> io::Result<T> {
        let mut f = self.recv_frame().await?;
        let n = self.received;
        self.received += 1;
        if self.key.is_some() {
            if f.len() < TAG {
                return Err(proto("frame without an authentication tag"));
            }
            let tag = f.split_to(TAG);
            let ok = self
                .tag(1 - self.side, n, &f)
                .map(|m| m.verify_slice(&tag).is_ok())
                .unwrap_or(false);
            if !ok {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "message from {} failed authentication (wrong clusterSecret, or replayed)",
                        self.peer_or("peer")
                    ),
                ));
            }
        }
        serde_json::from_slice(&f).map_err(|e| proto(format!("malformed message: {e}")))
    }

    /// Sends a request and waits for its reply, within `ttl`.
    pub async fn call(&mut self, req: &Request, ttl: Duration) -> io::Result<Reply> {
        tokio::time::timeout(ttl, async {
            self.send(req).await?;
            self.recv::<Reply>().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))?
    }
}

pub fn split_addr(addr: &str) -> io::Result<(String, u16)> {
    let (h, p) = addr
        .rsplit_once(':')
        .ok_or_else(|| proto(format!("address {addr:?} is not host:port")))?;
    let port = p
        .parse()
        .map_err(|_| proto(format!("address {addr:?} has no valid port")))?;
    Ok((h.trim_matches(['[', ']']).to_string(), port))
}

/// A peer's first frame, as read by whoever accepted its connection.
pub struct PeerHello {
    pub from: String,
    pub nonce: String,
    pub auth: bool,
}

/// How this node reaches the others: as whom, with which secret, frame limits and TLS
/// (a replicated store's servers speak TLS to each other when their port does).
#[derive(Clone)]
pub struct Dialer {
    pub local: String,
    pub secret: Option<String>,
    pub limits: FrameLimits,
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// One connection to a peer, reused call after call, and safe to cancel: a call given
/// up on (its future dropped) leaves its reply owed, and the next call reads and drops
/// the owed replies before its own.
///
/// Why: openraft wraps every append and snapshot chunk in a timeout of its own and drops
/// the call's future when it fires. The connection answers in order, so a kept session
/// handed the late reply of the abandoned call to the next one. A leader then took an
/// older append's `Success` as the answer to a longer one, counted entries as replicated
/// that were not, and committed without a majority: the chaos run's lost and diverged
/// actions. Dropping the connection instead would also be correct, but a follower whose
/// appends take longer than the heartbeat interval (one far behind, a slow disk) would
/// then never answer in time on a fresh connection, and openraft backs off from peers
/// that look unreachable.
#[derive(Default)]
pub struct Link(Mutex<Option<Kept>>);

struct Kept {
    session: Session,
    /// Replies to calls given up on, still to come, in order, before the next call's.
    owed: u32,
    /// A call was dropped while writing its request: the stream may hold half a frame.
    torn: bool,
}

/// Calls given up on in a row after which the connection is presumed dead (a peer that
/// is stopped, or cut off without the connection closing) and made again.
const MAX_OWED: u32 = 4;

impl Link {
    pub async fn call(
        &mut self,
        d: &Dialer,
        addr: &str,
        req: &Request,
        ttl: Duration,
    ) -> io::Result<Reply> {
        let slot = self.0.get_mut();
        if slot.as_ref().is_some_and(|k| k.torn || k.owed >= MAX_OWED) {
            *slot = None;
        }
        let r = tokio::time::timeout(ttl, async {
            if slot.is_none() {
                let session = Session::connect(addr, d).await?;
                *slot = Some(Kept {
                    session,
                    owed: 0,
                    torn: false,
                });
            }
            let k = slot.as_mut().expect("connected");
            // Reading a frame is cancel-safe (a partial one stays buffered); `owed` goes
            // down only once a whole reply has been read.
            while k.owed > 0 {
                k.session.recv::<Reply>().await?;
                k.owed -= 1;
            }
            k.torn = true;
            k.session.send(req).await?;
            (k.torn, k.owed) = (false, 1);
            let reply = k.session.recv::<Reply>().await?;
            k.owed = 0;
            Ok(reply)
        })
        .await;
        match r {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                *self.0.get_mut() = None;
                Err(e)
            }
            // As when openraft gives up on a call: its reply stays owed, the connection kept.
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time")),
        }
    }
}

/// Idle connections per address, so concurrent calls (forwarded writes) each get one.
/// Cancellation-safe: a call owns its session until the reply (a call given up on
/// takes its connection with it).
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<Session>>>,
}

impl Pool {
    pub async fn call(
        &self,
        d: &Dialer,
        addr: &str,
        req: &Request,
        ttl: Duration,
    ) -> io::Result<Reply> {
        let cached = self.idle.lock().get_mut(addr).and_then(Vec::pop);
        let mut s = match cached {
            Some(s) => s,
            None => tokio::time::timeout(ttl, Session::connect(addr, d))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??,
        };
        let r = s.call(req, ttl).await?;
        let mut idle = self.idle.lock();
        let v = idle.entry(addr.to_string()).or_default();
        if v.len() < 64 {
            v.push(s);
        }
        Ok(r)
    }

    pub fn clear(&self) {
        self.idle.lock().clear();
    }
}

/// Serves one accepted connection: each request is answered in order by `handle`.
/// Ends with why the connection closed, `None` when the peer simply left.
pub async fn serve_session<F, Fut>(mut s: Session, handle: F) -> Option<io::Error>
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    loop {
        let req = match s.recv::<Request>().await {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return None,
            Err(e) => return Some(e),
        };
        let reply = handle(req).await;
        if s.send(&reply).await.is_err() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Listener;

    async fn pair(
        cs: Option<&'static str>,
        ss: Option<&'static str>,
    ) -> (io::Result<Session>, io::Result<Session>) {
        let l = Listener::bind(&Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .unwrap();
        let addr = format!("127.0.0.1:{}", l.port().unwrap());
        let server = tokio::spawn(async move {
            let (st, _) = l.accept().await.unwrap();
            Session::accept(st, "b", ss, FrameLimits::default()).await
        });
        let d = Dialer {
            local: "a".into(),
            secret: cs.map(String::from),
            limits: FrameLimits::default(),
            tls: None,
        };
        let c = Session::connect(&addr, &d).await;
        (c, server.await.unwrap())
    }

    /// openraft drops a call's future when its own timeout fires. The reply to that
    /// call, arriving later, must never be taken as the answer to the next one.
    #[tokio::test]
    async fn a_cancelled_call_never_hands_its_reply_to_the_next() {
        let l = Listener::bind(&Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .unwrap();
        let addr = format!("127.0.0.1:{}", l.port().unwrap());
        // The peer answers each request with its name; "first" only once released.
        let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let gate = release.clone();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        // Owned by the test: dropping the set at its end stops the peer and its sessions.
        let mut peer = tokio::task::JoinSet::new();
        peer.spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((st, _)) = l.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let gate = gate.clone();
                sessions.spawn(async move {
                    let s = Session::accept(st, "b", None, FrameLimits::default()).await?;
                    serve_session(s, |req| {
                        let gate = gate.clone();
                        async move {
                            let Request::RemoveNode(name) = req else {
                                return Reply::Done(Ok(()));
                            };
                            if name == "first" {
                                gate.acquire().await.expect("open").forget();
                            }
                            Reply::Status(Status {
                                name,
                                ..Status::default()
                            })
                        }
                    })
                    .await;
                    io::Result::Ok(())
                });
            }
        });
        let d = Dialer {
            local: "a".into(),
            secret: None,
            limits: FrameLimits::default(),
            tls: None,
        };
        let ttl = Duration::from_secs(10);
        let mut link = Link::default();
        let ask = |name: &str| Request::RemoveNode(name.into());
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            link.call(&d, &addr, &ask("first"), ttl),
        )
        .await;
        assert!(abandoned.is_err(), "the first call waits at the peer");
        release.add_permits(1);
        match link.call(&d, &addr, &ask("second"), ttl).await.unwrap() {
            Reply::Status(s) => assert_eq!(s.name, "second", "the answer to another call"),
            other => panic!("unexpected reply {other:?}"),
        }
        // On the same connection: a slow peer is not a dead one.
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn authenticated_round_trip_and_refusals() {
        let (c, s) = pair(Some("k"), Some("k")).await;
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        assert_eq!((c.peer.as_str(), s.peer.as_str()), ("b", "a"));
        c.send(&Request::Ping).await.unwrap();
        assert!(matches!(s.recv::<Request>().await.unwrap(), Request::Ping));
        s.send(&Reply::Done(Ok(()))).await.unwrap();
        assert!(matches!(
            c.recv::<Reply>().await.unwrap(),
            Reply::Done(Ok(()))
        ));

        // Wrong secret: the handshake passes (nothing secret in it), the first message fails.
        let (c, s) = pair(Some("guess"), Some("k")).await;
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        c.send(&Request::Ping).await.unwrap();
        let e = s.recv::<Request>().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");

        // One side without a secret: refused at the handshake, with the reason.
        let (c, _s) = pair(None, Some("k")).await;
        let e = c.err().expect("refused");
        assert!(e.to_string().contains("clusterSecret"), "{e}");
    }
}
