// The divergence guard with real processes: a reducer that is not deterministic, or that
// mutates a state two stores share, is caught within one check interval on a client, a
// node:cluster worker and a follower server of a replicated store; the replica reports
// it (`divergence` event, ERR_DIVERGED on stderr) and takes the authority's state, losing
// none of its queued actions. A deterministic reducer never raises it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createStore, ErrorCode } from 'redux-cluster-rs';
import { ask, child, freePort, oneLeader, sink, waitFor } from './helpers.mjs';

const GUARD = { everyActions: 1, everyMs: 100 };

function agent(role, addr, opts) {
  return child('guard-agent.mjs', [role, JSON.stringify(addr), JSON.stringify(opts)]);
}

/** A reducer named as the fixture's (stores sync by the reducer's name). */
function named(fn) {
  return Object.defineProperty(fn, 'name', { value: 'guarded' });
}
const random = named((s = { n: 0, r: 0 }, a) => (a.type === 'INC' ? { n: s.n + 1, r: Math.random() } : s));
const counting = named((s = { n: 0 }, a) => (a.type === 'INC' ? { n: s.n + 1 } : s));

test('a client whose reducer calls Math.random() is caught within one check, reports where, and takes the authority state', async (t) => {
  const lines = sink();
  const server = createStore(random, { guard: GUARD, stderr: lines });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const c = agent('client', { host: '127.0.0.1', port: srv.port }, { reducer: 'random', guard: GUARD });
  t.after(async () => {
    c.kill();
    await srv.close();
  });
  await c.next((m) => m.ready);
  const t0 = Date.now();
  c.send({ cmd: 'dispatch', n: 5 });
  const d = (await c.next((m) => m.divergence, 10000)).divergence;
  const took = Date.now() - t0;
  assert.equal(typeof d.seq, 'number');
  assert.notEqual(d.expected, d.actual);
  assert.match(d.expected, /^[0-9a-f]{16}$/);
  assert.equal(d.path, '/r', 'the first place that differs');
  assert.ok(c.messages.some((m) => m.stderr && m.stderr.endsWith(`[${ErrorCode.Diverged}]`)), 'said on stderr with its code');
  // Caught within one interval (plus the round trips), not after many.
  assert.ok(took < GUARD.everyMs * 20, `caught after ${took} ms`);
  // The replica now holds the authority's state, and none of its 5 actions was lost.
  let last;
  await waitFor(async () => {
    last = (await ask(c, { cmd: 'state' })).state;
    return last.n === 5 && last.r === server.getState().r;
  }, { what: "the client on the server's state", show: () => [last, server.getState()] });
  // The server itself (the authority) never diverges from itself.
  assert.equal(lines.lines.filter((l) => l.includes(ErrorCode.Diverged)).length, 0);
});

test("guard.onDivergence 'report' keeps the diverged state and only reports; a deterministic reducer is never flagged", async (t) => {
  const server = createStore(random, { guard: GUARD, stderr: sink() });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const reporter = agent('client', { host: '127.0.0.1', port: srv.port }, { reducer: 'random', guard: { ...GUARD, onDivergence: 'report' } });
  const fine = createStore(counting, { guard: GUARD, stderr: sink() });
  const fineServer = fine.createServer({ host: '127.0.0.1', port: 0 });
  const steady = agent('client', { host: '127.0.0.1', port: fineServer.port }, { reducer: 'counter', guard: GUARD });
  t.after(async () => {
    reporter.kill();
    steady.kill();
    await srv.close();
    await fineServer.close();
  });
  await reporter.next((m) => m.ready);
  await steady.next((m) => m.ready);
  reporter.send({ cmd: 'dispatch', n: 3 });
  const d = (await reporter.next((m) => m.divergence)).divergence;
  assert.equal(d.path, null, 'no authority state came to compare with');
  const s = (await ask(reporter, { cmd: 'state' })).state;
  assert.notEqual(s.r, server.getState().r, 'kept as it was');
  // 200 actions and many checks on a deterministic reducer: never a divergence.
  steady.send({ cmd: 'dispatch', n: 200 });
  await steady.next((m) => m.dispatched);
  const checks = fine.getState().n; // each of the 200 went through a check interval
  await waitFor(async () => (await ask(steady, { cmd: 'state' })).state.n === 200, { what: 'the steady client at 200' });
  await new Promise((r) => setTimeout(r, GUARD.everyMs * 3)); // the last checks' DIGESTs arrive
  assert.equal(checks, 200);
  assert.equal(steady.messages.filter((m) => m.divergence).length, 0);
  assert.equal(steady.messages.filter((m) => m.stderr && m.stderr.includes(ErrorCode.Diverged)).length, 0);
});

