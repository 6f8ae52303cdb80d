// The browser client (redux-cluster-rs/browser) against a WebSocket endpoint of the
// engine, run in a process with WebSocket (Node's, behind --experimental-websocket) as
// the ES module and as the single-file bundle: logins by challenge-response, others'
// actions seen, what it dispatched while the server was down delivered once after, a
// compressed snapshot, and a wrong password refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore } from 'redux-cluster-rs';
import { ROOT, ask, child, freePort, oneLeader, sink, waitFor } from './helpers.mjs';

const env = { NODE_OPTIONS: '--experimental-websocket --no-warnings' };
// The same reducer name as the fixture's: the same store.
function counter(state = { counter: 0, big: null }, action) {
  if (action.type === 'INC') return { ...state, counter: state.counter + 1 };
  if (action.type === 'RAND') return { ...state, r: Math.random() };
  if (action.type === 'BIG') return { ...state, big: action.payload };
  return state;
}

for (const bundled of [false, true]) {
  test(`the browser client${bundled ? ' (single-file bundle)' : ' (ES module)'}: logs in, dispatches, sees others, keeps its queue across a server restart and delivers it once`, { timeout: 60000 }, async () => {
    if (bundled) assert.ok(fs.existsSync(path.join(ROOT, 'src', 'js', 'browser', 'redux-cluster-rs.browser.js')), 'the bundle is built (npm run build:browser)');
    const server = createStore(counter, { stderr: sink() });
    const port = await freePort();
    let ws = server.createWSServer({ host: '127.0.0.1', port, logins: { ann: 'secret' } });
    const native = createStore(counter, { stderr: sink() });
    const nativeConn = native.createWSClient({ host: 'ws://127.0.0.1', port, login: 'ann', password: 'secret' });
    const page = child('browser-client.mjs', bundled ? ['--bundle'] : [], { env });
    const intruder = child('browser-client.mjs', bundled ? ['--bundle'] : [], { env });
    try {
      const ready = await page.next((m) => m.ready);
      assert.equal(ready.hash, server.RCHash, 'the same md5 identity as the server');
      page.send({ cmd: 'connect', port, login: 'ann', password: 'secret' });
      const r = await ask(page, { cmd: 'dispatch', n: 10 });
      assert.equal(r.seqs.length, 10);
      await native.dispatchAsync({ type: 'INC' });
      await waitFor(async () => (await ask(page, { cmd: 'state' })).counter === 11, { what: "the page sees the other client's action" });

      // A state above the compression threshold (256 KiB) reaches the page deflated.
      server.dispatch({ type: 'BIG', payload: 'x'.repeat(600 * 1024) });
      await waitFor(async () => (await ask(page, { cmd: 'state' })).bigLength === 600 * 1024, { what: 'the big state inflated' });

      await ws.close();
      await waitFor(async () => !(await ask(page, { cmd: 'state' })).connected, { what: 'the page saw the server go' });
      const queued = await ask(page, { cmd: 'queue', n: 5 });
      assert.equal(queued.pending, 5);
      ws = server.createWSServer({ host: '127.0.0.1', port, logins: { ann: 'secret' } });
      await waitFor(() => server.getState().counter === 16, { what: 'the queued actions delivered', timeoutMs: 20000 });
      await waitFor(async () => (await ask(page, { cmd: 'state' })).counter === 16, { what: 'the page applied them' });
      await waitFor(() => native.getState().counter === 16, { what: 'the other client has them' });
      // Once each: a later action lands right after them.
      server.dispatch({ type: 'INC' });
      await waitFor(async () => (await ask(page, { cmd: 'state' })).counter === 17, { what: 'exactly 17' });

      await intruder.next((m) => m.ready);
      intruder.send({ cmd: 'connect', port, login: 'ann', password: 'guess' });
      await waitFor(async () => (await ask(intruder, { cmd: 'state' })).error === 'ERR_AUTH', { what: 'the wrong password refused' });
      assert.equal((await ask(intruder, { cmd: 'state' })).counter, 0);
    } finally {
      page.send({ cmd: 'close' });
      intruder.send({ cmd: 'close' });
      await Promise.all([page.exited, intruder.exited]);
      await nativeConn.disconnect();
      await ws.close();
    }
  });
}

