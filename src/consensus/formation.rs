//! Who is in the cluster: founding it, joining it, adding and removing members safely
//! (callable on any node, run on the leader), and refusing another cluster's nodes.
//!
//! Cluster formation. A node started with `bootstrap` founds a one-node cluster at once.
//! Otherwise a fresh node waits: it joins when a leader adds it, or when it is asked to
//! add a peer (`add_node`) it sends that peer a `Join`. If both are fresh, only the
//! smallest name either of them was told about founds the cluster (and adds the others
//! as they ask): with a pairwise rule, three fresh nodes told about each other could
//! found two clusters, which then refuse to merge. A fresh node that is asked to
//! write while it knows no peer founds a one-node cluster (a lone node just works).

use super::engine::{api, refused, RaftEngine};
use super::network::net::{split_addr, ApiError, Reply, Request, Status};
use super::types::{raft_id, Command, NodeId};
use crate::error::ErrorCode;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

impl RaftEngine {
    /// Tells this node of peers it will be asked to add, before any of them is: fresh
    /// nodes decide who founds the cluster by the smallest name they know of, so each
    /// must know them all first (told one at a time, two could each think themselves
    /// the smallest and found two clusters).
    pub fn know(&self, peers: &[NodeId]) {
        let mut known = self.shared.known.lock();
        for m in peers.iter().filter(|m| m.name() != self.shared.me.name()) {
            known.insert(m.name().to_string(), m.addr());
        }
    }

    /// Founds a one-node cluster (idempotent: a no-op once initialized).
    pub(super) async fn found_cluster(&self) -> io::Result<()> {
        let _g = self.found.lock().await;
        if self.initialized().await {
            return Ok(());
        }
        let members = BTreeMap::from([(self.id, self.shared.me.clone())]);
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(_)) => Ok(()),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Adds `m` as a voter (a learner first, so it catches up before it counts). Callable
    /// on any node.
    pub async fn add_node(&self, m: NodeId) -> Result<(), ApiError> {
        self.open()?;
        if m.name() == self.shared.me.name() {
            return Ok(());
        }
        split_addr(&m.addr()).map_err(|e| api(ErrorCode::InvalidConfig, e.to_string()))?;
        self.shared
            .known
            .lock()
            .insert(m.name().to_string(), m.addr());
        let deadline = tokio::time::Instant::now() + self.shared.cfg.commit_timeout * 2;
        loop {
            let r = if self.shared.cfg.replica {
                self.join_as_replica(&m).await
            } else if self.initialized().await {
                self.change(Request::AddNode(m.clone())).await
            } else {
                self.join_via(&m).await
            };
            match r {
                Err(e)
                    if [
                        ErrorCode::Unavailable,
                        ErrorCode::Busy,
                        ErrorCode::NotLeader,
                        ErrorCode::Fresh,
                    ]
                    .contains(&e.code)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                r => return r,
            }
        }
    }

    /// The smallest name among this node and the peers it was told about: the one that
    /// founds the cluster when all of them are fresh.
    pub(super) fn smallest_known(&self) -> String {
        let known = self.shared.known.lock();
        let me = self.shared.me.name();
        known
            .keys()
            .map(String::as_str)
            .filter(|k| *k < me)
            .min()
            .unwrap_or(me)
            .to_string()
    }

    /// Retried by `add_node` until `first` has founded the cluster and added us.
    pub(super) fn forming(&self, first: &str) -> ApiError {
        api(
            ErrorCode::Unavailable,
            format!("no cluster yet: waiting for {first}, the smallest name, to found it"),
        )
    }

    /// A replica asks `peer` to add it as one (the peer's leader runs the change).
    async fn join_as_replica(&self, peer: &NodeId) -> Result<(), ApiError> {
        match self
            .forward(peer, &Request::AddReplica(self.shared.me.clone()))
            .await?
        {
            Reply::Done(r) => r,
            // Another replica: not a way into the group.
            Reply::Replica => Ok(()),
            _ => Err(api(
                ErrorCode::Protocol,
                "unexpected reply to a replica's join",
            )),
        }
    }

