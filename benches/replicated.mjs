// Throughput and latency of a replicated store against a single server, in one run:
//  - throughput: K client processes dispatch N actions each as fast as they can; the
//    figure is actions/s until every server and client applied all of them;
//  - latency: one client, dispatchAsync at a steady rate, p50/p99 of the time to
//    "ordered and applied here".
// Replicated: 3 server processes with dataDir (durable Raft log) on loopback, or with
// the log in memory (--in-memory).
// --reducers picks the reducers compared: 'js' (a JS counter, ADD actions), 'js-patch'
// (a JS reducer doing what a PATCH replace does, immutably) and 'native'
// (reducers.patch, the same PATCH actions, applied in the engine).
//
//   node benches/replicated.mjs [--clients 4] [--actions 25000] [--rate 2000] [--seconds 5]
//   node benches/replicated.mjs --kinds replicated --reducers js-patch,native
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore, reducers } from 'redux-cluster-rs';
import { exitDrained, freePort, sleep } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => Number(args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);

function tally(state = { n: 0 }, action) {
  return action.type === 'ADD' ? { n: state.n + 1 } : state;
}

function jsPatch(state = { n: 0 }, action) {
  if (action.type !== 'PATCH') return state;
  let s = state;
  for (const op of action.ops) s = { ...s, [op.path.slice(1)]: op.value };
  return s;
}

const makeStore = (reducer) =>
  createStore(reducer === 'native' ? reducers.patch({ n: 0 }) : reducer === 'js-patch' ? jsPatch : tally, { stderr: () => {} });
const actionOf = (reducer) => (reducer === 'js' ? () => ({ type: 'ADD' }) : (i) => ({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: i }] }));
// What a process has applied: its position in the store's ordered stream.
// `_role.applied` since the store was split by role; `_clientSeq` / `_seq` before (a baseline --impl).
const appliedOf = (store) => (store._role ? store._role.applied : store._client ? store._clientSeq : store._seq);


