// WebSocket endpoints (redux-cluster-ws's createWSServer / createWSClient) on the
// engine: the same store served over TCP and WebSocket at once, logins, an offline
// queue delivered once across a server restart, and bad input at the upgrade and after
// it (origin, connection limit, text and garbage messages), each refused with a clear
// reason and harming no other connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { createStore } from 'redux-cluster-rs';
import { counter, freePort, helloFrame, sink, waitFor } from './helpers.mjs';

/** A raw WebSocket upgrade: resolves { status, body } for a refusal, or { socket } once upgraded. */
function upgrade(port, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': crypto.randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => resolve({ status: 101, socket }));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One client frame (opcode 1 text, 2 binary), masked and final unless told otherwise. */
function wsFrame(opcode, payload, { fin = true, rsv = 0, masked = true } = {}) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const b0 = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  const m = masked ? 0x80 : 0;
  const head = len < 126 ? Buffer.from([b0, m | len]) : Buffer.from([b0, m | 126, len >> 8, len & 255]);
  if (!masked) return Buffer.concat([head, Buffer.from(payload)]);
  const body = Buffer.from(Array.from(payload, (b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

/** Resolves the server's close frame ({ code, reason }) or null when the socket just ends. */
function closeFrame(socket, timeoutMs = 5000) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      // Skip whole frames until a close frame (opcode 8) shows up.
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        }
        if (buf.length < off + len) return;
        const opcode = buf[0] & 15;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 8) {
          clearTimeout(timer);
          return resolve({ code: payload.length >= 2 ? payload.readUInt16BE(0) : null, reason: payload.subarray(2).toString() });
        }
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

test('one store over TCP and WebSocket at once: logins, convergence, a wrong password refused', async () => {
  const server = createStore(counter, { stderr: sink() });
  const tcp = server.createServer({ host: '127.0.0.1', port: 0, logins: { ann: 'secret' } });
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0, logins: { ann: 'secret' } });
  assert.deepEqual(server.role.filter((r) => r === 'server'), ['server']);
  const stores = [0, 1, 2].map(() => createStore(counter, { stderr: sink() }));
  const conns = [
    stores[0].createWSClient({ host: 'ws://127.0.0.1', port: ws.port, login: 'ann', password: 'secret' }),
    stores[1].createWSClient({ host: `ws://127.0.0.1:${ws.port}`, login: 'ann', password: 'secret' }),
    stores[2].createClient({ host: '127.0.0.1', port: tcp.port, login: 'ann', password: 'secret' }),
  ];
  const intruder = createStore(counter, { stderr: sink() });
  const bad = intruder.createWSClient({ host: 'ws://127.0.0.1', port: ws.port, login: 'ann', password: 'wrong' });
  try {
    const acks = await Promise.all(stores.flatMap((s) => Array.from({ length: 50 }, () => s.dispatchAsync({ type: 'INC' }))));
    assert.equal(new Set(acks.map((a) => a.seq)).size, 150);
    server.dispatch({ type: 'INC' });
    await waitFor(() => stores.every((s) => s.getState().counter === 151), { what: 'all three replicas at 151' });
    assert.equal(server.getState().counter, 151);
    assert.deepEqual(conns[0].server, { host: 'ws://127.0.0.1', port: ws.port });
    await waitFor(() => bad.error, { what: 'the wrong password refused' });
    assert.equal(bad.error.code, 'ERR_AUTH');
    assert.equal(intruder.getState().counter, 0);
  } finally {
    await Promise.all([...conns, bad].map((c) => c.disconnect()));
    await Promise.all([tcp.close(), ws.close()]);
  }
});

test('a WebSocket client keeps what it dispatched while its server was down and delivers it once after', async () => {
  const server = createStore(counter, { stderr: sink() });
  const port = await freePort();
  let ws = server.createWSServer({ host: '127.0.0.1', port });
  const replica = createStore(counter, { stderr: sink() });
  const conn = replica.createWSClient({ host: 'ws://127.0.0.1', port, reconnectInitialMs: 20 });
  try {
    await replica.dispatchAsync({ type: 'INC' });
    await ws.close();
    await waitFor(() => !conn.connected, { what: 'the client saw the server go' });
    const later = Array.from({ length: 20 }, () => replica.dispatchAsync({ type: 'INC' }, { timeout: 20000 }));
    assert.equal(conn.pending, 20);
    ws = server.createWSServer({ host: '127.0.0.1', port });
    const acks = await Promise.all(later);
    assert.equal(new Set(acks.map((a) => a.seq)).size, 20);
    await waitFor(() => server.getState().counter === 21 && replica.getState().counter === 21, { what: 'each action once on both sides' });
  } finally {
    await conn.disconnect();
    await ws.close();
  }
});

