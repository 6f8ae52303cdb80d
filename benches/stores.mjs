// Many stores on one replicated group: 3 server processes (durable dataDir) each open
// --stores named stores on their group; --clients client stores per store, spread over
// --procs processes, dispatch through the group. Prints:
//  - memory per idle store: a server's RSS before and after opening the stores, per store;
//  - commits/s in all and per store: every client dispatches --actions as fast as it can,
//    until every server applied them all;
//  - time to open a store on the running group: --open more stores opened one at a time
//    on one server, each until its first dispatchAsync resolved (median and p99).
//
//   node benches/stores.mjs [--stores 1000] [--clients 2] [--procs 4] [--actions 50] [--open 50]
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'redux-cluster-rs';
import { exitDrained, freePort, sleep, until } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => Number(args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
// Every store is a counter: what it applied is its state.
const count = (state = { n: 0 }, a) => (a.type === 'ADD' ? { n: state.n + 1 } : state);
const rss = () => {
  if (global.gc) global.gc();
  return process.memoryUsage().rss;
};

async function serverChild(spec) {
  const first = createStore(count, { stderr: () => {} });
  const server = first.createServer({ host: '127.0.0.1', port: spec.port, cluster: spec.cluster });
  const stores = [];
  const open = (i) => {
    const s = createStore(count, { name: `store-${i}`, stderr: () => {} });
    s.createServer({ group: server });
    stores.push(s);
    return s;
  };
  setInterval(() => {
    let applied = 0;
    for (const s of stores) applied += s.getState().n;
    process.send({ applied, role: server.status()?.role });
  }, 100);
  process.on('message', async (m) => {
    if (m.cmd === 'open') {
      await sleep(500);
      const before = rss();
      const t0 = performance.now();
      for (let i = m.from; i < m.to; i++) open(i);
      const ms = performance.now() - t0;
      await sleep(2000); // every store opened on the group (each announces itself)
      process.send({ opened: m.to - m.from, before, after: rss(), ms });
    } else if (m.cmd === 'open-timed') {
      const times = [];
      for (let i = m.from; i < m.to; i++) {
        const t0 = performance.now();
        await open(i).dispatchAsync({ type: 'ADD' }, { timeout: 30000 });
        times.push(performance.now() - t0);
      }
      process.send({ times });
    }
  });
  process.send({ listening: true });
}

async function clientChild(spec) {
  const stores = spec.names.map((name) => {
    const s = createStore(count, { name, stderr: () => {} });
    s.createClient({ servers: spec.servers });
    return s;
  });
  setInterval(() => process.send({ connected: stores.every((s) => s.connected) }), 100);
  process.on('message', async (m) => {
    if (m.cmd !== 'go') return;
    // Round-robin over the stores, a slice at a time, so that every store moves at once.
    for (let k = 0; k < m.n; k++) {
      for (const s of stores) s.dispatch({ type: 'ADD' });
      if (k % 5 === 4) await new Promise((r) => setImmediate(r));
    }
  });
}

async function main() {
  const nStores = opt('stores', 1000);
  const perStore = opt('clients', 2);
  const procs = opt('procs', 4);
  const actions = opt('actions', 50);
  const nOpen = opt('open', 50);
  console.log(`$ node benches/stores.mjs ${args.join(' ')}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-stores-'));
  const ports = await Promise.all([0, 1, 2].map(freePort));
  const seeds = ports.map((p, i) => `m${i}@127.0.0.1:${p}`);
  const kids = [];
  const spawn = (role, spec) => {
    const p = fork(SELF, ['--child', role], { env: { ...process.env, BENCH_SPEC: JSON.stringify(spec) }, execArgv: ['--expose-gc'] });
    const e = { p, messages: [] };
    p.on('message', (m) => {
      Object.assign(e, m);
      e.messages.push(m);
    });
    kids.push(e);
    return e;
  };
  const next = async (e, key) => {
    await until(() => e.messages.some((m) => m[key] !== undefined), key);
    const i = e.messages.findIndex((m) => m[key] !== undefined);
    return e.messages.splice(i, 1)[0];
  };
  try {
    const servers = ports.map((port, i) => spawn('server', { port, cluster: { nodeName: `m${i}`, seeds, dataDir: path.join(dir, `m${i}`) } }));
    await until(() => servers.every((s) => s.listening) && servers.some((s) => s.role === 'leader'), 'the group');
    // Memory per idle store (server 0), every server opening all of them.
    for (const s of servers) s.p.send({ cmd: 'open', from: 0, to: nStores });
    const opened = await Promise.all(servers.map((s) => next(s, 'opened')));
    const o = opened[0];
    console.log(
      `${nStores} stores opened on each of 3 servers in ${Math.round(o.ms)} ms (server m0); idle: RSS ${(o.before / 2 ** 20).toFixed(0)} -> ${(o.after / 2 ** 20).toFixed(0)} MB, ${((o.after - o.before) / nStores / 1024).toFixed(1)} KB per store`
    );

    // Commits: every store has perStore clients.
    const names = Array.from({ length: nStores }, (_, i) => `store-${i}`);
    const all = ports.map((port) => ({ host: '127.0.0.1', port }));
    const clients = [];
    const slots = names.flatMap((n) => Array.from({ length: perStore }, () => n));
    const per = Math.ceil(slots.length / procs);
    for (let i = 0; i < procs; i++) clients.push(spawn('client', { names: slots.slice(i * per, (i + 1) * per), servers: all }));
    await until(() => clients.every((c) => c.connected), 'the clients', 600000);
    await sleep(1000);
    const base = servers.map((s) => s.applied);
    const total = slots.length * actions;
    const t0 = performance.now();
    for (const c of clients) c.p.send({ cmd: 'go', n: actions });
    await until(() => servers.every((s, i) => s.applied - base[i] >= total), 'every server to apply every action', 600000);
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `${slots.length} clients (${perStore} per store) x ${actions} actions: ${Math.round(total / secs).toLocaleString('en')} actions/s committed and applied on every server, ${(total / secs / nStores).toFixed(0)} per store (${secs.toFixed(1)} s)`
    );

    // Time to open a store on the running group.
    servers[0].p.send({ cmd: 'open-timed', from: nStores, to: nStores + nOpen });
    const { times } = await next(servers[0], 'times');
    times.sort((a, b) => a - b);
    const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))];
    console.log(`opening a store on the running group (${nOpen}, one at a time, until its first dispatchAsync resolved): median ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms`);
  } finally {
    for (const k of kids) k.p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  exitDrained();
}

if (args[0] === '--child') {
  const spec = JSON.parse(process.env.BENCH_SPEC);
  await (args[1] === 'server' ? serverChild(spec) : clientChild(spec));
} else await main();
