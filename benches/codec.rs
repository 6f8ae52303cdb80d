//! Hot paths of the engine, without IO: framing a batch of actions, decoding it, and
//! appending to / reading from the action log.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use redux_cluster_rs::protocol::frame::write_frame;
use redux_cluster_rs::protocol::message::encode_actions;
use redux_cluster_rs::protocol::{FrameCodec, FrameLimits, Message};
use redux_cluster_rs::store::action_log::ActionLog;
use redux_cluster_rs::store::authority::validate_action;
use tokio_util::codec::Decoder;

fn actions(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{{\"type\":\"INCREMENT\",\"i\":{i}}}")))
        .collect()
}

fn frames(c: &mut Criterion) {
    let limits = FrameLimits::default();
    let batch = actions(1000);
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("encode 1000 actions", |b| {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            buf.clear();
            write_frame(&mut buf, &limits, |d| {
                encode_actions(d, 1, batch.iter().map(|a| &a[..]))
            })
            .unwrap();
            black_box(buf.len())
        })
    });
    let mut encoded = BytesMut::new();
    write_frame(&mut encoded, &limits, |d| {
        encode_actions(d, 1, batch.iter().map(|a| &a[..]))
    })
    .unwrap();
    let encoded = encoded.freeze();
    g.bench_function("decode 1000 actions", |b| {
        let mut codec = FrameCodec::new(limits);
        b.iter(|| {
            let mut src = BytesMut::from(&encoded[..]);
            let payload = codec.decode(&mut src).unwrap().unwrap();
            match Message::decode(payload).unwrap() {
                Message::Actions { actions, .. } => black_box(actions.len()),
                _ => unreachable!(),
            }
        })
    });
    g.bench_function("validate 1000 actions", |b| {
        b.iter(|| {
            for a in &batch {
                validate_action(a).unwrap();
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("compression");
    let state: String = (0..20_000)
        .map(|i| format!("\"k{i}\":\"value-{i}\","))
        .collect();
    let state = Bytes::from(format!("{{{}\"end\":1}}", state));
    g.throughput(Throughput::Bytes(state.len() as u64));
    g.bench_function("encode ~400 KB state (deflate)", |b| {
        let mut buf = BytesMut::new();
        b.iter(|| {
            buf.clear();
            write_frame(&mut buf, &limits, |d| {
                Message::Snapshot {
                    seq: 1,
                    state: state.clone(),
                }
                .encode(d)
            })
            .unwrap();
            black_box(buf.len())
        })
    });
    g.finish();
}

fn log(c: &mut Criterion) {
    let batch = actions(1000);
    let mut g = c.benchmark_group("action log");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("append 1000 + read back + trim", |b| {
        let mut log = ActionLog::new();
        b.iter(|| {
            let from = log.head() + 1;
            for a in &batch {
                log.append(a.clone());
            }
            let got = log.read(from, u64::MAX, 16 * 1024, 64 * 1024).unwrap();
            log.trim_through(log.head());
            black_box(got.len())
        })
    });
    g.finish();
}

criterion_group!(benches, frames, log);
criterion_main!(benches);
