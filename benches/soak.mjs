// Soak: a replicated store (3 server processes with dataDir) under a steady load of
// dispatchAsync for a long time, while clients come and go (one is replaced every
// `--reconnect` seconds). Every `--every` seconds it samples each server's resident
// memory and open file descriptors (from /proc), this process's (the clients'), the
// acknowledged actions per second and their p99 latency, each server's dataDir size, and
// any error by code. At the end: every server holds the same state, every acknowledged
// action was applied exactly once (the store counts them), and memory, descriptors and
// disk are flat: the last third of the run's average RSS within 20 % of the first
// third's (after a warm-up sample), no more descriptors at the end than after the
// warm-up (+ 8), and the dataDirs' largest size in the second half within 1.25 × the
// first half's + 16 MB (the log is a sawtooth of 64 MiB segments: run long enough for a
// few of them, 20 minutes or more at the default rate).
// It writes the samples as JSON and as an SVG chart, and exits 1 when a check fails.
//
//   npm run bench:soak -- [--minutes 30] [--rate 2000] [--clients 4] [--every 10] [--reconnect 5] [--out DIR]
//   node benches/soak.mjs --seconds 20 --every 2   (a short run; npm test runs one)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'redux-cluster-rs';
import { child, freePort, oneLeader, ask, waitFor } from '../__test__/helpers.mjs';
import { counter } from '../__test__/fixtures/reducers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resident memory (bytes) and open descriptors of a process, from /proc. */
function usage(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return { rss, fds };
  } catch {
    return { rss: NaN, fds: NaN };
  }
}

/** Bytes of the files under `dir` (a server's dataDir: its Raft log, metadata, snapshot). */
function diskUse(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath ?? e.path, e.name), { throwIfNoEntry: false })?.size ?? 0;
  }
  return n;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const p99 = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] : 0);
const mb = (b) => (b / 2 ** 20).toFixed(1);

