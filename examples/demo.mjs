// A live redux-cluster-rs cluster: one server process and several client processes, all
// dispatching at once over TCP. Prints progress while the actions flow, then the
// throughput and the state every process converged on.
//
//   npm run demo                     (4 clients x 50,000 actions)
//   node examples/demo.mjs --clients 8 --actions 20000 [--unix] [--mode snapshot]
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'redux-cluster-rs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};

// Every process runs this reducer; each client's actions are tallied under its name.
function cluster(state = { total: 0, byClient: {} }, action) {
  if (action.type !== 'ADD') return state;
  return {
    total: state.total + action.amount,
    byClient: { ...state.byClient, [action.from]: (state.byClient[action.from] ?? 0) + 1 },
  };
}

const digest = (s) => crypto.createHash('sha1').update(JSON.stringify(s)).digest('hex').slice(0, 12);

if (process.env.DEMO_ROLE) runChild();
else await runMain();

function runChild() {
  const role = process.env.DEMO_ROLE;
  const mode = process.env.DEMO_MODE;
  const store = createStore(cluster, { mode });
  let handle;
  const report = () => {
    const s = store.getState();
    process.send({ kind: 'state', total: s.total, applied: Object.values(s.byClient).reduce((a, b) => a + b, 0), digest: digest(s) });
  };
  const timer = setInterval(report, 100);
  process.on('message', async (m) => {
    if (m.cmd === 'listen') {
      handle = store.createServer(m.addr);
      process.send({ kind: 'listening', port: handle.port });
    } else if (m.cmd === 'connect') {
      handle = store.createClient(m.addr);
      const wait = setInterval(() => {
        if (store.connected) {
          clearInterval(wait);
          process.send({ kind: 'connected' });
        }
      }, 5);
    } else if (m.cmd === 'go') {
      // Dispatch in slices so the process keeps applying what comes back meanwhile.
      let sent = 0;
      const slice = () => {
        const end = Math.min(m.actions, sent + 5000);
        for (; sent < end; sent++) store.dispatch({ type: 'ADD', from: role, amount: 1 + (sent % 3) });
        if (sent < m.actions) setImmediate(slice);
      };
      slice();
    } else if (m.cmd === 'report') {
      report();
    } else if (m.cmd === 'stop') {
      clearInterval(timer);
      await (handle.close ? handle.close() : handle.disconnect());
      process.disconnect();
    }
  });
}

async function runMain() {
  const clients = Number(opt('clients', 4));
  const perClient = Number(opt('actions', 50000));
  const mode = opt('mode', 'action');
  const unix = args.includes('--unix');
  const expectedApplied = clients * perClient;
  let expectedTotal = 0;
  for (let i = 0; i < perClient; i++) expectedTotal += 1 + (i % 3);
  expectedTotal *= clients;

  const procs = new Map();
  const spawnRole = (role) => {
    const p = fork(SELF, [], { env: { ...process.env, DEMO_ROLE: role, DEMO_MODE: mode } });
    const entry = { role, p, last: null };
    p.on('message', (m) => {
      if (m.kind === 'state') entry.last = m;
      entry.onMessage?.(m);
    });
    procs.set(role, entry);
    return entry;
  };
  const once = (entry, kind) => new Promise((resolve) => (entry.onMessage = (m) => m.kind === kind && resolve(m)));

  console.log(`redux-cluster-rs demo: 1 server + ${clients} clients, ${perClient.toLocaleString()} actions each, ${mode} mode, over ${unix ? 'a Unix socket' : 'TCP'}\n`);
  const server = spawnRole('server');
  const sock = path.join(os.tmpdir(), `redux-cluster-rs-demo-${process.pid}.sock`);
  server.p.send({ cmd: 'listen', addr: unix ? { path: sock } : { host: '127.0.0.1', port: 0 } });
  const { port } = await once(server, 'listening');
  const addr = unix ? { path: sock } : { host: '127.0.0.1', port };
  console.log(`server listening on ${unix ? sock : `127.0.0.1:${port}`}`);
  const kids = [];
  for (let i = 1; i <= clients; i++) kids.push(spawnRole(`client-${i}`));
  await Promise.all(
    kids.map((k) => {
      const c = once(k, 'connected');
      k.p.send({ cmd: 'connect', addr });
      return c;
    })
  );
  console.log(`${clients} clients connected; dispatching...\n`);

  const t0 = process.hrtime.bigint();
  for (const k of kids) k.p.send({ cmd: 'go', actions: perClient });
  const width = 40;
  const bar = (n) => {
    const f = Math.round((Math.min(n, expectedApplied) / expectedApplied) * width);
    return '█'.repeat(f) + '░'.repeat(width - f);
  };
  const deadline = Date.now() + 120000;
  let done = false;
  while (!done && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const lines = [];
    done = true;
    for (const e of procs.values()) {
      const applied = e.last?.applied ?? 0;
      if (applied !== expectedApplied) done = false;
      lines.push(`  ${e.role.padEnd(10)} ${bar(applied)} ${String(applied).padStart(9)} / ${expectedApplied}`);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`t=${secs.toFixed(2)}s\n${lines.join('\n')}`);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const e of procs.values()) e.p.send({ cmd: 'report' });
  await new Promise((r) => setTimeout(r, 200));
  const digests = new Set([...procs.values()].map((e) => e.last?.digest));
  const totals = [...procs.values()].map((e) => e.last?.total);
  console.log('');
  if (done && digests.size === 1 && totals.every((t) => t === expectedTotal)) {
    console.log(`converged: every process holds total=${expectedTotal.toLocaleString()} from ${expectedApplied.toLocaleString()} actions (state ${[...digests][0]})`);
    console.log(`throughput: ${Math.round(expectedApplied / secs).toLocaleString()} actions/s applied on all ${procs.size} processes (${secs.toFixed(2)} s), 0 lost`);
  } else {
    console.log(`NOT converged: digests ${[...digests].join(', ')}; totals ${totals.join(', ')}`);
    process.exitCode = 1;
  }
  for (const k of kids) k.p.send({ cmd: 'stop' });
  await Promise.all(kids.map((k) => new Promise((r) => k.p.on('exit', r))));
  server.p.send({ cmd: 'stop' });
  await new Promise((r) => server.p.on('exit', r));
}
