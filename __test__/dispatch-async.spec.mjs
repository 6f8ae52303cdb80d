// store.dispatchAsync: resolves { seq } once the action is ordered and applied here;
// rejects with a code when it cannot be. Standalone, server and client stores, an
// acknowledgement lost with its connection, and every way it can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createStore } from 'redux-cluster-rs';
import { child, counter, freePort, waitFor } from './helpers.mjs';

function log(state = { items: [] }, action) {
  return action.type === 'ADD' ? { items: [...state.items, action.who] } : state;
}

test('a standalone store and a server store resolve at once with the position of the action', async () => {
  const solo = createStore(counter);
  assert.deepEqual(await solo.dispatchAsync({ type: 'INC' }), { seq: 1 });
  assert.deepEqual(await solo.dispatchAsync({ type: 'INC' }), { seq: 2 });
  assert.equal(solo.getState().counter, 2);
  await assert.rejects(solo.dispatchAsync({ nope: 1 }), { code: 'ERR_INVALID_ACTION' });
  await assert.rejects(solo.dispatchAsync('INC'), { code: 'ERR_INVALID_ACTION' });
  await assert.rejects(solo.dispatchAsync({ type: 'INC' }, { timeout: -1 }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(solo.dispatchAsync({ type: 'INC' }, 5), { code: 'ERR_INVALID_ARGUMENT' });
  assert.equal(solo.getState().counter, 2, 'refused actions changed nothing');

  const store = createStore(counter);
  const server = store.createServer({ host: '127.0.0.1', port: 0 });
  try {
    const { seq } = await store.dispatchAsync({ type: 'INC' });
    assert.equal(seq, 1);
    assert.equal(store.getState().counter, 1);
  } finally {
    await server.close();
  }
});

test('on clients: every action gets its own place in the one order, and is applied here when the promise resolves', { timeout: 30000 }, async () => {
  const store = createStore(log);
  const server = store.createServer({ host: '127.0.0.1', port: 0 });
  const a = createStore(log);
  const b = createStore(log);
  const ca = a.createClient({ host: '127.0.0.1', port: server.port });
  const cb = b.createClient({ host: '127.0.0.1', port: server.port });
  try {
    const N = 300;
    // Interleaved: both clients and the server dispatch at once.
    const results = await Promise.all([
      ...Array.from({ length: N }, (_, i) => a.dispatchAsync({ type: 'ADD', who: `a${i}` }).then((r) => ['a', i, r.seq, a.getState().items.length])),
      ...Array.from({ length: N }, (_, i) => b.dispatchAsync({ type: 'ADD', who: `b${i}` }).then((r) => ['b', i, r.seq, b.getState().items.length])),
      ...Array.from({ length: 20 }, (_, i) => store.dispatchAsync({ type: 'ADD', who: `s${i}` }).then((r) => ['s', i, r.seq, store.getState().items.length])),
    ]);
    const seqs = results.map((r) => r[2]).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: 2 * N + 20 }, (_, i) => i + 1), 'each action has its own seq, none missing');
    // The server's own replica applies what its clients dispatched when its JS side
    // pulls it (a wake-up later than the engine's ordering): wait for all of it.
    await waitFor(() => store.getState().items.length === 2 * N + 20, { what: "the server's replica applied everything" });
    const order = store.getState().items;
    for (const [who, i, seq, seen] of results) {
      assert.equal(order[seq - 1], `${who}${i}`, `seq ${seq} is where ${who}${i} sits in the server's order`);
      assert.ok(seen >= seq, `${who}${i}: applied here when resolved (${seen} items, seq ${seq})`);
    }
    // A client's own actions resolve in the order it dispatched them.
    const aSeqs = results.filter((r) => r[0] === 'a').map((r) => r[2]);
    assert.deepEqual(aSeqs, [...aSeqs].sort((x, y) => x - y));
  } finally {
    await Promise.all([ca.disconnect(), cb.disconnect()]);
    await server.close();
  }
});

