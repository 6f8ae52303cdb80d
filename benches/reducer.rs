//! Native reducers without IO: actions applied per second by `reducers.patch` and
//! `reducers.entities` (through `NativeState`, as the server's authority calls them), and
//! the cost of turning a 10 MB state into the JSON that `getState()` parses.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use redux_cluster_rs::reducer::entities::EntitiesReducer;
use redux_cluster_rs::reducer::patch::PatchReducer;
use redux_cluster_rs::reducer::NativeState;
use serde_json::{json, Value};

// The addon's allocator, so the figures are the addon's (the napi feature brings it).
#[cfg(not(feature = "napi"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn patch_actions(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"type":"PATCH","ops":[{{"op":"replace","path":"/counters/k{}","value":{i}}}]}}"#,
                i % 100
            ))
        })
        .collect()
}

fn counters() -> Value {
    let m: serde_json::Map<String, Value> = (0..100).map(|k| (format!("k{k}"), json!(0))).collect();
    json!({ "counters": m })
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("reducer");
    let batch = patch_actions(1000);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("patch: 1000 replace actions", |b| {
        let st = NativeState::new("p".into(), Box::new(PatchReducer::new(counters())));
        let mut seq = 0u64;
        b.iter(|| {
            st.apply_ordered(seq + 1, &batch);
            seq += batch.len() as u64;
        })
    });
    let adds: Vec<Bytes> = (0..1000)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"type":"todos/upsertOne","payload":{{"id":{},"title":"t{i}","done":false}}}}"#,
                i % 500
            ))
        })
        .collect();
    g.bench_function("entities: 1000 upsertOne actions", |b| {
        let st = NativeState::new(
            "e".into(),
            Box::new(EntitiesReducer::new("todos".into(), "id".into(), Value::Null).unwrap()),
        );
        let mut seq = 0u64;
        b.iter(|| {
            st.apply_ordered(seq + 1, &adds);
            seq += adds.len() as u64;
        })
    });
    g.finish();

    // A ~10 MB document: one change, then its JSON (what getState() parses once).
    let items: Vec<Value> = (0..80_000)
        .map(|i| json!({"id": i, "name": format!("item number {i}"), "tags": ["a", "b"], "price": i as f64 * 0.5}))
        .collect();
    let big = json!({ "items": items, "n": 0 });
    let size = serde_json::to_vec(&big).unwrap().len();
    let mut g = c.benchmark_group("reducer 10 MB state");
    g.throughput(Throughput::Bytes(size as u64));
    g.sample_size(10);
    let one =
        Bytes::from_static(br#"{"type":"PATCH","ops":[{"op":"replace","path":"/n","value":1}]}"#);
    g.bench_function("one change, then the state's JSON", |b| {
        b.iter_batched(
            || NativeState::new("p".into(), Box::new(PatchReducer::new(big.clone()))),
            |st| {
                st.apply_ordered(1, std::slice::from_ref(&one));
                black_box(st.snapshot().unwrap().1.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("one change, applied", |b| {
        let st = NativeState::new("p".into(), Box::new(PatchReducer::new(big.clone())));
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            st.apply_ordered(seq, std::slice::from_ref(&one));
        })
    });
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
