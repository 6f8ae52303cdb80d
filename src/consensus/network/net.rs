//! Raft traffic over the link layer: each connection is a `link::Session` of kind Raft
//! (labelled, authenticated with the cluster secret, every frame tagged), each message
//! one frame in postcard (an application's command inside is raw bytes, not JSON inside
//! JSON). Requests on one connection are answered in order; a caller that wants
//! concurrency opens more connections (see [`Pool`]).

use super::types::{Command, NodeId, Response, TypeConfig};
use crate::consensus::metrics::PeerMeter;
use crate::error::ErrorCode;
use crate::link::{self, Kind, Local};
use crate::protocol::{FrameCodec, FrameLimits};
use crate::transport::{Endpoint, ReadHalf, Stream, WriteHalf};
use bytes::BufMut;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::time::Duration;
use tokio_util::codec::FramedRead;

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
    AddNode(NodeId),
    RemoveNode(String),
    /// A fresh node asks to be added; a fresh callee may found the cluster first.
    Join(NodeId),
    Ping,
    /// A replica asks to be added as one: a learner that is never promoted. Answered
    /// by the leader; a node not in a group yet says so (a replica never founds one).
    AddReplica(NodeId),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The leader's name, when known (`ERR_NOT_LEADER`).
    pub leader: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
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
    /// Started as a replica: added, it stays a non-voter.
    #[serde(default)]
    pub replica: bool,
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
    /// The answer of a replica to a fresh node's `Join`: it does not found groups, and
    /// joins the group itself once there is one (so it is no candidate founder).
    Replica,
}

