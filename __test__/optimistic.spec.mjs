// Optimistic updates (createClient({ optimistic: true })) over a link with latency: the
// client's own actions are visible at once; two clients' conflicting actions each show
// their own first and both end on the server's order; offline actions show at once and
// land once each; a refused action is rolled back and reported; subscribers are called
// once per visible change. The server runs in another process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore, ErrorCode, reducers } from 'redux-cluster-rs';
import { ask, child, freePort, sink, slowLink, waitFor } from './helpers.mjs';

const LATENCY_MS = 60;

/** The fixture's reducer, by name: a list of what was added, in order. */
function listed(state = { items: [] }, action) {
  return action.type === 'ADD' ? { items: [...state.items, action.x] } : state;
}


async function serverProcess(t, port, extra = {}) {
  const s = child('guard-agent.mjs', ['server', JSON.stringify({ host: '127.0.0.1', port, ...extra }), JSON.stringify({ reducer: 'listed' })]);
  t.after(() => s.kill());
  await s.next((m) => m.ready);
  return s;
}

test('two clients dispatch conflicting actions at once over a slow link: each sees its own at once, both end on the server order', async (t) => {
  const port = await freePort();
  const s = await serverProcess(t, port);
  const link = await slowLink(port, LATENCY_MS);
  t.after(() => link.close());
  const a = createStore(listed, { stderr: sink() });
  const b = createStore(listed, { stderr: sink() });
  const ca = a.createClient({ host: '127.0.0.1', port: link.port, optimistic: true });
  const cb = b.createClient({ host: '127.0.0.1', port: link.port, optimistic: true });
  t.after(() => Promise.all([ca.disconnect(0), cb.disconnect(0)]));
  await waitFor(() => ca.connected && cb.connected, { what: 'both connected' });
  let calls = 0;
  a.subscribe(() => calls++);

  a.dispatch({ type: 'ADD', x: 'a' });
  b.dispatch({ type: 'ADD', x: 'b' });
  // At once, before any round trip could have happened.
  assert.deepEqual(a.getState().items, ['a']);
  assert.deepEqual(b.getState().items, ['b']);
  assert.equal(calls, 1, 'one visible change, one call');

  let server;
  await waitFor(async () => {
    server = (await ask(s, { cmd: 'state' })).state.items;
    return server.length === 2 && a.getState().items.length === 2 && b.getState().items.length === 2;
  }, { what: 'everyone on both actions', show: () => [server, a.getState(), b.getState()] });
  assert.deepEqual(a.getState().items, server, "a on the server's order");
  assert.deepEqual(b.getState().items, server, "b on the server's order");
  assert.ok(calls <= 3, `${calls} calls: the own action, at most the other's arrival and one rebase`);
});

test("a client's own action confirmed with nothing in between: no second call, and dispatchAsync still resolves after", async (t) => {
  const port = await freePort();
  await serverProcess(t, port);
  const link = await slowLink(port, LATENCY_MS);
  t.after(() => link.close());
  const a = createStore(listed, { stderr: sink() });
  const ca = a.createClient({ host: '127.0.0.1', port: link.port, optimistic: true });
  t.after(() => ca.disconnect(0));
  await waitFor(() => ca.connected, { what: 'connected' });
  await new Promise((r) => setTimeout(r, LATENCY_MS * 3)); // the connect's snapshot is in
  let calls = 0;
  a.subscribe(() => calls++);
  const done = a.dispatchAsync({ type: 'ADD', x: 1 });
  assert.deepEqual(a.getState().items, [1]);
  const { seq } = await done;
  assert.equal(seq, 1);
  assert.deepEqual(a.getState().items, [1]);
  assert.equal(calls, 1, 'the confirmation changed nothing visible');
});

test('offline: queued actions show at once; when the server comes, each lands once, in its order', async (t) => {
  const port = await freePort();
  const a = createStore(listed, { stderr: sink() });
  const ca = a.createClient({ host: '127.0.0.1', port, optimistic: true, reconnectInitialMs: 50, reconnectMaxMs: 100 });
  t.after(() => ca.disconnect(0));
  for (let i = 0; i < 5; i++) a.dispatch({ type: 'ADD', x: i });
  assert.deepEqual(a.getState().items, [0, 1, 2, 3, 4], 'visible while nothing answers');
  const s = await serverProcess(t, port);
  s.send({ cmd: 'dispatch', n: 0 });
  let server;
  await waitFor(async () => {
    server = (await ask(s, { cmd: 'state' })).state.items;
    return server.length === 5 && ca.pending === 0;
  }, { what: 'the 5 on the server', show: () => [server, ca.pending] });
  assert.deepEqual(server, [0, 1, 2, 3, 4], 'each once, in dispatch order');
  await waitFor(() => a.getState().items.length === 5, { what: 'the client settled' });
  assert.deepEqual(a.getState().items, [0, 1, 2, 3, 4]);
});

test("a refused action is rolled back and reported ('rollback' with the code)", async (t) => {
  const port = await freePort();
  await serverProcess(t, port, { logins: { ann: 'secret' } });
  const a = createStore(listed, { stderr: sink() });
  const rolled = [];
  a.on('rollback', (r) => rolled.push(r));
  const ca = a.createClient({ host: '127.0.0.1', port, login: 'ann', password: 'wrong', optimistic: true });
  t.after(() => ca.disconnect(0));
  a.dispatch({ type: 'ADD', x: 'never' });
  assert.deepEqual(a.getState().items, ['never']);
  await waitFor(() => rolled.length === 1, { what: 'the rollback' });
  assert.equal(rolled[0].code, ErrorCode.Auth);
  assert.deepEqual(rolled[0].action, { type: 'ADD', x: 'never' });
  assert.deepEqual(a.getState().items, [], 'gone from the visible state');
});

test('optimistic needs a JS reducer, and is a boolean', () => {
  const engine = createStore(reducers.patch({}), { stderr: sink() });
  assert.throws(() => engine.createClient({ host: '127.0.0.1', port: 1, optimistic: true }), (e) => e.code === ErrorCode.InvalidConfig);
  const js = createStore(listed, { stderr: sink() });
  assert.throws(() => js.createClient({ host: '127.0.0.1', port: 1, optimistic: 'yes' }), (e) => e.code === ErrorCode.InvalidConfig);
});