// A proxy that, on its first connection only, swallows everything the server sends
// after the client's first Dispatch went through (so the acknowledgement is lost), then
// cuts both sides. Later connections pass through.
async function ackEater(serverPort) {
  let first = true;
  const sockets = new Set();
  const proxy = net.createServer((c) => {
    const s = net.connect(serverPort, '127.0.0.1');
    sockets.add(c).add(s);
    const eat = first;
    first = false;
    let dispatched = false;
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      if (eat) {
        // Frames: [u32 len][version][flags][payload]; payload[0] is the message tag.
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 6 && buf.length >= 4 + buf.readUInt32BE(0)) {
          if (buf[6] === 3) dispatched = true; // DISPATCH
          buf = buf.subarray(4 + buf.readUInt32BE(0));
        }
        if (dispatched) setTimeout(() => { c.destroy(); s.destroy(); }, 300);
      }
      s.write(d);
    });
    s.on('data', (d) => {
      if (!dispatched) c.write(d);
    });
    for (const x of [c, s]) x.on('error', () => {}).on('close', () => { c.destroy(); s.destroy(); });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  return { port: proxy.address().port, close: () => { for (const x of sockets) x.destroy(); return new Promise((r) => proxy.close(r)); } };
}

test('an acknowledgement lost with its connection: the reconnect tells where the action went, and it is applied once', { timeout: 30000 }, async () => {
  const store = createStore(log);
  const server = store.createServer({ host: '127.0.0.1', port: 0 });
  const proxy = await ackEater(server.port);
  const replica = createStore(log);
  const client = replica.createClient({ host: '127.0.0.1', port: proxy.port });
  try {
    await waitFor(() => replica.connected, { what: 'the client connected' });
    const { seq } = await replica.dispatchAsync({ type: 'ADD', who: 'once' }, { timeout: 20000 });
    assert.equal(seq, 1);
    assert.deepEqual(replica.getState().items, ['once']);
    assert.deepEqual(store.getState().items, ['once'], 'the resend was not applied twice');
    const next = await replica.dispatchAsync({ type: 'ADD', who: 'next' });
    assert.equal(next.seq, 2);
  } finally {
    await client.disconnect();
    await proxy.close();
    await server.close();
  }
});

test('rejections: the queue limit, a timeout while the server is away, and a disconnect', { timeout: 30000 }, async () => {
  const port = await freePort(); // nobody listens yet
  const replica = createStore(counter, { queueLimit: 3, reconnectInitialMs: 20, reconnectMaxMs: 50 });
  const client = replica.createClient({ host: '127.0.0.1', port });
  const waiting = [replica.dispatchAsync({ type: 'INC' }, { timeout: 200 })];
  waiting.push(replica.dispatchAsync({ type: 'INC' }), replica.dispatchAsync({ type: 'INC' }));
  await assert.rejects(replica.dispatchAsync({ type: 'INC' }), { code: 'ERR_QUEUE_FULL' });
  await assert.rejects(waiting[0], (e) => e.code === 'ERR_TIMEOUT' && /may still be applied/.test(e.message));
  // The server comes up: the two still waiting are applied and resolve, and the one that
  // timed out is applied too (a timeout does not take an action back).
  const store = createStore(counter);
  const server = store.createServer({ host: '127.0.0.1', port });
  try {
    const done = await Promise.all(waiting.slice(1));
    assert.deepEqual(done.map((r) => r.seq).sort(), [2, 3]);
    await waitFor(() => replica.getState().counter === 3, { what: 'all three applied' });

    // Disconnected with an action that cannot be acknowledged in time: ERR_CLOSED.
    await server.close();
    const late = replica.dispatchAsync({ type: 'INC' });
    await client.disconnect(50);
    await assert.rejects(late, { code: 'ERR_CLOSED' });
  } finally {
    await client.disconnect();
    await server.close();
  }
});

test('a client refused for its credentials rejects what waits with ERR_AUTH', { timeout: 30000 }, async () => {
  const store = createStore(counter);
  const server = store.createServer({ host: '127.0.0.1', port: 0, logins: { app: 'right' } });
  const replica = createStore(counter, { stderr: () => {} });
  const client = replica.createClient({ host: '127.0.0.1', port: server.port, login: 'app', password: 'wrong' });
  try {
    await assert.rejects(replica.dispatchAsync({ type: 'INC' }), { code: 'ERR_AUTH' });
  } finally {
    await client.disconnect();
    await server.close();
  }
});

test('node:cluster workers: dispatchAsync before the primary is even reached resolves once each action is ordered', { timeout: 60000 }, async () => {
  const k = child('ipc-async.mjs');
  const out = await k.next((m) => 'ok' in m, 45000);
  assert.ok(out.ok, out.error);
  const all = out.results.flatMap((r) => r.seqs).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 100 }, (_, i) => i + 1), 'every action has its own seq');
  assert.ok(out.results.every((r) => r.applied), 'applied in the worker when resolved');
  assert.equal(out.primary, 100);
  await k.exited;
});