fn proto(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A Raft peer's session (`link::Session`), its messages encoded as requests and replies.
pub struct Session {
    inner: link::Session,
    /// The other end's node name.
    pub peer: String,
    /// The peer's byte counters, once the node's metrics know it.
    meter: Option<PeerMeter>,
}

impl Session {
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
        let local = Local {
            name: &d.local,
            secret: d.secret.as_deref(),
            limits: d.limits,
        };
        let inner = link::Session::connect(stream, Kind::Raft, local)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        let meter = d.metrics.as_ref().map(|m| m.peer(&inner.peer));
        Ok(Session {
            peer: inner.peer.clone(),
            inner,
            meter,
        })
    }

    /// Accepts a connection on a Raft port: its label must say it is a Raft peer.
    /// Counts this session's bytes as the node's traffic with its peer.
    pub fn metered(mut self, m: &crate::consensus::metrics::NodeMetrics) -> Session {
        self.meter = Some(m.peer(&self.peer));
        self
    }

    pub async fn accept_stream(stream: Stream, local: Local<'_>) -> io::Result<Session> {
        let inner = link::Session::accept_only(stream, Kind::Raft, local).await?;
        Ok(Session {
            peer: inner.peer.clone(),
            inner,
            meter: None,
        })
    }

    /// Accepts a peer whose label the listener read (the store's port, or the Raft port).
    pub async fn accept(
        frames: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        local: Local<'_>,
    ) -> io::Result<Session> {
        let inner = link::Session::accept(frames, writer, Kind::Raft, local).await?;
        Ok(Session {
            peer: inner.peer.clone(),
            inner,
            meter: None,
        })
    }

    /// One message, postcard-encoded straight into the frame (openraft's messages are
    /// serde types; an application's command inside them is raw bytes, not re-encoded).
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let mut err = None;
        let n = self
            .inner
            .writer
            .send(|d| err = postcard::to_io(msg, d.writer()).err())
            .await?;
        if let Some(m) = &self.meter {
            m.sent.add(n as u64);
        }
        match err {
            Some(e) => Err(io::Error::other(e)),
            None => Ok(()),
        }
    }

    pub async fn recv<T: DeserializeOwned>(&mut self) -> io::Result<T> {
        let f = self.inner.reader.recv().await?;
        if let Some(m) = &self.meter {
            m.received.add(f.len() as u64);
        }
        postcard::from_bytes(&f).map_err(|e| proto(format!("malformed message: {e}")))
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

/// How this node reaches the others: as whom, with which secret, frame limits and TLS
/// (a replicated store's servers speak TLS to each other when their port does).
#[derive(Clone)]
pub struct Dialer {
    pub local: String,
    pub secret: Option<String>,
    pub limits: FrameLimits,
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Where the bytes of each peer's links are counted (a node's; none in tests).
    pub metrics: Option<std::sync::Arc<crate::consensus::metrics::NodeMetrics>>,
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
        let was_cached = cached.is_some();
        let mut s = match cached {
            Some(s) => s,
            None => tokio::time::timeout(ttl, Session::connect(addr, d))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??,
        };
        let r = match s.call(req, ttl).await {
            Ok(r) => r,
            Err(e) => {
                // A kept connection that fails most likely went stale with its peer (a
                // restart at the same address): so did the others kept for it.
                if was_cached && e.kind() != io::ErrorKind::TimedOut {
                    self.idle.lock().remove(addr);
                }
                return Err(e);
            }
        };
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

    fn local(name: &'static str, secret: Option<&'static str>) -> Local<'static> {
        Local {
            name,
            secret,
            limits: FrameLimits::default(),
        }
    }

    /// How node "a" dials in these tests.
    fn dialer(secret: Option<&str>) -> Dialer {
        Dialer {
            local: "a".into(),
            secret: secret.map(String::from),
            limits: FrameLimits::default(),
            tls: None,
            metrics: None,
        }
    }

    async fn pair(
        cs: Option<&'static str>,
        ss: Option<&'static str>,
    ) -> (io::Result<Session>, io::Result<Session>) {
        let (l, ep) = Listener::loopback().unwrap();
        let addr = ep.to_string();
        let server = tokio::spawn(async move {
            let (st, _) = l.accept().await.unwrap();
            Session::accept_stream(st, local("b", ss)).await
        });
        let d = dialer(cs);
        let c = Session::connect(&addr, &d).await;
        (c, server.await.unwrap())
    }

    /// openraft drops a call's future when its own timeout fires. The reply to that
    /// call, arriving later, must never be taken as the answer to the next one.
    #[tokio::test]
    async fn a_cancelled_call_never_hands_its_reply_to_the_next() {
        let (l, ep) = Listener::loopback().unwrap();
        let addr = ep.to_string();
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
                    let s = Session::accept_stream(st, local("b", None)).await?;
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
        let d = dialer(None);
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

        // Wrong secret: refused in the handshake, on both sides, before any request.
        let (c, s) = pair(Some("guess"), Some("k")).await;
        assert_eq!(c.err().unwrap().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(s.err().unwrap().kind(), io::ErrorKind::PermissionDenied);

        // One side without a secret: refused at the handshake, with the reason.
        let (c, _s) = pair(None, Some("k")).await;
        let e = c.err().expect("refused");
        assert!(e.to_string().contains("clusterSecret"), "{e}");
    }
    /// A peer restarted at the same address: the connections kept for it are dead. The
    /// first call on one fails, and the others are dropped with it, so that the next
    /// call connects afresh instead of finding the next dead one (a follower forwarding
    /// to a leader that restarted and was elected again waited out its commit timeout).
    #[tokio::test]
    async fn a_peer_restarted_at_the_same_address_costs_one_failed_call() {
        fn serve(l: Listener) -> tokio::task::JoinSet<()> {
            let mut peer = tokio::task::JoinSet::new();
            peer.spawn(async move {
                let mut sessions = tokio::task::JoinSet::new();
                while let Ok((st, _)) = l.accept().await {
                    sessions.spawn(async move {
                        if let Ok(s) = Session::accept_stream(st, local("b", None)).await {
                            serve_session(s, |_| async { Reply::Done(Ok(())) }).await;
                        }
                    });
                }
            });
            peer
        }
        let (l, ep) = Listener::loopback().unwrap();
        let addr = ep.to_string();
        let mut peer = serve(l);
        let d = dialer(None);
        let pool = Pool::default();
        let ttl = Duration::from_secs(5);
        // Three calls at once: three connections, kept.
        let calls = (0..3).map(|_| pool.call(&d, &addr, &Request::Ping, ttl));
        for r in futures_util::future::join_all(calls).await {
            assert!(matches!(r.unwrap(), Reply::Done(Ok(()))));
        }
        assert_eq!(pool.idle.lock().get(&addr).map(Vec::len), Some(3));
        peer.shutdown().await; // the peer stops: its end of every connection closes
        let peer = serve(Listener::bind(&ep).unwrap());
        let started = std::time::Instant::now();
        assert!(
            pool.call(&d, &addr, &Request::Ping, ttl).await.is_err(),
            "a dead connection"
        );
        assert!(
            pool.idle.lock().get(&addr).is_none(),
            "the other kept ones are dropped"
        );
        let r = pool.call(&d, &addr, &Request::Ping, ttl).await.unwrap();
        assert!(matches!(r, Reply::Done(Ok(()))), "a fresh connection");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        drop(peer);
    }
}