if (process.env.BENCH_ROLE) {
  // A child: a server (single or replicated) or a client, reporting what it applied.
  const spec = JSON.parse(process.env.BENCH_SPEC);
  const reducer = process.env.BENCH_REDUCER;
  const store = makeStore(reducer);
  const action = actionOf(reducer);
  const handle = process.env.BENCH_ROLE === 'server' ? store.createServer(spec) : store.createClient(spec);
  setInterval(() => process.send({ applied: appliedOf(store), connected: store.connected }), 20);
  // A replicated server's term: a new one is an election.
  if (handle.status) setInterval(() => process.send({ term: handle.status()?.term ?? 0 }), 250);
  process.on('message', (m) => {
    if (m.cmd === 'go') {
      let sent = 0;
      const slice = () => {
        for (const end = Math.min(m.n, sent + 5000); sent < end; sent++) store.dispatch(action(sent));
        if (sent < m.n) setImmediate(slice);
      };
      slice();
    } else if (m.cmd === 'stop') {
      (handle.close ? handle.close() : handle.disconnect()).then(() => process.exit(0));
    } else if (m.cmd === 'histograms' && handle.status) {
      // --histograms: this server's latency histograms (p50/p99 by bucket), and its role.
      const q = (h, f) => h && h.buckets.find(([, c]) => c >= f * h.count)?.[0];
      const out = { role: handle.status()?.role };
      for (const f of handle.metrics().engine || []) {
        if (f.type !== 'histogram') continue;
        const h = f.samples[0];
        if (h && h.count) out[f.name] = `p50 <= ${q(h, 0.5)} s, p99 <= ${q(h, 0.99)} s (${h.count})`;
      }
      process.send({ histograms: out });
    }
  });
} else {
  const clients = opt('clients', 4);
  const actions = opt('actions', 25000);
  const rate = opt('rate', 2000);
  const seconds = opt('seconds', 5);
  // --snapshot-threshold N: the servers' cluster.snapshotThreshold (default the store's).
  const clusterExtra = args.includes('--snapshot-threshold') ? { snapshotThreshold: opt('snapshot-threshold', 10000) } : {};
  // --in-memory: the replicated servers keep their Raft log in memory (no dataDir), so
  // an action is safe once a majority holds it, not once it is on a majority's disks.
  const inMemory = args.includes('--in-memory');
  const kinds = (args.includes('--kinds') ? args[args.indexOf('--kinds') + 1] : 'single,replicated').split(',');
  const reducerList = (args.includes('--reducers') ? args[args.indexOf('--reducers') + 1] : 'js').split(',');
  const results = {};
  for (const [kind, reducer] of kinds.flatMap((k) => reducerList.map((r) => [k, r]))) {
    const label = reducerList.length > 1 ? `${kind}/${reducer}` : kind;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-bench-'));
    const nServers = kind === 'single' ? 1 : 3;
    const ports = await Promise.all(Array.from({ length: nServers }, freePort));
    const seeds = ports.map((p, i) => `b${i}@127.0.0.1:${p}`);
    const procs = [];
    const spawn = (role, spec) => {
      const p = fork(SELF, [], { env: { ...process.env, BENCH_ROLE: role, BENCH_SPEC: JSON.stringify(spec), BENCH_REDUCER: reducer } });
      const e = { p, applied: 0, connected: false };
      p.on('message', (m) => Object.assign(e, m));
      procs.push(e);
      return e;
    };
    for (let i = 0; i < nServers; i++) {
      const cluster = kind === 'single' ? undefined : { nodeName: `b${i}`, seeds, ...(inMemory ? {} : { dataDir: path.join(dir, `b${i}`) }), ...clusterExtra };
      spawn('server', { host: '127.0.0.1', port: ports[i], cluster });
    }
    const servers = ports.map((port) => ({ host: '127.0.0.1', port }));
    const kids = Array.from({ length: clients }, () => spawn('client', { servers }));
    const until = async (cond, what) => {
      const deadline = Date.now() + 120000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`${kind}: timed out waiting for ${what}`);
        await sleep(5);
      }
    };
    await until(() => kids.every((k) => k.connected), 'the clients');
    if (kind === 'replicated') await sleep(1000); // the group formed and elected
    // Throughput.
    const total = clients * actions;
    const t0 = performance.now();
    for (const k of kids) k.p.send({ cmd: 'go', n: actions });
    await until(() => procs.every((e) => e.applied >= total), 'every process to apply all actions');
    const secs = (performance.now() - t0) / 1000;
    // Latency: one more client in this process, dispatchAsync at a steady rate.
    const store = makeStore(reducer);
    const action = actionOf(reducer);
    const client = store.createClient({ servers });
    await until(() => store.connected, 'the latency client');
    // Latencies in a typed array and no promise kept per dispatch: a 5-minute run at
    // 10,000/s is 3 million of them, and keeping them would make this process the one
    // that stalls (its garbage collector), not the store.
    const lat = new Float64Array(Math.ceil(rate * seconds * 1.1) + 1000);
    let issuedN = 0;
    let settled = 0;
    let n = 0;
    let failures = 0;
    let drained;
    const allSettled = new Promise((r) => (drained = r));
    let ended = false;
    const settle = () => {
      settled++;
      if (ended && settled === issuedN) drained();
    };
    const term = () => Math.max(...procs.map((e) => e.term ?? 0));
    const term0 = term();
    const tEnd = performance.now() + seconds * 1000;
    let next = performance.now();
    while (performance.now() < tEnd && issuedN < lat.length) {
      const issued = performance.now();
      issuedN++;
      store.dispatchAsync(action(issuedN)).then(
        () => {
          lat[n++] = performance.now() - issued;
          settle();
        },
        () => {
          failures++;
          settle();
        }
      );
      next += 1000 / rate;
      const delay = next - performance.now();
      if (delay > 1) await sleep(delay);
      else if (issuedN % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    ended = true;
    if (settled < issuedN) await allSettled;
    const sorted = lat.subarray(0, n).sort();
    const q = (f) => sorted[Math.min(n - 1, Math.floor(f * n))];
    if (failures) console.log(`${failures} dispatchAsync calls rejected`);
    await sleep(300); // the servers' last term reports
    if (args.includes('--histograms') && kind === 'replicated') {
      for (const e of procs.slice(0, nServers)) e.p.send({ cmd: 'histograms' });
      await until(() => procs.slice(0, nServers).every((e) => e.histograms), 'the histograms');
      for (const e of procs.slice(0, nServers)) console.log(JSON.stringify(e.histograms));
    }
    const elections = term() - term0;
    results[label] = { actions_per_s: Math.round(total / secs), p50_ms: q(0.5), p99_ms: q(0.99), p999_ms: q(0.999), max_ms: sorted[n - 1], samples: n, elections };
    console.log(
      `${label.padEnd(10)} ${nServers} server(s), ${clients} clients x ${actions}: ${results[label].actions_per_s.toLocaleString()} actions/s applied everywhere; dispatchAsync at ${rate}/s: p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, p99.9 ${q(0.999).toFixed(2)} ms, max ${sorted[n - 1].toFixed(1)} ms (${n} samples)` +
        (kind === 'replicated' ? `; elections during it: ${elections} (term ${term0} -> ${term()})` : '')
    );
    await client.disconnect();
    for (const e of procs) e.p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const ratio = (a, b) => {
    if (!results[a] || !results[b]) return;
    const r = results[a].actions_per_s / results[b].actions_per_s;
    console.log(`\n${a} / ${b}: throughput ${r.toFixed(2)}x, p50 ${(results[a].p50_ms / results[b].p50_ms).toFixed(2)}x, p99 ${(results[a].p99_ms / results[b].p99_ms).toFixed(2)}x`);
  };
  ratio('replicated', 'single');
  for (const k of kinds) ratio(`${k}/native`, `${k}/js-patch`);
  exitDrained();
}
