// Replica servers: what they cost the group, and what they give its clients. Every
// server is its own process (3 voters with a durable dataDir, 0 or 2 replicas), the
// WebSocket clients are real stores spread over --procs processes.
//  - commit rate: 2 writer processes dispatch --actions in all, as fast as they can
//    through the voters; actions/s until the leader applied them all, without replicas
//    and with 2 (alternated, --rounds times);
//  - the leader's CPU per committed action, at a steady --rate for --seconds, with 2
//    replicas and: no WebSocket clients, --clients all on the replicas, --clients on the
//    voters; and the fan-out each replica delivered (actions x its clients, per second),
//    until every client applied every action.
//
//   node benches/replicas.mjs [--clients 1000] [--procs 4] [--rate 1000] [--seconds 10]
//                             [--actions 200000] [--rounds 3] [--nice]
// --nice runs the replicas at nice 19: on this 2-core machine the five servers share
// two cores, and a replica that applies the log takes CPU the leader would otherwise
// have; at nice 19 it takes what is left, as a replica on its own machine would.
import { fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'redux-cluster-rs';
import { exitDrained, freePort, sleep, until } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => Number(args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const tally = (state = { n: 0 }, a) => (a.type === 'ADD' ? { n: state.n + 1 } : state);
const appliedOf = (store) => store._role.applied;

async function child() {
  const spec = JSON.parse(process.env.BENCH_SPEC);
  const role = process.env.BENCH_ROLE;
  if (role === 'server') {
    const store = createStore(tally, { stderr: () => {} });
    const server = store.createServer({ host: '127.0.0.1', port: spec.port, cluster: spec.cluster });
    store.createWSServer({ host: '127.0.0.1', port: spec.wsPort });
    // Cheap reports (this process's CPU is what is measured): the role and the client
    // count, which ask the engine for JSON, only every second.
    let role = null;
    let clients = 0;
    const slow = () => {
      role = server.status()?.role;
      clients = server.metrics().clients.length;
    };
    setInterval(slow, 1000);
    setInterval(() => {
      if (!role || role === 'starting' || role === 'learner') slow();
      const cpu = process.cpuUsage();
      process.send({ applied: appliedOf(store), role, cpuMs: (cpu.user + cpu.system) / 1000, clients });
    }, 50);
  } else if (role === 'ws') {
    // n WebSocket clients, round-robin over the given ports.
    const stores = [];
    for (let i = 0; i < spec.n; i++) {
      const s = createStore(tally, { stderr: () => {} });
      s.createWSClient({ host: 'ws://127.0.0.1', port: spec.ports[i % spec.ports.length] });
      stores.push(s);
      if (i % 100 === 99) await sleep(20);
    }
    setInterval(() => {
      let min = Infinity;
      for (const s of stores) min = Math.min(min, s.connected ? appliedOf(s) : -1);
      process.send({ applied: min, connected: stores.every((s) => s.connected) });
    }, 50);
  } else {
    // A writer: `go` dispatches n actions, as fast as it can or at `rate` per second.
    const store = createStore(tally, { stderr: () => {} });
    store.createClient({ servers: spec.servers });
    setInterval(() => process.send({ applied: appliedOf(store), connected: store.connected }), 50);
    process.on('message', async (m) => {
      if (m.cmd !== 'go') return;
      const t0 = performance.now();
      for (let sent = 0; sent < m.n; ) {
        const end = m.rate ? Math.min(m.n, Math.floor(((performance.now() - t0) / 1000) * m.rate) + 1) : Math.min(m.n, sent + 5000);
        for (; sent < end; sent++) store.dispatch({ type: 'ADD' });
        await (m.rate ? sleep(5) : new Promise((r) => setImmediate(r)));
      }
    });
  }
  process.on('message', (m) => m.cmd === 'exit' && process.exit(0));
}

async function group({ replicas, wsClients = 0, wsOn = 'replicas', procs = 4, nice = false }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-replicas-'));
  const n = 3 + replicas;
  const ports = await Promise.all(Array.from({ length: n }, freePort));
  const wsPorts = await Promise.all(Array.from({ length: n }, freePort));
  const names = ports.map((_, i) => (i < 3 ? `v${i}` : `r${i - 3}`));
  const voters = ports.slice(0, 3).map((p, i) => `${names[i]}@127.0.0.1:${p}`);
  const kids = [];
  const spawn = (role, spec) => {
    const p = fork(SELF, ['--child'], { env: { ...process.env, BENCH_ROLE: role, BENCH_SPEC: JSON.stringify(spec) } });
    const e = { p, applied: 0, role, spec };
    p.on('message', (m) => Object.assign(e, m));
    kids.push(e);
    return e;
  };
  const servers = ports.map((port, i) =>
    spawn('server', { port, wsPort: wsPorts[i], cluster: { nodeName: names[i], seeds: voters, replica: i >= 3, dataDir: path.join(dir, names[i]) } })
  );
  if (nice) for (const s of servers.slice(3)) spawnSync('renice', ['-n', '19', '-p', String(s.p.pid)]);
  await until(() => servers.filter((s) => s.role === 'leader').length === 1 && servers.slice(3).every((s) => s.role === 'replica'), 'a leader and the replicas');
  const targets = wsOn === 'replicas' ? wsPorts.slice(3) : wsPorts.slice(0, 3);
  const ws = [];
  for (let i = 0; wsClients && i < procs; i++) ws.push(spawn('ws', { n: Math.ceil(wsClients / procs), ports: targets }));
  const writers = [0, 1].map(() => spawn('writer', { servers: ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port })) }));
  await until(() => ws.every((w) => w.connected) && writers.every((w) => w.connected), 'the clients');
  await sleep(500);
  const leader = () => servers.find((s) => s.role === 'leader');
  return {
    servers,
    ws,
    leader,
    until,
    // Dispatches n actions from each writer; resolves once the leader and every
    // WebSocket client applied them: { secs (leader), fanSecs (clients), cpuMs (leader) }.
    async run(perWriter, rate) {
      const l = leader();
      const base = l.applied;
      const cpu0 = l.cpuMs;
      const cpuAll0 = servers.map((x) => x.cpuMs);
      const t0 = performance.now();
      for (const w of writers) w.p.send({ cmd: 'go', n: perWriter, rate: rate && rate / writers.length });
      const target = base + perWriter * writers.length;
      await until(() => l.applied >= target, 'the leader to apply every action');
      const secs = (performance.now() - t0) / 1000;
      const cpuMs = l.cpuMs - cpu0;
      // Every server's CPU until it applied them all (a follower or replica may lag).
      await until(() => servers.every((x) => x.applied >= target), 'every server to apply every action');
      const perServer = servers.map((x, i) => ({ name: x.spec.cluster.nodeName, leader: x === l, cpuMs: x.cpuMs - cpuAll0[i] }));
      await until(() => ws.every((w) => w.applied >= target), 'every WebSocket client to apply every action');
      return { secs, fanSecs: (performance.now() - t0) / 1000, cpuMs, perServer, actions: perWriter * writers.length, leader: l.spec.cluster.nodeName };
    },
    async close() {
      for (const k of kids) k.p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main() {
  const clients = opt('clients', 1000);
  const procs = opt('procs', 4);
  const rate = opt('rate', 1000);
  const seconds = opt('seconds', 10);
  const actions = opt('actions', 200000);
  const rounds = opt('rounds', 3);
  const nice = args.includes('--nice');
  console.log(`$ node benches/replicas.mjs ${args.join(' ')}`);

  // Commit rate, without replicas and with 2, alternated.
  // The leader's CPU per action here too: what replicas cost the leader itself, apart
  // from the CPU they take from it on a machine they share.
  const rates = { 0: [], 2: [] };
  const cpu = { 0: [], 2: [] };
  const follower = [];
  const replica = [];
  for (let r = 0; r < rounds; r++) {
    for (const replicas of r % 2 ? [2, 0] : [0, 2]) {
      const g = await group({ replicas, nice });
      const { secs, cpuMs, perServer } = await g.run(actions / 2);
      rates[replicas].push(actions / secs);
      cpu[replicas].push((cpuMs * 1000) / actions);
      for (const x of perServer) if (!x.leader) (x.name.startsWith('r') ? replica : follower).push((x.cpuMs * 1000) / actions);
      await g.close();
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const k = (x) => `${Math.round(x / 1000)}k`;
  const us = (xs) => `${median(xs).toFixed(1)} µs (${xs.map((x) => x.toFixed(1)).join(', ')})`;
  console.log(`commit rate, 3 voters: ${k(median(rates[0]))} actions/s (${rates[0].map(k).join(', ')}); with 2 replicas: ${k(median(rates[2]))} (${rates[2].map(k).join(', ')}); ratio ${(median(rates[2]) / median(rates[0])).toFixed(2)}`);
  console.log(`the leader's CPU per committed action in those runs: ${us(cpu[0])} without replicas, ${us(cpu[2])} with 2; ratio ${(median(cpu[2]) / median(cpu[0])).toFixed(2)}`);
  console.log(`a follower's CPU per action it applied: ${us(follower)}; a replica's: ${us(replica)}`);

  // The leader's CPU per committed action at a steady rate (all of it: its heartbeats
  // and timers too, the same in each case), and the replicas' fan-out. With --rate 0 the
  // writers go as fast as they can (--actions).
  const steady = rate ? rate * seconds : actions;
  for (const [label, wsClients, wsOn] of [
    ['2 replicas, no WebSocket clients', 0, 'replicas'],
    [`2 replicas, ${clients} WebSocket clients on the replicas`, clients, 'replicas'],
    [`2 replicas, ${clients} WebSocket clients on the voters`, clients, 'voters'],
  ]) {
    const g = await group({ replicas: 2, wsClients, wsOn, procs, nice });
    const r = await g.run(steady / 2, rate);
    const perReplica = g.servers.slice(3).map((s) => s.clients);
    const fan = wsOn === 'replicas' && wsClients ? perReplica.map((c) => Math.round((c * r.actions) / r.fanSecs)) : [];
    console.log(
      `${label}: leader ${r.leader} ${((r.cpuMs * 1000) / r.actions).toFixed(1)} µs CPU per committed action (${r.actions}${rate ? ` at ${rate}/s` : ', as fast as the writers go'})` +
        (wsClients ? `; every client had every action ${r.fanSecs.toFixed(1)} s after the first was sent` : '') +
        (fan.length ? `; fan-out per replica: ${fan.map((f, i) => `${perReplica[i]} clients, ${Math.round(f / 1000)}k actions/s delivered`).join('; ')}` : '')
    );
    await g.close();
  }
  exitDrained();
}

if (args[0] === '--child') await child();
else await main();