test('the browser client follows a replicated store: kill -9 of the leader it uses, every acknowledged action once', { timeout: 120000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-browser-raft-'));
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const wsPorts = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `b${i}@127.0.0.1:${p}`);
  const servers = [0, 1, 2].map((i) =>
    child('raft-store.mjs', [JSON.stringify({ port: ports[i], wsPort: wsPorts[i], cluster: { nodeName: `b${i}`, seeds, dataDir: path.join(dir, `b${i}`) } })])
  );
  const page = child('browser-client.mjs', [], { env });
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    const leader = await oneLeader(servers);
    const li = Number(leader.slice(1));
    const order = [li, ...[0, 1, 2].filter((i) => i !== li)];
    await page.next((m) => m.ready);
    page.send({ cmd: 'connect', ports: order.map((i) => wsPorts[i]) });
    const before = await ask(page, { cmd: 'dispatch', n: 20 });
    assert.equal((await ask(page, { cmd: 'state' })).server, `ws://127.0.0.1:${wsPorts[li]}/`);
    await servers[li].kill('SIGKILL');
    const after = await ask(page, { cmd: 'dispatch', n: 20 });
    assert.deepEqual([before.codes, after.codes], [[], []], JSON.stringify(await ask(page, { cmd: 'state' })));
    assert.equal(new Set([...before.seqs, ...after.seqs]).size, 40, 'each action its own place');
    const st = await ask(page, { cmd: 'state' });
    assert.notEqual(st.server, `ws://127.0.0.1:${wsPorts[li]}/`, 'the page moved to another server');
    assert.equal(st.counter, 40);
    for (const i of order.slice(1)) {
      await waitFor(async () => (await ask(servers[i], { cmd: 'state' })).state.counter === 40, { timeoutMs: 20000, what: `b${i} holds all 40, once` });
    }
  } finally {
    page.send({ cmd: 'close' });
    await page.exited;
    await Promise.all(servers.map((k) => k.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the browser client leaves a leader that stopped answering (SIGSTOP) and resumes; an idle page is not dropped', { timeout: 120000 }, async () => {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const wsPorts = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `w${i}@127.0.0.1:${p}`);
  const servers = [0, 1, 2].map((i) => child('raft-store.mjs', [JSON.stringify({ port: ports[i], wsPort: wsPorts[i], cluster: { nodeName: `w${i}`, seeds } })]));
  const page = child('browser-client.mjs', [], { env });
  let li = -1;
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    li = Number((await oneLeader(servers)).slice(1));
    const order = [li, ...[0, 1, 2].filter((i) => i !== li)];
    await page.next((m) => m.ready);
    page.send({ cmd: 'connect', ports: order.map((i) => wsPorts[i]) });
    const before = await ask(page, { cmd: 'dispatch', n: 20 });
    // Idle: the page answers the server's heartbeats (from its message events, which a
    // background tab does not throttle), so the server keeps it. The positive signal: 16
    // answers (1 byte each) reached the server, over 2.4 s, past the 2 s a server waits
    // for a silent client, and the page is still there.
    const pageOnLeader = async () => (await ask(servers[li], { cmd: 'clients' })).clients.find((c) => c.transport === 'ws');
    const idleFrom = (await pageOnLeader()).bytesIn;
    await waitFor(async () => (await pageOnLeader())?.bytesIn >= idleFrom + 16, { timeoutMs: 10000, what: '16 heartbeat answers from the idle page' });
    const idle = await ask(page, { cmd: 'state' });
    assert.equal(idle.server, `ws://127.0.0.1:${wsPorts[li]}/`, 'the idle page stayed');
    assert.equal(idle.error, null, 'no error while idle');

    servers[li].proc.kill('SIGSTOP');
    const after = await ask(page, { cmd: 'dispatch', n: 20 });
    assert.deepEqual([before.codes, after.codes], [[], []], JSON.stringify(await ask(page, { cmd: 'state' })));
    assert.equal(new Set([...before.seqs, ...after.seqs]).size, 40);
    const st = await ask(page, { cmd: 'state' });
    assert.notEqual(st.server, `ws://127.0.0.1:${wsPorts[li]}/`, 'the page moved to another server');
    assert.ok(st.errors.some((e) => /stopped answering/.test(e)), 'the page said why it moved');
    servers[li].proc.kill('SIGCONT');
    li = -1;
    for (const k of servers) {
      await waitFor(async () => (await ask(k, { cmd: 'state' })).state.counter === 40, { timeoutMs: 20000, what: 'every server holds all 40, once' });
    }
  } finally {
    if (li >= 0) servers[li].proc.kill('SIGCONT');
    page.send({ cmd: 'close' });
    await page.exited;
    await Promise.all(servers.map((k) => k.kill()));
  }
});

test("the browser client's divergence guard: a reducer calling Math.random() is caught, the page takes the server's state and says where it differed", { timeout: 60000 }, async (t) => {
  const server = createStore(counter, { stderr: sink(), guard: { everyActions: 1, everyMs: 100 } });
  const port = await freePort();
  const ws = server.createWSServer({ host: '127.0.0.1', port });
  const page = child('browser-client.mjs', [], { env });
  t.after(async () => {
    page.kill();
    await ws.close();
  });
  await page.next((m) => m.ready);
  page.send({ cmd: 'connect', port });
  await waitFor(async () => (await ask(page, { cmd: 'state' })).connected, { what: 'the page connected' });
  page.send({ cmd: 'rand' });
  const d = (await page.next((m) => m.divergence, 20000)).divergence;
  assert.equal(d.path, '/r');
  assert.match(d.expected, /^[0-9a-f]{16}$/);
  assert.notEqual(d.expected, d.actual);
});
