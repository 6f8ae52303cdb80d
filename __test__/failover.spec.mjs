// createClient({ servers: [...] }): a client connects to the first server that answers
// and moves to the next when its server dies, without waiting out a backoff between
// servers. (With one server per store the servers are independent: the client takes the
// new server's state, and what it dispatches from then on goes there.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore } from 'redux-cluster-rs';
import { child, counter, freePort, waitFor } from './helpers.mjs';

async function serverProcess() {
  const port = await freePort();
  const k = child('agent.mjs', ['server', JSON.stringify({ host: '127.0.0.1', port })]);
  await k.next((m) => m.listening);
  k.port = port;
  return k;
}

async function stateOf(k) {
  const id = Math.random();
  k.send({ cmd: 'state', id });
  return (await k.next((m) => m.id === id)).state;
}

test('servers: a dead first server is skipped at once; kill -9 of the current one fails over to the next', { timeout: 60000 }, async () => {
  const dead = await freePort();
  const a = await serverProcess();
  const b = await serverProcess();
  a.send({ cmd: 'dispatch', n: 5 });
  b.send({ cmd: 'dispatch', n: 100 });
  await Promise.all([a.next((m) => m.dispatched), b.next((m) => m.dispatched)]);

  // A backoff of 20 s would make any wait between servers show.
  const replica = createStore(counter, { reconnectInitialMs: 20000, reconnectMaxMs: 20000, stderr: () => {} });
  const servers = [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }];
  const client = replica.createClient({ servers });
  try {
    assert.deepEqual(client.servers, servers);
    await waitFor(() => replica.connected && replica.getState().counter === 5, { timeoutMs: 10000, what: 'connected to a past the dead one' });
    assert.deepEqual(client.server, { host: '127.0.0.1', port: a.port });
    assert.deepEqual(await replica.dispatchAsync({ type: 'INC', by: 10 }), { seq: 6 });

    // kill -9 of a: the client goes on to b, takes b's state, and its dispatches go there.
    await a.kill('SIGKILL');
    await waitFor(() => replica.connected && client.server.port === b.port, { timeoutMs: 10000, what: 'failed over to b' });
    await waitFor(() => replica.getState().counter === 100, { what: "b's state" });
    const queued = replica.dispatchAsync({ type: 'INC', by: 1 });
    assert.equal((await queued).seq, 101);
    assert.equal((await stateOf(b)).counter, 101, 'applied once on b');
  } finally {
    await client.disconnect();
    await Promise.all([a.kill(), b.kill()]);
  }
});

test('servers: invalid lists are refused with ERR_INVALID_CONFIG', () => {
  const store = createStore(counter);
  for (const settings of [
    { servers: [] },
    { servers: 'localhost:1' },
    { servers: [null] },
    { servers: [{ host: 1, port: 2 }] },
    { servers: [{ host: '127.0.0.1', port: 70000 }] },
    { servers: [{ host: '127.0.0.1', port: 1 }], port: 2 },
  ]) {
    assert.throws(() => store.createClient(settings), { code: 'ERR_INVALID_CONFIG' }, JSON.stringify(settings));
  }
  assert.deepEqual(store.role, ['master'], 'nothing was started');
});
