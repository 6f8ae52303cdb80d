// A small Jepsen of our own: a replicated store (3 or 5 server processes with dataDir,
// reaching each other through link proxies) and clients dispatching with dispatchAsync,
// while a seeded scheduler kill -9s and restarts servers, SIGSTOPs and continues them,
// cuts a server's links (both ways), and restarts clients. After the run everything heals, and the
// checks are:
//   - every server and every client holds the same sequence of actions;
//   - every acknowledged action is in it exactly once (lost = 0, duplicated = 0);
//   - nothing is in it that nobody dispatched.
// The store is reducers.patch appending each action's id to a log, so the log is the
// sequence. At most a minority is down (killed, stopped or cut off) at any moment.
// Leaders are counted per term from every server's 'leader' events and reported, not
// checked: openraft (in its default mode, which this engine uses) identifies a leader by
// (term, node id) and orders those, so one term can see a second, higher-id leader after
// the first; safety rests on log ids carrying both, which the log checks above test.
//
//   npm run chaos -- [--seconds 120] [--servers 5] [--clients 3] [--seed 42]
// `npm test` runs a short version (__test__/chaos.spec.mjs). Exits 1 when a check fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore, reducers } from 'redux-cluster-rs';
import { ask, child, freePort, linkProxy, oneLeader, waitFor } from './helpers.mjs';

