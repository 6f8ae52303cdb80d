// redux-cluster 2.0's surface, found missing by running its own test suite against this
// package: the enums, the default export, store.config, sendtoall / sendtoallsock,
// registerClass / getRegisteredClasses and serializationMode 'protoobject' (over TCP,
// Unix sockets, node:cluster and backups).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as esm from 'redux-cluster-rs';
import esmDefault, { createStore, SerializationMode, MessageType, __DO_NOT_USE__ActionTypes } from 'redux-cluster-rs';
import { counter, waitFor, tmpSock, freePort, sink, child, md5, ROOT } from './helpers.mjs';

const require = createRequire(import.meta.url);
const cjs = require('redux-cluster-rs');
// The package is CommonJS and uses Redux's CommonJS build; Redux's ESM build is another
// copy (other function objects, other random action types).
const redux = require('redux');
const pkg = require('../package.json');
const PEER = path.join(ROOT, '__test__', 'fixtures', 'peer');

// ---- exports ---------------------------------------------------------------------------

test('the enums have redux-cluster 2.0 values, in CommonJS and ESM', () => {
  assert.deepEqual({ ...SerializationMode }, { JSON: 'json', PROTOOBJECT: 'protoobject' });
  assert.deepEqual(
    { ...MessageType },
    {
      CONN_STATUS: 'REDUX_CLUSTER_CONNSTATUS',
      MSG_TO_WORKER: 'REDUX_CLUSTER_MSGTOWORKER',
      MSG_TO_MASTER: 'REDUX_CLUSTER_MSGTOMASTER',
      SOCKET_AUTH: 'REDUX_CLUSTER_SOCKET_AUTH',
      SOCKET_AUTH_STATE: 'REDUX_CLUSTER_SOCKET_AUTHSTATE',
      START: 'REDUX_CLUSTER_START',
      SYNC: 'REDUX_CLUSTER_SYNC',
    }
  );
  assert.equal(cjs.SerializationMode, SerializationMode);
  assert.equal(cjs.MessageType, MessageType);
  assert.ok(Object.isFrozen(SerializationMode) && Object.isFrozen(MessageType));
});

test("every export of Redux is re-exported, __DO_NOT_USE__ActionTypes included; createStore is ours", () => {
  for (const name of Object.keys(redux)) {
    if (name === 'default') continue;
    assert.ok(name in esm, `ESM lacks ${name}`);
    assert.ok(name in cjs, `CommonJS lacks ${name}`);
    if (name !== 'createStore') assert.equal(esm[name], redux[name], name);
  }
  assert.equal(__DO_NOT_USE__ActionTypes, redux.__DO_NOT_USE__ActionTypes);
  assert.notEqual(esm.createStore, redux.createStore);
  assert.equal(esm.createStore, cjs.createStore);
  // The action types exported are the ones a store of this package dispatches.
  const seen = [];
  createStore((state = {}, action) => (seen.push(action.type), state));
  assert.deepEqual(seen, [__DO_NOT_USE__ActionTypes.INIT]);
});

test("the CommonJS default is redux-cluster's object; the ESM default has the same fields", () => {
  const d = cjs.default;
  assert.deepEqual(Object.keys(d).sort(), ['applyMiddleware', 'bindActionCreators', 'combineReducers', 'compose', 'createStore', 'functions']);
  assert.equal(d.createStore, cjs.createStore);
  assert.equal(d.functions, cjs.functions);
  for (const name of ['combineReducers', 'bindActionCreators', 'applyMiddleware', 'compose']) assert.equal(d[name], redux[name], name);
  for (const name of Object.keys(d)) assert.equal(esmDefault[name], d[name], `ESM default.${name}`);
  const store = d.createStore(counter);
  store.dispatch({ type: 'INC' });
  assert.equal(store.getState().counter, 1);
});

test('RCHash and functions.hasher are md5, as in redux-cluster 2.0', () => {
  assert.equal(cjs.functions.hasher('counter'), md5('counter'));
  assert.equal(createStore(counter).RCHash, md5('counter'));
  assert.equal(cjs.functions.hasher('abc', 'sha256').length, 64);
});

// ---- store fields ----------------------------------------------------------------------

