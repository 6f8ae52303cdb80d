// Failover of a replicated store, measured: three server processes (with dataDir), one
// client writing with dispatchAsync one action after another; the leader is killed with
// SIGKILL, and the time until a write issued after the kill is acknowledged is taken;
// the killed server is restarted from its dataDir and catches up; repeated.
//
//   npm run bench:failover            (10 kills)
//   node benches/failover.mjs --kills 20
//   FAILOVER_DEBUG=1 npm run bench:failover   (also the client's errors and failed writes,
//                                              with their times)
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from 'redux-cluster-rs';
import { freePort, sleep } from './util.mjs';

const DEMO = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'replicated.mjs');
const args = process.argv.slice(2);
const kills = Number(args[args.indexOf('--kills') + 1] || 10);

function ledger(state = { total: 0, byClient: {} }, action) {
  if (action.type !== 'ADD') return state;
  return { total: state.total + action.amount, byClient: { ...state.byClient, [action.from]: (state.byClient[action.from] ?? 0) + 1 } };
}


const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-failover-'));
const storePorts = await Promise.all([0, 1, 2].map(freePort));
const seeds = storePorts.map((p, i) => `s${i}@127.0.0.1:${p}`);
let leader = null;
let term = 0;
const servers = [];
const start = (i) => {
  const spec = { port: storePorts[i], cluster: { nodeName: `s${i}`, seeds, dataDir: path.join(dir, `s${i}`) } };
  // The demo's child role: a replicated server reporting leaders and its state.
  const p = fork(DEMO, [], { env: { ...process.env, DEMO_ROLE: `server-s${i}`, DEMO_SPEC: JSON.stringify(spec) } });
  const s = { p, applied: 0 };
  p.on('message', (m) => {
    if (m.kind === 'leader' && m.term >= term) [leader, term] = [m.leaderId, m.term];
    if (m.kind === 'state') s.applied = m.applied;
  });
  servers[i] = s;
};
[0, 1, 2].forEach(start);

const T0 = performance.now();
const store = createStore(ledger, { stderr: process.env.FAILOVER_DEBUG ? (m) => console.log(`[${(performance.now() - T0).toFixed(0)}] client: ${m}`) : () => {} });
const client = store.createClient({ servers: storePorts.map((port) => ({ host: '127.0.0.1', port })) });
const writes = []; // [issuedAt, ackedAt]
let writing = true;
(async () => {
  while (writing) {
    const issued = performance.now();
    try {
      await store.dispatchAsync({ type: 'ADD', from: 'bench', amount: 1 }, { timeout: 30000 });
      writes.push([issued, performance.now()]);
    } catch (e) {
      if (process.env.FAILOVER_DEBUG) console.log(`write failed after ${(performance.now() - issued).toFixed(0)} ms: ${e.code} ${e.message}`);
      await sleep(10);
    }
  }
})();

const t0 = Date.now();
while (!(leader && writes.length > 10) && Date.now() - t0 < 30000) await sleep(20);
const times = [];
for (let k = 0; k < kills; k++) {
  await sleep(300);
  const victim = Number(leader.slice(1));
  const killedAt = performance.now();
  servers[victim].p.kill('SIGKILL');
  const deadline = Date.now() + 30000;
  let resumed;
  while (!(resumed = writes.find(([issued]) => issued >= killedAt)) && Date.now() < deadline) await sleep(5);
  if (!resumed) {
    console.log(`kill ${k + 1}: no write acknowledged within 30 s`);
    process.exitCode = 1;
    break;
  }
  const ms = resumed[1] - killedAt;
  times.push(ms);
  if (process.env.FAILOVER_DEBUG) console.log(`[${(killedAt - T0).toFixed(0)}] killed`);
  console.log(`kill ${k + 1}/${kills}: leader s${victim} killed; writes resumed after ${ms.toFixed(0)} ms (new leader ${leader}, term ${term})`);
  start(victim); // back from its dataDir; it catches up before the next round
  const target = writes.length;
  while (servers[victim].applied < target && Date.now() < deadline) await sleep(20);
}
writing = false;
times.sort((a, b) => a - b);
const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))].toFixed(0);
if (times.length) {
  console.log(`\nfailover over ${times.length} kills of the leader: median ${q(0.5)} ms, min ${times[0].toFixed(0)} ms, max ${times.at(-1).toFixed(0)} ms; ${writes.length} acknowledged writes in all, ${store.getState().total} applied on the client`);
}
await client.disconnect();
for (const s of servers) s.p.kill('SIGKILL');
fs.rmSync(dir, { recursive: true, force: true });
