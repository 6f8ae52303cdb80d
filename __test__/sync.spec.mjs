// Servers and clients over TCP and Unix sockets: initial state, ordering, exactly-once
// delivery, queues, reconnects, modes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, tmpSock, freePort, sink, child } from './helpers.mjs';

const state = (s) => () => s.getState();

test('a TCP client gets the current state, then stays in sync both ways', async () => {
  const server = createStore(counter);
  server.dispatch({ type: 'INC', by: 5 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  assert.ok(srv.port > 0, 'port 0 binds a real port');
  assert.deepEqual(server.role, ['master', 'server']);
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  assert.deepEqual(client.role, ['master', 'client']);
  await waitFor(() => client.getState().counter === 5 && client.connected, { what: 'initial state', show: state(client) });
  server.dispatch({ type: 'INC' });
  await waitFor(() => client.getState().counter === 6, { what: 'server dispatch on client', show: state(client) });
  client.dispatch({ type: 'INC', by: 10 });
  // A client's dispatch is applied when it comes back in order, not before.
  assert.equal(client.getState().counter, 6);
  await waitFor(() => server.getState().counter === 16 && client.getState().counter === 16, { what: 'client dispatch everywhere' });
  assert.throws(() => client.createClient({ port: srv.port }), {
    message: 'One storage cannot be connected to two servers at the same time.',
  });
  const closing = cl.disconnect();
  assert.throws(() => client.dispatch({ type: 'INC' }), { code: 'ERR_CLOSED' });
  await closing;
  await cl.disconnect(); // idempotent
  // Afterwards the store works locally.
  client.dispatch({ type: 'INC' });
  assert.equal(client.getState().counter, 17);
  assert.deepEqual(client.role, ['master']);
  assert.throws(() => server.createClient({ port: srv.port }), { code: 'ERR_INVALID_CONFIG' });
  await srv.close();
  await srv.close(); // idempotent
  assert.deepEqual(server.role, ['master']);
});

test('Unix socket, a stale socket file, and TCP + Unix on one store', async () => {
  const path = tmpSock('unix');
  fs.writeFileSync(path, ''); // not a socket: must not be deleted silently... a regular file is refused
  const server = createStore(counter);
  assert.throws(() => server.createServer({ path }), { code: 'ERR_ADDR_IN_USE' });
  fs.unlinkSync(path);
  // A socket file left behind by a dead server is removed and reused.
  const stale = child('stale-socket.mjs', [path]);
  await stale.next((m) => m.bound);
  await stale.kill();
  assert.ok(fs.existsSync(path), 'the killed server left its socket file');
  const unix = server.createServer({ path });
  const tcp = server.createServer({ host: '127.0.0.1', port: 0 });
  const a = createStore(counter);
  const b = createStore(counter);
  const ca = a.createClient({ path });
  const cb = b.createClient({ host: '127.0.0.1', port: tcp.port });
  a.dispatch({ type: 'INC' });
  b.dispatch({ type: 'INC', by: 2 });
  server.dispatch({ type: 'INC', by: 4 });
  for (const s of [server, a, b]) await waitFor(() => s.getState().counter === 7, { what: 'convergence', show: state(s) });
  await Promise.all([ca.disconnect(), cb.disconnect()]);
  await Promise.all([unix.close(), tcp.close()]);
  assert.ok(!fs.existsSync(path), 'socket file removed on close');
});

test('actions dispatched before the first connection are queued and delivered once', async () => {
  const port = await freePort();
  const client = createStore(counter, { reconnectInitialMs: 10, reconnectMaxMs: 50 });
  const errors = sink();
  client.stderr = errors;
  const cl = client.createClient({ host: '127.0.0.1', port });
  for (let i = 0; i < 1000; i++) client.dispatch({ type: 'INC' });
  assert.equal(cl.pending, 1000);
  await waitFor(() => errors.lines.length > 0, { what: 'a connect error on stderr' });
  const server = createStore(counter);
  const srv = server.createServer({ host: '127.0.0.1', port });
  await waitFor(() => server.getState().counter === 1000 && client.getState().counter === 1000, {
    what: 'queued actions delivered',
    show: () => [server.getState(), client.getState()],
  });
  await waitFor(() => cl.pending === 0, { what: 'acknowledged' });
  assert.ok(errors.lines.length < 5, `a refused connect is reported once, not per retry: ${errors.lines.length}`);
  await cl.disconnect();
  await srv.close();
});

test('after a server restart the client catches up and its queued actions land once', async () => {
  const port = await freePort();
  const addr = JSON.stringify({ host: '127.0.0.1', port });
  let srv = child('agent.mjs', ['server', addr]);
  await srv.next((m) => m.ready);
  const client = createStore(counter, { reconnectInitialMs: 10, reconnectMaxMs: 100, stderr: () => {} });
  const cl = client.createClient({ host: '127.0.0.1', port });
  await waitFor(() => client.connected, { what: 'connected' });
  client.dispatch({ type: 'INC', by: 3 });
  await waitFor(() => client.getState().counter === 3, { what: 'first action' });
  await srv.kill();
  await waitFor(() => !client.connected, { what: 'disconnect noticed' });
  for (let i = 0; i < 50; i++) client.dispatch({ type: 'INC' });
  srv = child('agent.mjs', ['server', addr]);
  await srv.next((m) => m.ready);
  // The new server starts from scratch; the client adopts its state, then its queue lands.
  await waitFor(() => client.connected && client.getState().counter === 50, { what: 'catch-up', show: state(client) });
  srv.send({ cmd: 'state', id: 1 });
  const s = await srv.next((m) => m.id === 1);
  assert.equal(s.state.counter, 50);
  await cl.disconnect();
  await srv.kill();
});

test('100,000 actions dispatched in one loop: none lost on either side', async () => {
  const server = createStore(counter);
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  await waitFor(() => client.connected, { what: 'connected' });
  for (let i = 0; i < 100000; i++) client.dispatch({ type: 'INC' });
  await waitFor(() => server.getState().counter === 100000 && client.getState().counter === 100000, {
    timeoutMs: 30000,
    what: 'all 100,000 applied',
    show: () => [server.getState(), client.getState()],
  });
  await cl.disconnect();
  await srv.close();
});

test('three client processes dispatching concurrently converge on the sum', async () => {
  const server = createStore(counter);
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const addr = JSON.stringify({ host: '127.0.0.1', port: srv.port });
  const kids = [1, 2, 3].map(() => child('agent.mjs', ['client', addr]));
  await Promise.all(kids.map((k) => k.next((m) => m.ready)));
  kids.forEach((k, i) => k.send({ cmd: 'dispatch', n: 5000, by: i + 1 }));
  const total = 5000 * (1 + 2 + 3);
  await waitFor(() => server.getState().counter === total, { timeoutMs: 30000, what: 'server sum', show: state(server) });
  for (const [i, k] of kids.entries()) {
    k.send({ cmd: 'state', id: 100 + i });
    await waitFor(
      () => {
        const m = k.messages.findLast((x) => x.id === 100 + i);
        if (m && m.state.counter === total) return true;
        if (m) k.send({ cmd: 'state', id: 100 + i });
        return false;
      },
      { timeoutMs: 30000, what: `client ${i} sum` }
    );
  }
  await Promise.all(kids.map((k) => k.kill()));
  await srv.close();
});

test('snapshot mode reaches the same state as action mode', async () => {
  const results = [];
  for (const mode of ['action', 'snapshot']) {
    const server = createStore(counter, { mode });
    server.dispatch({ type: 'SET', payload: { label: 'x' } });
    const srv = server.createServer({ host: '127.0.0.1', port: 0 });
    const client = createStore(counter, { mode });
    const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
    for (let i = 0; i < 2000; i++) client.dispatch({ type: 'INC' });
    for (let i = 0; i < 500; i++) server.dispatch({ type: 'INC', by: 2 });
    await waitFor(() => server.getState().counter === 3000 && client.getState().counter === 3000, {
      what: `${mode} convergence`,
      show: () => [server.getState(), client.getState()],
    });
    results.push(client.getState());
    await cl.disconnect();
    await srv.close();
  }
  assert.deepEqual(results[0], results[1]);
  assert.deepEqual(results[0], { counter: 3000, label: 'x' });
});

test('stores of different reducers never mix', async () => {
  const server = createStore(counter);
  server.dispatch({ type: 'INC', by: 7 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  function other(state = { counter: 100 }, action) {
    return action.type === 'INC' ? { counter: state.counter + 1 } : state;
  }
  const errors = sink();
  const client = createStore(other, { stderr: errors });
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  client.dispatch({ type: 'INC' });
  await waitFor(() => errors.lines.some((l) => /does not match/.test(l)), { what: 'mismatch reported', show: () => errors.lines });
  assert.deepEqual(client.getState(), { counter: 100 });
  assert.equal(server.getState().counter, 7);
  await cl.disconnect();
  await srv.close();
});

test('the client queue is bounded, and oversized actions are refused', async () => {
  const port = await freePort();
  const client = createStore(counter, { queueLimit: 10, maxFrameSize: 4096, stderr: () => {} });
  const cl = client.createClient({ host: '127.0.0.1', port });
  for (let i = 0; i < 10; i++) client.dispatch({ type: 'INC' });
  assert.throws(() => client.dispatch({ type: 'INC' }), { code: 'ERR_QUEUE_FULL' });
  await cl.disconnect(0);
  const c2 = createStore(counter, { maxFrameSize: 4096, stderr: () => {} });
  const cl2 = c2.createClient({ host: '127.0.0.1', port });
  assert.throws(() => c2.dispatch({ type: 'SET', payload: { big: 'x'.repeat(5000) } }), { code: 'ERR_FRAME_TOO_LARGE' });
  c2.dispatch({ type: 'INC' }); // still usable
  assert.equal(cl2.pending, 1);
  await cl2.disconnect(0);
});

test('a 10 MB state reaches a fresh client', async () => {
  const server = createStore(counter);
  const big = {};
  for (let i = 0; i < 50000; i++) big['k' + i] = String(i).padStart(200, 'x');
  server.dispatch({ type: 'SET', payload: { big } });
  const size = JSON.stringify(server.getState()).length;
  assert.ok(size > 10e6, `state is ${size} bytes`);
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  await waitFor(() => client.getState().big, { timeoutMs: 20000, what: '10 MB state' });
  assert.deepEqual(client.getState(), server.getState());
  server.dispatch({ type: 'INC' });
  await waitFor(() => client.getState().counter === 1, { what: 'small action after the big state' });
  await cl.disconnect();
  await srv.close();
});

test('a client that resumes with nothing new to receive is in step (lag 0), not the whole log behind', async () => {
  // A replicated server restarted from its dataDir: the client's position is valid there,
  // so it resumes (as after a failover) instead of taking a snapshot.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-lag-'));
  const port = await freePort();
  const settings = { host: '127.0.0.1', port, cluster: { nodeName: 'lag', bootstrap: true, dataDir } };
  let server = createStore(counter, { stderr: () => {} });
  let srv = server.createServer(settings);
  const client = createStore(counter, { reconnectInitialMs: 10, reconnectMaxMs: 100, stderr: () => {} });
  const cl = client.createClient({ host: '127.0.0.1', port });
  try {
    await Promise.all(Array.from({ length: 100 }, () => client.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    await waitFor(() => client.getState().counter === 100, { what: 'caught up', show: state(client) });
    await srv.close();
    await waitFor(() => !client.connected, { what: 'disconnect noticed' });
    server = createStore(counter, { stderr: () => {} });
    srv = server.createServer(settings);
    // Its position is where it resumed from (before: 0 until something new was sent, so
    // the whole log showed as its lag, 100 here).
    const c = await waitFor(() => client.connected && srv.metrics().clients.find((x) => x.position === 100), {
      what: 'resumed at 100',
      show: () => srv.metrics().clients,
    });
    assert.equal(srv.metrics().ordered, 100);
    assert.equal(c.lag, 0);
    assert.equal(client.getState().counter, 100);
  } finally {
    await cl.disconnect();
    await srv.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
