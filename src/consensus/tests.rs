//! The engine over real loopback sockets: cluster formation, forwarding, reads,
//! failover, and a restart from the durable store.

use super::engine::{Handle, RaftConfig, RaftEvent};
use super::machines::kv::{self, KvCommand, KvMachine};
use super::network::net::ApiError;
use super::storage::log_store::tempdir;
use super::types::NodeId;
use crate::error::ErrorCode;
use parking_lot::Mutex;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn quiet() -> super::engine::EventSink {
    Arc::new(|_| {})
}

async fn until<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type Node = Handle<KvMachine>;

async fn start(cfg: RaftConfig) -> Node {
    kv::start(cfg, quiet()).await.unwrap()
}

/// A node that founds a one-node cluster at start.
fn founder(name: &str) -> RaftConfig {
    RaftConfig {
        bootstrap: true,
        ..RaftConfig::local(name)
    }
}

/// Starts a stopped node again on the address it had (`addr`), retrying while the old
/// listener's port is still being released (bounded: 5 s).
async fn restart(cfg: RaftConfig, addr: &str, sink: super::engine::EventSink) -> Node {
    let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    for _ in 0..50 {
        match kv::start(
            RaftConfig {
                port,
                ..cfg.clone()
            },
            sink.clone(),
        )
        .await
        {
            Ok(e) => return e,
            Err(e) => {
                eprintln!("restart: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await
            }
        }
    }
    panic!("{} did not restart on {addr}", cfg.name);
}

fn set(k: &str, v: serde_json::Value) -> KvCommand {
    KvCommand::Set {
        key: k.into(),
        value: v,
        limit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_forward_fail_over_and_restart_from_disk() {
    let dir = tempdir::Dir::new("engine");
    let cfg = |n: &str| RaftConfig {
        data_dir: Some(dir.0.join(n)),
        secret: Some("s3cret".into()),
        ..RaftConfig::local(n)
    };
    let leaders = Arc::new(Mutex::new(Vec::new()));
    let l2 = leaders.clone();
    let sink: super::engine::EventSink = Arc::new(move |e| {
        if let RaftEvent::LeaderElected { leader, term } = e {
            l2.lock().push((leader, term));
        }
    });
    let a = kv::start(cfg("a"), sink).await.unwrap();
    let b = start(cfg("b")).await;
    let c = start(cfg("c")).await;
    // Fresh b asks fresh a: a (the smaller name) founds the cluster and adds b.
    b.add_node(a.member().clone()).await.unwrap();
    a.add_node(c.member().clone()).await.unwrap();
    until("three voters everywhere", || {
        [&a, &b, &c].iter().all(|n| n.state().voters.len() == 3)
    })
    .await;
    let leader = a.state().leader.unwrap();
    assert!([&b, &c]
        .iter()
        .all(|n| n.state().leader.as_deref() == Some(&leader)));

    // A write on a follower is forwarded and readable everywhere after a read barrier.
    let follower = [&a, &b, &c]
        .into_iter()
        .find(|n| n.state().role == "follower")
        .unwrap()
        .clone();
    let r = follower.write(&set("k", json!({"v": 1}))).await.unwrap();
    assert!(r.index > 0);
    for n in [&a, &b, &c] {
        n.read_barrier().await.unwrap();
        assert_eq!(n.kv().get("k"), Some(json!({"v": 1})));
    }

    // Stop the leader: the other two elect a new one and keep committing.
    let (old, rest): (Vec<_>, Vec<_>) = [a.clone(), b.clone(), c.clone()]
        .into_iter()
        .partition(|n| n.member().name() == leader);
    let old = old.into_iter().next().unwrap();
    let old_cfg = cfg(old.member().name());
    let old_addr = old.member().addr();
    old.shutdown().await;
    drop(old);
    until("a new leader", || {
        rest.iter().all(|n| {
            n.state()
                .leader
                .is_some_and(|l| l != leader && n.state().term > 0)
        })
    })
    .await;
    for i in 0..20 {
        rest[i % 2]
            .write(&set(&format!("after{i}"), json!(i)))
            .await
            .unwrap();
    }

    // Restart the old leader on its old address from its own directory: it catches up.
    let back = restart(old_cfg, &old_addr, quiet()).await;
    until("the restarted node catches up", || {
        back.kv().get("after19") == Some(json!(19)) && back.kv().get("k") == Some(json!({"v": 1}))
    })
    .await;
    assert!(!leaders.lock().is_empty());
    for n in rest.iter().chain([&back]) {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_forwarding_a_follower_names_the_leader() {
    let a = start(founder("a")).await;
    let b = start(RaftConfig {
        forward: false,
        ..RaftConfig::local("b")
    })
    .await;
    a.add_node(b.member().clone()).await.unwrap();
    until("b follows a", || b.state().leader.as_deref() == Some("a")).await;
    let e = b.write(&set("x", json!(1))).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotLeader);
    assert_eq!(e.leader.as_deref(), Some("a"));
    // A lone node with no peers founds its own cluster on the first write.
    let lone = start(RaftConfig::local("lone")).await;
    lone.write(&set("y", json!(2))).await.unwrap();
    assert_eq!(lone.kv().get("y"), Some(json!(2)));
    for n in [a, b, lone] {
        n.shutdown().await;
    }
}

/// 64 concurrent writers on one leader: their writes share entries (the proposer), yet
/// each gets its own result, and compare-and-set stays exact (one winner per version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_with_their_own_results() {
    let a = start(founder("a")).await;
    let b = start(RaftConfig::local("b")).await;
    a.add_node(b.member().clone()).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let a = a.clone();
            tokio::spawn(async move {
                let mut wins = 0;
                for i in 0..20 {
                    let r = a.write(&set(&format!("w{w}"), json!(i))).await.unwrap();
                    // Each writer sees its own key's previous value, not a neighbour's.
                    let prev = r.response.previous;
                    assert_eq!(prev, (i > 0).then(|| json!(i - 1)), "writer {w}");
                    // Everyone races to move "counter" from the version they read.
                    let version = a
                        .kv()
                        .read(|st| st.data.get("counter").map_or(0, |v| v.version));
                    let cas = KvCommand::Cas {
                        key: "counter".into(),
                        version,
                        value: Some(json!(w)),
                        limit: None,
                    };
                    let r = a.write(&cas).await.unwrap();
                    if r.response.error.is_none() {
                        wins += 1;
                    } else {
                        assert_eq!(r.response.error, Some(ErrorCode::Conflict));
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap();
    }
    let (commands, entries) = a
        .kv()
        .read(|st| (st.commands, st.last_applied.unwrap().index));
    assert_eq!(commands, 64 * 40, "every command applied once");
    assert!(
        entries < commands / 2,
        "{commands} commands in {entries} entries: writes were not batched"
    );
    // Every successful CAS moved the version on, so wins == number of versions taken.
    assert!(wins >= 1);
    until("b applied everything", || {
        b.kv().read(|st| st.commands) == commands
    })
    .await;
    assert_eq!(
        a.kv().read(|st| st.data.clone()),
        b.kv().read(|st| st.data.clone())
    );
    for n in [a, b] {
        n.shutdown().await;
    }
}

/// A node that was down while the others snapshotted and purged their logs catches up
/// from a snapshot sent by the leader (the entries it misses are gone), and keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laggard_behind_a_purged_log_catches_up_from_a_snapshot() {
    let dir = tempdir::Dir::new("laggard");
    let cfg = |n: &str| RaftConfig {
        data_dir: Some(dir.0.join(n)),
        snapshot_threshold: 20,
        bootstrap: n == "a",
        ..RaftConfig::local(n)
    };
    let restored = Arc::new(Mutex::new(0));
    let r2 = restored.clone();
    let c_sink: super::engine::EventSink = Arc::new(move |e| {
        if let RaftEvent::State(super::state_machine::SmEvent::SnapshotRestored { .. }) = e {
            *r2.lock() += 1;
        }
    });
    let a = start(cfg("a")).await;
    let b = start(cfg("b")).await;
    let c = start(cfg("c")).await;
    a.add_node(b.member().clone()).await.unwrap();
    a.add_node(c.member().clone()).await.unwrap();
    a.write(&set("early", json!(0))).await.unwrap();
    until("c has the early write", || c.kv().get("early").is_some()).await;
    let c_addr = c.member().addr();
    let c_seen = c.state().last_log_index;
    // So the snapshot c reports below can only have come from the leader.
    assert_eq!(c.state().snapshot_index, None);
    c.shutdown().await;
    drop(c);

    // One at a time, so that each write is its own entry and the log really grows.
    for i in 0..120 {
        a.write(&set(&format!("k{i}"), json!(i))).await.unwrap();
    }
    until("the leader's log is purged past what c has", || {
        a.state().snapshot_index.is_some_and(|s| s > c_seen + 20)
    })
    .await;

    let c = restart(cfg("c"), &c_addr, c_sink).await;
    until("c caught up", || c.kv().get("k119") == Some(json!(119))).await;
    assert!(*restored.lock() >= 1, "c installed a snapshot");
    assert_eq!(
        a.kv().read(|st| st.data.clone()),
        c.kv().read(|st| st.data.clone())
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// A follower that missed megabytes of entries catches up, though each append must be
/// answered within the heartbeat interval (50 ms): appends are bounded in bytes. With a
/// new leader's first probe of up to 4,096 entries, every attempt timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_megabytes_behind_catches_up_in_appends_that_fit_the_heartbeat() {
    let dir = tempdir::Dir::new("behind");
    let cfg = |n: &str| RaftConfig {
        data_dir: Some(dir.0.join(n)),
        snapshot_threshold: 100_000,
        bootstrap: n == "a",
        ..RaftConfig::local(n)
    };
    let a = start(cfg("a")).await;
    let b = start(cfg("b")).await;
    let c = start(cfg("c")).await;
    a.add_node(b.member().clone()).await.unwrap();
    a.add_node(c.member().clone()).await.unwrap();
    let c_addr = c.member().addr();
    c.shutdown().await;
    drop(c);
    // 400 entries of 32 KB each: 13 MB that c misses.
    let big = "x".repeat(32 << 10);
    for i in 0..400 {
        a.write(&set(&format!("k{i}"), json!(big))).await.unwrap();
    }
    let c = restart(cfg("c"), &c_addr, quiet()).await;
    until("c caught up", || c.kv().get("k399").is_some()).await;
    assert_eq!(
        a.kv().read(|st| st.data.len()),
        c.kv().read(|st| st.data.len())
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// A node of another cluster is refused, whichever side is asked, and keeps its data;
/// a name that does not match the node at the address is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_refused() {
    let a = start(founder("a")).await;
    let b = start(RaftConfig::local("b")).await;
    a.add_node(b.member().clone()).await.unwrap();
    a.write(&set("mine", json!("a"))).await.unwrap();
    // x founds a cluster of its own and writes to it.
    let x = start(RaftConfig::local("x")).await;
    x.write(&set("mine", json!("x"))).await.unwrap();

    let e = a.add_node(x.member().clone()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::OtherCluster, "{}", e.message);
    let e = x.add_node(b.member().clone()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::OtherCluster, "{}", e.message);
    let wrong = NodeId::at("y", &x.member().addr()).unwrap();
    let e = a.add_node(wrong).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);

    assert_eq!(x.kv().get("mine"), Some(json!("x")));
    assert_eq!(x.state().voters.len(), 1);
    assert_eq!(a.state().voters.len(), 2);
    // Both members of a's cluster know its name; x's is another.
    let (ca, cb) = (a.status().cluster, b.status().cluster);
    assert!(ca.is_some() && ca == cb);
    assert_ne!(x.status().cluster, ca);
    for n in [a, b, x] {
        n.shutdown().await;
    }
}

/// Three fresh nodes, each told about the other two at once (as the JS fixture does):
/// they form one cluster, not two that then refuse each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fresh_nodes_told_about_each_other_form_one_cluster() {
    let nodes = [
        start(RaftConfig::local("n1")).await,
        start(RaftConfig::local("n2")).await,
        start(RaftConfig::local("n3")).await,
    ];
    let mut adds = Vec::new();
    // The largest asks first, so that a pairwise rule would let n2 found with n3.
    for i in [2, 1, 0] {
        for j in 0..3 {
            if i != j {
                let (n, peer) = (nodes[i].clone(), nodes[j].member().clone());
                adds.push(tokio::spawn(async move { n.add_node(peer).await }));
            }
        }
    }
    for a in adds {
        a.await.unwrap().unwrap();
    }
    until("three voters everywhere", || {
        nodes.iter().all(|n| n.state().voters.len() == 3)
    })
    .await;
    let clusters: std::collections::BTreeSet<_> =
        nodes.iter().map(|n| n.status().cluster).collect();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_every_call_answers_closed_and_the_tasks_are_gone() {
    let a = start(founder("closing")).await;
    a.write(&set("k", serde_json::json!(1))).await.unwrap();
    let addr = a.member().addr();
    a.shutdown().await;
    a.shutdown().await; // idempotent
    assert!(
        a.tracker.is_closed() && a.tracker.is_empty(),
        "every task ended"
    );
    fn code<T>(r: Result<T, ApiError>) -> ErrorCode {
        r.map(|_| ()).unwrap_err().code
    }
    assert_eq!(
        code(a.write(&set("k", serde_json::json!(2))).await),
        ErrorCode::Closed
    );
    assert_eq!(code(a.read_barrier().await), ErrorCode::Closed);
    let m = NodeId::at("other", "127.0.0.1:1").unwrap();
    assert_eq!(code(a.add_node(m).await), ErrorCode::Closed);
    assert_eq!(code(a.remove_node("other").await), ErrorCode::Closed);
    // The port is free again: the listener went with its task.
    let again = restart(founder("closing"), &addr, quiet()).await;
    again.shutdown().await;
}

/// A caller that floods a node with writes is refused past the proposer's bound with
/// ERR_QUEUE_FULL, at once; everything admitted commits, and the node takes writes again.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_writes_past_the_proposer_bound_is_refused_with_queue_full() {
    let e = start(founder("flood")).await;
    until("a leader", || e.state().leader.is_some()).await;
    let extra = 3_000;
    let mut tasks = tokio::task::JoinSet::new();
    // All spawned before the proposer runs again (one thread): the first MAX_QUEUED wait,
    // the rest are refused.
    for i in 0..super::proposer::MAX_QUEUED + extra {
        let e = e.clone();
        tasks.spawn(async move {
            e.write(&set(&format!("k{}", i % 100), serde_json::json!(i)))
                .await
        });
    }
    let (mut ok, mut full) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(err) if err.code == ErrorCode::QueueFull => full += 1,
            Err(err) => panic!("unexpected refusal: {} {}", err.code, err.message),
        }
    }
    assert_eq!((ok, full), (super::proposer::MAX_QUEUED, extra));
    e.write(&set("after", serde_json::json!(1)))
        .await
        .expect("writes are taken again");
    e.shutdown().await;
}

/// Sends one request from a connection bound to `source` (another loopback address
/// stands for another host), with or without the cluster secret.
async fn call_from(
    source: &str,
    to: &Node,
    secret: Option<&str>,
    req: super::network::net::Request,
) -> Result<(), ApiError> {
    use super::network::net::{Dialer, Reply, Session};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let addr = to.member().addr();
    let tcp = sock.connect(addr.parse().unwrap()).await.unwrap();
    let d = Dialer {
        local: "outsider".into(),
        secret: secret.map(String::from),
        limits: crate::protocol::FrameLimits::default(),
        tls: None,
        metrics: None,
    };
    let mut s = Session::connect_over(crate::transport::Stream::Tcp(tcp), &addr, &d)
        .await
        .unwrap();
    match s
        .call(&req, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{req:?} from {source}: {e}"))
    {
        Reply::Done(r) => r,
        other => panic!("unexpected reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_only_members_hosts_may_join_add_or_remove() {
    use super::network::net::Request;
    let a = start(founder("a")).await;
    a.write(&set("k", json!(1))).await.unwrap();
    let evil = NodeId::at("evil", "127.0.0.3:9").unwrap();
    // 127.0.0.3 hosts no member: every membership change from there is refused.
    for req in [
        Request::Join(evil.clone()),
        Request::AddNode(evil.clone()),
        Request::RemoveNode("a".into()),
    ] {
        let e = call_from("127.0.0.3", &a, None, req).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Auth, "{}", e.message);
        assert!(e.message.contains("clusterSecret"), "{}", e.message);
    }
    assert_eq!(a.state().voters.len(), 1, "nothing changed");
    // A member on 127.0.0.2: from its host, changes are taken.
    let b = start(RaftConfig {
        host: "127.0.0.2".into(),
        ..RaftConfig::local("b")
    })
    .await;
    a.add_node(b.member().clone()).await.unwrap();
    let r = call_from("127.0.0.2", &a, None, Request::RemoveNode("b".into())).await;
    assert!(r.is_ok(), "{r:?}");
    until("b removed", || a.state().voters.len() == 1).await;
    for n in [a, b] {
        n.shutdown().await;
    }

    // With a secret, the handshake is the proof, from any host.
    let s = start(RaftConfig {
        secret: Some("s3cret".into()),
        ..founder("s")
    })
    .await;
    s.write(&set("k", json!(1))).await.unwrap();
    let r = call_from(
        "127.0.0.3",
        &s,
        Some("s3cret"),
        Request::RemoveNode("nobody".into()),
    )
    .await;
    if let Err(e) = &r {
        assert_ne!(e.code, ErrorCode::Auth, "{}", e.message);
    }
    s.shutdown().await;
}

/// A replica is added as a member that never votes: the voters' quorum stays theirs,
/// it applies what they commit, it forwards its writes, a voter is not turned into a
/// replica, and a fresh voter that asks a replica to found the group is told to go on
/// without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_and_never_votes() {
    let a = start(founder("b")).await;
    let b = start(RaftConfig::local("c")).await;
    a.add_node(b.member().clone()).await.unwrap();
    let r = start(RaftConfig {
        replica: true,
        ..RaftConfig::local("a")
    })
    .await;
    // A fresh voter asking the replica (whose name sorts first) to join it: the
    // replica answers it is one, and is not waited for as the smallest name.
    let fresh = start(RaftConfig::local("d")).await;
    fresh.know(&[r.member().clone()]);
    fresh.add_node(r.member().clone()).await.unwrap();
    assert!(!fresh.state().initialized);
    assert_eq!(fresh.smallest_known(), "d");

    r.add_node(a.member().clone()).await.unwrap();
    let st = a.state();
    assert_eq!(st.voters.len(), 2);
    assert_eq!(
        st.learners.iter().map(|m| m.name()).collect::<Vec<_>>(),
        ["a"]
    );
    until("the replica knows the leader", || {
        r.state().leader.is_some()
    })
    .await;
    assert_eq!(r.state().role, "replica");

    // Its writes go to the leader; it applies what the group commits.
    r.write(&set("via-replica", json!(1))).await.unwrap();
    a.write(&set("via-leader", json!(2))).await.unwrap();
    until("the replica applied both", || {
        r.kv().get("via-replica").is_some() && r.kv().get("via-leader").is_some()
    })
    .await;
    // Asked again (a restart, or a voter listing it among its seeds): still a replica.
    b.add_node(r.member().clone()).await.unwrap();
    assert_eq!(a.state().voters.len(), 2);
    assert!(r
        .since_leader_heard()
        .is_some_and(|d| d < Duration::from_secs(1)));

    // A voter asking to come back as a replica is refused.
    let e = a
        .change(super::network::net::Request::AddReplica(b.member().clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    for n in [r, fresh, b, a] {
        n.shutdown().await;
    }
}