test('the upgrade refuses other origins and connections past the limit, with the reason, and harms no one', async () => {
  const server = createStore(counter, { stderr: sink() });
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0, origin: ['https://app.example'], limit: 3 });
  const replica = createStore(counter, { stderr: sink() });
  // A Node client sends no Origin: allowed.
  const conn = replica.createWSClient({ host: 'ws://127.0.0.1', port: ws.port });
  const sockets = [];
  try {
    await replica.dispatchAsync({ type: 'INC' });
    const other = await upgrade(ws.port, { origin: 'https://evil.example' });
    assert.equal(other.status, 403);
    assert.match(other.body, /origin https:\/\/evil\.example is not allowed/);
    // 1 client + 2 more = the limit of 3; the 4th is refused with 503.
    for (let i = 0; i < 2; i++) {
      const r = await upgrade(ws.port, { origin: 'https://app.example' });
      assert.equal(r.status, 101);
      sockets.push(r.socket);
    }
    const over = await upgrade(ws.port, { origin: 'https://app.example' });
    assert.equal(over.status, 503);
    assert.match(over.body, /connection limit reached \(3 connections\)/);
    // A place frees up when one goes.
    sockets.pop().destroy();
    await waitFor(async () => {
      const r = await upgrade(ws.port, { origin: 'https://app.example' });
      if (r.socket) sockets.push(r.socket);
      return r.status === 101;
    }, { what: 'a freed place taken' });
    await replica.dispatchAsync({ type: 'INC' });
    assert.equal(replica.getState().counter, 2, 'the client was not harmed');
  } finally {
    for (const s of sockets) s.destroy();
    await conn.disconnect();
    await ws.close();
  }
});

/** A store served over WebSocket (64 KiB frames) with one well-behaved client. */
function servedOverWs() {
  const server = createStore(counter, { stderr: sink(), maxFrameSize: 64 * 1024 });
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0 });
  const replica = createStore(counter, { stderr: sink() });
  const conn = replica.createWSClient({ host: 'ws://127.0.0.1', port: ws.port });
  return { server, ws, replica, conn };
}

test('a text message, garbage bytes and an oversized message each close only their own connection, with a reason', async () => {
  const { server, ws, replica, conn } = servedOverWs();
  try {
    await replica.dispatchAsync({ type: 'INC' });

    const text = await upgrade(ws.port);
    const textClosed = closeFrame(text.socket);
    text.socket.write(wsFrame(1, Buffer.from('{"type":"INC"}')));
    assert.deepEqual(await textClosed, { code: 1003, reason: 'this endpoint speaks binary messages (the redux-cluster-rs protocol), not text' });

    const garbage = await upgrade(ws.port);
    const garbageClosed = closeFrame(garbage.socket);
    garbage.socket.write(wsFrame(2, crypto.randomBytes(64)));
    assert.notEqual(await garbageClosed, 'timeout', 'the garbage connection is closed');

    // A valid hello of another store is refused by the protocol, as over TCP.
    const other = await upgrade(ws.port);
    const otherClosed = closeFrame(other.socket);
    other.socket.write(wsFrame(2, helloFrame('not-this-store')));
    assert.notEqual(await otherClosed, 'timeout');

    // Larger than the maximum message size (the frame limit plus framing).
    const big = await upgrade(ws.port);
    const bigClosed = closeFrame(big.socket);
    const head = Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0]); // a 1 MiB binary frame
    big.socket.write(Buffer.concat([head, crypto.randomBytes(4)]));
    const closed = await bigClosed;
    assert.ok(closed === null || closed.code === 1009, `closed for its size: ${JSON.stringify(closed)}`);

    await replica.dispatchAsync({ type: 'INC' });
    assert.equal(replica.getState().counter, 2, 'the well-behaved client was not harmed');
    assert.equal(server.getState().counter, 2);
  } finally {
    await conn.disconnect();
    await ws.close();
  }
});

