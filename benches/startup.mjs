// How long a replicated server's start holds up Node's event loop. A one-server group
// fills a dataDir with a large Raft log (no snapshot, so all of it is replayed at the next
// start), then a fresh process creates the server on it while a timer ticks every 5 ms;
// taken: the longest the event loop was held (the longest gap between ticks) and the
// time until the server is leader again, with every action back in its state.
//
//   node benches/startup.mjs [--mb 200] [--impl <package dir>] [--impl <another>]
//
// With two --impl, both run on the same log size, one after the other (each fills its
// own dataDir: the log format is the implementation's).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const all = (name) => args.flatMap((a, i) => (a === `--${name}` ? [args[i + 1]] : []));

// Actions of ~8 KB: a log of `mb` megabytes in a few thousand entries.
const PAD = 'x'.repeat(8000);
function big(state = { n: 0 }, action) {
  return action.type === 'BIG' ? { n: state.n + 1 } : state;
}

async function load(impl) {
  return import(pathToFileURL(path.join(impl, 'src/js/index.mjs')).href);
}

function spec(dir, port) {
  return { host: '127.0.0.1', port, cluster: { nodeName: 'solo', bootstrap: true, dataDir: dir, snapshotThreshold: 1_000_000_000 } };
}

async function until(what, cond, ms = 600_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Child roles: fill the dataDir, or start on it and measure.
if (process.argv[2] === '--child') {
  const [, , , role, impl, dir, count] = process.argv;
  const { createStore } = await load(impl);
  const port = await freePort();
  if (role === 'fill') {
    const store = createStore(big, { stderr: () => {} });
    const server = store.createServer(spec(dir, port));
    await until('a leader', () => server.status()?.role === 'leader');
    for (let i = 0; i < Number(count); i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, Number(count) - i) }, () => store.dispatchAsync({ type: 'BIG', pad: PAD }, { timeout: 60000 })));
    }
    await server.close();
    process.send({ filled: store.getState().n });
  } else {
    // A 5 ms timer: the longest gap between its ticks is the longest the loop was held
    // (a synchronous createServer included, which the first tick waits out).
    let last = performance.now();
    let maxGap = 0;
    const gaps = [];
    const tick = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    const store = createStore(big, { stderr: () => {} });
    const server = store.createServer(spec(dir, port));
    const returned = performance.now() - t0;
    await until('leader again, with every action', () => server.status()?.role === 'leader' && store.getState().n === Number(count));
    const ready = performance.now() - t0;
    clearInterval(tick);
    await server.close();
    gaps.sort((a, b) => a - b);
    process.send({ returned, ready, maxDelay: maxGap, p99Delay: gaps[Math.floor(gaps.length * 0.99)] ?? maxGap });
  }
  process.exit(0);
}

function child(role, impl, dir, count) {
  return new Promise((resolve, reject) => {
    const k = fork(SELF, ['--child', role, impl, dir, String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    k.once('message', resolve);
    k.once('exit', (code) => code !== 0 && reject(new Error(`${role} exited with ${code}`)));
  });
}

const mb = Number(opt('mb', 200));
const count = Math.ceil((mb * 1e6) / PAD.length);
const impls = all('impl').length ? all('impl') : [ROOT];
console.log(`a replicated server started on a dataDir holding ${count} actions of 8 KB (~${mb} MB of log, no snapshot)`);
for (const impl of impls) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-startup-'));
  try {
    const filled = await child('fill', impl, dir, count);
    const du = fs.readdirSync(dir, { recursive: true }).reduce((s, f) => {
      const st = fs.statSync(path.join(dir, f));
      return s + (st.isFile() ? st.size : 0);
    }, 0);
    const r = await child('start', impl, dir, count);
    console.log(
      `${impl}: ${filled.filled} actions, dataDir ${(du / 1e6).toFixed(0)} MB; createServer returned after ${r.returned.toFixed(0)} ms, ` +
        `leader with every action after ${r.ready.toFixed(0)} ms; event loop held at most ${r.maxDelay.toFixed(0)} ms (p99 ${r.p99Delay.toFixed(0)} ms)`
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
