// Fan-out: one server, many subscribers (1,000 by default) held by a few Node processes.
// The server dispatches; every client applies every action to its own Redux store.
//  - throughput: a burst of N actions; the figure is N / (time from the first dispatch
//    until the last client applied the last action), and deliveries/s = that × clients;
//  - latency: the server dispatches at a steady rate; p50/p99/max of the time from the
//    server's dispatch to a client's reducer seeing the action (one clock: one machine).
// Implementations, in one run:
//  - rs-ws:  this package, createWSServer / createWSClient (logins: challenge-response)
//  - rs-tcp: this package, createServer / createClient (the same, over TCP)
//  - rcws:   redux-cluster-ws (its server(store) / createWSClient, logins: sha1 hashes).
//            It is not on the registry this machine reaches, so it is built from its
//            sources: fetch github.com/siarheidudko/redux-cluster-ws, `npm i redux ws
//            typescript`, `tsc -p tsconfig.cjs.json`, then pass `--rcws <that dir>`.
//
//   node benches/fanout.mjs [--clients 1000] [--procs 4] [--actions 2000] [--rate 100]
//                           [--seconds 5] [--impls rs-ws,rs-tcp,rcws] [--rcws DIR]
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const now = () => performance.timeOrigin + performance.now();
const LOGINS = { bench: 'fan-out-secret' };

// The store: a count of TICKs and the last one's index. Named `fanout` everywhere, so
// every store of one implementation is the same store (its hash comes from the name).
function makeReducer(onTick) {
  const fanout = (state = { n: 0, last: -1 }, action) => {
    if (action.type !== 'TICK') return state;
    if (onTick) onTick(action);
    return { n: state.n + 1, last: action.i };
  };
  return fanout;
}

// What an implementation offers the bench: a server store that listens and a client
// store that connects.
function implementation(impl, rcwsDir) {
  if (impl === 'rcws') {
    const rcws = createRequire(path.join(rcwsDir, 'package.json'))(path.join(rcwsDir, 'dist/cjs/index.js'));
    let made = 0;
    return {
      server(port) {
        const store = rcws.createStore(makeReducer());
        rcws.server(store);
        store.stderr = () => {};
        store.createWSServer({ host: '127.0.0.1', port, logins: LOGINS });
        return { store, close: async () => {} };
      },
      client(port, onTick) {
        // redux-cluster-ws allows one store per reducer name in a process: each client
        // gets its own name, then the server's hash (its key for "the same store").
        const reducer = makeReducer(onTick);
        Object.defineProperty(reducer, 'name', { value: `fanout_${made++}` });
        const store = rcws.createStore(reducer);
        store.RCHash = rcws.hasher('fanout');
        store.stderr = () => {};
        store.createWSClient({ host: 'ws://127.0.0.1', port, login: 'bench', password: LOGINS.bench });
        return { store, close: async () => {} };
      },
    };
  }
  const require = createRequire(import.meta.url);
  const { createStore } = require('redux-cluster-rs');
  const ws = impl === 'rs-ws';
  return {
    server(port) {
      const store = createStore(makeReducer(), { stderr: () => {} });
      const s = { host: '127.0.0.1', port, logins: LOGINS };
      const handle = ws ? store.createWSServer(s) : store.createServer(s);
      return { store, close: () => handle.close() };
    },
    client(port, onTick) {
      const store = createStore(makeReducer(onTick), { stderr: () => {} });
      const c = { port, login: 'bench', password: LOGINS.bench };
      const conn = ws ? store.createWSClient({ host: 'ws://127.0.0.1', ...c }) : store.createClient({ host: '127.0.0.1', ...c });
      return { store, close: () => conn.disconnect() };
    },
  };
}