test('store.config is the options over the defaults { serializationMode: json, debug: false }', () => {
  assert.deepEqual(createStore(counter).config, { serializationMode: 'json', debug: false });
  const opts = { mode: 'snapshot', serializationMode: SerializationMode.PROTOOBJECT, debug: true, resync: 5, syncMode: 'ipc', role: ['master'] };
  const store = createStore(counter, opts);
  assert.deepEqual(store.config, opts);
  assert.notEqual(store.config, opts, 'a copy: later changes to the caller object do not reach the store');
  assert.deepEqual(createStore(counter, { serializationMode: undefined, debug: undefined }).config, { serializationMode: 'json', debug: false });
  assert.ok(Object.isFrozen(store.config));
  assert.equal(store.homepage, pkg.homepage);
  assert.equal(store.version, pkg.version);
  // Options redux-cluster 2.0 accepts and ignores are accepted and ignored here too.
  assert.deepEqual(createStore(counter, { role: ['server'], server: { port: 1 }, client: { port: 2 } }).role, ['master']);
});

test('store.mode can be set before serving; anything but action or snapshot is refused', async () => {
  const store = createStore(counter);
  store.mode = 'snapshot';
  assert.equal(store.mode, 'snapshot');
  assert.throws(() => (store.mode = 'fast'), { code: 'ERR_INVALID_CONFIG', message: /mode must be 'action' or 'snapshot'/ });
  assert.equal(store.mode, 'snapshot');
  store.dispatch({ type: 'INC', by: 2 });
  const srv = store.createServer({ path: tmpSock('mode') });
  const replica = createStore(counter);
  const cl = replica.createClient({ path: srv.path });
  store.dispatch({ type: 'INC' });
  await waitFor(() => replica.getState().counter === 3, { what: 'snapshot-mode replica', show: () => replica.getState() });
  await cl.disconnect();
  await srv.close();
});

// ---- registerClass / getRegisteredClasses ---------------------------------------------

class Point {
  constructor({ x, y }) {
    this.x = x;
    this.y = y;
  }

  norm() {
    return Math.hypot(this.x, this.y);
  }
}

class Segment {
  constructor({ from, to }) {
    this.from = from;
    this.to = to;
  }

  length() {
    return Math.hypot(this.to.x - this.from.x, this.to.y - this.from.y);
  }
}

function shapes(state = { shapes: [] }, action) {
  switch (action.type) {
    case 'ADD':
      // `seen`: the class of each shape as the reducer got it.
      return { shapes: [...state.shapes, action.shape], seen: [...(state.seen ?? []), action.shape.constructor.name] };
    default:
      return state;
  }
}

test("registerClass in 'json' mode is ignored with a warning; bad arguments throw ERR_INVALID_CONFIG", async () => {
  const store = createStore(counter);
  const warned = new Promise((resolve) => process.once('warning', resolve));
  store.registerClass('Point', Point);
  const w = await warned;
  assert.equal(w.name, 'ReduxClusterWarning');
  assert.equal(w.code, 'REDUX_CLUSTER_JSON_MODE');
  assert.match(w.message, /only available in ProtoObject mode/);
  assert.deepEqual(store.getRegisteredClasses(), []);
  const po = createStore(counter, { serializationMode: 'protoobject' });
  assert.throws(() => po.registerClass('', Point), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => po.registerClass('Point', {}), { code: 'ERR_INVALID_CONFIG' });
  assert.throws(() => po.registerClass(Point), { code: 'ERR_INVALID_CONFIG' });
  po.registerClass('Point', Point);
  po.registerClass('Seg', Segment);
  assert.deepEqual(po.getRegisteredClasses(), ['Point', 'Seg']);
  assert.throws(() => createStore(counter, { serializationMode: 'xml' }), { code: 'ERR_INVALID_CONFIG', message: /serializationMode/ });
});

async function pair(serializationMode, transport, { register = true, mode = 'action' } = {}) {
  const server = createStore(shapes, { serializationMode, mode });
  const client = createStore(shapes, { serializationMode, mode });
  if (register) {
    for (const s of [server, client]) {
      s.registerClass('Point', Point);
      // Registered under another name than the class's own: the tag is the registered one.
      s.registerClass('Seg', Segment);
    }
  }
  const addr = transport === 'tcp' ? { host: '127.0.0.1', port: await freePort() } : { path: tmpSock('po') };
  server.dispatch({ type: 'ADD', shape: new Point({ x: 3, y: 4 }) }); // in the state a fresh client receives
  const srv = server.createServer(addr);
  const cl = client.createClient(addr);
  await waitFor(() => client.getState().shapes.length === 1, { what: 'initial state', show: () => client.getState() });
  return {
    server,
    client,
    async close() {
      await cl.disconnect();
      await srv.close();
    },
  };
}

