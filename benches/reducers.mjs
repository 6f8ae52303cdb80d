// End-to-end benchmark of native reducers, against the equivalent JS reducer in the
// same run (interleaved, median of --repeat runs):
// 1. actions applied per second on a server by reducers.patch, with client processes
//    dispatching over TCP, against a hand-written immutable JS reducer doing the same
//    updates (what a Redux user would write for them);
// 2. getState() after one change to a ~10 MB state;
// 3. the Raft-replicated tier (three server processes): native against JS.
//
//   npm run bench:reducers                 (full sizes)
//   node benches/reducers.mjs --quick      (small sizes)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createStore, reducers } from 'redux-cluster-rs';
import { freePort } from './util.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const repeat = opt('--repeat', quick ? 1 : 3);
const CLIENTS = opt('--clients', 2);
const PER_CLIENT = opt('--actions', quick ? 100_000 : 500_000);
const KEYS = 100;

// The JS reducer: the same replace of one counter, immutably.
function jsPatch(state = initial(), action) {
  if (action.type !== 'PATCH') return state;
  let s = state;
  for (const op of action.ops) {
    const [, top, key] = op.path.split('/');
    s = { ...s, [top]: { ...s[top], [key]: op.value } };
  }
  return s;
}

const initial = () => ({
  counters: Object.fromEntries(Array.from({ length: KEYS }, (_, k) => [`k${k}`, 0])),
  done: Object.fromEntries(Array.from({ length: CLIENTS }, (_, id) => [`c${id}`, false])),
});
const makeStore = (kind) => createStore(kind === 'native' ? reducers.patch(initial()) : jsPatch, { stderr: (m) => console.error(String(m)) });
const action = (i) => ({ type: 'PATCH', ops: [{ op: 'replace', path: `/counters/k${i % KEYS}`, value: i }] });

// ---- child: one client process
async function clientMain() {
  const { kind, port, n, id } = JSON.parse(process.env.RCRS_BENCH_CLIENT);
  const store = makeStore(kind);
  const conn = store.createClient({ host: '127.0.0.1', port });
  await new Promise((r) => process.once('message', r)); // go
  const CHUNK = 10_000;
  for (let i = 0; i < n; i += CHUNK) {
    for (let j = i; j < Math.min(n, i + CHUNK); j++) store.dispatch(action(j));
    // Let the batch go out before the next one is built.
    await new Promise((r) => setImmediate(r));
    while (conn.pending > 200_000) await new Promise((r) => setTimeout(r, 1));
  }
  await store.dispatchAsync({ type: 'PATCH', ops: [{ op: 'replace', path: `/done/c${id}`, value: true }] }, { timeout: 120000 });
  process.send('sent');
  await new Promise((r) => process.once('message', r)); // bye
  await conn.disconnect();
}

async function serverRun(kind) {
  const store = makeStore(kind);
  const srv = store.createServer({ host: '127.0.0.1', port: 0 });
  const kids = Array.from({ length: CLIENTS }, (_, id) =>
    fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, RCRS_BENCH_CLIENT: JSON.stringify({ kind, port: srv.port, n: PER_CLIENT, id }) } })
  );
  // Every client connected (its store took the server's state).
  await new Promise((r) => setTimeout(r, 300));
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (const k of kids) k.send('go');
  const done = () => {
    const s = store.getState();
    for (let id = 0; id < CLIENTS; id++) if (s.done[`c${id}`] !== true) return false;
    return true;
  };
  while (!done()) await new Promise((r) => setTimeout(r, 2));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  // The server's own CPU per action: what it could take from clients on other machines.
  const cpu = process.cpuUsage(cpu0);
  const cpuPerAction = (cpu.user + cpu.system) / (CLIENTS * PER_CLIENT);
  for (const k of kids) k.send('bye');
  await Promise.all(kids.map((k) => new Promise((r) => k.on('exit', r))));
  await srv.close();
  return { rate: (CLIENTS * PER_CLIENT) / secs, cpuPerAction };
}

function bigState() {
  return { n: 0, items: Array.from({ length: 140_000 }, (_, i) => ({ id: i, name: `item number ${i}`, tags: ['a', 'b'], price: i * 0.5 })) };
}

function getStateAfterOneChange() {
  const native = createStore(reducers.patch(bigState()));
  const bytes = JSON.stringify(native.getState()).length;
  const times = [];
  for (let i = 0; i < (quick ? 5 : 15); i++) {
    native.dispatch({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: i + 1 }] });
    const t0 = process.hrtime.bigint();
    native.getState();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const t1 = process.hrtime.bigint();
    if (native.getState().n !== i + 1) throw new Error('stale state');
    times[times.length - 1] = [times.at(-1), Number(process.hrtime.bigint() - t1) / 1e6];
  }
  // The floor for any store that keeps its state outside JS: one JSON.parse of it.
  const text = JSON.stringify(bigState());
  const parse = [];
  for (let i = 0; i < (quick ? 5 : 15); i++) {
    const t0 = process.hrtime.bigint();
    JSON.parse(text);
    parse.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { bytes, first: median(times.map((t) => t[0])), again: median(times.map((t) => t[1])), parse: median(parse) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function main() {
  console.error(`[bench] reducers: ${CLIENTS} client processes x ${fmt(PER_CLIENT)} PATCH actions over TCP, repeat ${repeat}`);
  const runs = { native: [], js: [] };
  const cpus = { native: [], js: [] };
  for (let r = 0; r < repeat; r++) {
    for (const kind of r % 2 === 0 ? ['native', 'js'] : ['js', 'native']) {
      const { rate, cpuPerAction } = await serverRun(kind);
      runs[kind].push(rate);
      cpus[kind].push(cpuPerAction);
      console.error(`[bench]   ${kind}: ${fmt(rate)} actions/s applied on the server, ${cpuPerAction.toFixed(2)} µs of server CPU per action`);
    }
  }
  const nat = median(runs.native);
  const js = median(runs.js);
  const natCpu = median(cpus.native);
  const jsCpu = median(cpus.js);
  const g = getStateAfterOneChange();
  console.log('| measure | native (reducers.patch) | JS reducer | ratio |');
  console.log('|---|---:|---:|---:|');
  console.log(`| actions applied/s on the server, ${CLIENTS} clients over TCP | ${fmt(nat)} | ${fmt(js)} | ${(nat / js).toFixed(1)}x |`);
  console.log(`| server CPU per action (all threads), µs | ${natCpu.toFixed(2)} | ${jsCpu.toFixed(2)} | ${(jsCpu / natCpu).toFixed(1)}x |`);
  console.log(`| actions/s one server core could apply (1e6 / CPU per action) | ${fmt(1e6 / natCpu)} | ${fmt(1e6 / jsCpu)} | ${(jsCpu / natCpu).toFixed(1)}x |`);
  console.log('');
  console.log(`getState() after one change to a ${(g.bytes / 1e6).toFixed(1)} MB state: ${g.first.toFixed(1)} ms the first time (JSON.parse of the same text alone: ${g.parse.toFixed(1)} ms, ${(g.first / g.parse).toFixed(2)}x), ${(g.again * 1000).toFixed(1)} µs when nothing changed since.`);
}

if (process.env.RCRS_BENCH_CLIENT) clientMain();
else main();