if (process.env.FANOUT_ROLE === 'server') {
  const { impl, port, rcws } = JSON.parse(process.env.FANOUT_SPEC);
  const { store } = implementation(impl, rcws).server(port);
  process.send({ ready: true });
  process.on('message', async (m) => {
    if (m.cmd === 'burst' || m.cmd === 'steady') {
      // burst: as fast as the event loop allows, in slices so sockets get written;
      // steady: `rate` per second for `seconds`, flagged for the latency record.
      const total = m.cmd === 'burst' ? m.n : Math.round(m.rate * m.seconds);
      const start = now();
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < total; ) {
        if (m.cmd === 'burst') {
          for (const end = Math.min(total, i + 500); i < end; i++) store.dispatch({ type: 'TICK', i: m.from + i, t: now() });
          await new Promise((r) => setImmediate(r));
        } else {
          // Latency counts from when the action was due, so a server that falls
          // behind its schedule shows it (no coordinated omission).
          store.dispatch({ type: 'TICK', i: m.from + i, t: start + (i * 1000) / m.rate, lat: true });
          i++;
          const due = start + (i * 1000) / m.rate - now();
          if (due > 0) await sleep(due);
        }
      }
      const c = process.cpuUsage(cpu0);
      process.send({ dispatched: m.from + total, start, cpuUs: c.user + c.system, secs: (now() - start) / 1000 });
    } else if (m.cmd === 'stop') {
      process.exit(0);
    }
  });
} else if (process.env.FANOUT_ROLE === 'clients') {
  const { impl, port, rcws, count } = JSON.parse(process.env.FANOUT_SPEC);
  const lib = implementation(impl, rcws);
  const lat = [];
  let target = Infinity;
  let done = 0; // clients that applied the target
  let doneAt = 0;
  let cpu0 = process.cpuUsage();
  const clients = [];
  for (let k = 0; k < count; k++) {
    const onTick = (a) => {
      const t = now();
      if (a.lat) lat.push(t - a.t);
      if (a.i === target - 1) {
        done++;
        doneAt = Math.max(doneAt, t);
      }
    };
    clients.push(lib.client(port, onTick));
    if (k % 50 === 49) await sleep(20); // do not open them all in one tick
  }
  setInterval(() => {
    const connected = clients.filter((c) => c.store.connected).length;
    const applied = Math.min(...clients.map((c) => c.store.getState().n));
    process.send({ connected, applied, done, doneAt });
  }, 50);
  process.on('message', (m) => {
    if (m.cmd === 'target') {
      target = m.target;
      cpu0 = process.cpuUsage();
      done = 0;
      doneAt = 0;
    } else if (m.cmd === 'latency') {
      const c = process.cpuUsage(cpu0);
      process.send({ lat, cpuUs: c.user + c.system });
    } else if (m.cmd === 'stop') {
      process.exit(0);
    }
  });
} else {
  const clients = Number(arg('clients', 1000));
  const procs = Number(arg('procs', 4));
  const burst = Number(arg('actions', 2000));
  const rate = Number(arg('rate', 100));
  const seconds = Number(arg('seconds', 5));
  const rcws = arg('rcws', null);
  const impls = arg('impls', rcws ? 'rs-ws,rs-tcp,rcws' : 'rs-ws,rs-tcp').split(',');
  if (impls.includes('rcws') && !rcws) throw new Error('--rcws DIR: a built redux-cluster-ws (see the top of this file)');
  const results = {};
  console.log(`fan-out: 1 server, ${clients} clients in ${procs} processes; a burst of ${burst} actions, then ${rate}/s for ${seconds} s`);
  for (const impl of impls) {
    const port = await freePort();
    const spec = { impl, port, rcws: rcws && path.resolve(rcws) };
    const spawn = (role, extra = {}) => {
      const p = fork(SELF, [], { env: { ...process.env, FANOUT_ROLE: role, FANOUT_SPEC: JSON.stringify({ ...spec, ...extra }) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const e = { p, connected: 0, applied: 0, done: 0, doneAt: 0 };
      p.on('message', (m) => Object.assign(e, m));
      return e;
    };
    const until = async (cond, what, ms = 180000) => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) return false;
        await sleep(20);
      }
      return true;
    };
    const server = spawn('server');
    await until(() => server.ready, 'the server');
    const per = Math.ceil(clients / procs);
    const kids = Array.from({ length: procs }, (_, i) => spawn('clients', { count: Math.min(per, clients - i * per) }));
    const counts = kids.map((k, i) => Math.min(per, clients - i * per));
    const t0 = Date.now();
    if (!(await until(() => kids.every((k, i) => k.connected === counts[i]), 'connections', 120000))) {
      console.log(`${impl}: only ${kids.reduce((a, k) => a + k.connected, 0)} of ${clients} connected in 120 s`);
    }
    const connectS = (Date.now() - t0) / 1000;
    await sleep(500);
    const row = { connect_s: connectS };
    // Throughput: a burst.
    for (const k of kids) k.p.send({ cmd: 'target', target: burst });
    await sleep(100);
    server.dispatched = undefined;
    server.p.send({ cmd: 'burst', n: burst, from: 0 });
    const all = await until(() => kids.every((k, i) => k.done === counts[i]), 'the burst everywhere');
    await until(() => server.dispatched !== undefined, 'the server', 5000);
    if (all) {
      const secs = (Math.max(...kids.map((k) => k.doneAt)) - server.start) / 1000;
      row.actions_per_s = Math.round(burst / secs);
      row.deliveries_per_s = Math.round((burst * clients) / secs);
    } else {
      row.lost = kids.reduce((a, k, i) => a + (counts[i] - k.done), 0);
      console.log(`${impl}: ${row.lost} of ${clients} clients did not get all ${burst} actions within 180 s`);
    }
    // Latency: a steady rate.
    const end = burst + Math.round(rate * seconds);
    for (const k of kids) k.p.send({ cmd: 'target', target: end });
    await sleep(100);
    server.p.send({ cmd: 'steady', rate, seconds, from: burst });
    await until(() => kids.every((k, i) => k.done === counts[i]), 'the steady phase everywhere', (seconds + 60) * 1000);
    await until(() => server.dispatched === end, 'the server', 5000);
    const reports = await Promise.all(
      kids.map(
        (k) =>
          new Promise((resolve) => {
            const on = (m) => {
              if (!m.lat) return;
              k.p.off('message', on);
              resolve(m);
            };
            k.p.on('message', on);
            k.p.send({ cmd: 'latency' });
          })
      )
    );
    const lat = reports.flatMap((r) => r.lat).sort((a, b) => a - b);
    // CPU of the steady phase: the server's per action, the clients' per delivery.
    const steady = Math.round(rate * seconds);
    row.server_cpu_us_per_action = server.cpuUs / steady;
    row.client_cpu_us_per_delivery = reports.reduce((a, r) => a + r.cpuUs, 0) / (steady * clients);
    const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
    Object.assign(row, { p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat[lat.length - 1], samples: lat.length, expected: Math.round(rate * seconds) * clients });
    results[impl] = row;
    const f = (x) => (x === undefined ? 'n/a' : x.toLocaleString());
    console.log(
      `${impl.padEnd(7)} connect ${connectS.toFixed(1)} s; burst: ${f(row.actions_per_s)} actions/s (${f(row.deliveries_per_s)} deliveries/s); ` +
        `${rate}/s: p50 ${q(0.5)?.toFixed(2)} ms, p99 ${q(0.99)?.toFixed(2)} ms, max ${row.max_ms?.toFixed(1)} ms (${lat.length} of ${row.expected} deliveries), ` +
        `CPU: server ${row.server_cpu_us_per_action.toFixed(0)} µs/action, clients ${row.client_cpu_us_per_delivery.toFixed(1)} µs/delivery`
    );
    // Asked to stop first (a profile, if any, is written on exit), then killed.
    await Promise.all([server, ...kids].map((e) => new Promise((resolve) => {
      const t = setTimeout(() => (e.p.kill('SIGKILL'), resolve()), 3000);
      e.p.once('exit', () => (clearTimeout(t), resolve()));
      e.p.send({ cmd: 'stop' });
    })));
  }
  const ratio = (a, b) => {
    if (!results[a] || !results[b] || !results[a].actions_per_s || !results[b].actions_per_s) return;
    console.log(
      `${a} / ${b}: burst throughput ${(results[a].actions_per_s / results[b].actions_per_s).toFixed(2)}x, p99 at ${rate}/s ${(results[a].p99_ms / results[b].p99_ms).toFixed(2)}x`
    );
  };
  console.log('');
  ratio('rs-ws', 'rcws');
  ratio('rs-ws', 'rs-tcp');
  if (args.includes('--json')) console.log(JSON.stringify(results));
  process.exit(0);
}
