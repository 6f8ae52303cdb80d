//! openraft's view of the network: one framed, authenticated session per target and
//! replication stream, reconnected on failure.

use super::engine::Shared;
use super::net::{Link, Reply, Request};
use super::types::{raft_id, NodeId, TypeConfig};
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

/// How a node reaches its peers when the embedder carries the messages (the RaftNode
/// API's JS transport) instead of the engine's TCP sessions. `call` answers a peer's
/// reply to a vote, append or snapshot request; an error makes the peer unreachable for
/// this call (openraft retries).
pub trait PeerTransport: Send + Sync + 'static {
    fn call(
        &self,
        target: &NodeId,
        req: Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Reply>> + Send>>;
}

/// openraft's view of the network: one connection per target per replication stream.
pub(crate) struct NetFactory {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct NetConn {
    shared: Arc<Shared>,
    target: NodeId,
    /// The connection between calls (see [`Link`]: openraft cancels calls that outlast
    /// its timeouts).
    link: Link,
    /// When the snapshot being sent to this target began (its first chunk).
    snapshot_since: Option<std::time::Instant>,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetConn;

    async fn new_client(&mut self, _target: u64, node: &NodeId) -> NetConn {
        NetConn {
            shared: self.shared.clone(),
            target: node.clone(),
            link: Link::default(),
            snapshot_since: None,
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, NodeId, RaftError<u64, E>>;

impl NetConn {
    /// One call, bounded by openraft's own timeout for it (`option`'s hard TTL), which
    /// usually fires first and drops the call (see [`Link`]). Running out of time is a
    /// timeout, which openraft retries at once; a refused or broken connection makes the
    /// peer unreachable, which it backs off from.
    async fn call<E: std::error::Error>(
        &mut self,
        req: Request,
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<u64, NodeId, E>> {
        let ttl = option.hard_ttl();
        let r = match &self.shared.external {
            // Bounded: a transport that never answers times out, as a socket would.
            Some(ext) => tokio::time::timeout(ttl, ext.call(&self.target, req))
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the transport did not answer in time",
                    ))
                }),
            None => {
                let (d, addr) = (&self.shared.dialer, &self.target.addr());
                self.link.call(d, addr, &req, ttl).await
            }
        };
        r.map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => RPCError::Timeout(Timeout {
                action,
                id: raft_id(self.shared.me.name()),
                target: raft_id(self.target.name()),
                timeout: ttl,
            }),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotConnected => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            _ => RPCError::Network(NetworkError::new(&e)),
        })
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<u64, E>,
    ) -> RPCError<u64, NodeId, RaftError<u64, E>> {
        RPCError::RemoteError(RemoteError::new_with_node(
            raft_id(self.target.name()),
            self.target.clone(),
            e,
        ))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, NodeId, E> {
    RPCError::Network(NetworkError::new(&io::Error::other("unexpected reply")))
}

impl RaftNetwork<TypeConfig> for NetConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self
            .call(Request::Append(rpc), RPCTypes::AppendEntries, &option)
            .await?
        {
            Reply::Append(r) => r.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        // openraft sends a snapshot in chunks: timed from the first to the last answered.
        if rpc.offset == 0 {
            self.snapshot_since = Some(std::time::Instant::now());
        }
        let done = rpc.done;
        let r = match self
            .call(Request::Snapshot(rpc), RPCTypes::InstallSnapshot, &option)
            .await?
        {
            Reply::Snapshot(r) => r.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        };
        if let (true, Ok(_), Some(since)) = (done, &r, self.snapshot_since) {
            self.snapshot_since = None;
            let m = &self.shared.metrics;
            m.snapshot.get(&["send"]).observe(since.elapsed());
        }
        r
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        match self
            .call(Request::Vote(rpc), RPCTypes::Vote, &option)
            .await?
        {
            Reply::Vote(r) => r.map_err(|e| self.remote(e)),
            _ => Err(unexpected()),
        }
    }
}
