// Reducers in the engine: reducers.patch (RFC 6902), reducers.entities (RTK's entity
// adapter, checked against RTK itself), and a Rust reducer loaded from a shared library
// (examples/rust-reducer); locally, over TCP, in snapshot mode, backed up, and in the
// Raft-replicated tier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEntityAdapter, createSlice } from '@reduxjs/toolkit';
import { createStore, reducers, loadReducer } from 'redux-cluster-rs';
import { ROOT, ask, child, counter, freePort, oneLeader, sink, waitFor } from './helpers.mjs';

const EXAMPLE = path.join(ROOT, 'target', 'release', 'liborder_book_reducer.so');
const ADDON = path.join(ROOT, fs.readdirSync(ROOT).find((f) => f.endsWith('.node')));

const add = (p, value) => ({ type: 'PATCH', ops: [{ op: 'add', path: p, value }] });

test('reducers.patch: atomic RFC 6902 patches, a lazily made and stable getState(), one notification per dispatch', async () => {
  const errors = sink();
  const s = createStore(reducers.patch({ n: 0, list: [] }), { stderr: errors });
  let notified = 0;
  const unsubscribe = s.subscribe(() => notified++);
  const before = s.getState();
  assert.equal(s.getState(), before, 'the same object while nothing changed');
  s.dispatch({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: 1 }, { op: 'add', path: '/list/-', value: 'a' }, { op: 'copy', from: '/list', path: '/copy' }] });
  const after = s.getState();
  assert.notEqual(after, before);
  assert.deepEqual(after, { n: 1, list: ['a'], copy: ['a'] });
  assert.equal(s.getState(), after);
  assert.equal(notified, 1);

  // A failing operation (a test that does not match) undoes the ones before it.
  const bad = { type: 'PATCH', ops: [{ op: 'remove', path: '/copy' }, { op: 'move', from: '/n', path: '/m' }, { op: 'test', path: '/m', value: 7 }] };
  await assert.rejects(s.dispatchAsync(bad), (e) => e.code === 'ERR_REDUCER' && /value did not match/.test(e.message));
  s.dispatch({ type: 'PATCH', ops: [{ op: 'remove', path: '/nothing/here' }] });
  assert.equal(s.getState(), after, 'nothing changed, not even the object');
  assert.equal(errors.lines.length, 2, `each refusal reported: ${errors.lines}`);
  // Actions of other types are not the document's.
  assert.deepEqual(await s.dispatchAsync({ type: 'SOMETHING_ELSE' }), { seq: 4 });
  assert.equal(s.getState(), after);
  unsubscribe();
  s.dispatch(add('/x', 1));
  assert.equal(notified, 4, 'once per dispatch, refused ones too (as Redux calls listeners per dispatch); none after unsubscribe');
  assert.throws(() => s.replaceReducer(counter), (e) => e.code === 'ERR_INVALID_CONFIG');
  assert.throws(() => createStore(reducers.patch(() => 1)), (e) => e.code === 'ERR_INVALID_CONFIG');
});

