//! openraft's view of the network: one framed, authenticated session per target and
//! replication stream, reconnected on failure.

use super::engine::Shared;
use super::net::{Link, Reply, Request};
use super::types::{node_id, Member, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How a node reaches its peers when the embedder carries the messages (the RaftNode
/// API's JS transport) instead of the engine's TCP sessions. `call` answers a peer's
/// reply to a vote, append or snapshot request; an error makes the peer unreachable for
/// this call (openraft retries).
pub trait PeerTransport: Send + Sync + 'static {
    fn call(
        &self,
        target: &Member,
        req: Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Reply>> + Send>>;
}

/// openraft's view of the network: one connection per target per replication stream.
pub(super) struct NetFactory {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct NetConn {
    shared: Arc<Shared>,
    target: Member,
    /// The connection between calls (see [`Link`]: openraft cancels calls that outlast
    /// its timeouts).
    link: Link,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetConn;

    async fn new_client(&mut self, _target: u64, node: &Member) -> NetConn {
        NetConn {
            shared: self.shared.clone(),
            target: node.clone(),
            link: Link::default(),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, Member, RaftError<u64, E>>;

impl NetConn {
    /// `ttl` is openraft's own timeout for the call, which usually fires first and drops
    /// the call (see [`Link`]: a timeout is not an unreachable peer, which openraft would
    /// back off from).
    async fn call(&mut self, req: Request, ttl: Duration) -> Result<Reply, io::Error> {
        if let Some(ext) = &self.shared.external {
            // Bounded: a transport that never answers times out, as a socket would.
            return tokio::time::timeout(ttl, ext.call(&self.target, req))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the transport did not answer in time",
                    )
                })?;
        }
        let addr = self.target.addr.clone();
        self.link.call(&self.shared.dialer, &addr, &req, ttl).await
    }

    /// A call that ran out of time is a timeout, which openraft retries at once; refused
    /// or broken connections make the peer unreachable, which it backs off from.
    fn io_err<E: std::error::Error>(
        &self,
        e: io::Error,
        action: RPCTypes,
        ttl: Duration,
    ) -> RPCError<u64, Member, E> {
        match e.kind() {
            io::ErrorKind::TimedOut => RPCError::Timeout(Timeout {
                action,
                id: node_id(&self.shared.me.name),
                target: node_id(&self.target.name),
                timeout: ttl,
            }),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotConnected => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<u64, E>,
    ) -> RPCError<u64, Member, RaftError<u64, E>> {
        RPCError::RemoteError(RemoteError::new_with_node(
            node_id(&self.target.name),
            self.target.clone(),
            e,
        ))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, Member, E> {
    RPCError::Network(NetworkError::new(&io::Error::other("unexpected reply")))
}

impl RaftNetwork<TypeConfig> for NetConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        let ttl = option.hard_ttl();
        match self.call(Request::Append(rpc), ttl).await {
            Ok(Reply::Append(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e, RPCTypes::AppendEntries, ttl)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        let ttl = option.hard_ttl();
        match self.call(Request::Snapshot(rpc), ttl).await {
            Ok(Reply::Snapshot(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e, RPCTypes::InstallSnapshot, ttl)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        let ttl = option.hard_ttl();
        match self.call(Request::Vote(rpc), ttl).await {
            Ok(Reply::Vote(r)) => r.map_err(|e| self.remote(e)),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(self.io_err(e, RPCTypes::Vote, ttl)),
        }
    }
}
