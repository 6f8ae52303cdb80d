//! What a full-mesh cluster costs each node per heartbeat interval, by cluster size:
//! N nodes in one process on loopback, 100 ms heartbeats, measured over 20 intervals
//! once everyone has met everyone.
//!
//!   cargo bench --bench membership

use redux_cluster_rs::membership::runtime::{Cluster, ClusterConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn measure(n: usize, secret: bool) -> (f64, f64, Duration) {
    let t0 = Instant::now();
    let first = Cluster::start(
        ClusterConfig::local("n0", vec![], secret.then_some("bench-secret")),
        Arc::new(|_| {}),
    )
    .unwrap();
    let seed = first.local().clone();
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(
            Cluster::start(
                ClusterConfig::local(
                    &format!("n{i}"),
                    vec![seed.clone()],
                    secret.then_some("bench-secret"),
                ),
                Arc::new(|_| {}),
            )
            .unwrap(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|c| {
        c.nodes()
            .iter()
            .filter(|p| p.status == redux_cluster_rs::membership::state::NodeStatus::Connected)
            .count()
            < n - 1
    }) {
        assert!(Instant::now() < deadline, "cluster of {n} did not form");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let formed = t0.elapsed();
    let before: Vec<(u64, u64)> = nodes.iter().map(|c| c.sent()).collect();
    let intervals = 20u32;
    tokio::time::sleep(Duration::from_millis(100) * intervals).await;
    let (mut frames, mut bytes) = (0u64, 0u64);
    for (c, b) in nodes.iter().zip(before) {
        let now = c.sent();
        frames += now.0 - b.0;
        bytes += now.1 - b.1;
    }
    for c in &nodes {
        c.crash();
    }
    let per = (n as f64) * intervals as f64;
    (frames as f64 / per, bytes as f64 / per, formed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| nodes | cluster secret | messages / node / interval | bytes / node / interval | formed in |");
    println!("|---|---|---|---|---|");
    for n in [5usize, 10, 20] {
        for secret in [false, true] {
            let (m, b, formed) = rt.block_on(measure(n, secret));
            println!(
                "| {n} | {} | {m:.1} | {b:.0} | {} ms |",
                if secret { "yes" } else { "no" },
                formed.as_millis()
            );
        }
    }
}