/** mulberry32: a small seeded PRNG, so a run can be repeated from its seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const append = (id) => ({ type: 'PATCH', ops: [{ op: 'add', path: '/log/-', value: id }] });

export async function runChaos({ servers: n = 3, clients: nClients = 2, seconds = 20, seed = Date.now() % 1e9, log = console.log } = {}) {
  const rand = prng(seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-chaos-'));
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const proxies = await Promise.all(ports.map((p) => linkProxy(p)));
  const seeds = proxies.map((x, i) => `x${i}@127.0.0.1:${x.port}`);
  const spec = (i) => ({
    port: ports[i],
    reducer: 'patch',
    cluster: { nodeName: `x${i}`, seeds, dataDir: path.join(dir, `x${i}`), advertisePort: proxies[i].port, secret: 'chaos', heartbeatInterval: 50, electionTimeout: 300 },
  });
  const all = []; // every server process ever started, for the leader events
  const start = (i) => {
    const k = child('raft-store.mjs', [JSON.stringify(spec(i))]);
    k.name = `x${i}#${all.filter((x) => x.name && x.name.startsWith(`x${i}#`)).length}`;
    all.push(k);
    return k;
  };
  const servers = Array.from({ length: n }, (_, i) => ({ i, k: start(i), state: 'up' }));
  const endpoints = ports.map((port) => ({ host: '127.0.0.1', port }));
  const counts = { kill: 0, restart: 0, stop: 0, cut: 0, clientRestart: 0 };
  const attempted = new Set();
  const acked = new Set();
  const t0 = Date.now();
  const timeline = []; // [ms since start, what], for a failing run's report
  const ackedAt = new Map();
  const refusals = {};
  let running = true;
  let lastAck = Date.now();
  let longestGap = 0;
  // Failover: from a fault that hits the leader to the first acknowledgement of an action
  // dispatched after it.
  const failovers = [];
  let pendingFailover = null;
  // A move within 2 s of its server's SIGCONT is explained by the stop (the watch needs
  // the timeout to pass; a loaded host adds its delays).
  const livenessReport = () => {
    const explained = (m) => stops.some((s) => s.i === m.i && m.t >= s.from && m.t <= s.to + 2000);
    const drops = all.reduce((sum, k) => sum + k.messages.filter((x) => x.stderr && /no sign of life/.test(x.stderr)).length, 0);
    return { moves: moves.length, falseMoves: moves.filter((m) => !explained(m)).length, drops };
  };
  const leaderNow = () => {
    let best = null;
    for (const k of all) for (const m of k.messages) if (m.leader !== undefined && (!best || m.term > best.term)) best = m;
    return best && best.leader;
  };

  const clients = [];
  // Liveness: each client's move away from a server it found silent, with when and which;
  // one that no SIGSTOP of that server explains is a false alarm.
  const moves = [];
  const stops = []; // { i, from, to }
  const startClient = (name) => {
    const store = createStore(reducers.patch({ log: [] }), {
      stderr: (m) => {
        const port = /server at 127\.0\.0\.1:(\d+) stopped answering/.exec(m)?.[1];
        if (port) moves.push({ t: Date.now(), i: ports.indexOf(Number(port)) });
      },
    });
    const conn = store.createClient({ servers: endpoints, reconnectInitialMs: 20, reconnectMaxMs: 500 });
    const c = { name, store, conn, n: 0, alive: true };
    // Four dispatches in flight per client, each id unique across the run.
    c.loops = Array.from({ length: 4 }, async () => {
      while (running && c.alive) {
        const id = `${name}.${c.n++}`;
        attempted.add(id);
        const sent = Date.now();
        try {
          await store.dispatchAsync(append(id), { timeout: 10000 });
          acked.add(id);
          const now = Date.now();
          ackedAt.set(id, [sent - t0, now - t0]);
          if (pendingFailover && sent >= pendingFailover.t0) {
            failovers.push({ fault: pendingFailover.fault, ms: now - pendingFailover.t0 });
            pendingFailover = null;
          }
          longestGap = Math.max(longestGap, now - lastAck);
          lastAck = now;
        } catch (e) {
          refusals[e.code] = (refusals[e.code] || 0) + 1;
          if (e.code === 'ERR_CLOSED') return;
        }
      }
    });
    return c;
  };
  for (let j = 0; j < nClients; j++) clients.push(startClient(`c${j}`));

  try {
    await Promise.all(servers.map((s) => s.k.next((m) => m.listening)));
    await oneLeader(servers.map((s) => s.k));
    log(`chaos: seed ${seed}, ${n} servers, ${nClients} clients, ${seconds} s`);
    const minority = Math.floor((n - 1) / 2);
    const down = () => servers.filter((s) => s.state !== 'up');
    const deadline = Date.now() + seconds * 1000;
    let generation = nClients;
    while (Date.now() < deadline) {
      await sleep(between(300, 1200));
      const up = servers.filter((s) => s.state === 'up');
      const fault = pick(['kill', 'stop', 'cut', 'restart', 'client']);
      if (fault === 'restart' || (down().length >= minority && fault !== 'client')) {
        // Bring back one that is down (a killed one restarts from its dataDir).
        const s = down().find((x) => x.state === 'killed');
        if (s) {
          s.k = start(s.i);
          s.state = 'up';
          counts.restart++;
        }
        continue;
      }
      if (fault === 'client') {
        const c = pick(clients);
        c.alive = false;
        await c.conn.disconnect();
        clients[clients.indexOf(c)] = startClient(`c${generation++}`);
        counts.clientRestart++;
        continue;
      }
      const s = pick(up);
      timeline.push([Date.now() - t0, `${fault} x${s.i}${leaderNow() === `x${s.i}` ? ' (leader)' : ''}`]);
      if (!pendingFailover && leaderNow() === `x${s.i}`) pendingFailover = { fault, t0: Date.now() };
      if (fault === 'kill') {
        s.state = 'killed';
        s.k.kill('SIGKILL');
        counts.kill++;
      } else if (fault === 'stop') {
        s.state = 'stopped';
        s.k.kill('SIGSTOP');
        counts.stop++;
        const stop = { i: s.i, from: Date.now(), to: Infinity };
        stops.push(stop);
        setTimeout(() => {
          s.k.kill('SIGCONT');
          stop.to = Date.now();
          s.state = 'up';
        }, between(200, 1500));
      } else {
        // Both directions: nothing reaches it, and what it dials is refused.
        s.state = 'cut';
        proxies[s.i].isolate();
        proxies.forEach((p, j) => j !== s.i && p.refuse(`x${s.i}`));
        counts.cut++;
        setTimeout(() => {
          proxies[s.i].heal();
          proxies.forEach((p, j) => j !== s.i && p.allow(`x${s.i}`));
          s.state = 'up';
        }, between(300, 2000));
      }
    }
    // Heal: stop the faults, bring everyone back, let the clients finish.
    running = false;
    await waitFor(() => servers.every((s) => s.state !== 'stopped' && s.state !== 'cut'), { timeoutMs: 5000, what: 'stopped and cut servers back' });
    for (const s of servers) {
      if (s.state === 'killed') {
        s.k = start(s.i);
        s.state = 'up';
        counts.restart++;
      }
    }
    await Promise.all(clients.flatMap((c) => c.loops));
    await Promise.all(servers.map((s) => s.k.next((m) => m.listening)));
    await oneLeader(servers.map((s) => s.k));

    // Every server and client ends with the same log.
    let logs;
    await waitFor(
      async () => {
        const fromServers = await Promise.all(servers.map(async (s) => (await ask(s.k, { cmd: 'state' })).state.log));
        logs = [...fromServers, ...clients.map((c) => c.store.getState().log)];
        return logs.every((l) => l.length === logs[0].length && l.every((x, i) => x === logs[0][i]));
      },
      { timeoutMs: 60000, what: 'every server and client holding the same log', show: () => logs && logs.map((l) => l.length) }
    ).catch(async (e) => {
      // What a diagnosis needs: each server's view of the group, and what it said.
      for (const s of servers) {
        const st = await ask(s.k, { cmd: 'status' }).catch((err) => ({ status: String(err) }));
        const said = s.k.messages.filter((m) => m.stderr).slice(-5).map((m) => m.stderr);
        log(`chaos: x${s.i} (pid ${s.k.proc.pid}): ${JSON.stringify(st.status)}; last stderr: ${JSON.stringify(said)}`);
      }
      // CHAOS_HOLD=seconds keeps the processes as they are, to look at them (gdb -p pid).
      const hold = Number(process.env.CHAOS_HOLD || 0);
      if (hold > 0) {
        log(`chaos: holding the processes for ${hold} s`);
        await sleep(hold * 1000);
      }
      throw e;
    });
    const seq = logs[0];
    const seen = new Map();
    for (const id of seq) seen.set(id, (seen.get(id) || 0) + 1);
    const duplicated = [...seen.values()].filter((x) => x > 1).length;
    const lostIds = [...acked].filter((id) => !seen.has(id));
    const lost = lostIds.length;
    const invented = seq.filter((id) => !attempted.has(id)).length;
    // One leader per term, over every process's 'leader' events.
    const byTerm = new Map();
    const reporters = new Map();
    for (const k of all) {
      for (const m of k.messages) {
        if (m.leader === undefined) continue;
        (byTerm.get(m.term) ?? byTerm.set(m.term, new Set()).get(m.term)).add(m.leader);
        (reporters.get(m.term) ?? reporters.set(m.term, []).get(m.term)).push(`${k.name}:${m.leader}`);
      }
    }
    const splitTerms = [...byTerm].filter(([, names]) => names.size > 1).map(([t]) => `term ${t}: ${reporters.get(t).join(', ')}`);
    const result = {
      seed,
      acknowledged: acked.size,
      attempted: attempted.size,
      applied: seq.length,
      lost,
      duplicated,
      invented,
      terms: byTerm.size,
      splitTerms,
      faults: counts,
      refusals,
      longestGapMs: longestGap,
      failovers,
      liveness: livenessReport(),
    };
    if (lost) {
      // What a failing run needs for a diagnosis: when the lost actions were sent and
      // acknowledged, and the faults around them.
      const when = lostIds.map((id) => ackedAt.get(id));
      const from = Math.min(...when.map((w) => w[0])) - 3000;
      const to = Math.max(...when.map((w) => w[1])) + 3000;
      result.lostSample = lostIds.slice(0, 10).map((id) => `${id} sent ${ackedAt.get(id)[0]} ms, acknowledged ${ackedAt.get(id)[1]} ms`);
      result.faultsAround = timeline.filter(([t]) => t >= from && t <= to).map(([t, w]) => `${t} ms: ${w}`);
      log(`chaos: LOST ${lost}: ${result.lostSample.join('; ')}; faults around them: ${result.faultsAround.join('; ')}`);
    }
    const ms = failovers.map((f) => f.ms).sort((a, b) => a - b);
    const live = result.liveness;
    log(
      `chaos: liveness: ${live.moves} client moves from a silent server (${live.falseMoves} that no SIGSTOP explains), ` +
        `${live.drops} clients dropped by a server for silence (none was stopped: each is a false alarm)`
    );
    log(
      `chaos: seed ${seed}: ${acked.size} acknowledged of ${attempted.size} dispatched, ${seq.length} applied everywhere; ` +
        `lost ${lost}, duplicated ${duplicated}, invented ${invented}; ${byTerm.size} terms (${splitTerms.length} with a second leader${splitTerms.length ? `: ${splitTerms.join('; ')}` : ''}); ` +
        `faults ${JSON.stringify(counts)}; refusals ${JSON.stringify(refusals)}; ` +
        `failovers (a fault on the leader to the next acknowledged action) ${ms.length ? `${ms.length}, median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms` : 'none'}; ` +
        `longest time without an acknowledgement ${longestGap} ms`
    );
    return result;
  } finally {
    running = false;
    for (const c of clients) await c.conn.disconnect().catch(() => {});
    for (const s of servers) {
      if (s.state === 'stopped') s.k.kill('SIGCONT');
      await s.k.kill();
    }
    await Promise.all(proxies.map((p) => p.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (name, dflt) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt);
  const r = await runChaos({ servers: arg('servers', 5), clients: arg('clients', 3), seconds: arg('seconds', 120), seed: arg('seed', Date.now() % 1e9) });
  const ok = r.lost === 0 && r.duplicated === 0 && r.invented === 0;
  console.log(ok ? 'chaos: all checks passed' : 'chaos: CHECKS FAILED');
  process.exit(ok ? 0 : 1);
}
