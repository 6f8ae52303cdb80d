// Optimistic updates (issue 28) against a slow link, in one run: a server process behind a
// delaying TCP proxy (`--delay-ms` each way), and a client process that dispatches `--n`
// actions paced `--interval-ms` apart, with `optimistic: true` and without, alternated
// round by round. For each action it measures, in the client's clock:
//  - visible:   from dispatch() until getState() shows the action (optimistic: at once;
//               otherwise once the server's ordered stream brought it back: a round trip);
//  - confirmed: from dispatch() until the server ordered it and this replica applied it
//               there (dispatchAsync resolving): a round trip in both modes.
// Meanwhile the server dispatches `--others` actions/s of its own, so the client's
// speculative state is rebased on the stream as a real one would be; for those it measures
//  - others:    from the server's dispatch until getState() here shows it (one clock: one
//               machine). A rebase waits only while one of our actions may be in the
//               stream without the server having said where (an equal action came down
//               since it was sent), so a client that keeps dispatching still sees them
//               about one link delay after they were ordered;
// and subscriber calls are counted per own action. Clients: the Node client over TCP (createClient) and the browser
// client over WebSocket (src/js/browser in Node with --experimental-websocket).
//
//   node benches/optimistic.mjs [--delay-ms 50] [--n 200] [--interval-ms 20] [--rounds 2]
//                               [--others 50] [--transports tcp,ws]
//
// Figures: p50/p99/max of each, per transport and mode; a one-line summary per mode.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { slowLink } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const num = (name, dflt) => {
  const v = Number(arg(name, dflt));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number >= 0`);
  return v;
};

// The store, by name on both sides: our own marks (the last one shown) and the server's
// actions (counted, with when the latest 1024 were dispatched).
const KEPT = 1024;
function optimisticBench(state = { mine: -1, others: 0, ats: [] }, a) {
  if (a.type === 'MARK') return { ...state, mine: a.i };
  if (a.type === 'OTHER') return { ...state, others: state.others + 1, ats: [...state.ats.slice(1 - KEPT), a.at] };
  return state;
}
const clock = () => performance.timeOrigin + performance.now();

// ---- the server: TCP and WebSocket endpoints, and actions of its own at `others`/s
async function server() {
  const { createStore } = await import(pathToFileURL(path.join(ROOT, 'src/js/index.mjs')).href);
  const opts = JSON.parse(process.env.OPTIMISTIC_BENCH);
  const store = createStore(optimisticBench, { stderr: (m) => process.send({ stderr: String(m) }) });
  const tcp = store.createServer({ host: '127.0.0.1', port: 0 });
  const ws = store.createWSServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => setTimeout(r, 50));
  const timer = opts.others > 0 ? setInterval(() => store.dispatch({ type: 'OTHER', at: clock() }), 1000 / opts.others) : null;
  process.send({ tcp: tcp.port, ws: ws.port });
  process.on('message', async (m) => {
    if (m.cmd === 'close') {
      clearInterval(timer);
      await Promise.all([tcp.close(), ws.close()]);
      process.exit(0);
    }
  });
}

// ---- a client run: one transport, one mode, `n` paced dispatches
async function client() {
  const opts = JSON.parse(process.env.OPTIMISTIC_BENCH);
  let store;
  let conn;
  if (opts.transport === 'tcp') {
    const { createStore } = await import(pathToFileURL(path.join(ROOT, 'src/js/index.mjs')).href);
    store = createStore(optimisticBench, { stderr: (m) => process.send({ stderr: String(m) }) });
    conn = store.createClient({ host: '127.0.0.1', port: opts.port, optimistic: opts.optimistic });
  } else {
    const browser = await import(pathToFileURL(path.join(ROOT, 'src/js/browser/index.mjs')).href);
    store = browser.createStore(optimisticBench);
    store.stderr = (m) => process.send({ stderr: String(m) });
    conn = store.createWSClient({ host: 'ws://127.0.0.1', port: opts.port, optimistic: opts.optimistic });
  }
  let rollbacks = 0;
  store.on('rollback', () => rollbacks++);
  const until = (cond, what, ms = 20000) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const t = setInterval(() => {
        if (cond()) {
          clearInterval(t);
          resolve();
        } else if (Date.now() - t0 > ms) {
          clearInterval(t);
          reject(new Error(`${opts.transport}: no ${what} within ${ms} ms`));
        }
      }, 2);
    });
  await until(() => (opts.transport === 'tcp' ? store.connected : conn.connected), 'connection');
  await until(() => store.getState().others > 0 || opts.others === 0, 'state from the server');
  await new Promise((r) => setTimeout(r, 200));

  const visible = new Array(opts.n).fill(null);
  const confirmed = new Array(opts.n).fill(null);
  const t0 = new Array(opts.n).fill(0);
  let calls = 0;
  let next = 0; // the first mark not seen yet
  let seenOthers = store.getState().others;
  let measuring = true;
  const othersLag = [];
  const look = (now) => {
    const s = store.getState();
    const mine = s.mine - opts.base;
    while (next < opts.n && next <= mine && t0[next] > 0) visible[next++] = now - t0[next - 1];
    if (s.others > seenOthers) {
      const wall = clock();
      if (measuring) for (const at of s.ats.slice(-Math.min(s.others - seenOthers, KEPT))) othersLag.push(wall - at);
      seenOthers = s.others;
    }
  };
  store.subscribe(() => {
    calls++;
    look(performance.now());
  });
  const done = [];
  for (let k = 0; k < opts.n; k++) {
    const at = performance.now();
    t0[k] = at;
    const p = store.dispatchAsync({ type: 'MARK', i: opts.base + k }, { timeout: 20000 });
    look(performance.now()); // optimistic: shown by now (the subscriber already saw it)
    done.push(
      p.then(
        () => (confirmed[k] = performance.now() - at),
        (e) => process.send({ stderr: `MARK ${k}: ${e.code} ${e.message}` })
      )
    );
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
  await Promise.all(done);
  await until(() => next === opts.n, 'marks shown');
  measuring = false;
  process.send({ visible, confirmed, othersLag, calls, rollbacks, state: store.getState() });
  await conn.disconnect();
  process.exit(0);
}


function run(role, env, execArgv = []) {
  const k = fork(SELF, ['--child', role], {
    env: { ...process.env, OPTIMISTIC_BENCH: JSON.stringify(env) },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages = [];
  k.on('message', (m) => {
    if (m.stderr) process.stderr.write(`  [${role}] ${m.stderr}\n`);
    messages.push(m);
  });
  const exited = new Promise((r) => k.on('exit', r));
  const next = (pred, ms) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const t = setInterval(() => {
        const m = messages.find(pred);
        if (m) {
          clearInterval(t);
          resolve(m);
        } else if (Date.now() - t0 > ms || k.exitCode !== null) {
          clearInterval(t);
          reject(new Error(`no answer from the ${role} within ${ms} ms`));
        }
      }, 5);
    });
  return { k, next, exited };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const ms = (v) => (v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1));
const stats = (xs) => `p50 ${ms(pct(xs, 50))} ms, p99 ${ms(pct(xs, 99))} ms, max ${ms(Math.max(...xs))} ms`;

async function main() {
  const delayMs = num('delay-ms', 50);
  const n = num('n', 200);
  const intervalMs = num('interval-ms', 20);
  const rounds = num('rounds', 2);
  const others = num('others', 50);
  const transports = arg('transports', 'tcp,ws').split(',');
  for (const t of transports) if (t !== 'tcp' && t !== 'ws') throw new Error(`--transports: tcp and/or ws, not ${t}`);
  console.log(`$ node benches/optimistic.mjs ${args.join(' ')}`.trim());
  console.log(
    `a link of +${delayMs} ms each way (a TCP proxy; round trip >= ${2 * delayMs} ms); ${n} dispatches ${intervalMs} ms apart per run; ` +
      `the server dispatches ${others}/s of its own; ${rounds} round(s), optimistic and plain alternated`
  );
  const srv = run('server', { others });
  const ports = await srv.next((m) => m.tcp !== undefined, 20000);
  const proxies = { tcp: await slowLink(ports.tcp, delayMs), ws: await slowLink(ports.ws, delayMs) };
  const results = {}; // `${transport} ${mode}` -> { visible, confirmed, calls, rollbacks, actions }
  let base = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternated: each mode goes first in every other round.
      const modes = r % 2 === 0 ? [true, false] : [false, true];
      for (const transport of transports) {
        for (const optimistic of modes) {
          const key = `${transport} ${optimistic ? 'optimistic' : 'plain'}`;
          const c = run('client', { transport, optimistic, port: proxies[transport].port, n, intervalMs, others, base }, transport === 'ws' ? ['--experimental-websocket', '--no-warnings'] : []);
          const budget = 30000 + n * (intervalMs + 4 * delayMs);
          let m;
          try {
            m = await c.next((x) => x.visible !== undefined, budget);
          } finally {
            if (c.k.exitCode === null) {
              const kill = setTimeout(() => c.k.kill('SIGKILL'), 5000);
              await c.exited;
              clearTimeout(kill);
            }
          }
          if (m.visible.some((v) => v === null) || m.confirmed.some((v) => v === null)) throw new Error(`${key}: some actions were never shown or confirmed`);
          if (m.state.mine !== base + n - 1) throw new Error(`${key}: the last mark shown is ${m.state.mine}, not ${base + n - 1}`);
          const acc = (results[key] ??= { visible: [], confirmed: [], othersLag: [], calls: 0, rollbacks: 0, actions: 0 });
          acc.visible.push(...m.visible);
          acc.confirmed.push(...m.confirmed);
          acc.othersLag.push(...m.othersLag);
          acc.calls += m.calls;
          acc.rollbacks += m.rollbacks;
          acc.actions += n;
          base += 1e6;
        }
      }
    }
  } finally {
    srv.k.send({ cmd: 'close' });
    const kill = setTimeout(() => srv.k.kill('SIGKILL'), 5000);
    await srv.exited;
    clearTimeout(kill);
    await Promise.all(Object.values(proxies).map((p) => p.close()));
  }
  for (const [key, a] of Object.entries(results)) {
    console.log(`${key}: ${a.actions} own actions, ${a.othersLag.length} of the server's`);
    console.log(`  own visible    ${stats(a.visible)}`);
    console.log(`  own confirmed  ${stats(a.confirmed)}`);
    if (a.othersLag.length > 0) console.log(`  others visible ${stats(a.othersLag)}`);
    console.log(`  subscriber calls: ${(a.calls / a.actions).toFixed(2)} per own action (every call, the server's actions too), ${a.rollbacks} rollbacks`);
  }
  console.log('summary (p50 / p99):');
  for (const [key, a] of Object.entries(results)) {
    const two = (xs) => (xs.length > 0 ? `${ms(pct(xs, 50))} / ${ms(pct(xs, 99))} ms` : 'n/a');
    console.log(`  ${key.padEnd(14)} own action visible ${two(a.visible)}, confirmed ${two(a.confirmed)}; the server's visible ${two(a.othersLag)}`);
  }
}

if (process.argv[2] === '--child') {
  if (process.argv[3] === 'server') await server();
  else await client();
} else {
  await main();
}