for (const [transport, mode] of [
  ['tcp', 'action'],
  ['unix', 'snapshot'],
]) {
  test(`'protoobject' over ${transport} (${mode} mode): registered classes arrive as instances, both ways and in the first state`, async () => {
    const { server, client, close } = await pair('protoobject', transport, { mode });
    const first = client.getState().shapes[0];
    assert.ok(first instanceof Point, `the client's first state holds a Point, got ${first.constructor.name}`);
    assert.equal(first.norm(), 5);
    client.dispatch({ type: 'ADD', shape: new Segment({ from: new Point({ x: 0, y: 0 }), to: new Point({ x: 6, y: 8 }) }) });
    server.dispatch({ type: 'ADD', shape: new Point({ x: 5, y: 12 }) });
    await waitFor(() => server.getState().shapes.length === 3 && client.getState().shapes.length === 3, { what: 'both actions everywhere' });
    for (const s of [server, client]) {
      const seg = s.getState().shapes.find((x) => x instanceof Segment);
      assert.ok(seg, `a Segment in ${s === server ? 'server' : 'client'} state`);
      assert.equal(seg.length(), 10);
      assert.ok(seg.from instanceof Point && seg.to instanceof Point, 'nested instances are rebuilt too');
      assert.deepEqual(
        s.getState().shapes.map((x) => x.constructor.name).sort(),
        ['Point', 'Point', 'Segment']
      );
    }
    assert.deepEqual(server.getState().seen.sort(), ['Point', 'Point', 'Segment'], "the server's reducer got a Segment from the client");
    assert.deepEqual(client.getState().seen.sort(), ['Point', 'Point', 'Segment']);
    await close();
  });
}

test("'json' mode (the control): the same instances arrive as plain objects", async () => {
  const { server, client, close } = await pair('json', 'unix', { register: false });
  assert.equal(client.getState().shapes[0].constructor, Object);
  client.dispatch({ type: 'ADD', shape: new Point({ x: 1, y: 0 }) });
  await waitFor(() => server.getState().shapes.length === 2, { what: 'client action on the server' });
  assert.equal(server.getState().shapes[1].constructor, Object);
  assert.deepEqual(server.getState().seen, ['Point', 'Object'], "the server's reducer got a plain object from the client");
  await close();
});

test("'protoobject' mode, a class the receiver does not know: its plain fields, untagged", async () => {
  const server = createStore(shapes, { serializationMode: 'protoobject' });
  const client = createStore(shapes, { serializationMode: 'protoobject' });
  client.registerClass('Point', Point); // the server does not know Point
  const p = tmpSock('unknown');
  const srv = server.createServer({ path: p });
  const cl = client.createClient({ path: p });
  client.dispatch({ type: 'ADD', shape: new Point({ x: 1, y: 1 }) });
  await waitFor(() => server.getState().shapes.length === 1 && client.getState().shapes.length === 1, { what: 'the action everywhere' });
  assert.deepEqual(server.getState().shapes[0], { x: 1, y: 1 });
  assert.equal(server.getState().shapes[0].constructor, Object);
  assert.ok(client.getState().shapes[0] instanceof Point, 'the sender, which knows the class, rebuilds it');
  await cl.disconnect();
  await srv.close();
});

test("'protoobject' mode, a class whose constructor throws: its plain fields, and the reason on stderr", async () => {
  class Fragile {
    constructor() {
      throw new Error('no way');
    }
  }
  const errors = sink();
  const server = createStore(shapes, { serializationMode: 'protoobject', stderr: errors });
  const client = createStore(shapes, { serializationMode: 'protoobject' });
  server.registerClass('Point', Fragile);
  client.registerClass('Point', Point);
  const p = tmpSock('fragile');
  const srv = server.createServer({ path: p });
  const cl = client.createClient({ path: p });
  client.dispatch({ type: 'ADD', shape: new Point({ x: 2, y: 2 }) });
  await waitFor(() => server.getState().shapes.length === 1, { what: 'the action on the server' });
  assert.deepEqual(server.getState().shapes[0], { x: 2, y: 2 });
  assert.ok(errors.lines.some((l) => /class "Point" could not be rebuilt \(no way\)/.test(l)), errors.lines.join('\n'));
  await cl.disconnect();
  await srv.close();
});

