// Errors as a user meets them: one list of codes (ErrorCode), each documented in
// index.d.ts and the README, each provoked here the way a user would meet it; and a bug
// in the engine surfaces as an `ERR_INTERNAL` error instead of an abort of Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  createStore, reducers, loadReducer, ErrorCode, NodeId, Cluster,
  createRaftCoordinator, createDistributedStateMachine,
} from 'redux-cluster-rs';
import { server as wsServer } from 'redux-cluster-rs/ws';
import { counter, waitFor, sink, freePort, ROOT } from './helpers.mjs';

const codes = Object.values(ErrorCode);

/** The error `f` throws or rejects with (fails if it does neither). */
async function thrown(f) {
  try {
    await f();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

/** A client of `port` until its `client.error` has `code`; returns that error. */
async function clientError(port, code, storeOptions = {}, clientOptions = {}, reducer = counter) {
  const store = createStore(reducer, { stderr: () => {}, reconnectInitialMs: 50, reconnectMaxMs: 200, ...storeOptions });
  const c = store.createClient({ host: '127.0.0.1', port, ...clientOptions });
  try {
    await waitFor(() => c.error?.code === code, { what: `client.error ${code}`, show: () => c.error?.message });
    return c.error;
  } finally {
    await c.disconnect(0);
  }
}

async function coordinator(nodeId, options = {}) {
  const c = createRaftCoordinator({ nodeId, host: '127.0.0.1', port: 0, commitTimeout: 1000, ...options });
  await c.initialize();
  return c;
}

async function withServer(options, f) {
  const store = createStore(counter, { stderr: () => {} });
  const srv = store.createServer({ host: '127.0.0.1', port: 0, ...options });
  try {
    return await f(srv, store);
  } finally {
    await srv.close();
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-errors-'));

/** One way a user meets each code. */
const provoke = {
  [ErrorCode.InvalidConfig]: () => thrown(() => createStore(counter).createServer({ port: -1 })),
  [ErrorCode.Protocol]: async () => {
    // A server that never answers the handshake.
    const silent = net.createServer(() => {});
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    try {
      return await clientError(silent.address().port, ErrorCode.Protocol, { handshakeTimeoutMs: 200 });
    } finally {
      silent.close();
    }
  },
  [ErrorCode.Io]: () => thrown(() => createStore(counter).backup({ path: tmp })), // a directory
  [ErrorCode.Closed]: async () => {
    const c = await coordinator('closed', { bootstrap: true });
    await c.shutdown();
    return thrown(() => c.replicateCommand({ x: 1 }));
  },
  [ErrorCode.Unavailable]: async () => {
    // A replicated server whose only seed never answers is cut off from its group.
    const store = createStore(counter, { stderr: () => {} });
    const srv = store.createServer({ host: '127.0.0.1', port: 0, cluster: { nodeName: 'lone', seeds: [`x@127.0.0.1:${await freePort()}`] } });
    try {
      return await clientError(srv.port, ErrorCode.Unavailable);
    } finally {
      await srv.close();
    }
  },
  [ErrorCode.Auth]: () => withServer({ logins: { alice: 's3cret' } }, (srv) => clientError(srv.port, ErrorCode.Auth, {}, { login: 'alice', password: 'guess' })),
  [ErrorCode.Timeout]: async () => {
    const store = createStore(counter, { stderr: () => {} });
    const c = store.createClient({ host: '127.0.0.1', port: await freePort() });
    try {
      return await thrown(() => store.dispatchAsync({ type: 'INC' }, { timeout: 100 }));
    } finally {
      await c.disconnect(0);
    }
  },
  [ErrorCode.NotLeader]: async () => {
    const a = await coordinator('leader', { bootstrap: true });
    const b = await coordinator('follower', { forwardToLeader: false });
    try {
      await a.addPeer('follower', '127.0.0.1', b.config.port);
      await waitFor(() => b.leaderId === 'leader', { what: 'the follower knows the leader' });
      return await thrown(() => b.replicateCommand({ x: 1 }));
    } finally {
      await b.shutdown();
      await a.shutdown();
    }
  },
  [ErrorCode.Banned]: () =>
    // The failure that reaches `attempts` locks the address at once; then even the
    // right password is refused.
    withServer({ logins: { alice: 's3cret' }, ban: { attempts: 1, durationMs: 60000 } }, async (srv) => {
      await clientError(srv.port, ErrorCode.Banned, {}, { login: 'alice', password: 'guess' });
      return clientError(srv.port, ErrorCode.Banned, {}, { login: 'alice', password: 's3cret' });
    }),
  [ErrorCode.StateFull]: async () => {
    const c = await coordinator('full', { bootstrap: true });
    const state = createDistributedStateMachine({ nodeId: 'full', maxStateSize: 1 });
    await state.initialize(c);
    try {
      await state.set('a', 1);
      return await thrown(() => state.set('b', 2));
    } finally {
      await c.shutdown();
    }
  },
  [ErrorCode.Conflict]: async () => {
    const c = await coordinator('cas', { bootstrap: true });
    const state = createDistributedStateMachine({ nodeId: 'cas' });
    await state.initialize(c);
    try {
      await state.set('k', 0);
      // Someone else writes between the read and the compare-and-set.
      return await thrown(() => state.update('k', async (v) => { await state.set('k', 99); return v + 1; }, { maxRetries: 0 }));
    } finally {
      await c.shutdown();
    }
  },
  [ErrorCode.Tls]: () => withServer({}, (srv) => clientError(srv.port, ErrorCode.Tls, {}, { tls: {} })), // a plain server
  [ErrorCode.StoreMismatch]: () => withServer({}, (srv) => clientError(srv.port, ErrorCode.StoreMismatch, {}, {}, reducers.entities())),
  [ErrorCode.OtherCluster]: async () => {
    const a = await coordinator('one', { bootstrap: true });
    const x = await coordinator('other', { bootstrap: true });
    try {
      await a.replicateCommand({ x: 1 });
      await x.replicateCommand({ x: 2 });
      return await thrown(() => a.addPeer('other', '127.0.0.1', x.config.port));
    } finally {
      await x.shutdown();
      await a.shutdown();
    }
  },
  [ErrorCode.InvalidAction]: () => thrown(() => createStore(counter).dispatch({ no: 'type' })),
  [ErrorCode.FrameTooLarge]: async () => {
    const store = createStore(counter, { maxFrameSize: 4096, stderr: () => {} });
    const c = store.createClient({ host: '127.0.0.1', port: await freePort() });
    try {
      return await thrown(() => store.dispatchAsync({ type: 'INC', pad: 'x'.repeat(5000) }));
    } finally {
      await c.disconnect(0);
    }
  },
  [ErrorCode.Connect]: async () => clientError(await freePort(), ErrorCode.Connect),
  [ErrorCode.InvalidNodeId]: () => thrown(() => NodeId.parse('not a node id')),
  [ErrorCode.InvalidArgument]: () => thrown(() => wsServer({})),
  [ErrorCode.Internal]: () => {
    const script = `require(${JSON.stringify(path.join(ROOT, 'src/js/native.js'))}).__panicForTestAsync('bug').catch((e) => console.log(e.code));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000, env: { ...process.env, RUST_BACKTRACE: '0' } });
    return { code: r.stdout.trim() };
  },
  [ErrorCode.Disconnected]: () =>
    withServer({}, async (srv) => {
      const store = createStore(counter, { stderr: () => {}, reconnectInitialMs: 5000, reconnectMaxMs: 5000 });
      const c = store.createClient({ host: '127.0.0.1', port: srv.port });
      try {
        await store.dispatchAsync({ type: 'INC' });
        await srv.close();
        await waitFor(() => c.error?.code === ErrorCode.Disconnected, { what: 'the connection lost', show: () => c.error?.message });
        return c.error;
      } finally {
        await c.disconnect(0);
      }
    }),
  [ErrorCode.Busy]: () =>
    withServer({ limit: 1 }, async (srv) => {
      const first = createStore(counter);
      const held = first.createClient({ host: '127.0.0.1', port: srv.port });
      await waitFor(() => first.connected, { what: 'the first client in' });
      try {
        return await clientError(srv.port, ErrorCode.Busy);
      } finally {
        await held.disconnect(0);
      }
    }),
  [ErrorCode.AddrInUse]: () => withServer({}, (srv) => thrown(() => createStore(counter).createServer({ host: '127.0.0.1', port: srv.port }))),
  [ErrorCode.QueueFull]: async () => {
    const store = createStore(counter, { queueLimit: 2, stderr: () => {} });
    const c = store.createClient({ host: '127.0.0.1', port: await freePort() });
    try {
      return await thrown(() => { for (let i = 0; i < 3; i++) store.dispatch({ type: 'INC' }); });
    } finally {
      await c.disconnect(0);
    }
  },
  [ErrorCode.Permission]: () => {
    // As root only a kernel filesystem refuses a socket file; otherwise a directory
    // this user may not write to.
    let where = '/sys/redux-cluster-rs.sock';
    if (process.getuid?.() !== 0) {
      const d = fs.mkdtempSync(path.join(tmp, 'ro-'));
      fs.chmodSync(d, 0o500);
      where = path.join(d, 's.sock');
    }
    return thrown(() => createStore(counter).createServer({ path: where }));
  },
  [ErrorCode.EventsDropped]: async () => {
    // 400 connections of garbage while the JS thread is blocked: more events than the
    // store keeps for a JS thread that does not run.
    const said = sink();
    const store = createStore(counter, { stderr: said });
    const srv = store.createServer({ host: '127.0.0.1', port: 0 });
    const flood = `const n = require('net');
      for (let i = 0; i < 400; i++) { const c = n.connect(${srv.port}, '127.0.0.1', () => c.end(Buffer.from([0, 0, 0, 10, 9, 0, 1, 2]))); c.on('error', () => {}); }`;
    const child = spawn(process.execPath, ['-e', flood], { stdio: 'ignore' });
    try {
      // This thread sleeps while the flood is refused, so the refusals wait for it.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
      await waitFor(() => said.lines.some((l) => l.endsWith(`[${ErrorCode.EventsDropped}]`)), { what: 'the dropped events reported', show: () => said.lines.slice(-3) });
      return { code: ErrorCode.EventsDropped };
    } finally {
      child.kill();
      await srv.close();
    }
  },
  [ErrorCode.Reducer]: () => thrown(() => createStore(reducers.patch({ n: 0 })).dispatchAsync({ type: 'PATCH', ops: [{ op: 'remove', path: '/absent' }] })),
  [ErrorCode.ReducerLoad]: () => thrown(() => loadReducer(path.join(tmp, 'no-such-reducer.so'))),
  [ErrorCode.AlreadyConnected]: async () => {
    const store = createStore(counter, { stderr: () => {} });
    const c = store.createClient({ host: '127.0.0.1', port: await freePort() });
    try {
      return await thrown(() => store.createClient({ host: '127.0.0.1', port: 1 }));
    } finally {
      await c.disconnect(0);
    }
  },
  [ErrorCode.BackupCorrupt]: () => {
    const f = path.join(tmp, 'garbage.json');
    fs.writeFileSync(f, '{"counter": 1');
    return thrown(() => createStore(counter).backup({ path: f }));
  },
  [ErrorCode.DataFormat]: async () => {
    // An older version's dataDir: a Raft log without the format mark.
    const dir = fs.mkdtempSync(path.join(tmp, 'old-'));
    const c = await coordinator('old', { dataDir: dir });
    await c.shutdown();
    fs.rmSync(path.join(dir, 'FORMAT'));
    return await thrown(() => coordinator('old', { dataDir: dir }));
  },
  [ErrorCode.NotInitialized]: () => thrown(() => createRaftCoordinator({ nodeId: 'early' }).replicateCommand({ x: 1 })),
  [ErrorCode.ClusterRunning]: async () => {
    await Cluster.start({ nodeName: 'twice', host: '127.0.0.1', port: await freePort() });
    try {
      return await thrown(() => Cluster.start({ nodeName: 'twice', host: '127.0.0.1', port: 1 }));
    } finally {
      await Cluster.stop();
      // A node that has stopped answers ERR_CLOSED (with noex's error class and message).
      assert.equal((await thrown(() => Cluster.getNodes())).code, ErrorCode.Closed);
    }
  },
  // Before any start in the process: in a fresh one.
  [ErrorCode.ClusterNotStarted]: () => {
    const script = `try { require(${JSON.stringify(ROOT)}).Cluster.getNodes(); } catch (e) { console.log(e.code); }`;
    return { code: spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 }).stdout.trim() };
  },
  // A client whose reducer is not deterministic: its state differs from its server's at
  // the guard's first checkpoint, said on its stderr with the code.
  [ErrorCode.Diverged]: async () => {
    const rnd = Object.defineProperty((s = { r: 0 }, a) => (a.type === 'R' ? { r: Math.random() } : s), 'name', { value: 'rnd' });
    const guard = { everyActions: 1, everyMs: 50 };
    const server = createStore(rnd, { guard, stderr: sink() });
    const srv = server.createServer({ host: '127.0.0.1', port: 0 });
    const lines = sink();
    const client = createStore(rnd, { guard, stderr: lines });
    const c = client.createClient({ host: '127.0.0.1', port: srv.port });
    try {
      await client.dispatchAsync({ type: 'R' });
      const line = await waitFor(() => lines.lines.find((l) => l.includes('differs from its authority')), { what: 'the divergence said' });
      return { code: /\[(ERR_[A-Z_]+)\]$/.exec(line)?.[1], message: line };
    } finally {
      await c.disconnect(0);
      await srv.close();
    }
  },
};

test('every code of ErrorCode can occur: each is provoked the way a user meets it', { timeout: 120000 }, async (t) => {
  assert.deepEqual(Object.keys(provoke).sort(), [...codes].sort(), 'one way to meet each code, and no other codes');
  for (const code of codes) {
    const todo = provoke[code] ? undefined : 'not provoked yet';
    await t.test(code, { todo }, async () => {
      assert.ok(provoke[code], `no way to meet ${code} yet`);
      const e = await provoke[code]();
      assert.equal(e.code, code, e.message);
    });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('one list of codes: index.d.ts and the README document exactly ErrorCode, and the JS layer uses no other', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const declared = dts.slice(dts.indexOf('export declare const ErrorCode'), dts.indexOf('export type ErrorCode'));
  assert.deepEqual([...declared.matchAll(/'(ERR_[A-Z_]+)'/g)].map((m) => m[1]).sort(), [...codes].sort(), 'index.d.ts');
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Error codes'));
  const rows = [...table.slice(0, table.indexOf('\n## ', 5)).matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(rows.sort(), [...codes].sort(), "the README's table");
  // Every code the JS layer spells out is one of them (Node's own ERR_REQUIRE_ESM aside).
  const jsDir = path.join(ROOT, 'src/js');
  for (const f of fs.readdirSync(jsDir, { recursive: true }).filter((f) => /\.(m?js)$/.test(f) && !f.includes('.browser.'))) {
    for (const [, c] of fs.readFileSync(path.join(jsDir, f), 'utf8').matchAll(/'(ERR_[A-Z_]+)'/g)) {
      if (c !== 'ERR_REQUIRE_ESM') assert.ok(codes.includes(c), `${f}: ${c} is not in ErrorCode`);
    }
  }
});



test('a panic in the engine is an ERR_INTERNAL error, sync or async, and Node goes on', () => {
  // In a child: the panic hook's report goes to the process's own stderr.
  const script = `
    const native = require(${JSON.stringify(path.join(ROOT, 'src/js/native.js'))});
    const { createStore } = require(${JSON.stringify(ROOT)});
    const seen = [];
    try { native.__panicForTest('sync bug'); } catch (e) { seen.push(e.code + ' ' + /sync bug/.test(e.message)); }
    native.__panicForTestAsync('async bug').catch((e) => seen.push(e.code)).then(async () => {
      // The engine still serves after it.
      const store = createStore((s = 0, a) => (a.type === 'INC' ? s + 1 : s));
      await store.dispatchAsync({ type: 'INC' });
      console.log(JSON.stringify({ seen, state: store.getState() }));
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000, env: { ...process.env, RUST_BACKTRACE: '0' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { seen: ['ERR_INTERNAL true', 'ERR_INTERNAL'], state: 1 });
  assert.match(r.stderr, /internal error; this is a bug, please report it/);
});

test('a refused async call rejects, as a thrown call fails: err.code is the enum\'s, and ERR_NOT_LEADER names the leader', async () => {
  const a = await coordinator('leader', { bootstrap: true });
  const b = await coordinator('follower', { forwardToLeader: false });
  const store = createStore(counter, { stderr: () => {} });
  const srv = store.createServer({ host: '127.0.0.1', port: 0 });
  /** What `p` rejects with (fails if it resolves). */
  const rejection = (p) => p.then((v) => assert.fail(`resolved ${v}`), (e) => e);
  try {
    await a.addPeer('follower', '127.0.0.1', b.config.port);
    await waitFor(() => b.leaderId === 'leader', { what: 'the follower knows the leader' });
    // The addon's own promise: code, message and leader out of the rejection's message.
    const raw = await rejection(b._native.write(JSON.stringify({ Custom: { x: 1 } })));
    assert.deepEqual([raw.code, raw.leaderId], [ErrorCode.NotLeader, 'leader']);
    assert.match(raw.message, /^follower is not the leader; the leader is leader$/);
    // As the seed's RaftError.
    const e = await thrown(() => b.replicateCommand({ x: 1 }));
    assert.deepEqual([e.name, e.code, e.leaderId, e.message], ['RaftError', ErrorCode.NotLeader, 'leader', raw.message]);
    // A store's: no leader to name.
    const refused = await rejection(store._role.authority.removeMember('x'));
    assert.equal(refused.code, ErrorCode.InvalidConfig);
    assert.equal('leaderId' in refused, false);
    const r = await thrown(() => srv.removeMember('x'));
    assert.deepEqual([r.name, r.code, r.message], ['ReduxClusterError', ErrorCode.InvalidConfig, refused.message]);
  } finally {
    await srv.close();
    await b.shutdown();
    await a.shutdown();
  }
});

test('without a cluster secret, a server whose host is no member cannot make itself one: its join is refused with ERR_AUTH', async () => {
  // 127.0.0.2 stands for the group's host; the joiner connects from 127.0.0.1.
  const [pa, pb] = [await freePort(), await freePort()];
  const a = createStore(counter, { stderr: sink() });
  const sa = a.createServer({ host: '127.0.0.2', port: pa, cluster: { nodeName: 'a', bootstrap: true, heartbeatInterval: 50, electionTimeout: 150 } });
  await waitFor(() => sa.status().role === 'leader', { what: 'a leads' });
  const said = sink();
  const b = createStore(counter, { stderr: said });
  const sb = b.createServer({ host: '127.0.0.1', port: pb, cluster: { nodeName: 'b', seeds: [`a@127.0.0.2:${pa}`], heartbeatInterval: 50, electionTimeout: 150 } });
  try {
    await waitFor(() => said.lines.some((l) => /seed a refused to add this server: .*clusterSecret/.test(l)), {
      what: 'the refusal on the joiner\'s stderr',
      show: () => said.lines,
    });
    assert.equal(sa.status().members.length, 1, 'b is no member of a\'s group');
  } finally {
    await sb.close();
    await sa.close();
  }
});

test('one list of codes: the JS layer names them through ErrorCode, and the browser bundle carries the same list', async () => {
  const { ErrorCode: browser } = await import(path.join(ROOT, 'src/js/browser/codes.mjs'));
  assert.deepEqual({ ...browser }, { ...ErrorCode }, 'src/js/browser/codes.mjs is the addon\'s list (regenerate it from ErrorCode)');
  // A code written as a string literal can drift from the enum unnoticed.
  const dir = path.join(ROOT, 'src/js');
  const files = fs.readdirSync(dir, { recursive: true }).filter((f) => /\.(m?js)$/.test(f) && !f.endsWith('.browser.js') && !f.endsWith('codes.mjs'));
  const literals = files.flatMap((f) =>
    [...fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/'ERR_[A-Z_]+'/g)]
      .map((m) => `${f}: ${m[0]}`)
      // Node's own code for require() of an ES module, not one of ours.
      .filter((l) => !l.endsWith("'ERR_REQUIRE_ESM'")),
  );
  assert.deepEqual(literals, []);
});
