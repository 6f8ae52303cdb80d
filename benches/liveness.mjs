// A server that stops answering without closing its sockets, measured: three server
// processes form a Raft group; each round a client attaches to the leader (first in its
// list) and writes with dispatchAsync, 16 in flight; then either the leader is stopped
// (SIGSTOP: a GC or VM pause) or the client's link to it goes silent both ways while
// staying open (a proxy that stops forwarding). Taken: the time from the fault to the
// first acknowledgement of a write issued after it. The fault is then undone (SIGCONT,
// or the proxy forwards again) and every server must hold every acknowledged write once.
//
// With --clients N (scale mode) N clients attach to the leader instead, each idle after
// one write; after the fault (kill -9 or SIGSTOP of the leader) each writes once more,
// and the time until every one of them has that write acknowledged is taken.
//
//   npm run bench:liveness                 (5 rounds of each fault)
//   node benches/liveness.mjs --rounds 10 [--fault stop|silent]
//   node benches/liveness.mjs --clients 1000 [--fault kill,stop] [--rounds 1]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore } from 'redux-cluster-rs';
import { ask, child, counter, freePort, linkProxy, oneLeader, waitFor } from '../__test__/helpers.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const scale = Number(opt('clients', 0));
const rounds = Number(opt('rounds', scale ? 1 : 5));
const faults = opt('fault', scale ? 'kill,stop' : 'stop,silent').split(',');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-liveness-'));
const ports = await Promise.all([0, 1, 2].map(() => freePort()));
const seeds = ports.map((p, i) => `v${i}@127.0.0.1:${p}`);
const spec = (i) => JSON.stringify({ port: ports[i], cluster: { nodeName: `v${i}`, seeds, dataDir: path.join(dir, `v${i}`) } });
const servers = [0, 1, 2].map((i) => child('raft-store.mjs', [spec(i)]));
// Clients reach the servers through proxies (so a link can be silenced); the servers
// reach each other directly.
const proxies = await Promise.all(ports.map((p) => linkProxy(p)));
await Promise.all(servers.map((k) => k.next((m) => m.listening)));

let total = 0; // acknowledged writes, all rounds
const results = {};
if (scale) await scaleRounds();
for (const fault of scale ? [] : faults) {
  results[fault] = [];
  for (let r = 0; r < rounds; r++) {
    const leader = await oneLeader(servers);
    const li = Number(leader.slice(1));
    const order = [li, ...[0, 1, 2].filter((i) => i !== li)];
    const store = createStore(counter, { stderr: () => {} });
    const client = store.createClient({ servers: order.map((i) => ({ host: '127.0.0.1', port: proxies[i].port })) });
    const done = [];
    const failed = [];
    let running = true;
    let sent = 0;
    const one = () => {
      if (!running) return;
      const at = performance.now();
      sent++;
      store.dispatchAsync({ type: 'INC' }, { timeout: 30000 }).then(
        () => {
          done.push([at, performance.now()]);
          one();
        },
        (e) => failed.push(e.code)
      );
    };
    for (let i = 0; i < 16; i++) one();
    await waitFor(() => done.length >= 100, { timeoutMs: 30000, what: 'writes before the fault' });
    const t0 = performance.now();
    if (fault === 'stop') servers[li].proc.kill('SIGSTOP');
    else proxies[li].mute();
    let first;
    await waitFor(() => (first = done.find(([at]) => at > t0)), { timeoutMs: 40000, what: `a write acknowledged after the ${fault}` });
    const ms = first[1] - t0;
    results[fault].push(ms);
    await waitFor(() => done.filter(([at]) => at > t0).length >= 100, { timeoutMs: 30000, what: 'writes after the fault' });
    running = false;
    await waitFor(() => done.length + failed.length === sent, { timeoutMs: 40000, what: 'every write settled' });
    if (fault === 'stop') servers[li].proc.kill('SIGCONT');
    else proxies[li].unmute();
    await client.disconnect();
    total += done.length;
    await converge();
    const next = await oneLeader(servers);
    console.log(`${fault} ${r + 1}/${rounds}: leader ${leader}; writes resumed after ${ms.toFixed(0)} ms; new leader ${next}; ${failed.length} failed; all 3 servers hold ${total}`);
    if (failed.length) process.exitCode = 1;
  }
}
console.log('');
for (const [fault, t] of Object.entries(results)) {
  const s = [...t].sort((a, b) => a - b);
  const what = { stop: 'SIGSTOP of the leader the client is attached to', silent: "the client's link to the leader silent both ways" }[fault] ?? `${fault}: the last of the clients`;
  console.log(`${what}: median ${s[Math.floor(s.length / 2)].toFixed(0)} ms, best ${s[0].toFixed(0)} ms, worst ${s.at(-1).toFixed(0)} ms over ${s.length} rounds`);
}
await Promise.all(servers.map((k) => k.kill()));
await Promise.all(proxies.map((p) => p.close()));
fs.rmSync(dir, { recursive: true, force: true });

