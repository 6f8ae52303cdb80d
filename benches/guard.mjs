// What the divergence guard costs, in one run: a server and a client process, the client
// dispatching as fast as it can for a while, with the guard off, on with its defaults,
// and on checking often (every 100 actions and 100 ms), alternated; then the same with a
// state of about 10 MB, and the time one digest of that state takes.
//
//   node benches/guard.mjs [--seconds 4] [--rounds 3] [--mb 10]
//
// Figures: actions/s applied on the client (median of the rounds), and for the large
// state the digest's time and the interval the guard chose for it (it keeps digests
// under 0.5% of a thread: interval >= digest time / 0.005).
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt);

const load = () => import(pathToFileURL(path.join(ROOT, 'src/js/index.mjs')).href);
const { ErrorCode } = await load();
const DIVERGED = ErrorCode.Diverged;

// The store: a counter, and a blob that makes the state `mb` megabytes (set once).
function guarded(state = { n: 0, blob: null }, a) {
  if (a.type === 'INC') return { ...state, n: state.n + 1 };
  if (a.type === 'BLOB') return { ...state, blob: a.blob };
  return state;
}

const GUARDS = {
  off: false,
  default: undefined,
  often: { everyActions: 100, everyMs: 100 },
};

async function child(role) {
  const { createStore } = await load();
  const opts = JSON.parse(process.env.GUARD_BENCH);
  const store = createStore(guarded, { guard: GUARDS[opts.guard], stderr: (m) => process.send({ stderr: String(m) }) });
  if (role === 'server') {
    const srv = store.createServer({ host: '127.0.0.1', port: 0 });
    if (opts.mb > 0) store.dispatch({ type: 'BLOB', blob: 'x'.repeat(opts.mb * 1024 * 1024) });
    process.send({ port: srv.port });
    process.on('message', async (m) => {
      if (m.cmd === 'digest') {
        const g = store._guard;
        const t = process.hrtime.bigint();
        g.digestOf(store.getState());
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        process.send({ digestMs: ms, intervalMs: Math.max(g.options.everyMs, ms / 0.005) });
      } else if (m.cmd === 'close') {
        await srv.close();
        process.exit(0);
      }
    });
    return;
  }
  const c = store.createClient({ host: '127.0.0.1', port: opts.port });
  const until = (cond) => new Promise((r) => { const t = setInterval(() => { if (cond()) { clearInterval(t); r(); } }, 5); });
  await until(() => store.connected && (opts.mb === 0 || store.getState().blob));
  const start = Date.now();
  const end = start + opts.seconds * 1000;
  const base = store.getState().n;
  // Dispatch in bursts, letting the event loop apply what comes back in between; the
  // clock stops when every action is back, applied here.
  let sent = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 2000; i++) store.dispatch({ type: 'INC' });
    sent += 2000;
    await new Promise((r) => setImmediate(r));
    // Bounded in flight: the server sets the pace, and the queue limit is never met.
    while (c.pending > 50000 && Date.now() < end) await new Promise((r) => setTimeout(r, 1));
  }
  await until(() => store.getState().n - base === sent);
  process.send({ perSecond: sent / ((Date.now() - start) / 1000), applied: sent });
  await c.disconnect(0);
  process.exit(0);
}

function run(role, env) {
  const k = fork(SELF, ['--child', role], { env: { ...process.env, GUARD_BENCH: JSON.stringify(env) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  k.on('message', (m) => messages.push(m));
  const next = (pred, ms = 120000) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const t = setInterval(() => {
        const m = messages.find(pred);
        if (m) {
          clearInterval(t);
          resolve(m);
        } else if (Date.now() - t0 > ms) {
          clearInterval(t);
          reject(new Error(`no answer from the ${role} in ${ms} ms`));
        }
      }, 5);
    });
  return { k, next, messages };
}

async function once(guard, mb, seconds) {
  const server = run('server', { guard, mb });
  const { port } = await server.next((m) => m.port);
  const client = run('client', { guard, mb, port, seconds });
  const r = await client.next((m) => m.perSecond !== undefined);
  let digest = null;
  if (mb > 0 && guard !== 'off') {
    server.k.send({ cmd: 'digest' });
    digest = await server.next((m) => m.digestMs !== undefined);
  }
  const diverged = [...server.messages, ...client.messages].filter((m) => m.stderr && m.stderr.includes(DIVERGED)).length;
  server.k.send({ cmd: 'close' });
  await new Promise((res) => server.k.on('exit', res));
  return { ...r, digest, diverged };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const seconds = opt('seconds', 4);
  const rounds = opt('rounds', 3);
  const mb = opt('mb', 10);
  for (const size of [0, mb]) {
    const results = { off: [], default: [], often: [] };
    let digest = null;
    for (let i = 0; i < rounds; i++) {
      for (const g of Object.keys(results)) {
        const r = await once(g, size, seconds);
        if (r.diverged) throw new Error(`a deterministic reducer was flagged (${g})`);
        results[g].push(r.perSecond);
        if (r.digest && g === 'default') digest = r.digest;
      }
    }
    const off = median(results.off);
    const line = Object.entries(results)
      .map(([g, xs]) => `${g} ${Math.round(median(xs)).toLocaleString('en')}/s (${(median(xs) / off).toFixed(3)}×)`)
      .join(', ');
    console.log(`state ${size ? `${size} MB` : 'small'}: ${line}; ${rounds} rounds of ${seconds} s`);
    if (digest) console.log(`  one digest of the ${size} MB state: ${digest.digestMs.toFixed(1)} ms; the guard checks at most every ${(digest.intervalMs / 1000).toFixed(1)} s`);
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else await main();
