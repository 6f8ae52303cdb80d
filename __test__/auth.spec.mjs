// Logins (challenge–response, nothing replayable on the wire) and address bans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, sink, closed } from './helpers.mjs';

function serve(settings = {}) {
  const errors = sink();
  const server = createStore(counter, { stderr: errors });
  server.dispatch({ type: 'INC', by: 42 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0, logins: { alice: 's3cret', bob: 'hunter2' }, ...settings });
  return { errors, server, srv };
}

function connect(port, creds) {
  const errors = sink();
  const store = createStore(counter, { stderr: errors, reconnectInitialMs: 10, reconnectMaxMs: 50 });
  const client = store.createClient({ host: '127.0.0.1', port, ...creds });
  return { errors, store, client };
}

test('the right login syncs; a wrong or missing one gets ERR_AUTH, no state, no retries', async () => {
  const { server, srv, errors: serverErrors } = serve();
  const ok = connect(srv.port, { login: 'bob', password: 'hunter2' });
  await waitFor(() => ok.store.getState().counter === 42, { what: 'bob synced' });
  ok.store.dispatch({ type: 'INC' });
  await waitFor(() => server.getState().counter === 43, { what: "bob's action applied" });

  for (const creds of [{ login: 'alice', password: 'wrong' }, { login: 'mallory', password: 's3cret' }, {}]) {
    const before = serverErrors.lines.length;
    const bad = connect(srv.port, creds);
    bad.store.dispatch({ type: 'INC', by: 1000 });
    await waitFor(() => bad.client.error && bad.client.error.code === 'ERR_AUTH', {
      what: `ERR_AUTH for ${JSON.stringify(creds)}`,
      show: () => bad.errors.lines,
    });
    assert.match(bad.errors.lines.join('\n'), /authentication failed|requires a login/);
    assert.equal(bad.client.connected, false);
    assert.equal(bad.store.getState().counter, 0, 'no state received');
    // No retry loop: the server sees this client once.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(serverErrors.lines.length - before, 1, serverErrors.lines.slice(before).join('\n'));
    await bad.client.disconnect(0);
  }
  assert.equal(server.getState().counter, 43, 'nothing of the refused clients was applied');
  await ok.client.disconnect();
  await srv.close();
});

test("a captured login exchange replayed on a new connection is refused and changes nothing", async () => {
  const { server, srv, errors } = serve();
  // A recording proxy between a real client and the server.
  const captured = [];
  const proxy = net.createServer((c) => {
    const up = net.connect({ host: '127.0.0.1', port: srv.port });
    c.on('data', (d) => {
      captured.push(Buffer.from(d));
      up.write(d);
    });
    up.on('data', (d) => c.write(d));
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => up.destroy());
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const alice = connect(proxy.address().port, { login: 'alice', password: 's3cret' });
  await waitFor(() => alice.store.connected, { what: 'alice via the proxy' });
  alice.store.dispatch({ type: 'INC', by: 5 });
  await waitFor(() => server.getState().counter === 47, { what: "alice's action" });
  await alice.client.disconnect();
  proxy.close();

  const before = errors.lines.length;
  const replay = net.connect({ host: '127.0.0.1', port: srv.port });
  await new Promise((r) => replay.once('connect', r));
  replay.write(Buffer.concat(captured));
  await closed(replay);
  await waitFor(() => errors.lines.length > before, { what: 'the replay reported' });
  assert.match(errors.lines.at(-1), /authentication failed/);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.getState().counter, 47, 'the replayed dispatch was not applied');
  await srv.close();
});

test('5 failed logins lock the address for 3 hours (ERR_BANNED), even for the right password', async () => {
  const { srv } = serve();
  for (let i = 0; i < 5; i++) {
    const bad = connect(srv.port, { login: 'alice', password: `guess${i}` });
    await waitFor(() => bad.client.error, { what: `failure ${i}` });
    await bad.client.disconnect(0);
  }
  const right = connect(srv.port, { login: 'alice', password: 's3cret' });
  await waitFor(() => right.client.error, { what: 'the ban' });
  assert.equal(right.client.error.code, 'ERR_BANNED');
  assert.match(right.client.error.message, /your ip is locked for 3 hours/);
  await right.client.disconnect(0);
  await srv.close();
});

test('a configured ban expires, and then the right login is admitted', async () => {
  const { server, srv } = serve({ ban: { attempts: 2, durationMs: 300 } });
  for (let i = 0; i < 2; i++) {
    const bad = connect(srv.port, { login: 'bob', password: 'nope' });
    await waitFor(() => bad.client.error, { what: `failure ${i}` });
    await bad.client.disconnect(0);
  }
  const early = connect(srv.port, { login: 'bob', password: 'hunter2' });
  await waitFor(() => early.client.error, { what: 'banned' });
  assert.equal(early.client.error.code, 'ERR_BANNED');
  await early.client.disconnect(0);
  await new Promise((r) => setTimeout(r, 350));
  const later = connect(srv.port, { login: 'bob', password: 'hunter2' });
  await waitFor(() => later.store.getState().counter === server.getState().counter && later.store.connected, {
    what: 'admitted after expiry',
  });
  await later.client.disconnect();
  await srv.close();
});

test('invalid login settings are refused with ERR_INVALID_CONFIG', () => {
  const store = createStore(counter);
  assert.throws(() => store.createServer({ port: 0, logins: { a: 1 } }), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => store.createServer({ port: 0, ban: { attempts: 0 } }), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => createStore(counter).createClient({ port: 1, login: 'a' }), { code: 'ERR_INVALID_CONFIG' });
});
