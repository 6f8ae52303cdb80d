//! Serving other nodes: the listener, each peer's authenticated session, and what a
//! request does here (Raft's RPCs, forwarded writes and reads, membership changes,
//! joins, pings).

use super::engine::{api, RaftEngine};
use super::net::{ApiError, Committed, Reply, Request, Session};
use super::types::Response;
use crate::error::ErrorCode;
use crate::protocol::FrameCodec;
use crate::transport::Listener;
use crate::transport::{ReadHalf, WriteHalf};
use openraft::raft::AppendEntriesResponse;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::codec::FramedRead;

pub(crate) async fn accept_loop(engine: Arc<RaftEngine>, listener: Listener) {
    loop {
        let accepted = tokio::select! {
            _ = engine.stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let e = engine.clone();
        engine.tracker.spawn(async move {
            let handshake = tokio::time::timeout(
                Duration::from_secs(5),
                Session::accept_stream(stream, e.local()),
            )
            .await;
            let session = match handshake {
                Ok(Ok(session)) => session.metered(&e.shared.metrics),
                Ok(Err(err)) => {
                    e.warn(&err, format!("Raft connection from {} refused: {err}", peer.name));
                    return;
                }
                Err(_) => return,
            };
            let stop = e.stop.clone();
            let h = e.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                end = super::net::serve_session(session, move |req| h.clone().handle(req, peer.ip)) => {
                    if let Some(err) = end {
                        e.warn(&err, format!("Raft connection from {} closed: {err}", peer.name));
                    }
                }
            }
        });
    }
}

impl RaftEngine {
    /// Serves a peer whose connection another listener accepted and whose label it read
    /// (a replicated store's port takes clients and peers alike). Ends when the peer
    /// leaves or this node stops (`Ok`), or with why the connection was refused or
    /// broken (a wrong secret, a malformed message), for the caller to report.
    pub async fn serve_peer(
        self: &Arc<Self>,
        reader: FramedRead<ReadHalf, FrameCodec>,
        writer: WriteHalf,
        ip: Option<IpAddr>,
    ) -> io::Result<()> {
        let handshake = Session::accept(reader, writer, self.local());
        let session = tokio::select! {
            _ = self.stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(Duration::from_secs(5), handshake) => match r {
                Ok(r) => r?.metered(&self.shared.metrics),
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no handshake in time")),
            },
        };
        let h = self.clone();
        tokio::select! {
            _ = self.stop.cancelled() => Ok(()),
            e = super::net::serve_session(session, move |req| h.clone().handle(req, ip)) => match e {
                Some(e) => Err(e),
                None => Ok(()),
            },
        }
    }
}

