// What an idle client costs a server: one server process, then N clients (each its own
// store) connected from --procs client processes, left idle; the server's RSS before and
// after, per client. TCP by default, WebSocket with --ws.
//
//   node benches/memory.mjs [--clients 1000,10000] [--procs 4] [--ws] [--impl <package dir>]
//                           [--heartbeat-ms H --liveness-ms L]
//
// --heartbeat-ms / --liveness-ms set heartbeatIntervalMs / livenessTimeoutMs on the
// server's store and every client's (the sizing the README suggests for large fleets: idle links
// then cost their two cores fewer heartbeats; it does not change what a client holds).
//
// The server's RSS is read after a warm-up (its own start, one client that did some
// traffic) and again once every client is connected and has been idle for 2 s; the
// figure is (after - before) / N, in KB.
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
// --impl <package dir>: measure another build (the children inherit it through the env).
const ROOT = path.resolve(process.env.MEMORY_BENCH_IMPL ?? opt('impl', path.resolve(path.dirname(SELF), '..')));
const ws = args.includes('--ws');
const liveness = {
  ...(args.includes('--heartbeat-ms') ? { heartbeatIntervalMs: Number(opt('heartbeat-ms')) } : {}),
  ...(args.includes('--liveness-ms') ? { livenessTimeoutMs: Number(opt('liveness-ms')) } : {}),
};
const load = () => import(pathToFileURL(path.join(ROOT, 'src/js/index.mjs')).href);

function idle(state = { n: 0 }, a) {
  return a.type === 'INC' ? { n: state.n + 1 } : state;
}

async function serverChild() {
  const { createStore } = await load();
  const store = createStore(idle, { stderr: () => {}, ...liveness });
  const spec = { host: '127.0.0.1', port: 0 };
  const srv = ws ? store.createWSServer(spec) : store.createServer(spec);
  // Warm-up traffic: the engine's buffers and the allocator are in their steady state.
  for (let i = 0; i < 20000; i++) store.dispatch({ type: 'INC' });
  process.send({ port: srv.port });
  process.on('message', async (m) => {
    if (m.cmd === 'rss') {
      if (global.gc) global.gc();
      process.send({ rss: process.memoryUsage().rss, clients: srv.metrics().clients.length });
    } else if (m.cmd === 'close') {
      await srv.close();
      process.exit(0);
    }
  });
}

async function clientChild() {
  const { createStore } = await load();
  const { port, n } = JSON.parse(process.env.MEMORY_BENCH);
  const stores = [];
  for (let i = 0; i < n; i++) {
    const s = createStore(idle, { stderr: () => {}, ...liveness });
    if (ws) s.createWSClient({ host: 'ws://127.0.0.1', port });
    else s.createClient({ host: '127.0.0.1', port });
    stores.push(s);
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20)); // not a SYN flood
  }
  const t = setInterval(() => {
    if (stores.every((s) => s.connected)) {
      clearInterval(t);
      process.send({ connected: n });
    }
  }, 50);
  process.on('message', (m) => m.cmd === 'close' && process.exit(0));
}

function child(role, env = {}) {
  const k = fork(SELF, ['--child', role, ...args.filter((a) => a !== '--child')], {
    env: { ...process.env, MEMORY_BENCH_IMPL: ROOT, ...env },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages = [];
  k.on('message', (m) => messages.push(m));
  const next = (pred, ms = 180000) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const t = setInterval(() => {
        const i = messages.findIndex(pred);
        if (i >= 0) {
          clearInterval(t);
          resolve(messages.splice(i, 1)[0]);
        } else if (Date.now() - t0 > ms) {
          clearInterval(t);
          reject(new Error(`no answer from the ${role} in ${ms} ms`));
        }
      }, 10);
    });
  return { k, next };
}

async function measure(n, procs) {
  const server = child('server');
  const { port } = await server.next((m) => m.port);
  await new Promise((r) => setTimeout(r, 1000));
  server.k.send({ cmd: 'rss' });
  const before = (await server.next((m) => m.rss !== undefined)).rss;
  const per = Math.ceil(n / procs);
  const clients = [];
  for (let i = 0; i < procs; i++) clients.push(child('client', { MEMORY_BENCH: JSON.stringify({ port, n: Math.min(per, n - i * per) }) }));
  await Promise.all(clients.map((c) => c.next((m) => m.connected !== undefined)));
  await new Promise((r) => setTimeout(r, 2000));
  server.k.send({ cmd: 'rss' });
  const after = await server.next((m) => m.rss !== undefined);
  for (const c of clients) c.k.send({ cmd: 'close' });
  server.k.send({ cmd: 'close' });
  await new Promise((r) => server.k.on('exit', r));
  return { n, connected: after.clients, before, after: after.rss, perClientKB: (after.rss - before) / n / 1024 };
}

async function main() {
  const counts = opt('clients', '1000,10000').split(',').map(Number);
  const procs = Number(opt('procs', 4));
  console.log(`$ node benches/memory.mjs ${args.join(' ')}`);
  for (const n of counts) {
    const r = await measure(n, procs);
    console.log(
      `${ws ? 'WebSocket' : 'TCP'}, ${r.n.toLocaleString('en')} idle clients (${r.connected} connected): server RSS ${(r.before / 2 ** 20).toFixed(0)} -> ${(r.after / 2 ** 20).toFixed(0)} MB, ${r.perClientKB.toFixed(1)} KB per client`
    );
  }
}

if (process.argv[2] === '--child') await (process.argv[3] === 'server' ? serverChild() : clientChild());
else await main();