test('a reducer that mutates a state two stores of one process share is caught on a replica elsewhere', async (t) => {
  // The server and a second store of its process (a client of it) both push into the
  // module's one array for each action; a client in another process pushes once.
  const s = agent('server', { host: '127.0.0.1', port: 0 }, { reducer: 'shared', guard: GUARD, sharedClient: true });
  t.after(() => s.kill());
  const { port } = await s.next((m) => m.ready);
  const c = agent('client', { host: '127.0.0.1', port }, { reducer: 'shared', guard: GUARD });
  t.after(() => c.kill());
  await c.next((m) => m.ready);
  s.send({ cmd: 'dispatch', n: 3 });
  const d = (await c.next((m) => m.divergence)).divergence;
  assert.match(d.path, /^\/list/);
});

test('a node:cluster worker whose reducer calls Math.random() is caught and resynced by its primary', async (t) => {
  const p = agent('primary', { host: '127.0.0.1', port: 0 }, { reducer: 'random', guard: GUARD });
  t.after(() => p.kill());
  await p.next((m) => m.worker && m.worker.ready);
  p.send({ toWorker: { cmd: 'dispatch', n: 5 } });
  const d = (await p.next((m) => m.worker && m.worker.divergence)).worker.divergence;
  assert.equal(d.path, '/r');
});