impl RaftEngine {
    /// This node as the link layer presents it.
    fn local(&self) -> crate::link::Local<'_> {
        let s = &self.shared;
        crate::link::Local {
            name: s.me.name(),
            secret: s.cfg.secret.as_deref(),
            limits: s.limits,
        }
    }

    /// Tells the owner (its `error` event or `stderr`) why a peer's connection was
    /// refused or broken: nobody else would hear of a peer with a wrong secret.
    pub(super) fn warn(&self, err: &io::Error, message: String) {
        let code = match err.kind() {
            io::ErrorKind::PermissionDenied => ErrorCode::Auth,
            io::ErrorKind::InvalidData => ErrorCode::Protocol,
            io::ErrorKind::TimedOut => ErrorCode::Timeout,
            _ => ErrorCode::Io,
        };
        (self.shared.sink)(super::events::RaftEvent::Warning { code, message });
    }

    /// Serves one request of a peer connected from `from` (`None`: a Unix socket).
    pub(super) async fn handle(self: Arc<Self>, req: Request, from: Option<IpAddr>) -> Reply {
        if matches!(
            req,
            Request::AddNode(_)
                | Request::RemoveNode(_)
                | Request::Join(_)
                | Request::AddReplica(_)
        ) {
            if let Err(e) = self.may_change_members(from).await {
                return Reply::Done(Err(e));
            }
        }
        match req {
            Request::Append(r) => {
                let r = self.raft.append_entries(r).await;
                if matches!(
                    r,
                    Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_))
                ) {
                    *self.shared.heard.lock() = Some(std::time::Instant::now());
                }
                Reply::Append(r)
            }
            Request::Vote(r) => Reply::Vote(self.raft.vote(r).await),
            Request::Snapshot(r) => Reply::Snapshot(self.raft.install_snapshot(r).await),
            Request::Write(cmd) => {
                let deadline = tokio::time::Instant::now() + self.shared.cfg.commit_timeout;
                Reply::Written(self.write_here(cmd, deadline).await)
            }
            Request::Read => {
                Reply::Written(self.barrier_here(self.shared.cfg.commit_timeout).await.map(
                    |index| Committed {
                        index,
                        response: Response::default(),
                    },
                ))
            }
            r @ (Request::AddNode(_) | Request::RemoveNode(_)) => {
                Reply::Done(self.change_here(&r).await)
            }
            // A replica founds nothing and is no candidate founder: the fresh node asking
            // forgets it (the replica asks to be added once a group exists).
            Request::Join(_) if self.shared.cfg.replica => Reply::Replica,
            Request::AddReplica(m) => {
                if !self.initialized().await {
                    return Reply::Done(Err(api(
                        ErrorCode::Unavailable,
                        format!(
                            "{} is not in a group yet: a replica is added once its voters formed one",
                            self.shared.me.name()
                        ),
                    )));
                }
                Reply::Done(self.change(Request::AddReplica(m)).await)
            }
            Request::Join(m) => {
                self.shared
                    .known
                    .lock()
                    .insert(m.name().to_string(), m.addr());
                if self.initialized().await {
                    return Reply::Done(self.change(Request::AddNode(m)).await);
                }
                // Only the smallest name known founds (so that three fresh nodes told
                // about each other form one cluster, not two); the others wait for it.
                match self.smallest_known() {
                    first if first == self.shared.me.name() => {
                        // As in `join_via`: peers told about in a burst become known
                        // within a moment; found only if still the smallest then.
                        let pause = self.shared.cfg.heartbeat_interval.max(50) * 2;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        let first = self.smallest_known();
                        if first != self.shared.me.name() {
                            return Reply::Done(Err(self.forming(&first)));
                        }
                        if self.initialized().await {
                            return Reply::Done(self.change(Request::AddNode(m)).await);
                        }
                        if let Err(e) = self.found_cluster().await {
                            return Reply::Done(Err(api(ErrorCode::Io, e.to_string())));
                        }
                        Reply::Done(self.change(Request::AddNode(m)).await)
                    }
                    first if first == m.name() => Reply::Done(Err(api(
                        ErrorCode::Fresh,
                        "not in a cluster yet: the smallest name founds it",
                    ))),
                    first => Reply::Done(Err(self.forming(&first))),
                }
            }
            Request::Ping => Reply::Status(self.status()),
        }
    }
}

impl RaftEngine {
    /// Whether a peer connected from `from` may join, add or remove nodes. With a
    /// clusterSecret the handshake proved it knows the secret. Without one, anybody who
    /// can reach the port could otherwise take over the group, so only the addresses of
    /// current members and configured peers (and a Unix socket: this host) may; an
    /// address matches when the peer connects from the IP a member's host resolves to.
    async fn may_change_members(&self, from: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = from else { return Ok(()) };
        if self.shared.cfg.secret.is_some() {
            return Ok(());
        }
        let mut hosts: Vec<String> = self.peers().into_values().collect();
        hosts.push(self.shared.me.addr());
        for addr in hosts {
            // An IP address resolves at once; a host name through the system's resolver.
            let resolved =
                tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host(addr)).await;
            if let Ok(Ok(mut ips)) = resolved {
                if ips.any(|a| a.ip() == ip) {
                    return Ok(());
                }
            }
        }
        Err(api(
            ErrorCode::Auth,
            format!(
                "{ip} is not the host of a member or a configured peer: without a \
                 clusterSecret, only those may join, add or remove nodes (set clusterSecret \
                 on every node to admit new hosts)"
            ),
        ))
    }
}
