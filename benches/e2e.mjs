// End-to-end, multi-process benchmark: redux-cluster-rs and the JavaScript redux-cluster
// from npm, same workloads, same run, through the shared harness
// (../shared/bench/harness.mjs), plus a backpressure check of our own.
//
//   npm run bench                    (full sizes)
//   node benches/e2e.mjs --quick     (small sizes, about a minute)
//   node benches/e2e.mjs --repeat 3  (median of 3 interleaved runs)
import { execFileSync, spawnSync, fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HARNESS = path.resolve(ROOT, '..', 'shared', 'bench', 'harness.mjs');
const BASE_DIR = path.join(ROOT, '.bench');
const BASELINE = path.join(BASE_DIR, 'node_modules', 'redux-cluster');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const repeat = Number(args[args.indexOf('--repeat') + 1]) || 1;

function ensureBaseline() {
  if (fs.existsSync(path.join(BASELINE, 'package.json'))) return;
  fs.mkdirSync(BASE_DIR, { recursive: true });
  fs.writeFileSync(path.join(BASE_DIR, 'package.json'), '{"name":"bench-baselines","private":true}');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', 'redux-cluster@1.10.0'], { cwd: BASE_DIR, stdio: 'inherit' });
}

function harness(impl, scenarios) {
  const a = [HARNESS, '--impl', impl, '--scenario', scenarios.join(','), '--repeat', String(repeat)];
  if (quick) a.push('--quick');
  const r = spawnSync(process.execPath, a, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const want = repeat > 1 ? 'median' : 'run';
  return Object.fromEntries(lines.filter((l) => l.kind === want).map((l) => [l.scenario, l]));
}

const fmt = (v, unit = '') => (v === null || v === undefined ? 'fails' : `${typeof v === 'number' ? Math.round(v).toLocaleString('en-US') : v}${unit}`);

async function main() {
  ensureBaseline();
  const ours = ['tcp-throughput', 'unix-throughput', 'ipc-throughput', 'latency', 'fanout', 'large-state', 'burst-loss'];
  console.error(`[bench] redux-cluster-rs (${quick ? 'quick' : 'full'} sizes, repeat ${repeat})`);
  const rs = harness(ROOT, ours);
  console.error('[bench] redux-cluster 1.10.0 (npm), same scenarios plus node:cluster IPC');
  const js = harness(BASELINE, ours);
  const ipc = js['ipc-throughput'];
  fs.writeFileSync(path.join(BASE_DIR, 'last.json'), JSON.stringify({ rs, js }, null, 1));
  const floor = await pingPong(quick ? 200 : 2000);
  const rows = [];
  const row = (what, a, b, unit, better = 'higher') => {
    let ratio = '';
    if (typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0) ratio = better === 'higher' ? `${(a / b).toFixed(1)}x` : `${(b / a).toFixed(1)}x`;
    rows.push(`| ${what} | ${fmt(a, unit)} | ${fmt(b, unit)} | ${ratio} |`);
  };
  for (const [name, label] of [
    ['tcp-throughput', 'client→server→client, TCP (actions/s)'],
    ['unix-throughput', 'client→server→client, Unix (actions/s)'],
    ['burst-loss', 'burst in one loop, TCP (actions/s)'],
    ['fanout', 'fan-out to 16 clients (actions/s)'],
  ]) {
    row(label, rs[name]?.actions_per_s, js[name]?.actions_per_s, '');
    row(`  lost in ${name}`, rs[name]?.lost, js[name]?.lost ?? (js[name]?.ok === false ? 'no sync' : null), '');
  }
  row('node:cluster, 2 workers x 10,000 (actions/s)', rs['ipc-throughput']?.actions_per_s, ipc?.actions_per_s, '');
  row('round trip p50 (µs)', rs.latency?.p50_us, js.latency?.p50_us, '', 'lower');
  row('round trip p99 (µs)', rs.latency?.p99_us, js.latency?.p99_us, '', 'lower');
  row('  floor: bare node TCP ping-pong p50 / p99 (µs)', `${floor.p50} / ${floor.p99}`, '', '');
  const L = rs['large-state'];
  row(`${L?.state_json_mb ?? '?'} MB state to a fresh client (ms)`, L?.action_initial_sync_ms, js['large-state']?.action_initial_sync_ms, '', 'lower');
  row('  same, snapshot mode (ms)', L?.snapshot_initial_sync_ms, js['large-state']?.snapshot_initial_sync_ms, '', 'lower');
  const ipcRatio = ipc?.actions_per_s ? ` TCP vs the JS library's IPC: ${(rs['tcp-throughput']?.actions_per_s / ipc.actions_per_s).toFixed(1)}x.` : '';
  const bp = await backpressure(quick ? 50000 : 200000);
  console.log(`\n| scenario | redux-cluster-rs | redux-cluster (JS) | ratio |\n|---|---|---|---|\n${rows.join('\n')}`);
  console.log(`\nBaseline errors: ${Object.values(js).filter((r) => r.error || (r.errors && r.errors.length)).map((r) => `${r.scenario}: ${(r.error || r.errors[0]).slice(0, 120)}`).join('; ') || 'none'}.${ipcRatio}`);
  console.log(
    `\nBackpressure: the server dispatches ${bp.n.toLocaleString('en-US')} actions of 1 KB (${Math.round(bp.n / 1024)} MB) to a reading client, ` +
      `with and without a second client that never reads. Peak server RSS: ${bp.withDeaf.peak} MB with it, ${bp.without.peak} MB without ` +
      `(ratio ${(bp.withDeaf.peak / bp.without.peak).toFixed(2)}; start ${bp.withDeaf.before} MB). ` +
      `The reading client received every action: ${bp.withDeaf.goodClientOk && bp.without.goodClientOk}.`
  );
}

// ---- the floor for round trips: two node processes bouncing a JSON line over TCP

async function pingPong(n) {
  const echo = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, RCRS_BENCH_CHILD: 'echo' } });
  const port = await new Promise((resolve) => echo.once('message', (m) => resolve(m.port)));
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const samples = [];
  let pending = null;
  sock.on('data', () => pending && pending());
  for (let i = 0; i < n + 100; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise((resolve) => {
      pending = resolve;
      sock.write(JSON.stringify({ type: 'INCREMENT', i }) + '\n');
    });
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  sock.destroy();
  echo.kill();
  samples.sort((a, b) => a - b);
  const pct = (p) => Math.round(samples[Math.min(samples.length - 1, Math.ceil((p / 100) * samples.length) - 1)]);
  return { p50: pct(50), p99: pct(99) };
}