/**
 * A reverse proxy on loopback that hands WebSocket upgrades to `port`, adding
 * `X-Forwarded-For: <clientIp>` as a real proxy would for the address it saw.
 */
async function forwardingProxy(port, clientIp) {
  const proxy = http.createServer((req, res) => res.writeHead(404).end());
  const open = new Set();
  proxy.on('upgrade', (req, socket, head) => {
    const upstream = net.connect(port, '127.0.0.1', () => {
      const headers = Object.entries({ ...req.headers, 'x-forwarded-for': clientIp }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    for (const s of [socket, upstream]) {
      open.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        open.delete(s);
        socket.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: proxy.address().port,
    close: () => {
      for (const s of open) s.destroy();
      return new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/** Connects a replica through `port` and resolves the code that stopped it, or 'ok' once it synced. */
async function loginOutcome(port, password) {
  const store = createStore(counter, { stderr: sink() });
  const conn = store.createWSClient({ host: 'ws://127.0.0.1', port, login: 'ann', password });
  try {
    await waitFor(() => conn.error || store.connected, { what: `login with ${password} answered` });
    return conn.error ? conn.error.code : 'ok';
  } finally {
    await conn.disconnect();
  }
}

test('bans behind a trusted proxy fall on the address it forwards for; a login flood bans only that address', { timeout: 60000 }, async () => {
  const errors = sink();
  const server = createStore(counter, { stderr: errors });
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0, logins: { ann: 'secret' }, ban: { attempts: 3, durationMs: 60000 }, trustProxy: ['127.0.0.1'] });
  const mallory = await forwardingProxy(ws.port, '203.0.113.7');
  const alice = await forwardingProxy(ws.port, '198.51.100.9');
  try {
    // A flood of wrong logins from one address, all at once.
    const flood = await Promise.all(Array.from({ length: 20 }, () => loginOutcome(mallory.port, 'guess')));
    assert.ok(flood.every((c) => c === 'ERR_AUTH' || c === 'ERR_BANNED'), flood.join());
    assert.ok(flood.includes('ERR_AUTH'));
    // That address is now locked, even with the right password...
    assert.equal(await loginOutcome(mallory.port, 'secret'), 'ERR_BANNED');
    // ...while another address behind the same proxy host, and a direct client, log in.
    assert.equal(await loginOutcome(alice.port, 'secret'), 'ok');
    assert.equal(await loginOutcome(ws.port, 'secret'), 'ok');
    assert.match(errors.lines.join('\n'), /203\.0\.113\.7/, 'the banned address is the forwarded one');
    assert.equal(server.getState().counter, 0);
  } finally {
    await Promise.all([mallory.close(), alice.close()]);
    await ws.close();
  }
});

test('X-Forwarded-For from an untrusted peer is ignored: rotating it does not escape a ban', { timeout: 60000 }, async () => {
  const server = createStore(counter, { stderr: sink() });
  // The proxies run on 127.0.0.1, which is not trusted here: their header is anyone's.
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0, logins: { ann: 'secret' }, ban: { attempts: 3, durationMs: 60000 }, trustProxy: ['10.9.9.9'] });
  const proxies = await Promise.all(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'].map((ip) => forwardingProxy(ws.port, ip)));
  try {
    // Three wrong logins, each under another forwarded address (the third one locks).
    assert.equal(await loginOutcome(proxies[0].port, 'guess'), 'ERR_AUTH');
    assert.equal(await loginOutcome(proxies[1].port, 'guess'), 'ERR_AUTH');
    assert.match(await loginOutcome(proxies[2].port, 'guess'), /^ERR_(AUTH|BANNED)$/);
    // The bans fell on the socket's address (127.0.0.1), whatever the header said.
    assert.equal(await loginOutcome(proxies[3].port, 'secret'), 'ERR_BANNED');
    assert.equal(await loginOutcome(ws.port, 'secret'), 'ERR_BANNED');
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await ws.close();
  }
});

test("a dispatch wrapper installed before createWSClient sees each incoming action, as in redux-cluster-ws", async () => {
  const server = createStore(counter, { stderr: sink() });
  const ws = server.createWSServer({ host: '127.0.0.1', port: 0 });
  const replica = createStore(counter, { stderr: sink() });
  const seen = [];
  const original = replica.dispatch;
  replica.dispatch = (action) => {
    seen.push(action.type);
    return original(action);
  };
  const conn = replica.createWSClient({ host: 'ws://127.0.0.1', port: ws.port });
  try {
    assert.equal(replica.dispatch, original, 'dispatch sends again, as redux-cluster-ws leaves it');
    await replica.dispatchAsync({ type: 'INC' });
    replica.dispatch({ type: 'INC' }); // sent by the client's own dispatch, not counted here
    for (let i = 0; i < 5; i++) server.dispatch({ type: 'INC' });
    await waitFor(() => replica.getState().counter === 7, { what: 'the replica at 7' });
    assert.equal(server.getState().counter, 7, 'each action once on the server');
    assert.deepEqual(seen.filter((t) => t === 'INC').length, 7, 'the wrapper saw each action arrive, once');
  } finally {
    await conn.disconnect();
    await ws.close();
  }
});

// Arbitrary WebSocket frames (any opcode, masked or not, any flags, garbage after): each
// ends only its own connection, with a close frame or a plain close, within a bound; the
// server goes on serving a well-behaved client. Property test with fast-check.
test('arbitrary WebSocket frames end only their own connection (property, fast-check)', { timeout: 120000 }, async () => {
  const fc = (await import('fast-check')).default;
  const { server, ws, replica, conn } = servedOverWs();
  try {
    await replica.dispatchAsync({ type: 'INC' });
    const frameArb = fc.record({
      fin: fc.boolean(),
      rsv: fc.integer({ min: 0, max: 7 }),
      opcode: fc.oneof(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.integer({ min: 0, max: 15 })),
      masked: fc.boolean(),
      payload: fc.uint8Array({ maxLength: 200 }),
      trailer: fc.uint8Array({ maxLength: 40 }),
    });
    let ended = 0;
    await fc.assert(
      fc.asyncProperty(frameArb, async (f) => {
        const r = await upgrade(ws.port);
        if (!r.socket) return false;
        const done = closeFrame(r.socket, 3000);
        r.socket.on('error', () => {});
        r.socket.write(Buffer.concat([wsFrame(f.opcode, f.payload, f), Buffer.from(f.trailer)]));
        const outcome = await done;
        r.socket.destroy();
        // A frame that is valid and harmless (a ping, an empty continuation...) may leave
        // the connection open: then it waits for more, which is fine; nothing else.
        if (outcome !== 'timeout') ended++;
        return true;
      }),
      { numRuns: 60 }
    );
    assert.ok(ended > 30, `most arbitrary frames end their connection (${ended} of 60)`);
    await replica.dispatchAsync({ type: 'INC' });
    assert.equal(replica.getState().counter, 2, 'the well-behaved client was not harmed');
    assert.equal(server.getState().counter, 2, 'nothing arbitrary was applied');
  } finally {
    await conn.disconnect();
    await ws.close();
  }
});

test('createWSServer and createWSClient refuse invalid settings', () => {
  const s = createStore(counter);
  assert.throws(() => s.createWSServer({ path: '/tmp/x.sock' }), (e) => e.code === 'ERR_INVALID_CONFIG');
  assert.throws(() => s.createWSServer({ port: 0, limit: 0 }), (e) => e.code === 'ERR_INVALID_CONFIG');
  assert.throws(() => s.createWSServer({ port: 0, trustProxy: ['not-an-ip'] }), (e) => e.code === 'ERR_INVALID_CONFIG' && /trustProxy/.test(e.message));
  assert.throws(() => s.createWSServer({ port: 0, origin: 7 }), (e) => e.code === 'ERR_INVALID_CONFIG');
  const c = createStore(counter);
  assert.throws(() => c.createWSClient({ host: 'localhost', port: 1 }), (e) => e.code === 'ERR_INVALID_CONFIG' && /ws:\/\//.test(e.message));
  assert.throws(() => c.createWSClient({}), (e) => e.code === 'ERR_INVALID_CONFIG');
});
