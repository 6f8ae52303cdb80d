// The browser client (redux-cluster-rs/browser) against a WebSocket endpoint of the
// engine, run in a process with WebSocket (Node's, behind --experimental-websocket) as
// the ES module and as the single-file bundle: logins by challenge-response, others'
// actions seen, what it dispatched while the server was down delivered once after, a
// compressed snapshot, and a wrong password refused. With `optimistic`: its own actions
// shown at once through a slow link, the server's order kept, a refused login rolled back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, ErrorCode } from 'redux-cluster-rs';
import { ROOT, ask, child, freePort, oneLeader, sink, slowLink, waitFor } from './helpers.mjs';

const env = { NODE_OPTIONS: '--experimental-websocket --no-warnings' };
// The same reducer name as the fixture's: the same store.
function counter(state = { counter: 0, big: null }, action) {
  if (action.type === 'INC') return { ...state, counter: state.counter + 1 };
  if (action.type === 'RAND') return { ...state, r: Math.random() };
  if (action.type === 'BIG') return { ...state, big: action.payload };
  if (action.type === 'PUSH') return { ...state, log: [...(state.log ?? []), action.by] };
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
      await waitFor(async () => (await ask(intruder, { cmd: 'state' })).error === ErrorCode.Auth, { what: 'the wrong password refused' });
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

for (const optimistic of [false, true]) {
  test(`the browser client's divergence guard${optimistic ? ' (optimistic)' : ''}: a reducer calling Math.random() is caught, the page takes the server's state and says where it differed`, { timeout: 60000 }, async (t) => {
    const server = createStore(counter, { stderr: sink(), guard: { everyActions: 1, everyMs: 100 } });
    const port = await freePort();
    const ws = server.createWSServer({ host: '127.0.0.1', port });
    const page = child('browser-client.mjs', [], { env });
    t.after(async () => {
      page.kill();
      await ws.close();
    });
    await page.next((m) => m.ready);
    page.send({ cmd: 'connect', port, optimistic });
    await waitFor(async () => (await ask(page, { cmd: 'state' })).connected, { what: 'the page connected' });
    page.send({ cmd: 'rand' });
    const d = (await page.next((m) => m.divergence, 20000)).divergence;
    assert.equal(d.path, '/r');
    assert.match(d.expected, /^[0-9a-f]{16}$/);
    assert.notEqual(d.expected, d.actual);
    await waitFor(async () => (await ask(page, { cmd: 'state' })).r === server.getState().r, { what: "the page on the server's state" });
  });
}

test('optimistic browser client behind a slow link (100 ms each way): its own action shows at once, ends in the server\'s order beside a conflicting one of another client; offline, queued actions show at once and are applied once after the reconnect', { timeout: 60000 }, async (t) => {
  // The divergence guard checks after every action: its checkpoints reach the page while
  // its own action is pending, and must be met with the confirmed state, not the shown one.
  const server = createStore(counter, { stderr: sink(), guard: { everyActions: 1, everyMs: 10 } });
  const port = await freePort();
  let ws = server.createWSServer({ host: '127.0.0.1', port });
  const proxy = await slowLink(port, 100);
  const other = createStore(counter, { stderr: sink() });
  const otherConn = other.createWSClient({ host: 'ws://127.0.0.1', port });
  const page = child('browser-client.mjs', [], { env });
  try {
    // A state the page can tell from its initial one: it has the server's once it shows.
    server.dispatch({ type: 'INC' });
    await page.next((m) => m.ready);
    page.send({ cmd: 'connect', port: proxy.port, optimistic: true });
    await waitFor(async () => (await ask(page, { cmd: 'state' })).counter === 1, { what: "the page connected through the proxy and has the server's state" });
    await waitFor(() => other.connected, { what: 'the other client connected' });

    // At the same time: the page's PUSH crosses the slow link, the other client's goes
    // straight to the server (so it is usually ordered first, and the page must rebase).
    const answer = ask(page, { cmd: 'push', by: 'page' });
    const otherDone = other.dispatchAsync({ type: 'PUSH', by: 'other' }, { timeout: 20000 });
    const now = await answer;
    assert.deepEqual(now.log, ['page'], 'the own action shows in getState() right after dispatch');
    assert.equal(now.pending, 1, 'not acknowledged yet');
    const confirmed = await page.next((m) => m.confirmed === 'page');
    assert.ok(confirmed.ms >= 180, `confirmed after the round trip through the proxy (${confirmed.ms.toFixed(1)} ms)`);
    await waitFor(() => server.getState().log?.length === 2, { what: 'the server ordered both' });
    const order = server.getState().log;
    assert.deepEqual([...order].sort(), ['other', 'page']);
    const otherSeq = (await otherDone).seq;
    assert.equal(confirmed.seq > otherSeq, order[0] === 'other', 'confirmed at the place the server gave it');
    await waitFor(async () => JSON.stringify((await ask(page, { cmd: 'state' })).log) === JSON.stringify(order), { what: "the page on the server's order" });
    await waitFor(() => JSON.stringify(other.getState().log) === JSON.stringify(order), { what: "the other client on the server's order" });
    // What the page's subscribers saw from the dispatch on: its own action all along (no
    // flicker while the other one was placed before it), one call per visible change.
    const { views } = await ask(page, { cmd: 'views' });
    assert.ok(views.length >= 1 && views.length <= 2, JSON.stringify(views));
    assert.deepEqual(views[0].log, now.log);
    assert.ok(views.every((v) => v.log.includes('page')), `never without its own action: ${JSON.stringify(views)}`);
    for (let i = 1; i < views.length; i++) assert.notDeepEqual(views[i], views[i - 1], `a call without a change: ${JSON.stringify(views)}`);
    assert.deepEqual(views.at(-1).log, order);
    // Placed before its own action, the other one shows as soon as it arrives: before the
    // acknowledgement (it cannot be the page's action, which it does not equal).
    if (order[0] === 'other') assert.deepEqual(views.map((v) => [v.log, v.pending]), [[['page'], 1], [['other', 'page'], 1]]);
    t.diagnostic(`server order ${JSON.stringify(order)}; the page saw ${JSON.stringify(views.map((v) => [v.log, `${v.pending} pending`]))}; confirmed after ${confirmed.ms.toFixed(1)} ms`);

    // Offline: the server goes, the page queues; what it queued shows at once and is
    // applied exactly once after the reconnect, with no visible step back.
    await ws.close();
    await waitFor(async () => !(await ask(page, { cmd: 'state' })).connected, { what: 'the page saw the server go' });
    const queued = await ask(page, { cmd: 'queue', n: 3 });
    assert.deepEqual([queued.counter, queued.pending], [4, 3], 'queued offline, shown at once');
    ws = server.createWSServer({ host: '127.0.0.1', port });
    await waitFor(() => server.getState().counter === 4, { what: 'the queued actions delivered', timeoutMs: 20000 });
    await waitFor(async () => (await ask(page, { cmd: 'state' })).pending === 0, { what: 'the page acknowledged', timeoutMs: 20000 });
    server.dispatch({ type: 'INC' });
    await waitFor(async () => (await ask(page, { cmd: 'state' })).counter === 5, { what: 'exactly once: 5 after one more' });
    await waitFor(() => other.getState().counter === 5, { what: 'the other client too' });
    const after = (await ask(page, { cmd: 'views' })).views;
    assert.deepEqual(after.map((v) => v.counter), [2, 3, 4, 5], 'shown at each dispatch, then only the next action: no step back, no call without a change');
    const end = await ask(page, { cmd: 'state' });
    assert.deepEqual(end.log, order);
    assert.deepEqual([page.messages.filter((m) => m.divergence), end.errors.filter((e) => /ERR_DIVERGED/.test(e))], [[], []], 'no false divergence');
  } finally {
    page.send({ cmd: 'close' });
    await page.exited;
    await otherConn.disconnect();
    await proxy.close();
    await ws.close();
  }
});

test('optimistic browser client: a refused login rolls back what it queued (shown at once, then gone, reported as rollback), and what it dispatches after', { timeout: 30000 }, async () => {
  const server = createStore(counter, { stderr: sink() });
  const port = await freePort();
  const ws = server.createWSServer({ host: '127.0.0.1', port, logins: { ann: 'secret' } });
  const page = child('browser-client.mjs', [], { env });
  try {
    await page.next((m) => m.ready);
    const shown = await ask(page, { cmd: 'connect', port, login: 'ann', password: 'guess', optimistic: true, queue: 1 });
    assert.deepEqual([shown.counter, shown.pending], [1, 1], 'queued before the login, shown at once');
    const { rollback } = await page.next((m) => m.rollback);
    assert.deepEqual(rollback.action, { type: 'INC' });
    assert.equal(rollback.code, ErrorCode.Auth);
    assert.equal(typeof rollback.message, 'string');
    const st = await ask(page, { cmd: 'state' });
    assert.deepEqual([st.counter, st.error], [0, ErrorCode.Auth], 'gone from the state');
    assert.equal(server.getState().counter, 0);

    // The client stopped: a later dispatch shows, then is rolled back too.
    const again = await ask(page, { cmd: 'queue', n: 1 });
    assert.equal(again.counter, 1);
    await waitFor(() => page.messages.filter((m) => m.rollback).length === 2, { what: 'the second rollback' });
    assert.equal(page.messages.filter((m) => m.rollback)[1].rollback.code, ErrorCode.Auth);
    assert.equal((await ask(page, { cmd: 'state' })).counter, 0);
    assert.deepEqual((await ask(page, { cmd: 'views' })).views.map((v) => v.counter), [1, 0], 'one call to show it, one to take it back');
  } finally {
    page.send({ cmd: 'close' });
    await page.exited;
    await ws.close();
  }
});

// The socket the client opens in the frame-by-frame tests: it keeps what is sent; the
// test plays the server.
class StandIn {
  constructor() {
    this.readyState = 1;
    this.sent = [];
  }
  send(b) {
    this.sent.push(Buffer.from(b));
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
}

// The server's side of the wire, for those tests.
const u8 = (n) => Buffer.from([n]);
const u32 = (n) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const u64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const WELCOME = (epoch, acked) => [u8(2), u64(epoch), u64(acked), u8(0)];
const SNAPSHOT = (seq, state) => [u8(6), u64(seq), str(JSON.stringify(state))];
const ACK = (counter, runs) => [u8(4), u64(counter), u32(runs.length), ...runs.flatMap(([c, s, n]) => [u64(c), u64(s), u32(n)])];
const ACTIONS = (first, actions) => [u8(5), u64(first), u32(actions.length), ...actions.map((a) => str(JSON.stringify(a)))];
const ERROR = (code, message) => [u8(7), str(code), str(message)];

test('optimistic browser client, frame by frame (a stand-in socket): another client\'s action shows before our acknowledgement; ours brought by the stream before its acknowledgement, or an equal one of another client, is not shown twice; dispatches from a subscriber go out in order; an acknowledgement without a place; a fatal error rolls back', { timeout: 30000 }, async () => {
  const lib = await import(path.join(ROOT, 'src', 'js', 'browser', 'index.mjs'));
  const push = (by) => ({ type: 'PUSH', by });

  const saved = globalThis.WebSocket;
  globalThis.WebSocket = StandIn;
  let conn;
  try {
    function pushLog(state = { log: [] }, a) {
      return a.type === 'PUSH' ? { log: [...state.log, a.by] } : state;
    }
    const store = lib.createStore(pushLog);
    store.stderr = sink();
    const views = [];
    const shown = () => store.getState().log.join(',');
    store.subscribe(() => views.push(shown()));
    const rollbacks = [];
    store.on('rollback', (r) => rollbacks.push(r));
    conn = store.createWSClient({ host: 'ws://stand-in', optimistic: true, livenessTimeoutMs: 600000 });
    const c = store._client;
    const socket = c.ws;
    const feed = (parts) => c.frame(socket, Buffer.concat([Buffer.from([1, 0]), ...parts]));
    await feed(WELCOME(7, 0));
    await feed(SNAPSHOT(0, { log: [] }));
    assert.deepEqual(views, [], 'a snapshot equal to what the page holds changes nothing');

    store.dispatch(push('me')); // counter 1
    assert.equal(shown(), 'me');
    // Another client's action, ordered first: shown at once, our action on top.
    await feed(ACTIONS(1, [push('x')]));
    assert.equal(shown(), 'x,me');
    // Ours, in the stream before the acknowledgement that places it: not shown twice.
    await feed(ACTIONS(2, [push('me')]));
    assert.equal(shown(), 'x,me');
    await feed(ACK(1, [[1, 2, 1]]));
    assert.equal(shown(), 'x,me');

    // Another client's action equal to ours (not placed yet): it may be ours, so the
    // rebase waits for the acknowledgement, which says it was not.
    store.dispatch(push('me')); // counter 2
    await feed(ACTIONS(3, [push('me')]));
    assert.equal(shown(), 'x,me,me');
    await feed(ACK(2, [[2, 4, 1]]));
    assert.equal(shown(), 'x,me,me,me');
    const before = views.length;
    await feed(ACTIONS(4, [push('me')]));
    assert.equal(views.length, before, 'the stream bringing just our next action: no call');
    assert.deepEqual(views, ['me', 'x,me', 'x,me', 'x,me,me', 'x,me,me,me']);

    // A subscriber that dispatches in turn: both go out in order, one frame each.
    const unsubscribe = store.subscribe(() => {
      if (store.getState().log.at(-1) === 'ping') store.dispatch(push('pong'));
    });
    store.dispatch(push('ping')); // counter 3, then 4
    unsubscribe();
    assert.equal(shown(), 'x,me,me,me,ping,pong');
    // DISPATCH frames: [length][version][flags][3][first counter: u64][count: u32]...
    const counters = socket.sent.filter((f) => f[6] === 3).flatMap((f) => Array.from({ length: f.readUInt32BE(15) }, (_, i) => Number(f.readBigUInt64BE(7)) + i));
    assert.deepEqual(counters, [1, 2, 3, 4], 'dispatches sent in counter order');
    await feed(ACK(4, [[3, 5, 2]]));
    await feed(ACTIONS(5, [push('ping'), push('pong')]));
    assert.equal(shown(), 'x,me,me,me,ping,pong');

    // An acknowledgement that covers an action of ours without saying where it went (the
    // server kept too few runs): its place is unknown, so it is no longer replayed; the
    // stream shows it when it gets there.
    store.dispatch(push('late')); // counter 5
    assert.equal(shown(), 'x,me,me,me,ping,pong,late');
    await feed(ACK(5, []));
    assert.equal(shown(), 'x,me,me,me,ping,pong');
    await feed(ACTIONS(7, [push('late')]));
    assert.equal(shown(), 'x,me,me,me,ping,pong,late');

    // A fatal error: what the server will never order goes, reported.
    store.dispatch(push('doomed')); // counter 6
    assert.equal(shown(), 'x,me,me,me,ping,pong,late,doomed');
    await feed(ERROR(ErrorCode.Banned, 'banned for the test'));
    assert.equal(shown(), 'x,me,me,me,ping,pong,late');
    assert.deepEqual(rollbacks, [{ action: push('doomed'), code: ErrorCode.Banned, message: 'banned for the test' }]);
  } finally {
    await conn?.disconnect();
    globalThis.WebSocket = saved;
  }
});

for (const optimistic of [false, true]) {
  test(`the browser client${optimistic ? ' (optimistic)' : ''}, frame by frame: a resync's answer (the state as of an earlier point) is brought forward by the actions ordered after that point, not dropped`, { timeout: 30000 }, async () => {
    const lib = await import(path.join(ROOT, 'src', 'js', 'browser', 'index.mjs'));
    const push = (by) => ({ type: 'PUSH', by });
    const RESYNC = { type: '@@redux-cluster/RESYNC', by: 'x' };
    const sync = (log, at) => ({ type: 'REDUX_CLUSTER_SYNC', payload: { log }, ...(at === undefined ? {} : { at }) });
    const saved = globalThis.WebSocket;
    globalThis.WebSocket = StandIn;
    let conn;
    try {
      const store = lib.createStore(function pushLog(state = { log: [] }, a) {
        return a.type === 'PUSH' ? { log: [...state.log, a.by] } : state;
      });
      store.stderr = sink();
      conn = store.createWSClient({ host: 'ws://stand-in', optimistic, livenessTimeoutMs: 600000 });
      const c = store._client;
      const feed = (parts) => c.frame(c.ws, Buffer.concat([Buffer.from([1, 0]), ...parts]));
      const shown = () => store.getState().log.join(',');
      await feed(WELCOME(7, 0));
      // A RESYNC at #2; the answer, the state as of #2 ("a"), lands at #5, after b and c.
      await feed(ACTIONS(1, [push('a'), RESYNC, push('b'), push('c'), sync(['a'], 2), push('d')]));
      assert.equal(shown(), 'a,b,c,d');
      // Across frames, with a restored backup (a SYNC without `at`) among the actions.
      await feed(ACTIONS(7, [RESYNC, push('e')]));
      await feed(ACTIONS(9, [sync(['r']), push('f')]));
      await feed(ACTIONS(11, [sync(['a', 'b', 'c', 'd'], 7), push('g')]));
      assert.equal(shown(), 'r,f,g', 'the restore, and what followed it, kept');
      // A SYNC as of a point before anything was kept (no RESYNC seen): taken as it is.
      await feed(ACTIONS(13, [push('h'), sync(['z'], 12)]));
      assert.equal(shown(), 'z');
      // Two RESYNCs before the first answer lands: the second's answer is brought forward too.
      await feed(ACTIONS(15, [RESYNC, push('i'), RESYNC, push('j'), sync(['z', 'i'], 16), push('k')]));
      assert.equal(shown(), 'z,i,j,k');
      await feed(ACTIONS(21, [sync(['z', 'i', 'j'], 18)]));
      assert.equal(shown(), 'z,i,j,k');
    } finally {
      await conn?.disconnect();
      globalThis.WebSocket = saved;
    }
  });
}