    /// A fresh node asks `peer` to add it; when all are fresh the smallest name founds.
    pub(super) async fn join_via(&self, peer: &NodeId) -> Result<(), ApiError> {
        match self
            .forward(peer, &Request::Join(self.shared.me.clone()))
            .await
        {
            Ok(Reply::Done(Ok(()))) => Ok(()),
            Ok(Reply::Done(Err(e))) if e.code == ErrorCode::Fresh => {
                // The peer says we are the smallest it knows; we may know a smaller one.
                let first = self.smallest_known();
                if first != self.shared.me.name() {
                    return Err(self.forming(&first));
                }
                // Peers are often added in a burst (addPeer for each, concurrently): give
                // the others of the burst a moment to be known before founding, or two
                // nodes could each found a cluster with the peers they knew so far.
                tokio::time::sleep(Duration::from_millis(
                    self.shared.cfg.heartbeat_interval.max(50) * 2,
                ))
                .await;
                let first = self.smallest_known();
                if first != self.shared.me.name() {
                    return Err(self.forming(&first));
                }
                self.found_cluster()
                    .await
                    .map_err(|e| api(ErrorCode::Io, e.to_string()))?;
                self.change(Request::AddNode(peer.clone())).await
            }
            Ok(Reply::Done(Err(e))) => Err(e),
            // A replica: it asks to be added itself once a group exists, and must not
            // be waited for as the smallest name.
            Ok(Reply::Replica) => {
                self.shared.known.lock().remove(peer.name());
                Ok(())
            }
            Ok(_) => Err(api(ErrorCode::Protocol, "unexpected reply to a join")),
            Err(e) => Err(e),
        }
    }

    /// Asks the node at `addr` for its status, within `ttl`.
    pub async fn ping(&self, addr: &str, ttl: Duration) -> Result<Status, ApiError> {
        let s = &self.shared;
        let r = s
            .pool
            .call(&s.dialer, addr, &Request::Ping, ttl)
            .await
            .map_err(|e| api(ErrorCode::Unavailable, format!("{addr}: {e}")))?;
        match r {
            Reply::Status(st) => Ok(st),
            _ => Err(api(ErrorCode::Protocol, "unexpected reply to a ping")),
        }
    }

    pub async fn remove_node(&self, name: &str) -> Result<(), ApiError> {
        self.open()?;
        self.shared.known.lock().remove(name);
        self.change(Request::RemoveNode(name.into())).await
    }

    /// Runs a membership change on the leader (forwarding if needed).
    pub(super) async fn change(&self, req: Request) -> Result<(), ApiError> {
        let timeout = self.shared.cfg.commit_timeout;
        match self.change_here(&req).await {
            Err(e) if e.code == ErrorCode::NotLeader => {
                let Some(leader) = self.await_leader(timeout).await else {
                    return Err(e);
                };
                if leader.name() == self.shared.me.name() {
                    return self.change_here(&req).await;
                }
                match self.forward(&leader, &req).await? {
                    Reply::Done(r) => r,
                    _ => Err(api(ErrorCode::Protocol, "unexpected reply to a change")),
                }
            }
            r => r,
        }
    }

    /// Refuses to add a node that belongs to another cluster: Raft would overwrite its
    /// log with ours (or it would fight our leader) instead of failing. The leader names
    /// the cluster (a `Genesis` entry) before it adds its first node, so every member
    /// knows the name; a node that knows another name, or none but already has a
    /// cluster, is someone else's. Answers whether the node was started as a replica.
    ///
    /// A `member` already (a learner) is only asked what it is: mid-catch-up it may
    /// have a cluster but not have applied its name yet, and would look like another's.
    pub(super) async fn same_cluster(&self, n: &NodeId, member: bool) -> Result<bool, ApiError> {
        if !member && self.cluster().is_none() {
            let cluster = format!("{:016x}", rand::random::<u64>());
            self.write(Command::Genesis { cluster }).await?;
        }
        let ours = self.cluster();
        let theirs = match self.ping(&n.addr(), Duration::from_secs(1)).await {
            Ok(theirs) => theirs,
            // Unreachable now: adding it as a learner waits for it (or times out).
            Err(_) if !member => return Ok(false),
            // A learner that does not answer is not promoted: it may be a replica.
            Err(e) => return Err(e),
        };
        if theirs.name != n.name() {
            return Err(api(
                ErrorCode::InvalidArgument,
                format!(
                    "the node at {} is {}, not {}",
                    n.addr(),
                    theirs.name,
                    n.name()
                ),
            ));
        }
        let other = match &theirs.cluster {
            Some(c) => Some(c) != ours.as_ref(),
            None => theirs.initialized,
        };
        if other && !member {
            return Err(api(
                ErrorCode::OtherCluster,
                format!(
                    "{} at {} already belongs to another cluster; remove it there and \
                     start it with an empty dataDir to move it here",
                    n.name(),
                    n.addr()
                ),
            ));
        }
        Ok(theirs.replica)
    }

