//! 3 Raft nodes on loopback TCP (the real engine and transport, one process): commits/s
//! and commit latency with 1 writer and with 64 concurrent writers, in memory and with
//! `dataDir` (fsync before acknowledging). `cargo bench --bench raft`

use redux_cluster_rs::consensus::engine::{EventSink, Handle, RaftConfig, RaftEvent};
use redux_cluster_rs::consensus::machines::kv::{self, KvCommand, KvMachine};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The addon's allocator (see src/lib.rs, which sets it itself with `napi`), so the
// figures are the addon's.
#[cfg(not(feature = "napi"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Leader elections node `a` saw: a figure that moves under load means the load starves
/// heartbeats (and the run's throughput includes the failover).
static ELECTIONS: AtomicU64 = AtomicU64::new(0);

async fn cluster(dir: Option<&std::path::Path>) -> Vec<Handle<KvMachine>> {
    let mut nodes = Vec::new();
    for n in ["a", "b", "c"] {
        let cfg = RaftConfig {
            data_dir: dir.map(|d| d.join(n)),
            bootstrap: n == "a",
            ..RaftConfig::local(n)
        };
        let sink: EventSink = if n == "a" {
            Arc::new(|e| {
                if let RaftEvent::LeaderElected { .. } = e {
                    ELECTIONS.fetch_add(1, Ordering::Relaxed);
                }
            })
        } else {
            Arc::new(|_| {})
        };
        nodes.push(kv::start(cfg, sink).await.unwrap());
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

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: usize,
}

async fn run(leader: &Handle<KvMachine>, writers: usize, per: usize) -> Figures {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let l = leader.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::with_capacity(per), 0);
            for i in 0..per {
                let t = Instant::now();
                let r = l
                    .write(&KvCommand::Set {
                        key: format!("w{w}-{}", i % 100),
                        value: json!({"i": i, "payload": "x".repeat(64)}),
                        limit: None,
                    })
                    .await;
                match r {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        eprintln!("write failed: {} {}", e.code, e.message);
                    }
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = all.len() as f64;
    Figures {
        rate: n / secs,
        p50: pct(&mut all, 0.5),
        p99: pct(&mut all, 0.99),
        max: pct(&mut all, 1.0),
        errors,
    }
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
            "{:<10} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "store", "writers", "commits/s", "p50 µs", "p99 µs", "max µs", "elections", "errors"
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
                let before = ELECTIONS.load(Ordering::Relaxed);
                let f = run(&leader, writers, total / writers).await;
                println!(
                    "{:<10} {:>8} {:>12.0} {:>10.0} {:>10.0} {:>10.0} {:>10} {:>7}",
                    store,
                    writers,
                    f.rate,
                    f.p50,
                    f.p99,
                    f.max,
                    ELECTIONS.load(Ordering::Relaxed) - before,
                    f.errors
                );
            }
            for n in &nodes {
                n.shutdown().await;
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}