// A seeded pseudo-random run: the same actions through RTK's own adapter and through the
// engine's must leave the same state after every action.
test('reducers.entities: the same state as Redux Toolkit createEntityAdapter, action by action', () => {
  let seed = 20261202;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pool = ['a', 'b', 'c', 1, 2, 3, 10, '2'];
  const id = () => pool[rnd(pool.length)];
  const entity = () => ({ id: id(), v: rnd(100), ...(rnd(2) ? { tag: `t${rnd(5)}` } : {}) });
  const list = () => Array.from({ length: rnd(4) }, entity);
  const change = () => ({ id: id(), changes: rnd(8) === 0 ? { id: id(), v: rnd(100) } : { v: rnd(100), extra: rnd(3) } });
  const payloads = {
    addOne: entity,
    addMany: () => (rnd(3) === 0 ? Object.fromEntries(list().map((e) => [String(e.id), e])) : list()),
    setOne: entity,
    setMany: list,
    setAll: list,
    upsertOne: entity,
    upsertMany: list,
    updateOne: change,
    updateMany: () => Array.from({ length: rnd(3) + 1 }, change),
    removeOne: id,
    removeMany: () => Array.from({ length: rnd(3) }, id),
    removeAll: () => undefined,
  };
  const adapter = createEntityAdapter();
  const slice = createSlice({
    name: 'todos',
    initialState: adapter.getInitialState({ loading: 'idle' }),
    reducers: Object.fromEntries(Object.keys(payloads).map((op) => [op, adapter[op]])),
  });
  let rtk = slice.reducer(undefined, { type: '@@INIT' });
  const spec = reducers.entities(rtk, { name: 'todos' });
  assert.equal(spec.types.addOne, 'todos/addOne');
  const store = createStore(spec);
  const ops = Object.keys(payloads);
  for (let i = 0; i < 3000; i++) {
    const op = ops[rnd(ops.length)];
    const action = slice.actions[op](payloads[op]());
    assert.deepEqual(spec.actions[op](action.payload), action, 'the spec makes the same actions as the slice');
    rtk = slice.reducer(rtk, action);
    store.dispatch(action);
    assert.deepEqual(store.getState(), rtk, `after #${i} ${JSON.stringify(action)}`);
  }
  // A malformed payload is refused whole.
  const st = store.getState();
  assert.throws(() => createStore(reducers.entities({ ids: ['x'], entities: {} })), (e) => e.code === 'ERR_INVALID_CONFIG');
  return store.dispatchAsync({ type: 'todos/addMany', payload: [{ id: 'new' }, { noId: true }] }).then(
    () => assert.fail('should be refused'),
    (e) => {
      assert.equal(e.code, 'ERR_REDUCER');
      assert.equal(store.getState(), st);
    }
  );
});