export async function runSoak({ seconds = 1800, rate = 2000, clients: nClients = 4, every = 10, reconnect = 5, out, log = console.log } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-soak-'));
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `s${i}@127.0.0.1:${p}`);
  const servers = ports.map((port, i) =>
    child('raft-store.mjs', [JSON.stringify({ port, cluster: { nodeName: `s${i}`, seeds, dataDir: path.join(dir, `s${i}`), heartbeatInterval: 50, electionTimeout: 300 } })])
  );
  const endpoints = ports.map((port) => ({ host: '127.0.0.1', port }));
  let acked = 0;
  let attempted = 0;
  let window = { acked: 0, latencies: [], errors: {} };
  const errors = {};
  // Liveness false alarms: with no fault in a soak, every client that left a server for
  // its silence, and every client a server dropped for its silence, is one.
  let livenessMoves = 0;
  const clients = [];
  const startClient = () => {
    const store = createStore(counter, { stderr: (m) => /stopped answering/.test(m) && livenessMoves++ });
    const conn = store.createClient({ servers: endpoints, reconnectInitialMs: 20, reconnectMaxMs: 500 });
    const c = { store, conn, alive: true, inFlight: 0 };
    // A steady share of the rate, paced every 10 ms; at most 200 waiting per client, so a
    // stall shows as lower throughput, not as a growing queue in this process.
    const perTick = rate / nClients / 100;
    let owed = 0;
    c.timer = setInterval(() => {
      owed += perTick;
      for (; owed >= 1 && c.inFlight < 200; owed--) {
        const t0 = performance.now();
        attempted++;
        c.inFlight++;
        store.dispatchAsync({ type: 'INC' }, { timeout: 10000 }).then(
          () => {
            acked++;
            window.acked++;
            window.latencies.push(performance.now() - t0);
          },
          (e) => {
            errors[e.code] = (errors[e.code] || 0) + 1;
            window.errors[e.code] = (window.errors[e.code] || 0) + 1;
          }
        ).finally(() => c.inFlight--);
      }
      owed = Math.min(owed, perTick * 10);
    }, 10);
    return c;
  };
  const stopClient = async (c) => {
    clearInterval(c.timer);
    await waitFor(() => c.inFlight === 0, { timeoutMs: 15000, what: 'the leaving client settled' });
    await c.conn.disconnect();
  };

  const samples = [];
  try {
    await Promise.all(servers.map((s) => s.next((m) => m.listening)));
    await oneLeader(servers);
    for (let i = 0; i < nClients; i++) clients.push(startClient());
    log(`soak: 3 servers, ${nClients} clients, ${rate} actions/s, ${seconds} s, a client replaced every ${reconnect} s; samples every ${every} s`);
    log('  t (s) | server RSS MB (each)   | of it JS heap MB       | dataDir MB (each)      | fds (each)   | clients RSS MB, fds | acked/s | p99 ms | errors');
    const t0 = Date.now();
    let nextSwap = t0 + reconnect * 1000;
    let nextSample = t0 + every * 1000;
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(Math.max(0, Math.min(nextSwap, nextSample) - Date.now()));
      if (Date.now() >= nextSwap) {
        nextSwap += reconnect * 1000;
        const old = clients.shift();
        clients.push(startClient());
        stopClient(old).catch((e) => (errors[`leave: ${e.message}`] = 1));
      }
      if (Date.now() >= nextSample) {
        nextSample += every * 1000;
        const w = window;
        window = { acked: 0, latencies: [], errors: {} };
        // The JS heap beside the whole: what is left is the engine (and Node's own).
        const heaps = await Promise.all(servers.map((k) => ask(k, { cmd: 'memory' }, 5000).then((m) => m.memory.heapTotal, () => NaN)));
        const s = {
          t: Math.round((Date.now() - t0) / 1000),
          servers: servers.map((k, i) => ({ ...usage(k.proc.pid), heap: heaps[i], disk: diskUse(path.join(dir, `s${i}`)) })),
          self: usage(process.pid),
          ackedPerSec: Math.round(w.acked / every),
          p99Ms: Number(p99(w.latencies).toFixed(1)),
          errors: w.errors,
        };
        samples.push(s);
        log(
          `${String(s.t).padStart(7)} | ${s.servers.map((x) => mb(x.rss).padStart(6)).join(' ')} | ${s.servers.map((x) => mb(x.heap).padStart(6)).join(' ')} | ${s.servers.map((x) => mb(x.disk).padStart(6)).join(' ')} | ${s.servers.map((x) => String(x.fds).padStart(3)).join(' ')}  | ${mb(s.self.rss).padStart(6)}, ${String(s.self.fds).padStart(3)}     | ${String(s.ackedPerSec).padStart(7)} | ${String(s.p99Ms).padStart(6)} | ${JSON.stringify(s.errors)}`
        );
      }
    }
    await Promise.all(clients.map(stopClient));

    // The same state everywhere, and every acknowledged action applied exactly once
    // (the counter counts applications: at least the acknowledged, at most the sent).
    let counts;
    await waitFor(
      async () => {
        counts = await Promise.all(servers.map(async (s) => (await ask(s, { cmd: 'state' })).state.counter));
        return counts.every((x) => x === counts[0]);
      },
      { timeoutMs: 30000, what: 'every server holding the same state', show: () => counts }
    );
    const applied = counts[0];
    const consistent = applied >= acked && applied <= attempted;
    // Flat: the first sample is the warm-up.
    const steady = samples.slice(1);
    const third = Math.max(1, Math.floor(steady.length / 3));
    const rssOf = (xs) => mean(xs.flatMap((s) => s.servers.map((x) => x.rss)));
    const rssGrowth = steady.length >= 3 ? rssOf(steady.slice(-third)) / rssOf(steady.slice(0, third)) - 1 : 0;
    const fdsStart = steady.length ? Math.max(...steady[0].servers.map((x) => x.fds)) : 0;
    const fdsEnd = steady.length ? Math.max(...steady.at(-1).servers.map((x) => x.fds)) : 0;
    const rssFlat = rssGrowth <= 0.2;
    // The data directories: a log in 64 MiB segments, dropped once a snapshot covers
    // them, a snapshot and a small metadata file. That is a sawtooth, so the highest
    // point of each half is compared, not averages.
    const half = Math.floor(steady.length / 2);
    const diskMax = (xs) => Math.max(0, ...xs.flatMap((s) => s.servers.map((x) => x.disk)));
    const diskFirst = diskMax(steady.slice(0, half));
    const diskLast = diskMax(steady.slice(half));
    const diskFlat = diskLast <= diskFirst * 1.25 + (16 << 20);
    const fdsFlat = fdsEnd <= fdsStart + 8;
    const flat = rssFlat && fdsFlat && diskFlat;
    const rates = steady.map((s) => s.ackedPerSec);
    const livenessDrops = servers.reduce((n, k) => n + k.messages.filter((m) => m.stderr && /no sign of life/.test(m.stderr)).length, 0);
    const result = {
      seconds,
      rate,
      acknowledged: acked,
      attempted,
      applied,
      consistent,
      rssGrowth: Number(rssGrowth.toFixed(3)),
      fdsStart,
      fdsEnd,
      diskMb: { first: Number(mb(diskFirst)), last: Number(mb(diskLast)) },
      flat,
      throughput: { min: Math.min(...rates), mean: Math.round(mean(rates)), max: Math.max(...rates) },
      errors,
      livenessMoves,
      livenessDrops,
      samples,
    };
    log(
      `soak: ${acked} acknowledged of ${attempted} sent, ${applied} applied on every server (${consistent ? 'consistent' : 'INCONSISTENT'}); ` +
        `server RSS ${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)} % (last third vs first: ${rssFlat ? 'flat' : 'GROWING'}), ` +
        `fds ${fdsStart} -> ${fdsEnd} (${fdsFlat ? 'flat' : 'GROWING'}), ` +
        `dataDir at most ${mb(diskFirst)} MB in the first half, ${mb(diskLast)} MB in the second (${diskFlat ? 'flat' : 'GROWING'}); ` +
        `acked/s min ${result.throughput.min} mean ${result.throughput.mean} max ${result.throughput.max}; errors ${JSON.stringify(errors)}; ` +
        `liveness false alarms: ${livenessMoves} client moves, ${livenessDrops} server drops`
    );
    if (out) {
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'soak.json'), JSON.stringify(result, null, 1));
      fs.writeFileSync(path.join(out, 'soak.svg'), chart(samples));
      log(`soak: samples in ${path.join(out, 'soak.json')}, chart in ${path.join(out, 'soak.svg')}`);
    }
    return result;
  } finally {
    for (const c of clients) clearInterval(c.timer);
    for (const s of servers) await s.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Small line charts (server RSS, descriptors, dataDir size, acknowledged/s) over time. */
function chart(samples) {
  const W = 720;
  const H = 150;
  const pad = 40;
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#7f7f7f'];
  const panel = (title, series, y0) => {
    const all = series.flat().filter(Number.isFinite);
    const max = Math.max(1, ...all) * 1.1;
    const tMax = Math.max(1, ...samples.map((s) => s.t));
    const x = (t) => pad + ((W - 2 * pad) * t) / tMax;
    const y = (v) => y0 + H - 20 - ((H - 40) * v) / max;
    const lines = series
      .map((vals, i) => `<polyline fill="none" stroke="${colors[i]}" stroke-width="1.5" points="${vals.map((v, j) => `${x(samples[j].t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`)
      .join('');
    return (
      `<text x="${pad}" y="${y0 + 14}" font-size="12">${title} (axis 0 to ${max.toFixed(max < 10 ? 1 : 0)})</text>` +
      (series.length > 1 ? series.map((_, i) => `<text x="${W - pad - 40 * (series.length - i)}" y="${y0 + 14}" font-size="11" fill="${colors[i]}">s${i}</text>`).join('') : '') +
      `<line x1="${pad}" y1="${y(0)}" x2="${W - pad}" y2="${y(0)}" stroke="#ccc"/>` +
      `<text x="${W - pad}" y="${y(0) + 12}" font-size="10" text-anchor="end">${tMax} s</text>` +
      lines
    );
  };
  const per = (f) => [0, 1, 2].map((i) => samples.map((s) => f(s.servers[i])));
  const body =
    panel('server RSS, MB', per((x) => x.rss / 2 ** 20), 0) +
    panel('server open file descriptors', per((x) => x.fds), H) +
    panel('server dataDir, MB', per((x) => x.disk / 2 ** 20), 2 * H) +
    panel('acknowledged actions/s', [samples.map((s) => s.ackedPerSec)], 3 * H);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${4 * H}" font-family="sans-serif">${body}</svg>\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
  const seconds = arg('seconds') ? Number(arg('seconds')) : Number(arg('minutes', 30)) * 60;
  const r = await runSoak({
    seconds,
    rate: Number(arg('rate', 2000)),
    clients: Number(arg('clients', 4)),
    every: Number(arg('every', 10)),
    reconnect: Number(arg('reconnect', 5)),
    out: arg('out', path.join(os.tmpdir(), 'redux-cluster-rs-soak')),
  });
  const ok = r.consistent && r.flat;
  console.log(ok ? 'soak: all checks passed' : 'soak: CHECKS FAILED');
  process.exit(ok ? 0 : 1);
}
