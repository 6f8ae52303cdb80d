//! 3 Raft nodes on loopback TCP (the real engine and transport, one process): commits/s
//! and commit latency with 1 writer and with 64 concurrent writers, in memory and with
//! `dataDir` (fsync before acknowledging). `cargo bench --bench raft`

use redux_cluster_rs::consensus::engine::{RaftConfig, RaftEngine};
use redux_cluster_rs::consensus::Command;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The addon's allocator (see src/lib.rs), so the figures are the addon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn cluster(dir: Option<&std::path::Path>) -> Vec<Arc<RaftEngine>> {
    let mut nodes = Vec::new();
    for n in ["a", "b", "c"] {
        let cfg = RaftConfig {
            data_dir: dir.map(|d| d.join(n)),
            bootstrap: n == "a",
            ..RaftConfig::local(n)
        };
        nodes.push(RaftEngine::start(cfg, Arc::new(|_| {})).await.unwrap());
    }
    for n in &nodes[1..] {
        nodes[0].add_node(n.member().clone()).await.unwrap();
    }
    nodes
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6
}

async fn run(leader: &Arc<RaftEngine>, writers: usize, per: usize) -> (f64, f64, f64) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let l = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let t = Instant::now();
                l.write(Command::Set {
                    key: format!("w{w}-{}", i % 100),
                    value: json!({"i": i, "payload": "x".repeat(64)}),
                    limit: None,
                })
                .await
                .unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let n = all.len() as f64;
    (n / secs, pct(&mut all, 0.5), pct(&mut all, 0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--store memory|dataDir` runs one store only (for profiling).
    let only = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1).cloned());
    // `--writers 1|64` runs one load only.
    let only_writers: Option<usize> = args
        .iter()
        .position(|a| a == "--writers")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("3 nodes, loopback TCP, ~100-byte values");
        println!(
            "{:<10} {:>8} {:>12} {:>10} {:>10}",
            "store", "writers", "commits/s", "p50 µs", "p99 µs"
        );
        for durable in [false, true] {
            let store = if durable { "dataDir" } else { "memory" };
            if only.as_deref().is_some_and(|o| o != store) {
                continue;
            }
            let dir = std::env::temp_dir().join(format!("rcrs-bench-{}", std::process::id()));
            let nodes = cluster(durable.then_some(dir.as_path())).await;
            let leader = nodes
                .iter()
                .find(|n| n.state().role == "leader")
                .unwrap()
                .clone();
            // Warm up connections and allocations.
            run(&leader, 8, 100).await;
            for (writers, total) in [
                (1usize, if quick { 500 } else { 3000 }),
                (64, if quick { 6400 } else { 64000 }),
            ] {
                if only_writers.is_some_and(|w| w != writers) {
                    continue;
                }
                let (rate, p50, p99) = run(&leader, writers, total / writers).await;
                println!(
                    "{:<10} {:>8} {:>12.0} {:>10.0} {:>10.0}",
                    store, writers, rate, p50, p99
                );
            }
            for n in &nodes {
                n.shutdown().await;
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}