    pub(super) async fn change_here(&self, req: &Request) -> Result<(), ApiError> {
        let _one_at_a_time = self.changing.lock().await;
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            let leader = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).cloned());
            return Err(self.not_leader(leader));
        }
        let mem = m.membership_config.membership().clone();
        let map = |e: RaftError<u64, ClientWriteError<u64, NodeId>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                self.not_leader(f.leader_node)
            }
            e => refused(e, ErrorCode::Busy),
        };
        let timeout = self.shared.cfg.commit_timeout * 2;
        async fn within<F: std::future::Future>(t: Duration, f: F) -> Result<F::Output, ApiError> {
            tokio::time::timeout(t, f).await.map_err(|_| {
                api(
                    ErrorCode::Timeout,
                    "the membership change did not commit in time",
                )
            })
        }
        match req {
            Request::AddNode(n) | Request::AddReplica(n) => {
                let id = raft_id(n.name());
                let asked_replica = matches!(req, Request::AddReplica(_));
                if mem.voter_ids().any(|v| v == id) {
                    if asked_replica {
                        return Err(api(
                            ErrorCode::InvalidConfig,
                            format!(
                                "{} is a voter of the group: remove it (removeMember) before \
                                 it joins again as a replica",
                                n.name()
                            ),
                        ));
                    }
                    return Ok(());
                }
                // A server started as a replica stays one, whoever asks to add it (a
                // voter may list it among its seeds).
                let member = mem.get_node(&id).is_some();
                let replica = asked_replica || self.same_cluster(n, member).await?;
                // openraft's blocking add_learner calls a learner "up to date" while it is
                // within 5,000 entries of the leader, which a node that never answered is
                // in a young cluster: promoted, it would take the quorum with it. Promote
                // only once it has acknowledged the entry that added it; else take it out.
                let added = within(timeout, self.raft.add_learner(id, n.clone(), false))
                    .await?
                    .map_err(map)?;
                let caught_up = self
                    .raft
                    .wait(Some(timeout))
                    .metrics(
                        |m| {
                            m.replication
                                .as_ref()
                                .and_then(|r| r.get(&id))
                                .and_then(|matched| matched.as_ref())
                                .is_some_and(|l| l.index >= added.log_id.index)
                        },
                        "the new learner acknowledged its addition",
                    )
                    .await;
                if caught_up.is_err() {
                    let _ = within(
                        timeout,
                        self.raft
                            .change_membership(ChangeMembers::RemoveNodes([id].into()), false),
                    )
                    .await;
                    return Err(api(
                        ErrorCode::Unavailable,
                        format!(
                            "{} at {} did not answer within {} ms; it was not added",
                            n.name(),
                            n.addr(),
                            timeout.as_millis()
                        ),
                    ));
                }
                if replica {
                    return Ok(());
                }
                within(
                    timeout,
                    self.raft
                        .change_membership(ChangeMembers::AddVoterIds([id].into()), false),
                )
                .await?
                .map_err(map)?;
                Ok(())
            }
            Request::RemoveNode(name) => {
                let id = raft_id(name);
                if mem.get_node(&id).is_none() {
                    return Ok(());
                }
                let change = if mem.voter_ids().any(|v| v == id) {
                    ChangeMembers::RemoveVoters([id].into())
                } else {
                    ChangeMembers::RemoveNodes([id].into())
                };
                within(timeout, self.raft.change_membership(change, false))
                    .await?
                    .map_err(map)?;
                Ok(())
            }
            _ => Err(api(ErrorCode::Protocol, "not a membership change")),
        }
    }
}
