// A replicated store, live: three server processes form a Raft group, client processes
// dispatch under load through any of them (dispatchAsync: each action is acknowledged
// once a majority has it), and half-way through the leader is killed with SIGKILL. A new
// leader is elected, the clients move to the servers still up, the killed server comes
// back from its dataDir and catches up; at the end every process holds the same state
// and every acknowledged action is there exactly once. The clients are paced (--rate
// actions per second each), so the kill comes while they are dispatching, whatever the
// machine's speed: it is triggered when half of all actions have been acknowledged.
//
//   node examples/replicated.mjs [--clients 3] [--actions 4000] [--rate 1000] [--hold]
//
// Each server also serves its dashboard (metrics drawn live); the addresses are printed
// at the start. With --hold the demo keeps running at the end until Ctrl-C, to look.
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
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

// Each client's actions are tallied under its name; `seen` lists them by number, so a
// lost or doubled action would show.
function ledger(state = { total: 0, byClient: {} }, action) {
  if (action.type !== 'ADD') return state;
  return { total: state.total + action.amount, byClient: { ...state.byClient, [action.from]: (state.byClient[action.from] ?? 0) + 1 } };
}

const digest = (s) => crypto.createHash('sha1').update(JSON.stringify(s)).digest('hex').slice(0, 12);

if (process.env.DEMO_ROLE) runChild(process.env.DEMO_ROLE, JSON.parse(process.env.DEMO_SPEC));
else await runMain();

