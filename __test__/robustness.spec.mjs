// Bad input and bad peers: each one closes only its own connection, with the reason on
// the server's stderr, and nobody else notices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, sink, child, rawConnect, closed, helloFrame, dispatchFrame, frame, md5 } from './helpers.mjs';

async function serverWithClient() {
  const errors = sink();
  const server = createStore(counter, { stderr: errors });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const client = createStore(counter);
  const cl = client.createClient({ host: '127.0.0.1', port: srv.port });
  await waitFor(() => client.connected, { what: 'client connected' });
  return { errors, server, srv, client, cl };
}

async function stillInSync({ server, client }) {
  const mark = Math.random();
  client.dispatch({ type: 'SET', payload: { mark } });
  server.dispatch({ type: 'INC' });
  await waitFor(() => server.getState().mark === mark && client.getState().mark === mark, {
    what: 'the good client still in sync',
  });
  await waitFor(() => client.getState().counter === server.getState().counter, {
    what: 'the good client converged with the server',
    show: () => [server.getState().counter, client.getState().counter],
  });
  assert.ok(client.connected, 'the good client never lost its connection');
}

test('garbage bytes, 1 MiB of junk, an oversized frame and a bad handshake each close only their own connection', async () => {
  const ctx = await serverWithClient();
  const { errors, srv } = ctx;
  const addr = { host: '127.0.0.1', port: srv.port };

  const cases = [
    // "GET " read as a length is over a gigabyte: refused before anything is buffered.
    ['garbage', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /maximum frame size/],
    ['junk', crypto.randomBytes(1024 * 1024), /refused/],
    ['oversized', Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 0]), /maximum frame size/],
    ['wrong version', Buffer.from([0, 0, 0, 10, 9, 0, 1, 2]), /protocol version 9/],
    // A well-formed Ack (counter 1, no runs), which only a server sends.
    ['wrong message', frame(Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])), /expected a handshake/],
    ['truncated hello', frame(Buffer.from([1, 0, 0, 0, 40, 1, 2])), /malformed/],
  ];
  for (const [name, bytes, reason] of cases) {
    const before = errors.lines.length;
    const s = await rawConnect(addr);
    s.on('error', () => {});
    s.write(bytes);
    await closed(s);
    await waitFor(() => errors.lines.length > before, { what: `${name} reported on stderr` });
    assert.match(errors.lines.at(-1), /127\.0\.0\.1/, `${name}: the reason names the peer`);
    assert.match(errors.lines.at(-1), reason, name);
  }

  // A valid handshake followed by a bad action: the connection gets an error frame and
  // is closed; nothing is applied.
  const before = ctx.server.getState().counter;
  const s = await rawConnect(addr);
  s.on('error', () => {});
  s.write(helloFrame(md5('counter')));
  s.write(dispatchFrame(1, [{ type: 'REDUX_CLUSTER_SYNC', payload: { counter: -1 } }]));
  await closed(s);
  await waitFor(() => errors.lines.some((l) => /invalid action/.test(l)), { what: 'invalid action reported' });
  assert.equal(ctx.server.getState().counter, before);

  await stillInSync(ctx);
  await ctx.cl.disconnect();
  await srv.close();
});

test('kill -9 of a client process mid-stream harms no other client', async () => {
  const ctx = await serverWithClient();
  const addr = JSON.stringify({ host: '127.0.0.1', port: ctx.srv.port });
  const victim = child('agent.mjs', ['client', addr]);
  await victim.next((m) => m.ready);
  victim.send({ cmd: 'dispatch', n: 200000 });
  await waitFor(() => ctx.server.getState().counter > 0, { what: 'the victim streaming' });
  await victim.kill('SIGKILL');
  // Whatever of the victim's stream arrived is applied; the rest is gone with it.
  await stillInSync(ctx);
  await ctx.cl.disconnect();
  await ctx.srv.close();
});