test("'protoobject' with the protoobject package: unregistered subclasses arrive as ProtoObject, the sender registers what it sends", async () => {
  const k = child('protoobject-peer.mjs', [tmpSock('peer')], { env: { NODE_PATH: PEER } });
  const r = await k.next((m) => 'server' in m || 'error' in m);
  assert.equal(r.error, undefined, `${r.error}; stderr: ${k.stderr.slice(-500)}`);
  // The server's initial state: ProtoObjects, nested ones too, rebuilt on the client.
  assert.deepEqual(r.initial, { cls: 'ProtoObject', isProtoObject: true, label: 'initial', shout: null, inner: { cls: 'ProtoObject', n: 1 }, list: null, when: null });
  // The server never registered Tag: the base class, every field there (not ProtoObject's
  // toJSON, which keeps primitives only), nested and listed ProtoObjects rebuilt, a Date
  // as JSON has it.
  assert.deepEqual(r.server, { cls: 'ProtoObject', isProtoObject: true, label: 'sent', shout: null, inner: { cls: 'ProtoObject', n: 2 }, list: ['ProtoObject', 'ProtoObject'], when: 'string' });
  // The client registered Tag when it sent it, so its own action comes back as a Tag.
  assert.deepEqual(r.client, { cls: 'Tag', isProtoObject: true, label: 'sent', shout: 'SENT', inner: { cls: 'ProtoObject', n: 2 }, list: ['ProtoObject', 'Tag'], when: 'string' });
  assert.deepEqual(r.serverClasses, []);
  assert.deepEqual(r.clientClasses, ['Tag']);
  const { code } = await k.exited;
  assert.equal(code, 0, `exits by itself once closed; stderr: ${k.stderr.slice(-300)}`);
});

test("'protoobject' over node:cluster: a worker's registered classes and ProtoObjects reach the primary, and back", async () => {
  const k = child('protoobject-cluster.mjs', [], { env: { NODE_PATH: PEER } });
  const r = await k.next((m) => 'primary' in m, 30000);
  assert.equal(r.error, undefined, `${r.error}; stderr: ${k.stderr.slice(-500)}`);
  const sorted = (xs) => xs.map((x) => JSON.stringify(x)).sort();
  // [class, norm() of a Point or label of a ProtoObject]: only rebuilt instances answer.
  assert.deepEqual(sorted(r.primary), sorted([['Point', 5], ['Point', 10], ['ProtoObject', 'from-worker']]));
  assert.deepEqual(sorted(r.worker), sorted([['Point', 5], ['Point', 10], ['Tag', 'from-worker']]));
  const { code } = await k.exited;
  assert.equal(code, 0, `the primary exits once its worker is gone; stderr: ${k.stderr.slice(-300)}`);
});

test("'protoobject' backups write class tags and restore instances", async () => {
  const file = path.join(os.tmpdir(), `rcrs-po-backup-${process.pid}.json`);
  fs.rmSync(file, { force: true });
  const a = createStore(shapes, { serializationMode: 'protoobject' });
  a.registerClass('Point', Point);
  await a.backup({ path: file });
  a.dispatch({ type: 'ADD', shape: new Point({ x: 8, y: 15 }) });
  await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('"__className":"Point"'), { what: 'the backup file' });
  const b = createStore(shapes, { serializationMode: 'protoobject' });
  b.registerClass('Point', Point);
  await b.backup({ path: file });
  const p = b.getState().shapes[0];
  assert.ok(p instanceof Point, `restored as a Point, got ${p && p.constructor.name}`);
  assert.equal(p.norm(), 17);
  fs.rmSync(file, { force: true });
});

// ---- sendtoall / sendtoallsock ---------------------------------------------------------

async function served() {
  const server = createStore(counter);
  const srv = server.createServer({ path: tmpSock('bcast') });
  const client = createStore(counter);
  const cl = client.createClient({ path: srv.path });
  await waitFor(() => client.connected, { what: 'connection' });
  return {
    server,
    client,
    path: srv.path,
    // Absence is proved by order: a marker dispatched after the call arrives after
    // anything the call had sent.
    async settle() {
      server.dispatch({ type: 'SET', payload: { marker: (server.getState().marker ?? 0) + 1 } });
      const m = server.getState().marker;
      await waitFor(() => client.getState().marker === m, { what: 'the marker', show: () => client.getState() });
    },
    async close() {
      await cl.disconnect();
      await srv.close();
    },
  };
}

test('sendtoall() sends the server state to every replica: one that diverged is corrected', async () => {
  const { server, client, settle, close } = await served();
  server.dispatch({ type: 'INC', by: 2 });
  await waitFor(() => client.getState().counter === 2, { what: 'replica at 2' });
  server.getState().counter = 42; // a change made outside the ordered stream
  await settle();
  assert.equal(client.getState().counter, 2, 'the replica does not see an unordered change');
  let notified = 0;
  const off = server.subscribe(() => notified++);
  server.sendtoall();
  assert.equal(notified, 0, "the server's own state is not replaced by itself");
  off();
  await waitFor(() => client.getState().counter === 42, { what: 'resync', show: () => client.getState() });
  server.dispatch({ type: 'INC' });
  await waitFor(() => client.getState().counter === 43, { what: 'ordinary actions after the resync' });
  server.getState().counter = 7;
  server.sendtoallsock();
  await waitFor(() => client.getState().counter === 7, { what: 'sendtoallsock resync' });
  await close();
});