function runChild(role, spec) {
  // The failover makes clients and servers report dropped connections on stderr; the
  // demo shows its effect (the leader change, the counts) instead.
  const store = createStore(ledger, { stderr: () => {} });
  const report = () => {
    const s = store.getState();
    process.send({ kind: 'state', applied: Object.values(s.byClient).reduce((a, b) => a + b, 0), total: s.total, digest: digest(s) });
  };
  setInterval(report, 100).unref();
  let handle;
  if (role.startsWith('server')) {
    handle = store.createServer({ host: '127.0.0.1', port: spec.port, cluster: spec.cluster, http: { port: spec.httpPort } });
    handle.on('leader', ({ leaderId, term }) => process.send({ kind: 'leader', leaderId, term }));
    process.send({ kind: 'listening' });
  } else {
    handle = store.createClient({ servers: spec.servers });
  }
  process.on('message', async (m) => {
    if (m.cmd === 'go') {
      // At most m.rate actions a second and 256 in flight; count those acknowledged.
      const t0 = Date.now();
      let sent = 0;
      let acked = 0;
      let inflight = 0;
      const pump = () => {
        const allowed = Math.min(m.actions, Math.floor(((Date.now() - t0) / 1000) * m.rate) + 1);
        while (sent < allowed && inflight < 256) {
          const n = sent++;
          inflight++;
          store.dispatchAsync({ type: 'ADD', from: role, amount: 1 + (n % 3) }, { timeout: 60000 }).then(
            () => {
              inflight--;
              acked++;
              if (acked % 50 === 0 || acked === m.actions) process.send({ kind: 'acked', acked });
            },
            (e) => process.send({ kind: 'error', message: `${e.code}: ${e.message}` })
          );
        }
        if (sent >= m.actions) clearInterval(timer);
      };
      const timer = setInterval(pump, 5);
    } else if (m.cmd === 'report') {
      report();
    } else if (m.cmd === 'stop') {
      await (handle.close ? handle.close() : handle.disconnect());
      process.exit(0);
    }
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function runMain() {
  const clients = Number(opt('clients', 3));
  const perClient = Number(opt('actions', 4000));
  const rate = Number(opt('rate', 1000));
  const expected = clients * perClient;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-demo-'));
  const storePorts = await Promise.all([0, 1, 2].map(freePort));
  const httpPorts = await Promise.all([0, 1, 2].map(freePort));
  const seeds = storePorts.map((p, i) => `s${i}@127.0.0.1:${p}`);
  const serverSpec = (i) => ({
    port: storePorts[i],
    httpPort: httpPorts[i],
    cluster: { nodeName: `s${i}`, seeds, dataDir: path.join(dir, `s${i}`) },
  });
  const procs = new Map();
  let leader = null;
  let killed = null;
  let kids = [];
  const ackedNow = () => kids.reduce((a, k) => a + k.acked, 0);
  // kill -9 of the leader the moment half of all actions are acknowledged (from the
  // clients' own progress reports, not a polling tick, so it lands mid-load).
  const maybeKill = () => {
    const acked = ackedNow();
    if (killed || !leader || acked < expected / 2) return;
    const victim = procs.get(`server-${leader}`);
    victim.p.kill('SIGKILL');
    victim.alive = false;
    killed = { name: leader, at: Date.now(), acked };
    console.log(`\n*** kill -9 of the leader ${leader} at ${acked.toLocaleString()} of ${expected.toLocaleString()} acknowledged actions ***\n`);
  };
  const leaderChanges = [];
  const spawn = (role, spec) => {
    const p = fork(SELF, [], { env: { ...process.env, DEMO_ROLE: role, DEMO_SPEC: JSON.stringify(spec) } });
    const e = procs.get(role) ?? { role, acked: 0 };
    Object.assign(e, { p, last: e.last ?? null, alive: true });
    p.on('message', (m) => {
      if (m.kind === 'state') e.last = m;
      else if (m.kind === 'acked') {
        e.acked = m.acked;
        maybeKill();
      }
      else if (m.kind === 'leader' && m.leaderId !== leader) {
        leader = m.leaderId;
        leaderChanges.push({ at: Date.now(), leader, term: m.term });
      } else if (m.kind === 'error') console.log(`  ${role}: ${m.message}`);
      e.onMessage?.(m);
    });
    procs.set(role, e);
    return e;
  };
  const once = (e, kind) => new Promise((resolve) => (e.onMessage = (m) => m.kind === kind && resolve(m)));

  console.log(`redux-cluster-rs replicated demo: 3 servers in a Raft group, ${clients} clients x ${perClient.toLocaleString()} acknowledged actions; the leader is killed half-way\n`);
  const servers = [0, 1, 2].map((i) => spawn(`server-s${i}`, serverSpec(i)));
  await Promise.all(servers.map((s) => once(s, 'listening')));
  const t0 = Date.now();
  while (!leader && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
  console.log(`group formed: leader ${leader} (elected in ${Date.now() - t0} ms)`);
  console.log(`dashboards: ${httpPorts.map((p, i) => `s${i} http://127.0.0.1:${p}/`).join('  ')}`);
  const serverList = storePorts.map((port) => ({ host: '127.0.0.1', port }));
  for (let i = 1; i <= clients; i++) kids.push(spawn(`client-${i}`, { servers: serverList }));
  await new Promise((r) => setTimeout(r, 300));
  console.log(`${clients} clients dispatching at ${rate.toLocaleString()} actions/s each\n`);
  for (const k of kids) k.p.send({ cmd: 'go', actions: perClient, rate });

  const width = 32;
  const bar = (n) => {
    const f = Math.round((Math.min(n, expected) / expected) * width);
    return '█'.repeat(f) + '░'.repeat(width - f);
  };
  const tStart = Date.now();
  let restarted = false;
  const deadline = Date.now() + 120000;
  let done = false;
  while (!done && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const acked = ackedNow();
    if (killed && !restarted && Date.now() - killed.at > 1500) {
      restarted = true;
      const i = Number(killed.name.slice(1));
      spawn(`server-s${i}`, serverSpec(i));
      console.log(`\n*** ${killed.name} restarted from its dataDir ***\n`);
    }
    const lines = [];
    done = acked === expected;
    for (const e of procs.values()) {
      const applied = e.last?.applied ?? 0;
      if (applied !== expected) done = false;
      const tag = e.role === `server-${leader}` ? ' (leader)' : e.alive === false ? ' (killed)' : '';
      const own = e.role.startsWith('client') ? `  acknowledged ${String(e.acked).padStart(5)} / ${perClient}` : '';
      lines.push(`  ${(e.role + tag).padEnd(20)} ${bar(applied)} ${String(applied).padStart(7)} / ${expected}${own}`);
    }
    const secs = (Date.now() - tStart) / 1000;
    console.log(`t=${secs.toFixed(2)}s  acknowledged ${acked.toLocaleString()} / ${expected.toLocaleString()}  leader ${leader}\n${lines.join('\n')}`);
  }
  for (const e of procs.values()) if (e.alive !== false) e.p.send({ cmd: 'report' });
  await new Promise((r) => setTimeout(r, 300));
  const live = [...procs.values()].filter((e) => e.alive !== false);
  const digests = new Set(live.map((e) => e.last?.digest));
  const acked = ackedNow();
  const after = killed && leaderChanges.find((c) => c.at > killed.at);
  console.log('');
  if (done && digests.size === 1 && live.every((e) => e.last?.applied === acked)) {
    console.log(`converged: all ${live.length} processes hold the same state (${[...digests][0]}): ${acked.toLocaleString()} acknowledged actions, each applied once, 0 lost`);
    if (after) console.log(`failover: ${after.leader} led ${after.at - killed.at} ms after kill -9 of ${killed.name} (term ${after.term})`);
    if (killed && acked > killed.acked) {
      console.log(`under load: ${killed.acked.toLocaleString()} actions were acknowledged at the kill, ${(acked - killed.acked).toLocaleString()} more after it`);
    } else {
      // The demo is about a failover under load: a kill after the clients finished shows none.
      console.log(`NOT under load: the leader was ${killed ? `killed at ${killed.acked.toLocaleString()} of ${acked.toLocaleString()}` : 'never killed'}`);
      process.exitCode = 1;
    }
  } else {
    console.log(`NOT converged: digests ${[...digests].join(', ')}; acknowledged ${acked}`);
    process.exitCode = 1;
  }
  if (args.includes('--hold')) {
    console.log(`\nholding: the dashboards are at ${httpPorts.map((p) => `http://127.0.0.1:${p}/`).join(' ')}; Ctrl-C to stop`);
    await new Promise((r) => process.once('SIGINT', r));
  }
  for (const e of live) e.p.send({ cmd: 'stop' });
  await Promise.all(live.map((e) => new Promise((r) => (e.p.exitCode !== null ? r() : e.p.on('exit', r)))));
  fs.rmSync(dir, { recursive: true, force: true });
}