function echoServer() {
  const srv = net.createServer((c) => {
    c.setNoDelay(true);
    c.on('data', (d) => c.write(d));
  });
  srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
}

// ---- backpressure: a peer that stops reading must not make the server buffer everything

async function backpressure(n) {
  const withDeaf = await floodRun(n, true);
  const without = await floodRun(n, false);
  return { n, withDeaf, without };
}

async function floodRun(n, deafPeer) {
  const server = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, RCRS_BENCH_CHILD: '1' } });
  const ask = (m) => new Promise((resolve) => {
    server.once('message', resolve);
    server.send(m);
  });
  const { port, hash } = await ask({ cmd: 'listen' });
  // A raw peer: a valid handshake, then it never reads another byte.
  let deaf = null;
  if (deafPeer) {
    deaf = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => deaf.once('connect', r));
    deaf.pause();
    deaf.write(hello(hash));
  }
  const { rss: before } = await ask({ cmd: 'rss' });
  const res = await ask({ cmd: 'flood', n });
  deaf?.destroy();
  server.send({ cmd: 'exit' });
  return { before, peak: res.rss, goodClientOk: res.goodClientOk };
}

function hello(hash) {
  const h = Buffer.from(hash);
  const p = Buffer.alloc(1 + 4 + h.length + 24);
  p[0] = 1;
  p.writeUInt32BE(h.length, 1);
  h.copy(p, 5);
  p.writeBigUInt64BE(42n, 5 + h.length);
  const f = Buffer.alloc(6);
  f.writeUInt32BE(p.length + 2);
  f[4] = 1;
  return Buffer.concat([f, p]);
}

async function backpressureServer() {
  const { createStore } = await import('redux-cluster-rs');
  const rssMb = () => Math.round(process.memoryUsage().rss / 1048576);
  function bench(state = { n: 0 }, a) {
    return a.type === 'PUT' ? { n: state.n + 1, last: a.blob.length } : state;
  }
  const store = createStore(bench, { logRetention: 10000 });
  let srv;
  const good = createStore(bench);
  process.on('message', async (m) => {
    if (m.cmd === 'listen') {
      srv = store.createServer({ host: '127.0.0.1', port: 0 });
      good.createClient({ host: '127.0.0.1', port: srv.port });
      while (!good.connected) await new Promise((r) => setTimeout(r, 5));
      process.send({ port: srv.port, hash: store.RCHash });
    } else if (m.cmd === 'rss') {
      process.send({ rss: rssMb() });
    } else if (m.cmd === 'flood') {
      const blob = 'x'.repeat(1024);
      let peak = 0;
      for (let i = 0; i < m.n; i++) {
        store.dispatch({ type: 'PUT', blob });
        if (i % 5000 === 4999) {
          // Let the engine and the good client run, as a real server would between bursts.
          await new Promise((r) => setImmediate(r));
          peak = Math.max(peak, rssMb());
        }
      }
      const t0 = Date.now();
      while (good.getState().n < m.n && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 10));
      peak = Math.max(peak, rssMb());
      process.send({ rss: peak, goodClientOk: good.getState().n === m.n });
    } else if (m.cmd === 'exit') {
      process.exit(0);
    }
  });
}

if (process.env.RCRS_BENCH_CHILD === 'echo') echoServer();
else if (process.env.RCRS_BENCH_CHILD) await backpressureServer();
else await main();