/** Three replicated servers whose reducer calls Math.random(), with their leader's index. */
async function randomGroup(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-guard-'));
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `g${i}@127.0.0.1:${p}`);
  const servers = [0, 1, 2].map((i) =>
    agent('replica', { port: ports[i], cluster: { nodeName: `g${i}`, seeds, dataDir: path.join(dir, `g${i}`), heartbeatInterval: 50, electionTimeout: 150 } }, { reducer: 'random', guard: GUARD })
  );
  t.after(() => {
    for (const k of servers) k.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await Promise.all(servers.map((k) => k.next((m) => m.ready)));
  return { servers, ports, li: Number((await oneLeader(servers)).slice(1)) };
}

test('a follower server of a replicated store whose reducer calls Math.random() is caught and resynced from the leader', { timeout: 60000 }, async (t) => {
  const { servers, li } = await randomGroup(t);
  servers[li].send({ cmd: 'dispatch', n: 5 });
  const followers = servers.filter((_, i) => i !== li);
  const found = await waitFor(() => followers.find((k) => k.messages.some((m) => m.divergence)), { timeoutMs: 20000, what: 'a follower reporting the divergence' });
  // Where it differs: '/r' (the leader's answer is brought forward by the INCs ordered
  // while it went through the group, so it holds as many as the follower).
  assert.equal(found.messages.find((m) => m.divergence).divergence.path, '/r');
  assert.equal(servers[li].messages.filter((m) => m.divergence).length, 0, 'the leader is the reference');
  // Every server ends on the leader's state.
  let states;
  await waitFor(async () => {
    states = (await Promise.all(servers.map((k) => ask(k, { cmd: 'state' })))).map((x) => x.state);
    return states.every((s) => s.n === 5 && s.r === states[li].r);
  }, { timeoutMs: 20000, what: "every server on the leader's state", show: () => states });
});

test('resyncs under load lose no action: followers and clients (one optimistic) resynced again and again while actions are in flight all end with every one', { timeout: 120000 }, async (t) => {
  const { servers, li, ports } = await randomGroup(t);
  const follower = servers[(li + 1) % 3];
  const client = agent('client', { host: '127.0.0.1', port: ports[(li + 2) % 3] }, { reducer: 'random', guard: GUARD });
  const eager = agent('client', { host: '127.0.0.1', port: ports[(li + 1) % 3], optimistic: true }, { reducer: 'random', guard: GUARD });
  t.after(() => [client, eager].forEach((k) => k.kill()));
  await client.next((m) => m.ready);
  await eager.next((m) => m.ready);
  // For 3 s, the leader and the clients dispatch an INC every 10 or 20 ms without waiting,
  // so some are always in flight; every replica's Math.random() differs from the leader's,
  // so each check finds the followers and the client diverged, and the leader answers a
  // resync about once a second. A follower calls sendtoall() too (a resync it asks the
  // leader for). Each answer is the leader's state as of what it had applied; the INCs
  // ordered while it went through the group must be applied on top of it, not dropped.
  servers[li].send({ cmd: 'pace', n: 300, everyMs: 10 });
  client.send({ cmd: 'pace', n: 300, everyMs: 10 });
  eager.send({ cmd: 'pace', n: 150, everyMs: 20 });
  setTimeout(() => follower.send({ cmd: 'sendtoall', id: 1 }), 1500);
  // And a client asks for the state every 5 ms (as a hostile one could): answers held
  // back within a second of the last go out later, and still lose nothing.
  client.send({ cmd: 'ask', n: 500, everyMs: 5 });
  for (const k of [servers[li], client, eager]) {
    const done = await k.next((m) => m.dispatched, 60000);
    assert.equal(done.failed, 0, 'every dispatchAsync resolved');
  }
  const all = [...servers, client, eager];
  const resynced = all.filter((k) => k.messages.some((m) => m.divergence)).length;
  assert.ok(resynced >= 3, `resyncs happened during the load (${resynced} replicas reported a divergence)`);
  let states;
  await waitFor(async () => {
    states = (await Promise.all(all.map((k) => ask(k, { cmd: 'state' })))).map((x) => x.state);
    return states.every((s) => s.n === 750 && s.r === states[li].r);
  }, { timeoutMs: 30000, what: 'every server and client holding all 750 INCs, on the same state', show: () => states });
});

test("a resync's answer (the state as of an earlier point) is brought forward by the actions ordered after that point: a Node replica and an optimistic one", async () => {
  const require = createRequire(import.meta.url);
  const { Speculation } = require('../src/js/store/optimistic.js');
  const pushLog = named((state = { log: [] }, a) => (a.type === 'PUSH' ? { log: [...state.log, a.by] } : state));
  const push = (by) => ({ type: 'PUSH', by });
  const RESYNC = { type: '@@redux-cluster/RESYNC', by: 'x' };
  const sync = (log, at) => ({ type: 'REDUX_CLUSTER_SYNC', payload: { log }, ...(at === undefined ? {} : { at }) });
  // The same stream as the browser client's test (browser.spec.mjs), in three pulls.
  const pulls = [
    [1, [push('a'), RESYNC, push('b'), push('c'), sync(['a'], 2), push('d')], 'a,b,c,d'],
    [7, [RESYNC, push('e')], 'a,b,c,d,e'],
    [9, [sync(['r']), push('f')], 'r,f'],
    [11, [sync(['a', 'b', 'c', 'd'], 7), push('g')], 'r,f,g'],
    [13, [push('h'), sync(['z'], 12)], 'z'],
    // Two RESYNCs before the first answer lands: the second's answer is brought forward too.
    [15, [RESYNC, push('i'), RESYNC, push('j'), sync(['z', 'i'], 16), push('k')], 'z,i,j,k'],
    [21, [sync(['z', 'i', 'j'], 18)], 'z,i,j,k'],
  ];
  const replica = createStore(pushLog, { stderr: sink() });
  const spec = new Speculation(createStore(pushLog, { stderr: sink() })._state, { emit() {} });
  // Past its bound (100,000 actions) nothing is kept, alike everywhere; a RESYNC met
  // after that (a held-back answer's own) keeps again, and its answer is whole.
  const { Replay } = require('../src/js/store/replay.js');
  const r = new Replay();
  r.mark(1);
  for (let i = 2; i <= 100002; i++) r.keep(i, push('x'));
  assert.equal(r.active, false);
  r.mark(100003);
  r.keep(100004, push('y'));
  const reduce = (st, a) => (a.type === 'REDUX_CLUSTER_SYNC' ? a.payload : pushLog(st, a));
  assert.deepEqual(r.land(sync(['w'], 100003), 100005, reduce), { log: ['w', 'y'] });
  assert.equal(r.active, false);
  for (const [first, actions, expected] of pulls) {
    replica._state.apply(actions, first - 1);
    assert.equal(replica.getState().log.join(','), expected, `a replica, after #${first + actions.length - 1}`);
    spec.take({ actions: JSON.stringify(actions), firstSeq: first }, first - 1, JSON.parse);
    assert.equal(spec.confirmed.log.join(','), expected, `an optimistic client, after #${first + actions.length - 1}`);
  }
});

test('guard options are checked; the guard action types are not for users', () => {
  for (const bad of [{ everyActions: 0 }, { everyMs: 1 }, { onDivergence: 'ignore' }, { every: 5 }, 'on']) {
    assert.throws(() => createStore(counting, { guard: bad }), (e) => e.code === ErrorCode.InvalidConfig, JSON.stringify(bad));
  }
  const s = createStore(counting, { guard: false });
  assert.throws(() => s.dispatch({ type: '@@redux-cluster/DIGEST', seq: 1, digest: 'x' }), (e) => e.code === ErrorCode.InvalidAction);
});

test("a reducer in the engine: the checkpoints never reach it, and a deterministic one is never flagged", async (t) => {
  const { reducers } = await import('redux-cluster-rs');
  const spec = () => reducers.patch({ items: [] });
  const serverLines = sink();
  const server = createStore(spec(), { guard: GUARD, stderr: serverLines });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const lines = sink();
  const client = createStore(spec(), { guard: GUARD, stderr: lines });
  const c = client.createClient({ host: '127.0.0.1', port: srv.port });
  const diverged = [];
  client.on('divergence', (d) => diverged.push(d));
  t.after(async () => {
    await c.disconnect(0);
    await srv.close();
  });
  for (let i = 0; i < 30; i++) {
    await client.dispatchAsync({ type: 'PATCH', ops: [{ op: 'add', path: '/items/-', value: i }] });
    await new Promise((r) => setTimeout(r, 10)); // spread over several check intervals
  }
  await waitFor(() => client.getState().items.length === 30 && server.getState().items.length === 30, { what: 'both at 30' });
  // Checkpoints were ordered beside the 30 actions (a CHECK and a DIGEST each)...
  assert.ok(srv.metrics().ordered >= 32, `${srv.metrics().ordered} ordered`);
  await new Promise((r) => setTimeout(r, GUARD.everyMs * 3));
  // ...and neither replica reported a refusal or a divergence (that the checkpoints never
  // reach a reducer at all is tested in the engine, src/reducer/mod.rs).
  assert.deepEqual([...lines.lines, ...serverLines.lines].filter((l) => l.includes(ErrorCode.Reducer) || l.includes(ErrorCode.Diverged)), []);
  assert.deepEqual(diverged, []);
  assert.deepEqual(client.getState(), server.getState());
});