async function converge() {
  let counts;
  await waitFor(
    async () => {
      counts = await Promise.all(servers.map(async (k) => (await ask(k, { cmd: 'state' })).state.counter));
      return counts.every((c) => c === total);
    },
    { timeoutMs: 60000, what: `every server holds ${total}`, show: () => counts }
  );
}

async function scaleRounds() {
  for (const fault of faults) {
    results[`${fault} x${scale}`] = [];
    for (let r = 0; r < rounds; r++) {
      const leader = await oneLeader(servers);
      const li = Number(leader.slice(1));
      const others = [0, 1, 2].filter((i) => i !== li);
      // Connected 500 at a time (each writes once), so that the set-up is not itself a
      // storm of thousands of handshakes on a small host; what is measured is the herd
      // after the fault.
      const clients = [];
      const said = []; // [when, what] from every client's stderr
      for (let j = 0; j < scale; j += 500) {
        const batch = Array.from({ length: Math.min(500, scale - j) }, (_, k) => {
          const store = createStore(counter, { stderr: (m) => said.push([performance.now(), m]) });
          // Leader first, the others in either order (a herd split over both).
          const order = [li, ...((j + k) % 2 ? others : [...others].reverse())];
          const conn = store.createClient({ servers: order.map((i) => ({ host: '127.0.0.1', port: ports[i] })) });
          return { store, conn };
        });
        await Promise.all(batch.map((c) => c.store.dispatchAsync({ type: 'INC' }, { timeout: 60000 })));
        clients.push(...batch);
      }
      // A busy small host may still move a few clients to another server (they stay
      // there): most must be on the leader.
      let onLeader = 0;
      await waitFor(async () => (onLeader = (await ask(servers[li], { cmd: 'clients' })).clients.length) >= scale * 0.95, { timeoutMs: 60000, what: `most of ${scale} clients on the leader`, show: () => onLeader });
      const t0 = performance.now();
      servers[li].proc.kill(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
      // Apart from the acknowledgements (each client applies every client's write before
      // its own resolves, which grows with the square of the clients in this one
      // process), the reconnect itself: when each client that left is connected again.
      const left = new Map(); // client index -> reconnected at (ms), or null
      let settled = false;
      const watch = (async () => {
        while (!settled) {
          clients.forEach((c, j) => {
            if (!c.store.connected && !left.has(j)) left.set(j, null);
            else if (c.store.connected && left.get(j) === null) left.set(j, performance.now() - t0);
          });
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const times = await Promise.all(
        clients.map((c) => c.store.dispatchAsync({ type: 'INC' }, { timeout: 60000 }).then(() => performance.now() - t0, () => Infinity))
      );
      await waitFor(() => [...left.values()].every((t) => t !== null), { timeoutMs: 30000, what: 'every client that left connected again' });
      settled = true;
      await watch;
      const back = [...left.values()].sort((a, b) => a - b);
      // What the clients said after the fault, by kind (numbers and addresses folded).
      const kinds = {};
      for (const [at, m] of said) {
        if (at < t0) continue;
        const k = m.replace(/\d+(\.\d+)*(:\d+)?/g, '#').slice(0, 160);
        kinds[k] = (kinds[k] || 0) + 1;
      }
      const serverKinds = {};
      for (const k of servers) {
        for (const m of k.messages.slice(k.seenStderr ?? 0)) {
          if (!m.stderr) continue;
          const key = m.stderr.replace(/\d+(\.\d+)*(:\d+)?/g, '#').slice(0, 160);
          serverKinds[key] = (serverKinds[key] || 0) + 1;
        }
        k.seenStderr = k.messages.length;
      }
      if (args.includes('--verbose')) console.log('clients said', kinds, 'servers said', serverKinds);
      times.sort((a, b) => a - b);
      const failed = times.filter((t) => t === Infinity).length;
      results[`${fault} x${scale}`].push(times.at(-1));
      if (fault === 'kill') {
        servers[li] = child('raft-store.mjs', [spec(li)]);
        await servers[li].next((m) => m.listening);
      } else servers[li].proc.kill('SIGCONT');
      total += 2 * scale - failed;
      await Promise.all(clients.map((c) => c.conn.disconnect()));
      await converge();
      console.log(
        `${fault === 'kill' ? 'kill -9' : 'SIGSTOP'} of the leader with ${onLeader} of ${scale} clients on it: every client had a write acknowledged after ${times.at(-1).toFixed(0)} ms ` +
          `(median ${times[Math.floor(times.length / 2)].toFixed(0)} ms); the ${back.length} that left were connected again after ${back.at(-1)?.toFixed(0)} ms ` +
          `(median ${back[Math.floor(back.length / 2)]?.toFixed(0)} ms); ${failed} failed; all 3 servers hold ${total}`
      );
      if (failed) process.exitCode = 1;
    }
  }
}
