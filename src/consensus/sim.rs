//! Seeded simulation of a 5-node cluster on the in-process router, in virtual time:
//! random writes, partitions, crashes and restarts (the log survives, as on disk),
//! checking after every step that there is at most one leader per term, that no index
//! is ever applied with two different commands, and at the end that every
//! acknowledged write is on every node. The fault schedule comes from the seed, which
//! is printed on failure (`RCRS_SIM_SEED=<n> cargo test sim` replays it). openraft
//! draws its election timeouts from its own RNG, so the interleaving is not bit-for-bit
//! reproducible; the faults and their timing are.

use super::machines::kv::{KvCommand, KvMachine, KvStateMachine};
use super::network::router::{Router, RouterFactory};
use super::state_machine::{command, SmEvent, SmSink};
use super::storage::log_store::LogStore;
use super::types::{Command, NodeId, TypeConfig};
use openraft::{Config, Raft, ServerState};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What was applied at each (entry index, position in the entry).
type Applied = Arc<Mutex<BTreeMap<(u64, usize), Command>>>;

struct Node {
    raft: Option<Raft<TypeConfig>>,
    log: LogStore,
    sm: KvStateMachine,
}

async fn boot(
    id: u64,
    router: &Router,
    cfg: &Arc<Config>,
    log: LogStore,
    applied: &Applied,
) -> Node {
    let a = applied.clone();
    let sink: SmSink = Arc::new(move |e| {
        if let SmEvent::Applied {
            index,
            sub,
            command,
            ..
        } = e
        {
            let mut m = a.lock();
            match m.get(&(index, sub)) {
                Some(prev) => assert_eq!(prev, &command, "index {index} applied twice differently"),
                None => {
                    m.insert((index, sub), command);
                }
            }
        }
    });
    let sm = KvStateMachine::open(None, Some(sink)).unwrap();
    let factory = RouterFactory {
        router: router.clone(),
        from: id,
    };
    let raft = Raft::new(id, cfg.clone(), factory, log.clone(), sm.clone())
        .await
        .unwrap();
    router.add(id, raft.clone());
    Node {
        raft: Some(raft),
        log,
        sm,
    }
}

async fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let router = Router::default();
    let cfg = super::network::router::test_config();
    let applied: Applied = Arc::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=5u64 {
        nodes.insert(
            id,
            boot(id, &router, &cfg, LogStore::default(), &applied).await,
        );
    }
    let members: BTreeMap<u64, NodeId> = (1..=5).map(|i| (i, NodeId::default())).collect();
    nodes[&1]
        .raft
        .as_ref()
        .unwrap()
        .initialize(members)
        .await
        .unwrap();

    let mut leaders: HashMap<u64, u64> = HashMap::new();
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    for step in 0..steps {
        match rng.random_range(0..12) {
            0..=5 => {
                // Mostly to the node that believes it leads (others only redirect).
                let believed = nodes.iter().find_map(|(id, n)| {
                    let r = n.raft.as_ref()?;
                    (r.metrics().borrow().state == ServerState::Leader).then_some(*id)
                });
                let id = match believed {
                    Some(l) if rng.random_bool(0.8) => l,
                    _ => rng.random_range(1..=5u64),
                };
                if let Some(r) = nodes[&id].raft.clone() {
                    let key = format!("s{step}");
                    let acked = acked.clone();
                    tokio::spawn(async move {
                        let cmd = command::<KvMachine>(&KvCommand::Set {
                            key: key.clone(),
                            value: json!(step),
                            limit: None,
                        });
                        if let Ok(Ok(w)) =
                            tokio::time::timeout(Duration::from_secs(2), r.client_write(cmd)).await
                        {
                            acked.lock().push((key, w.log_id.index));
                        }
                    });
                }
            }
            6 => router.isolate(rng.random_range(1..=5)),
            7 | 8 => router.heal(),
            9 => {
                // Crash: the node's memory is gone; its log and vote survive (a disk).
                let id = rng.random_range(1..=5u64);
                if let Some(r) = nodes.get_mut(&id).unwrap().raft.take() {
                    router.remove(id);
                    let _ = r.shutdown().await;
                }
            }
            _ => {
                let id = rng.random_range(1..=5u64);
                if nodes[&id].raft.is_none() {
                    let log = nodes[&id].log.clone();
                    nodes.insert(id, boot(id, &router, &cfg, log, &applied).await);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..400))).await;
        for (id, n) in &nodes {
            let Some(r) = &n.raft else { continue };
            let m = r.metrics().borrow().clone();
            if m.state == ServerState::Leader {
                let prev = leaders.insert(m.current_term, *id);
                assert!(
                    prev.is_none() || prev == Some(*id),
                    "two leaders in term {}: {prev:?} and {id}",
                    m.current_term
                );
            }
        }
    }
    // Heal everything, restart the crashed, and let the cluster settle.
    router.heal();
    for id in 1..=5u64 {
        if nodes[&id].raft.is_none() {
            let log = nodes[&id].log.clone();
            nodes.insert(id, boot(id, &router, &cfg, log, &applied).await);
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let acked = acked.lock().clone();
    // A run where nothing commits would check nothing.
    assert!(acked.len() >= 5, "only {} writes acknowledged", acked.len());
    eprintln!(
        "seed {seed}: {} writes acknowledged, {} terms with a leader, {} indexes applied",
        acked.len(),
        leaders.len(),
        applied.lock().len()
    );
    for (key, index) in &acked {
        for (id, n) in &nodes {
            assert!(
                n.sm.read(|s| s.data.get(key).map(|v| v.version)) == Some(*index),
                "acknowledged write {key}@{index} missing on node {id}"
            );
        }
    }
    for n in nodes.values() {
        if let Some(r) = &n.raft {
            let _ = r.shutdown().await;
        }
    }
}

#[test]
fn seeded_partitions_crashes_and_restarts_keep_raft_safe() {
    let seeds: Vec<u64> = match std::env::var("RCRS_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("RCRS_SIM_SEED must be a number")],
        Err(_) => (0..4).map(|_| rand::random::<u32>() as u64).collect(),
    };
    for seed in seeds {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run(seed, 150))));
        if let Err(e) = r {
            eprintln!("simulation failed with seed {seed} (RCRS_SIM_SEED={seed} to replay)");
            std::panic::resume_unwind(e);
        }
    }
}
