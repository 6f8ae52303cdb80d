//! An in-process network for Raft nodes, with links that can be cut: the harness for
//! testing the engine's consensus logic without sockets (openraft's `RaftRouter`
//! pattern). Over sockets the same engine uses `super::client` and `super::rpc`.

use super::types::NodeId as BasicNode;
use super::types::TypeConfig;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The timing the in-process tests run Raft with: the JS API's defaults.
#[cfg(test)]
pub(crate) fn test_config() -> Arc<openraft::Config> {
    Arc::new(
        openraft::Config {
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
}

#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<u64, Raft<TypeConfig>>>>,
    /// Directed links that drop every message.
    cut: Arc<Mutex<BTreeSet<(u64, u64)>>>,
}

impl Router {
    pub fn add(&self, id: u64, raft: Raft<TypeConfig>) {
        self.nodes.lock().insert(id, raft);
    }

    pub fn remove(&self, id: u64) -> Option<Raft<TypeConfig>> {
        self.nodes.lock().remove(&id)
    }

    /// Cuts `id` off from everyone, both ways.
    pub fn isolate(&self, id: u64) {
        let ids: Vec<u64> = self.nodes.lock().keys().copied().collect();
        let mut cut = self.cut.lock();
        for other in ids.into_iter().filter(|o| *o != id) {
            cut.insert((id, other));
            cut.insert((other, id));
        }
    }

    pub fn heal(&self) {
        self.cut.lock().clear();
    }

    fn target(&self, from: u64, to: u64) -> Result<Raft<TypeConfig>, Unreachable> {
        let unreachable = || {
            Unreachable::new(&std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("{from} -> {to} is down"),
            ))
        };
        if self.cut.lock().contains(&(from, to)) {
            return Err(unreachable());
        }
        self.nodes.lock().get(&to).cloned().ok_or_else(unreachable)
    }
}

/// The router as seen from node `from`.
pub struct RouterFactory {
    pub router: Router,
    pub from: u64,
}

pub struct Conn {
    router: Router,
    from: u64,
    to: u64,
}

impl RaftNetworkFactory<TypeConfig> for RouterFactory {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Conn {
        Conn {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(RPCError::Unreachable)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::machines::kv::{KvCommand, KvMachine, KvStateMachine};
    use crate::consensus::state_machine::command;
    use crate::consensus::MemLogStore;
    use openraft::ServerState;
    use serde_json::json;
    use std::time::Duration;

    async fn cluster(n: u64) -> (Router, BTreeMap<u64, (Raft<TypeConfig>, KvStateMachine)>) {
        let router = Router::default();
        let cfg = test_config();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let sm = KvStateMachine::default();
            let factory = RouterFactory {
                router: router.clone(),
                from: id,
            };
            let raft = Raft::new(id, cfg.clone(), factory, MemLogStore::default(), sm.clone())
                .await
                .unwrap();
            router.add(id, raft.clone());
            nodes.insert(id, (raft, sm));
        }
        let members: BTreeMap<u64, BasicNode> =
            (1..=n).map(|i| (i, BasicNode::default())).collect();
        nodes[&1].0.initialize(members).await.unwrap();
        (router, nodes)
    }

    async fn leader_of(rafts: &[&Raft<TypeConfig>], not: Option<u64>) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let views: Vec<Option<u64>> = rafts
                .iter()
                .map(|r| r.metrics().borrow().current_leader)
                .collect();
            if let Some(Some(l)) = views.first() {
                if views.iter().all(|v| *v == Some(*l)) && Some(*l) != not {
                    return *l;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leader_replication_failover_and_an_isolated_leader_commits_nothing() {
        let (router, nodes) = cluster(3).await;
        let all: Vec<&Raft<TypeConfig>> = nodes.values().map(|(r, _)| r).collect();
        let leader = leader_of(&all, None).await;
        let l = &nodes[&leader].0;
        assert_eq!(l.metrics().borrow().state, ServerState::Leader);
        l.client_write(command::<KvMachine>(&KvCommand::Set {
            limit: None,
            key: "k".into(),
            value: json!(1),
        }))
        .await
        .unwrap();
        // Committed means on a majority; give the third node a moment, then all agree.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while nodes.values().any(|(_, sm)| sm.get("k") != Some(json!(1))) {
            assert!(tokio::time::Instant::now() < deadline, "replication");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // An isolated leader cannot commit.
        router.isolate(leader);
        let stuck = tokio::time::timeout(
            Duration::from_millis(800),
            l.client_write(command::<KvMachine>(&KvCommand::Set {
                limit: None,
                key: "k".into(),
                value: json!(2),
            })),
        )
        .await;
        assert!(!matches!(stuck, Ok(Ok(_))), "an isolated leader committed");
        // The others elect a new leader and go on.
        let rest: Vec<&Raft<TypeConfig>> = nodes
            .iter()
            .filter(|(id, _)| **id != leader)
            .map(|(_, (r, _))| r)
            .collect();
        let new_leader = leader_of(&rest, Some(leader)).await;
        nodes[&new_leader]
            .0
            .client_write(command::<KvMachine>(&KvCommand::Set {
                limit: None,
                key: "k".into(),
                value: json!(3),
            }))
            .await
            .unwrap();
        router.heal();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while nodes.values().any(|(_, sm)| sm.get("k") != Some(json!(3))) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the old leader catches up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (r, _) in nodes.values() {
            r.shutdown().await.unwrap();
        }
    }
}