test('close() resolves promptly with misbehaving peers connected', async () => {
  const server = createStore(counter, { stderr: () => {} });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const addr = { host: '127.0.0.1', port: srv.port };
  // One that connects and says nothing, one stuck half way through a frame, and one that
  // completes the handshake and then never reads while the server has plenty to send.
  const silent = await rawConnect(addr);
  const half = await rawConnect(addr);
  half.write(helloFrame(md5('counter')).subarray(0, 9));
  const deaf = await rawConnect(addr);
  deaf.write(helloFrame(md5('counter')));
  deaf.pause();
  const big = 'x'.repeat(1000);
  for (let i = 0; i < 20000; i++) server.dispatch({ type: 'SET', payload: { big, i } });
  for (const s of [silent, half, deaf]) s.on('error', () => {});
  const t0 = Date.now();
  await srv.close();
  const took = Date.now() - t0;
  assert.ok(took < 2000, `close took ${took} ms`);
  await Promise.all([closed(silent), closed(half), closed(deaf)]);
});

test('limit: past it a client is told ERR_BUSY and gets in once a place frees; the others are unharmed', async () => {
  const errors = sink();
  const server = createStore(counter, { stderr: errors });
  const srv = server.createServer({ host: '127.0.0.1', port: 0, limit: 2 });
  const stores = [0, 1, 2].map(() => createStore(counter, { stderr: sink() }));
  const conns = stores.slice(0, 2).map((s) => s.createClient({ host: '127.0.0.1', port: srv.port }));
  let third;
  try {
    await Promise.all(stores.slice(0, 2).map((s) => s.dispatchAsync({ type: 'INC' })));
    third = stores[2].createClient({ host: '127.0.0.1', port: srv.port, reconnectInitialMs: 20, reconnectMaxMs: 100 });
    await waitFor(() => third.error && third.error.code === 'ERR_BUSY', { what: 'the third client told ERR_BUSY' });
    assert.match(third.error.message, /connection limit reached \(2 connections\)/);
    assert.equal(stores[2].connected, false);
    assert.match(errors.lines.join('\n'), /refused: connection limit reached \(2 connections\)/);
    const queued = stores[2].dispatchAsync({ type: 'INC' }, { timeout: 20000 });
    await conns[0].disconnect();
    await queued; // it got in once a place was free, and its queue went through
    await stores[1].dispatchAsync({ type: 'INC' });
    await waitFor(() => stores.slice(1).every((s) => s.getState().counter === 4), { what: 'both remaining replicas at 4' });
  } finally {
    await Promise.all([conns[1].disconnect(), third && third.disconnect()]);
    await srv.close();
  }
});

test('limitPerAddress: one address cannot take every place; a client from another address still gets in', async () => {
  const server = createStore(counter, { stderr: sink() });
  const srv = server.createServer({ host: '127.0.0.1', port: 0, limitPerAddress: 1 });
  const from2 = () => rawConnect({ host: '127.0.0.1', port: srv.port, localAddress: '127.0.0.2' });
  const first = await from2();
  const second = await from2();
  const replica = createStore(counter, { stderr: sink() });
  let conn;
  try {
    let firstGone = false;
    first.on('close', () => (firstGone = true));
    // The first is admitted (its welcome arrives) before the second says hello.
    let welcomed = false;
    first.once('data', () => (welcomed = true));
    first.write(helloFrame(server.RCHash, 1));
    await waitFor(() => welcomed, { what: 'the first connection from 127.0.0.2 welcomed' });
    let reply = Buffer.alloc(0);
    second.on('data', (d) => (reply = Buffer.concat([reply, d])));
    const secondClosed = closed(second);
    second.write(helloFrame(server.RCHash, 2));
    await secondClosed;
    assert.match(reply.toString('latin1'), /ERR_BUSY[\s\S]*connection limit per address reached \(1 connection from 127\.0\.0\.2\)/);
    conn = replica.createClient({ host: '127.0.0.1', port: srv.port });
    await replica.dispatchAsync({ type: 'INC' });
    assert.equal(firstGone, false, 'the first connection from 127.0.0.2 was kept');
  } finally {
    first.destroy();
    second.destroy();
    if (conn) await conn.disconnect();
    await srv.close();
  }
});

test('limit and limitPerAddress refuse invalid values', () => {
  const s = createStore(counter);
  assert.throws(() => s.createServer({ port: 0, limit: 0 }), (e) => e.code === 'ERR_INVALID_CONFIG' && /limit/.test(e.message));
  assert.throws(() => s.createServer({ port: 0, limitPerAddress: 1.5 }), (e) => e.code === 'ERR_INVALID_CONFIG' && /limitPerAddress/.test(e.message));
});