test('reducers.patch over TCP: 100,000 actions from two clients converge on the server and every client; failing patches are no-ops everywhere; a late client gets a snapshot', { timeout: 120000 }, async () => {
  const quiet = sink();
  const server = createStore(reducers.patch({ a: [], b: [] }), { stderr: quiet, logRetention: 1000 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const clients = [0, 1].map(() => createStore(reducers.patch({ a: [], b: [] }), { stderr: sink() }));
  const conns = clients.map((c) => c.createClient({ host: '127.0.0.1', port: srv.port }));
  const N = 50000;
  try {
    const expected = { a: [], b: [] };
    clients.forEach((c, k) => {
      const key = k === 0 ? 'a' : 'b';
      for (let i = 0; i < N; i++) {
        if (i % 1000 === 999) {
          // Applies the add, then fails the test: the whole action is undone.
          c.dispatch({ type: 'PATCH', ops: [{ op: 'add', path: `/${key}/-`, value: i }, { op: 'test', path: '/missing', value: 1 }] });
        } else {
          c.dispatch(add(`/${key}/-`, i));
          expected[key].push(i);
        }
      }
    });
    const last = await clients[0].dispatchAsync(add('/done', true));
    expected.done = true;
    await waitFor(() => conns.every((c) => c.pending === 0) && clients.every((c) => c.getState().done && c.getState().b.length === expected.b.length), {
      timeoutMs: 90000,
      what: 'every client holds every action',
      show: () => clients.map((c) => [c.getState().a.length, c.getState().b.length]),
    });
    assert.ok(last.seq > N, 'after the client\'s own 50,000');
    assert.deepEqual(server.getState(), expected);
    for (const c of clients) assert.deepEqual(c.getState(), expected);
    // The server reported the refusals (each of 100) on stderr.
    await waitFor(() => quiet.lines.filter((l) => /refused action/.test(l)).length === 100, { what: '100 refusals reported by the server' });

    // A client that connects now is far behind the log's retention: it gets a snapshot,
    // then the actions after it. The snapshot is the server's last (made once its log is
    // 1,000 actions, logRetention, past the one before), and the two clients' streams
    // interleave, so it can hold `done` without the last few hundred of client 1's
    // actions, ordered after `done`: seeing `done` is not the end (asserting then failed
    // once, b 483 short). Wait until it holds as many as the server.
    const late = createStore(reducers.patch());
    const lc = late.createClient({ host: '127.0.0.1', port: srv.port });
    const lengths = () => ((s) => ({ a: s.a?.length, b: s.b?.length, done: s.done }))(late.getState());
    await waitFor(() => ((l) => l.done === true && l.a === expected.a.length && l.b === expected.b.length)(lengths()), {
      what: 'the late client took the snapshot and the actions after it',
      show: lengths,
    });
    assert.deepEqual(late.getState(), expected);
    await lc.disconnect();
  } finally {
    await Promise.all(conns.map((c) => c.disconnect()));
    await srv.close();
  }
});

test('a native store in snapshot mode, and a client of another reducer refused as a store mismatch', async () => {
  const server = createStore(reducers.patch({ n: 0 }));
  server.mode = 'snapshot';
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const replica = createStore(reducers.patch({ n: 0 }));
  const conn = replica.createClient({ host: '127.0.0.1', port: srv.port });
  const js = createStore(counter, { stderr: sink() });
  const jsConn = js.createClient({ host: '127.0.0.1', port: srv.port });
  const other = createStore(reducers.entities(), { stderr: sink() });
  const otherConn = other.createClient({ host: '127.0.0.1', port: srv.port });
  try {
    for (let i = 1; i <= 50; i++) server.dispatch({ type: 'PATCH', ops: [{ op: 'replace', path: '/n', value: i }] });
    await replica.dispatchAsync({ type: 'PATCH', ops: [{ op: 'add', path: '/from', value: 'client' }] });
    assert.deepEqual(replica.getState(), { n: 50, from: 'client' });
    assert.deepEqual(server.getState(), { n: 50, from: 'client' });
    await waitFor(() => jsConn.error && otherConn.error, { what: 'both mismatched clients refused' });
    assert.equal(jsConn.error.code, 'ERR_STORE_MISMATCH');
    assert.equal(otherConn.error.code, 'ERR_STORE_MISMATCH');
  } finally {
    await Promise.all([conn.disconnect(), jsConn.disconnect(), otherConn.disconnect()]);
    await srv.close();
  }
});

test('a native store backs up its state and restores it (into a server: every client takes it)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-native-backup-'));
  const file = path.join(dir, 'state.bak');
  try {
    const a = createStore(reducers.entities(undefined, { name: 'books' }));
    await a.backup({ path: file, timeout: 0.02 });
    a.dispatch({ type: 'books/addMany', payload: [{ id: 'x', t: 1 }, { id: 'y', t: 2 }] });
    // Without a key the file is the state's JSON: wait until it holds both books.
    const written = () => {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')).ids.length === 2;
      } catch {
        return false;
      }
    };
    await waitFor(written, { what: 'the backup written' });

    const b = createStore(reducers.entities(undefined, { name: 'books' }));
    const srv = b.createServer({ host: '127.0.0.1', port: 0 });
    const replica = createStore(reducers.entities(undefined, { name: 'books' }));
    const conn = replica.createClient({ host: '127.0.0.1', port: srv.port });
    try {
      await replica.dispatchAsync({ type: 'books/addOne', payload: { id: 'z' } });
      await b.backup({ path: file, timeout: 1000 });
      const want = { ids: ['x', 'y'], entities: { x: { id: 'x', t: 1 }, y: { id: 'y', t: 2 } } };
      assert.deepEqual(b.getState(), want);
      await waitFor(() => replica.getState().ids.length === 2 && replica.getState().ids[0] === 'x', { what: 'the client took the restored state' });
      assert.deepEqual(replica.getState(), want);
    } finally {
      await conn.disconnect();
      await srv.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('node:cluster: a primary and its workers with reducers.patch hold the same state', { timeout: 60000 }, async () => {
  const k = child('ipc-native.mjs');
  const r = await k.next((m) => 'ok' in m, 40000);
  assert.ok(r.ok, r.error);
  const want = { w0: Array.from({ length: 200 }, (_, i) => i), w1: Array.from({ length: 200 }, (_, i) => i) };
  assert.deepEqual(r.primary, want);
  for (const w of r.workers) assert.deepEqual(w, want);
  await k.exited;
});

function exampleLibrary() {
  assert.ok(fs.existsSync(EXAMPLE), `${EXAMPLE} is missing: build it with npm run build:example`);
  return EXAMPLE;
}

const place = (id, side, price, qty) => ({ type: 'book/place', payload: { id, side, price, qty } });

test('loadReducer: the example order book (a Rust cdylib) runs locally, replicated over TCP and snapshotted to a late client; its panic is ERR_REDUCER and the store goes on', async () => {
  const lib = exampleLibrary();
  const spec = loadReducer(lib, { market: 'BTC-EUR' });
  assert.equal(spec.name, 'order-book');
  // A short log: a client that connects late gets the library's snapshot.
  const server = createStore(spec, { stderr: sink(), logRetention: 3 });
  const srv = server.createServer({ host: '127.0.0.1', port: 0 });
  const replica = createStore(loadReducer(lib, { market: 'BTC-EUR' }), { stderr: sink() });
  const conn = replica.createClient({ host: '127.0.0.1', port: srv.port });
  // Another config is another store.
  const otherMarket = createStore(loadReducer(lib, { market: 'ETH-EUR' }), { stderr: sink() });
  const otherConn = otherMarket.createClient({ host: '127.0.0.1', port: srv.port });
  try {
    server.dispatch(place('s1', 'sell', 101, 5));
    await replica.dispatchAsync(place('s2', 'sell', 100, 5));
    await replica.dispatchAsync(place('b1', 'buy', 101, 7));
    const st = replica.getState();
    assert.equal(st.market, 'BTC-EUR');
    assert.equal(st.volume, 7);
    assert.deepEqual(st.asks, [{ id: 's1', price: 101, qty: 3 }]);
    assert.deepEqual(st.trades.map((t) => [t.sell, t.qty]), [['s2', 5], ['s1', 2]]);
    await waitFor(() => server.getState().volume === 7, { what: 'the server applied' });
    assert.deepEqual(server.getState(), st);

    // A refusal and a panic (the volume overflows u64): rejected, nothing changed, and
    // the store keeps working, on both sides.
    await assert.rejects(replica.dispatchAsync({ type: 'book/cancel', payload: { id: 'nope' } }), (e) => e.code === 'ERR_REDUCER' && /not in the book/.test(e.message));
    // Two trades of 2^63 overflow the u64 volume: the reducer panics before changing
    // anything.
    server.dispatch(place('bs1', 'sell', 1, 2 ** 63));
    await replica.dispatchAsync(place('bb1', 'buy', 1, 2 ** 63));
    await replica.dispatchAsync(place('bs2', 'sell', 1, 2 ** 63));
    const before = replica.getState();
    await assert.rejects(replica.dispatchAsync(place('bb2', 'buy', 1, 2 ** 63)), (e) => e.code === 'ERR_REDUCER' && /panicked.*volume overflow/.test(e.message));
    assert.equal(replica.getState(), before, 'nothing changed');
    await replica.dispatchAsync(place('b2', 'buy', 101, 1));
    const end = replica.getState();
    assert.ok(end.volume >= 2 ** 63 && end.trades.at(-1).buy === 'b2', 'still applying after the refusals');
    await waitFor(() => server.getState().trades.at(-1).buy === 'b2', { what: 'the server still applying' });
    assert.deepEqual(server.getState(), end);

    const late = createStore(loadReducer(lib, { market: 'BTC-EUR' }));
    const lateConn = late.createClient({ host: '127.0.0.1', port: srv.port });
    await waitFor(() => late.getState().trades.at(-1)?.buy === 'b2', { what: 'the late client took the snapshot' });
    assert.deepEqual(late.getState(), server.getState());
    await lateConn.disconnect();

    await waitFor(() => otherConn.error, { what: 'the other market refused' });
    assert.equal(otherConn.error.code, 'ERR_STORE_MISMATCH');
  } finally {
    await Promise.all([conn.disconnect(), otherConn.disconnect()]);
    await srv.close();
  }
});

test('loadReducer refuses what is not a reducer library: no file, no symbol, another ABI version, a bad config', (t) => {
  const lib = exampleLibrary();
  assert.throws(() => loadReducer('/nonexistent/libnothing.so'), (e) => e.code === 'ERR_REDUCER_LOAD' && /cannot load/.test(e.message));
  // A real shared library that is not a reducer (this addon).
  assert.throws(() => loadReducer(ADDON), (e) => e.code === 'ERR_REDUCER_LOAD' && /redux_cluster_reducer_abi_version/.test(e.message));
  assert.throws(() => loadReducer(lib, { market: 42 }), (e) => e.code === 'ERR_REDUCER_LOAD' && /refused its config/.test(e.message));
  // A library built for another ABI version: refused before anything else is called.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-abi-'));
  try {
    const src = path.join(dir, 'wrong.c');
    const so = path.join(dir, 'libwrong.so');
    fs.writeFileSync(src, 'unsigned int redux_cluster_reducer_abi_version(void) { return 999; }\nvoid *redux_cluster_reducer_v1(void) { __builtin_trap(); }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', so, src]);
    assert.throws(() => loadReducer(so), (e) => e.code === 'ERR_REDUCER_LOAD' && /ABI version 999/.test(e.message) && /speaks version 1/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the Raft tier with native reducers: three servers apply and snapshot in Rust; kill -9 of the leader; a restart from dataDir; all equal', { timeout: 120000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-native-raft-'));
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const seeds = ports.map((p, i) => `n${i}@127.0.0.1:${p}`);
  const spec = (i) => ({
    port: ports[i],
    reducer: 'patch',
    cluster: { nodeName: `n${i}`, seeds, dataDir: path.join(dir, `n${i}`), snapshotThreshold: 5, heartbeatInterval: 50, electionTimeout: 150 },
  });
  const servers = [0, 1, 2].map((i) => child('raft-store.mjs', [JSON.stringify(spec(i))]));
  const replica = createStore(reducers.patch({ log: [] }), { stderr: sink() });
  const client = replica.createClient({ servers: ports.map((port) => ({ host: '127.0.0.1', port })) });
  try {
    await Promise.all(servers.map((k) => k.next((m) => m.listening)));
    const leader = await oneLeader(servers);

    const ok = await Promise.all(Array.from({ length: 300 }, (_, i) => replica.dispatchAsync(add('/log/-', i))));
    assert.equal(new Set(ok.map((r) => r.seq)).size, 300);
    const refused = await Promise.allSettled(Array.from({ length: 5 }, () => replica.dispatchAsync({ type: 'PATCH', ops: [{ op: 'remove', path: '/absent' }] })));
    assert.ok(refused.every((r) => r.status === 'rejected' && r.reason.code === 'ERR_REDUCER'), 'refused, once committed');
    const viaServer = await ask(servers[1], { cmd: 'dispatch', n: 20, action: add('/log/-', 'srv') });
    assert.equal(viaServer.seqs.length, 20);

    const li = Number(leader.slice(1));
    await servers[li].kill('SIGKILL');
    await Promise.all(Array.from({ length: 100 }, (_, i) => replica.dispatchAsync(add('/log/-', 300 + i), { timeout: 20000 })));
    const want = replica.getState();
    assert.equal(want.log.length, 420);
    const survivors = servers.filter((_, i) => i !== li);
    for (const k of survivors) {
      await waitFor(async () => (await ask(k, { cmd: 'state' })).state.log.length === 420, { timeoutMs: 20000, what: 'a survivor holds all 420' });
      assert.deepEqual((await ask(k, { cmd: 'state' })).state, want);
      // Snapshots were built (from the reducer in Rust) and the log compacted.
      assert.ok((await ask(k, { cmd: 'status' })).status.snapshotIndex > 0, 'a Raft snapshot was taken');
    }
    servers[li] = child('raft-store.mjs', [JSON.stringify(spec(li))]);
    await servers[li].next((m) => m.listening);
    await waitFor(async () => (await ask(servers[li], { cmd: 'state' })).state.log?.length === 420, { timeoutMs: 30000, what: 'the restarted server caught up' });
    assert.deepEqual((await ask(servers[li], { cmd: 'state' })).state, want);
  } finally {
    await client.disconnect();
    await Promise.all(servers.map((k) => k.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
