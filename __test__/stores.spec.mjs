// Many stores on one replicated group: each server process opens several named stores on
// its group (createServer({ group })); each store has its own order, state and clients
// (a client names the store it wants by its reducer and name), all share the servers'
// Raft log, its snapshots and its failover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, ErrorCode } from 'redux-cluster-rs';
import { ask, child, counter, freePort, oneLeader, waitFor } from './helpers.mjs';

function start(spec) {
  const k = child('group-stores.mjs', [JSON.stringify(spec)]);
  k.spec = spec;
  return k;
}

const stateOf = async (k, name) => (await ask(k, { cmd: 'state', name })).state;

test('one group, several stores: each its own order, state and clients; opened on a running group; kill -9, restart, a server added later', { timeout: 180000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-stores-'));
  const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  const seeds = ports.slice(0, 3).map((p, i) => `g${i}@127.0.0.1:${p}`);
  // Snapshots every 20 entries: they carry every store, and the log before them goes.
  const spec = (i, stores = ['room-1', 'room-2']) => ({
    port: ports[i],
    stores,
    cluster: { nodeName: `g${i}`, seeds, dataDir: path.join(dir, `g${i}`), heartbeatInterval: 50, electionTimeout: 150, snapshotThreshold: 20 },
  });
  const servers = [0, 1, 2].map((i) => start(spec(i)));
  const all = ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port }));
  const open = (name) => {
    const s = createStore(counter, { name, stderr: () => {} });
    const c = name ? s.createClient({ servers: all }) : s.createClient({ servers: all });
    return { s, c };
  };
  const main = open(undefined);
  const room1 = open('room-1');
  const room2 = open('room-2');
  const stray = createStore(counter, { name: 'room-x', stderr: () => {} });
  const strayClient = stray.createClient({ servers: [all[0]] });
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    await oneLeader(servers, 3);

    // Each store orders its own actions from 1; none sees another's.
    const r1 = await Promise.all(Array.from({ length: 50 }, () => room1.s.dispatchAsync({ type: 'INC' })));
    const r2 = await Promise.all(Array.from({ length: 20 }, () => room2.s.dispatchAsync({ type: 'INC' })));
    const r0 = await Promise.all(Array.from({ length: 10 }, () => main.s.dispatchAsync({ type: 'INC' })));
    assert.deepEqual(r1.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1), 'room-1: its own order');
    assert.deepEqual(r2.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'room-2: its own order');
    assert.deepEqual(r0.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 1), 'the first store: its own order');
    // Through a server's own dispatch too.
    const own = await ask(servers[1], { cmd: 'dispatch', name: 'room-2', n: 5 });
    assert.deepEqual(own.codes, []);
    for (const k of servers) {
      await waitFor(async () => (await stateOf(k, 'room-1')).counter === 50 && (await stateOf(k, 'room-2')).counter === 25 && (await stateOf(k)).counter === 10, {
        what: `${k.spec.cluster.nodeName} holds each store's own state`,
      });
    }
    await waitFor(() => room1.s.getState().counter === 50 && room2.s.getState().counter === 25 && main.s.getState().counter === 10, { what: 'each client its store' });

    // A client naming a store the group does not host is refused with its code.
    await waitFor(() => strayClient.error?.code === ErrorCode.StoreMismatch, { what: 'the client of an unknown store refused', show: () => strayClient.error });
    const refused = await stray.dispatchAsync({ type: 'INC' }, { timeout: 10000 }).then(
      () => null,
      (e) => e.code
    );
    assert.equal(refused, ErrorCode.StoreMismatch);

    // A store opened on the running group, on one server first: it orders and serves
    // there; a server that opens it later takes over what was ordered for it.
    assert.equal((await ask(servers[0], { cmd: 'open', name: 'room-3' })).opened, true);
    const room3 = createStore(counter, { name: 'room-3', stderr: () => {} });
    const c3 = room3.createClient({ servers: [all[0]] });
    const r3 = await Promise.all(Array.from({ length: 7 }, () => room3.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    assert.deepEqual(r3.map((r) => r.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal((await ask(servers[2], { cmd: 'open', name: 'room-3' })).opened, true);
    await waitFor(async () => (await stateOf(servers[2], 'room-3')).counter === 7, { what: 'a store opened later took over its log' });
    await c3.disconnect();
    // A server of the group where the store is not open sends its client on (it is
    // not refused as a stranger).
    const room3b = createStore(counter, { name: 'room-3', stderr: () => {} });
    const c3b = room3b.createClient({ servers: [all[1], all[0]] });
    assert.equal((await room3b.dispatchAsync({ type: 'INC' }, { timeout: 20000 })).seq, 8);
    assert.equal(c3b.server.port, ports[0], 'moved on to a server where the store is open');
    assert.equal(c3b.error?.code, ErrorCode.Unavailable);
    await c3b.disconnect();

    // kill -9 of the leader: every store goes on through the others.
    const leader = await oneLeader(servers, 3);
    const li = Number(leader.slice(1));
    await servers[li].kill('SIGKILL');
    const after = await Promise.all(Array.from({ length: 30 }, () => room1.s.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    assert.equal(new Set(after.map((r) => r.seq)).size, 30);
    await Promise.all(Array.from({ length: 10 }, () => room2.s.dispatchAsync({ type: 'INC' }, { timeout: 20000 })));
    // Restarted from its dataDir (snapshots with every store, and the log after them).
    servers[li] = start(spec(li, ['room-1', 'room-2', 'room-3']));
    await servers[li].next((m) => m.listening);
    await waitFor(
      async () => (await stateOf(servers[li], 'room-1')).counter === 80 && (await stateOf(servers[li], 'room-2')).counter === 35 && (await stateOf(servers[li], 'room-3')).counter === 8,
      { timeoutMs: 30000, what: 'the restarted server holds every store' }
    );
    assert.equal((await stateOf(servers[li])).counter, 10);

    // A server added later (empty dataDir): the leader's snapshot brings every store.
    const late = start({ ...spec(3, ['room-1', 'room-2']), cluster: { ...spec(3).cluster, nodeName: 'g3', seeds } });
    servers.push(late);
    await late.next((m) => m.listening);
    await waitFor(async () => (await stateOf(late, 'room-1')).counter === 80 && (await stateOf(late, 'room-2')).counter === 35, { timeoutMs: 30000, what: 'the late server holds the stores' });
    // And a store it opens afterwards, from what it held for it.
    assert.equal((await ask(late, { cmd: 'open', name: 'room-3' })).opened, true);
    await waitFor(async () => (await stateOf(late, 'room-3')).counter === 8, { what: 'the late server took over room-3' });
    await waitFor(() => room1.s.getState().counter === 80 && room2.s.getState().counter === 35, { what: 'the clients hold every action' });
  } finally {
    await Promise.all([main.c, room1.c, room2.c, strayClient].map((c) => c.disconnect()));
    await Promise.all(servers.map((k) => k.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('createServer({ group }) and name are checked', async () => {
  const port = await freePort();
  const first = createStore(counter, { stderr: () => {} });
  const single = createStore(counter, { name: 'single', stderr: () => {} });
  const singleServer = single.createServer({ host: '127.0.0.1', port: 0 });
  const group = first.createServer({ host: '127.0.0.1', port, cluster: { nodeName: 'solo', bootstrap: true } });
  const bad = (f, what) => assert.throws(f, (e) => e.code === ErrorCode.InvalidConfig, what);
  try {
    bad(() => createStore(counter, { name: '' }), 'an empty name');
    bad(() => createStore(counter, { name: 7 }), 'a name that is not a string');
    bad(() => createStore(counter, { name: 'a' }).createServer({ group: {} }), 'group that is not a server');
    bad(() => createStore(counter, { name: 'a' }).createServer({ group: singleServer }), 'group that is a single server');
    bad(() => createStore(counter).createServer({ group }), "the first store's reducer and name");
    bad(() => createStore(counter, { name: 'b' }).createServer({ group, port: 1 }), 'a port of its own');
    // Stores of one reducer with different names are different stores.
    assert.notEqual(createStore(counter, { name: 'x' }).RCHash, createStore(counter, { name: 'y' }).RCHash);
    assert.equal(createStore(counter).RCHash, first.RCHash);
    const ok = createStore(counter, { name: 'ok', stderr: () => {} });
    const h = ok.createServer({ group });
    assert.equal(h.port, group.port);
    assert.equal((await ok.dispatchAsync({ type: 'INC' }, { timeout: 10000 })).seq, 1);
    await h.close();
  } finally {
    await singleServer.close();
    await group.close();
  }
});

test("each store of a group lists its own clients in metrics(), from every endpoint of the group, with lags against its own order", async () => {
  const port = await freePort();
  const first = createStore(counter, { stderr: () => {} });
  const group = first.createServer({ host: '127.0.0.1', port, cluster: { nodeName: 'solo', bootstrap: true } });
  const wsPort = await freePort();
  const ws = first.createWSServer({ host: '127.0.0.1', port: wsPort });
  const room = createStore(counter, { name: 'room', stderr: () => {} });
  const roomServer = room.createServer({ group, http: { port: 0 } });
  const clients = [
    createStore(counter, { stderr: () => {} }),
    createStore(counter, { name: 'room', stderr: () => {} }),
    createStore(counter, { name: 'room', stderr: () => {} }),
  ];
  const links = [
    clients[0].createClient({ host: '127.0.0.1', port }),
    clients[1].createClient({ host: '127.0.0.1', port }),
    clients[2].createWSClient({ host: 'ws://127.0.0.1', port: wsPort }),
  ];
  try {
    await waitFor(() => clients.every((c) => c.connected), { what: 'the clients', timeoutMs: 20000 });
    for (let i = 0; i < 3; i++) await clients[1].dispatchAsync({ type: 'INC' }, { timeout: 10000 });
    await first.dispatchAsync({ type: 'INC' }, { timeout: 10000 });
    const ids = (m) => m.clients.map((c) => `${c.endpoint} ${c.position}`).sort();
    // Each store's own clients, each at its own store's last sequence number.
    await waitFor(() => roomServer.metrics().clients.every((c) => c.position === 3) && group.metrics().clients.every((c) => c.position === 1), { what: 'the clients to catch up' });
    const mine = roomServer.metrics();
    assert.deepEqual(ids(mine), [`tcp:${port} 3`, `ws:${wsPort} 3`]);
    assert.ok(mine.clients.every((c) => c.lag === 0 && !('store' in c)), JSON.stringify(mine.clients));
    assert.deepEqual(ids(group.metrics()), [`tcp:${port} 1`]);
    assert.deepEqual(ids(ws.metrics()), [`tcp:${port} 1`], "the first store's handles all list its clients");
    // And its HTTP endpoint serves them.
    const { port: httpPort } = roomServer.dashboard.server.address();
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(text, /^redux_cluster_clients 2$/m);
  } finally {
    await Promise.all(links.map((l) => l.disconnect()));
    await roomServer.close();
    await ws.close();
    await group.close();
  }
});