test('sendtoall(MSG_TO_WORKER) orders its action for every replica and this store; a SYNC action replaces the state everywhere', async () => {
  const { server, client, settle, close } = await served();
  server.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: server.RCHash, _action: { type: 'INC', by: 5 } });
  assert.equal(server.getState().counter, 5);
  server.sendtoallsock({ _msg: MessageType.MSG_TO_WORKER, _hash: server.RCHash, _action: { type: 'INC' } });
  await waitFor(() => client.getState().counter === 6, { what: 'both actions on the replica' });
  server.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: server.RCHash, _action: { type: MessageType.SYNC, payload: { counter: 100 }, _internal: true } });
  assert.deepEqual(server.getState(), { counter: 100 });
  await waitFor(() => client.getState().counter === 100, { what: 'state replaced on the replica' });
  assert.throws(
    () => server.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: server.RCHash, _action: { type: MessageType.SYNC } }),
    { code: 'ERR_INVALID_ACTION', message: /needs the state as its payload/ }
  );
  assert.throws(() => server.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: server.RCHash, _action: { by: 1 } }), { code: 'ERR_INVALID_ACTION' });
  // Messages no replica of this store would act on are ignored, as redux-cluster's workers do.
  server.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: 'another store', _action: { type: 'INC' } });
  server.sendtoall({ _msg: MessageType.CONN_STATUS, _hash: server.RCHash, _connected: false });
  server.sendtoall('INC');
  await settle();
  assert.equal(server.getState().counter, 100);
  assert.equal(client.getState().counter, 100);
  assert.equal(client.connected, true);
  await close();
});

test('sendtoall on a store that serves no one does nothing (standalone, client)', async () => {
  const alone = createStore(counter);
  let notified = 0;
  alone.subscribe(() => notified++);
  alone.sendtoall();
  alone.sendtoallsock({ _msg: MessageType.MSG_TO_WORKER, _hash: alone.RCHash, _action: { type: 'INC' } });
  assert.equal(notified, 0);
  assert.equal(alone.getState().counter, 0);
  const { server, client, settle, close } = await served();
  client.sendtoall({ _msg: MessageType.MSG_TO_WORKER, _hash: client.RCHash, _action: { type: 'INC' } });
  client.sendtoall();
  await settle();
  assert.equal(server.getState().counter, 0);
  assert.equal(client.getState().counter, 0);
  await close();
});

test('sendtoall() in a loop while another process dispatches 40,000 actions: nothing is lost, the replica ends equal', async () => {
  // The client's actions are ordered by the engine while the server's JS reads its state
  // for a resync; the ones that slip in between are caught (the state is read and sent
  // again). A resync that dropped them would leave the server or the replica short.
  const server = createStore(counter);
  const p = tmpSock('race');
  const srv = server.createServer({ path: p });
  const k = child('agent.mjs', ['client', JSON.stringify({ path: p })]);
  await k.next((m) => m.ready);
  const N = 20;
  const per = 2000;
  // Resyncs made while the client's actions were arriving: the race this test is about
  // (how many depends on the machine's speed, so only that there were some).
  let during = 0;
  let stop = false;
  const loop = () => {
    const c = server.getState().counter;
    server.sendtoall();
    if (c > 0 && c < N * per) during++;
    if (!stop) setImmediate(loop);
  };
  loop();
  try {
    // One batch at a time, so that the resyncs keep meeting actions on their way in
    // (sent all at once, a fast machine orders them between two turns of the loop).
    for (let i = 0; i < N; i++) {
      k.send({ cmd: 'dispatch', n: per });
      await waitFor(() => server.getState().counter >= (i + 1) * per, { timeoutMs: 30000, what: `batch ${i + 1} on the server`, show: () => server.getState() });
    }
  } finally {
    stop = true;
  }
  assert.ok(during >= 10, `${during} resyncs while the actions arrived`);
  let id = 0;
  let last;
  await waitFor(
    async () => {
      const want = ++id;
      k.send({ cmd: 'state', id: want });
      last = await k.next((m) => m.id === want);
      return last.state.counter === N * per;
    },
    { timeoutMs: 20000, what: 'the replica at N', show: () => last }
  );
  assert.equal(server.getState().counter, N * per);
  k.send({ cmd: 'close' });
  await k.next((m) => m.closed);
  await srv.close();
});
