// RaftNode (@ruvector/raft's API) on the engine's Raft, three nodes in one process with
// a JS transport that can cut links: election, ordered application, an isolated
// leader that commits nothing, failover, catch-up, restarts from getState and dataDir,
// malformed requests and transports that throw or never answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RaftNode, RaftEvent, NodeState, RaftErrorCode, RaftError } from 'redux-cluster-rs/raft';
import * as top from 'redux-cluster-rs';
import { waitFor } from './helpers.mjs';

/** Nodes wired by a transport whose links can be cut (a cut link throws) or made silent. */
function group(ids, { options = {}, dataDirs } = {}) {
  const nodes = new Map();
  const cut = new Set();
  const silent = new Set();
  const applied = new Map(ids.map((i) => [i, []]));
  const events = new Map(ids.map((i) => [i, []]));
  const make = (id, { state, disk = true } = {}) => {
    const n = new RaftNode({
      nodeId: id,
      peers: ids.filter((p) => p !== id),
      electionTimeout: [150, 300],
      heartbeatInterval: 50,
      transportTimeout: 500,
      proposeTimeout: 3000,
      ...(dataDirs && disk ? { dataDir: dataDirs[id] } : {}),
      ...options,
    });
    const deliver = (method) => (peer, req) => {
      const k = `${id}>${peer}`;
      if (cut.has(k) || !nodes.has(peer)) throw new Error(`link ${k} is cut`);
      if (silent.has(k)) return new Promise(() => {}); // never answers
      // Both directions of a link: a reply over a cut return path is lost too.
      if (cut.has(`${peer}>${id}`)) throw new Error(`link ${peer}>${id} is cut`);
      return nodes.get(peer)[method](req);
    };
    n.setTransport({ requestVote: deliver('handleRequestVote'), appendEntries: deliver('handleAppendEntries') });
    applied.set(id, []);
    n.setStateMachine({
      apply: async (c) => {
        applied.get(id).push(c);
        return { applied: c.n };
      },
    });
    for (const ev of Object.values(RaftEvent)) n.on(ev, (e) => events.get(id).push([ev, e]));
    if (state) n.loadState(state);
    nodes.set(id, n);
    return n;
  };
  for (const id of ids) make(id);
  return {
    nodes,
    applied,
    events,
    make,
    isolate(id) {
      for (const o of ids) if (o !== id) cut.add(`${id}>${o}`).add(`${o}>${id}`);
    },
    heal() {
      cut.clear();
      silent.clear();
    },
    silence(from, to) {
      silent.add(`${from}>${to}`);
    },
    start() {
      for (const n of nodes.values()) n.start();
    },
    stop() {
      for (const n of nodes.values()) n.stop();
    },
    async leader(among = [...nodes.keys()], timeoutMs = 10000) {
      let found;
      await waitFor(
        () => {
          const ls = among.map((i) => nodes.get(i)).filter((n) => n.isLeader);
          const terms = among.map((i) => nodes.get(i).leader);
          found = ls.length === 1 && terms.every((l) => l === ls[0].nodeId) ? ls[0] : null;
          return found;
        },
        { timeoutMs, what: `one leader among ${among}` }
      );
      return found;
    },
  };
}

test('three nodes elect one leader, every node hears of it, and 20 proposals apply in one order everywhere', async () => {
  const g = group(['a', 'b', 'c']);
  try {
    g.start();
    const leader = await g.leader();
    const results = [];
    for (let n = 0; n < 20; n++) results.push(await leader.propose({ n }));
    // Resolved after commit and apply here, with the seed's LogEntry and the result.
    results.forEach((r, n) => {
      assert.deepEqual(r.command, { n });
      assert.deepEqual(r.result, { applied: n });
      assert.equal(typeof r.timestamp, 'number');
      assert.ok(r.term >= 1);
    });
    assert.deepEqual(results.map((r) => r.index), [...results.map((r) => r.index)].sort((x, y) => x - y));
    assert.deepEqual(g.applied.get(leader.nodeId).map((c) => c.n), [...Array(20).keys()]);
    for (const id of ['a', 'b', 'c']) {
      await waitFor(() => g.applied.get(id).length === 20, { what: `${id} applied all 20` });
      assert.deepEqual(g.applied.get(id), g.applied.get(leader.nodeId), `${id} applied the same sequence`);
      const names = g.events.get(id).map(([e]) => e);
      // leaderElected on every node that learns of the leader, not only on the winner.
      assert.ok(g.events.get(id).some(([e, p]) => e === RaftEvent.LeaderElected && p.leaderId === leader.nodeId), `${id} heard of the leader`);
      for (const e of [RaftEvent.LogCommitted, RaftEvent.LogApplied, RaftEvent.LogAppended]) assert.ok(names.includes(e), `${id} emitted ${e}`);
      assert.equal(g.nodes.get(id).commitIndex >= results.at(-1).index, true);
    }
    assert.ok(g.events.get(leader.nodeId).some(([e, p]) => e === RaftEvent.StateChange && p.newState === NodeState.Leader && p.previousState !== NodeState.Leader));
    assert.ok(g.events.get(leader.nodeId).some(([e]) => e === RaftEvent.VoteRequested));
    const follower = [...g.nodes.values()].find((n) => !n.isLeader);
    assert.ok(g.events.get(follower.nodeId).some(([e]) => e === RaftEvent.Heartbeat));
    // A follower refuses, naming the leader.
    await assert.rejects(follower.propose({ n: 99 }), (e) => e instanceof RaftError && e.code === RaftErrorCode.NotLeader && e.leaderId === leader.nodeId);
    assert.equal(follower.state, NodeState.Follower);
    assert.equal(follower.currentTerm, leader.currentTerm);
  } finally {
    g.stop();
  }
});

test('an isolated leader commits nothing; the majority elects another and goes on; healed, the old leader follows and catches up', async () => {
  const ids = ['a', 'b', 'c'];
  const g = group(ids);
  try {
    g.start();
    const old = await g.leader();
    await old.propose({ n: 0 });
    g.isolate(old.nodeId);
    // Its proposal is never reported committed nor applied (anywhere).
    const lost = old.propose({ n: 'lost' });
    const others = ids.filter((i) => i !== old.nodeId);
    const fresh = await g.leader(others);
    assert.notEqual(fresh.nodeId, old.nodeId);
    assert.ok(fresh.currentTerm > 1);
    for (let n = 1; n <= 5; n++) await fresh.propose({ n });
    await assert.rejects(lost, (e) => [RaftErrorCode.Timeout, RaftErrorCode.NotLeader].includes(e.code));
    // Healed: the old leader steps down, follows the new one and applies what it missed.
    g.heal();
    await waitFor(() => !old.isLeader && old.leader === fresh.nodeId, { what: 'the old leader follows' });
    await waitFor(() => g.applied.get(old.nodeId).length === 6, { what: 'the old leader caught up', timeoutMs: 10000 });
    for (const id of ids) {
      await waitFor(() => g.applied.get(id).length === 6, { what: `${id} holds 6` });
      assert.deepEqual(g.applied.get(id).map((c) => c.n), [0, 1, 2, 3, 4, 5]);
    }
    // One later write proves the old leader's entry was dropped, not just late.
    await fresh.propose({ n: 6 });
    await waitFor(() => ids.every((id) => g.applied.get(id).length === 7), { what: 'all at 7' });
    for (const id of ids) assert.ok(!g.applied.get(id).some((c) => c.n === 'lost'), `${id} never applied the isolated leader's proposal`);
  } finally {
    g.stop();
  }
});

test('a node restarted from getState() and one from its dataDir apply the whole log again and rejoin', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-raftnode-'));
  const ids = ['a', 'b', 'c'];
  const g = group(ids, { dataDirs: Object.fromEntries(ids.map((i) => [i, path.join(dir, i)])) });
  try {
    g.start();
    let leader = await g.leader();
    for (let n = 0; n < 10; n++) await leader.propose({ n });
    const followers = ids.filter((i) => i !== leader.nodeId);
    await waitFor(() => followers.every((id) => g.applied.get(id).length === 10), { what: 'followers at 10' });

    // From getState(): term, vote and log survive a JSON round trip into a new node.
    const viaState = followers[0];
    const saved = JSON.parse(JSON.stringify(g.nodes.get(viaState).getState()));
    assert.ok(saved.currentTerm >= 1 && saved.log.filter((e) => e.kind === undefined).length === 10);
    g.nodes.get(viaState).stop();
    g.nodes.delete(viaState);
    for (let n = 10; n < 15; n++) await leader.propose({ n });
    // Without its dataDir (which would take precedence): only what getState() gave.
    const restored = g.make(viaState, { state: saved, disk: false });
    assert.deepEqual(restored.getState(), saved);
    restored.start();
    await waitFor(() => g.applied.get(viaState).length === 15, { what: 'the node from getState applied all 15', timeoutMs: 10000 });
    assert.deepEqual(g.applied.get(viaState).map((c) => c.n), [...Array(15).keys()]);

    // From dataDir: the log and vote were durable; the state machine is fed again.
    const viaDisk = followers[1];
    await g.nodes.get(viaDisk).stop(); // resolves once its files are closed
    g.nodes.delete(viaDisk);
    leader = await g.leader([leader.nodeId, viaState]);
    await leader.propose({ n: 15 });
    const back = g.make(viaDisk);
    back.start();
    await waitFor(() => g.applied.get(viaDisk).length === 16, { what: 'the node from dataDir applied all 16', timeoutMs: 15000 });
    assert.deepEqual(g.applied.get(viaDisk).map((c) => c.n), [...Array(16).keys()]);
  } finally {
    g.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed requests reject with a clear error and change nothing; a transport that throws or never answers is an unreachable peer', async () => {
  const ids = ['a', 'b', 'c'];
  const g = group(ids);
  try {
    g.start();
    const leader = await g.leader();
    await leader.propose({ n: 0 });
    const f = g.nodes.get(ids.find((i) => i !== leader.nodeId));
    // The proposal resolved once a majority had it: this follower may take it a moment
    // later, and the state compared below must not move on its own.
    await waitFor(() => f.getState().log.length === leader.getState().log.length, { what: 'the follower holds the entry', timeoutMs: 10000 });
    const before = JSON.stringify(f.getState());
    for (const bad of [
      {},
      { term: 'x', leaderId: leader.nodeId },
      { term: 99, leaderId: 'nobody', prevLogIndex: -1, entries: [], leaderCommit: -1 },
    ]) {
      await assert.rejects(f.handleAppendEntries(bad), (e) => e instanceof RaftError && e.code === RaftErrorCode.LogInconsistency && /malformed AppendEntries/.test(e.message), JSON.stringify(bad));
    }
    const gap = { term: 99, leaderId: leader.nodeId, prevLogIndex: 1, prevLogTerm: 1, prevLogLeader: leader.nodeId, entries: [{ term: 99, index: 7, leader: leader.nodeId, command: 1 }], leaderCommit: -1 };
    await assert.rejects(f.handleAppendEntries(gap), (e) => e.code === RaftErrorCode.InvalidLogIndex && /one by one/.test(e.message));
    await assert.rejects(f.handleRequestVote({ term: 5 }), (e) => e.code === RaftErrorCode.InvalidTerm && /candidateId/.test(e.message));
    await assert.rejects(f.handleRequestVote({ term: 5, candidateId: 'mallory', lastLogIndex: -1 }), (e) => /not a member/.test(e.message));
    assert.equal(JSON.stringify(f.getState()), before, 'nothing changed');

    // One follower's link from the leader goes silent, the other's throws: with one
    // answering follower there is still a majority; with none, no commit (bounded).
    const [x, y] = ids.filter((i) => i !== leader.nodeId);
    g.silence(leader.nodeId, x);
    const r = await leader.propose({ n: 1 });
    assert.equal(r.result.applied, 1);
    g.isolate(y);
    await assert.rejects(leader.propose({ n: 2 }), (e) => [RaftErrorCode.Timeout, RaftErrorCode.NotLeader].includes(e.code));
  } finally {
    g.stop();
  }
});

test('a slow state machine holds back only its own node: JS keeps one batch of committed entries, the rest waits in the log', { timeout: 60000 }, async () => {
  const n = new RaftNode({ nodeId: 'solo', peers: [], electionTimeout: [150, 300], heartbeatInterval: 50, proposeTimeout: 30000 });
  n.setTransport({ requestVote: async () => { throw new Error('alone'); }, appendEntries: async () => { throw new Error('alone'); } });
  let open;
  const gate = new Promise((r) => (open = r));
  const applied = [];
  n.setStateMachine({ apply: async (c) => { await gate; applied.push(c.i); return c.i; } });
  let committedEvents = 0;
  n.on(RaftEvent.LogCommitted, () => committedEvents++);
  n.start();
  await waitFor(() => n.isLeader, { what: 'the lone node leads' });
  const total = 3000;
  const proposals = Array.from({ length: total }, (_, i) => n.propose({ i }));
  await waitFor(() => n.commitIndex >= total, { timeoutMs: 30000, what: 'everything committed', show: () => n.commitIndex });
  // Everything is committed while the state machine has applied nothing: JS holds at
  // most one batch of entries, not all of them.
  assert.equal(applied.length, 0);
  assert.ok(n._queue.length <= 1024, `JS holds ${n._queue.length} entries`);
  assert.ok(committedEvents <= 1024, `${committedEvents} logCommitted events before any apply`);
  open();
  const results = await Promise.all(proposals);
  // Concurrent proposals commit in some order; the state machine sees the log's.
  const inLog = [...results].sort((a, b) => a.index - b.index);
  assert.deepEqual(applied, inLog.map((r) => r.command.i), 'applied in log order');
  assert.deepEqual([...applied].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i), 'every proposal applied once');
  assert.deepEqual(results.map((r) => r.result), results.map((r) => r.command.i));
  assert.equal(committedEvents, total);
  await n.stop();
});

test('a refused proposal rejects with RaftNode\'s own code, naming the leader whatever its id holds', async () => {
  const g = group(['n1@10.0.0.1:7001', 'n2@[::1]:7002', 'n3 "x":{}']);
  g.start();
  try {
    const leader = await g.leader();
    const follower = [...g.nodes.values()].find((n) => n !== leader);
    // The addon's own promise rejects with the seed's code (no ERR_ prefix) and the leader.
    const raw = await follower._native.propose('1').then((v) => assert.fail(`resolved ${v}`), (e) => e);
    assert.deepEqual([raw.code, raw.leaderId], [RaftErrorCode.NotLeader, leader.nodeId]);
    await assert.rejects(follower.propose({ n: 1 }), (e) => e instanceof RaftError && e.code === RaftErrorCode.NotLeader && e.leaderId === leader.nodeId && e.message === raw.message);
  } finally {
    g.stop();
  }
});

test('config errors, a stopped node, and the top-level exports', async () => {
  assert.throws(() => new RaftNode({ nodeId: '', peers: [] }), (e) => e.code === RaftErrorCode.ConfigError);
  assert.throws(() => new RaftNode({ nodeId: 'a', peers: ['b'], electionTimeout: [300, 150] }), (e) => e.code === RaftErrorCode.ConfigError);
  assert.throws(() => new RaftNode({ nodeId: 'a', peers: ['b'], heartbeatInterval: 500 }), (e) => e.code === RaftErrorCode.ConfigError);
  assert.throws(() => new RaftNode({ nodeId: 'a', peers: ['b'], bogus: 1 }), (e) => e.code === RaftErrorCode.ConfigError);
  const n = new RaftNode({ nodeId: 'a', peers: ['b', 'c'] });
  assert.throws(() => n.start(), (e) => e.code === RaftErrorCode.ConfigError && /setTransport/.test(e.message));
  n.setTransport({ requestVote: async () => { throw new Error('down'); }, appendEntries: async () => { throw new Error('down'); } });
  n.start();
  assert.equal(n.leader, null);
  await assert.rejects(n.propose({ x: 1 }), (e) => [RaftErrorCode.NoLeader, RaftErrorCode.NotLeader, RaftErrorCode.Timeout].includes(e.code));
  n.stop();
  await assert.rejects(n.propose({ x: 1 }), (e) => e.code === RaftErrorCode.Closed);
  assert.throws(() => n.loadState({ currentTerm: 0, votedFor: null, log: [] }), (e) => e.code === RaftErrorCode.Closed);
  const m = new RaftNode({ nodeId: 'a', peers: ['b'] });
  assert.throws(() => m.loadState({ currentTerm: 1, votedFor: 'zed', log: [] }), (e) => e.code === RaftErrorCode.ConfigError && /not a member/.test(e.message));
  assert.throws(() => m.loadState({ currentTerm: 1, votedFor: null, log: [{ term: 1, index: 1, command: 1 }, { term: 1, index: 3, command: 1 }] }), (e) => e.code === RaftErrorCode.InvalidLogIndex && /consecutive/.test(e.message));
  assert.equal(top.RaftNode, RaftNode);
  assert.equal(top.RaftNodeError, RaftError);
  assert.equal(RaftError.notLeader('x').code, 'NOT_LEADER');
});

test('the seed\'s key-value tutorial between processes (examples/raft-kv.mjs): redirects, kill -9 of the leader, a restart from dataDir', { timeout: 120000 }, async () => {
  const { spawn } = await import('node:child_process');
  const p = spawn(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'examples', 'raft-kv.mjs'), '--keys', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const code = await new Promise((r) => p.on('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /all 3 nodes hold all 20 keys/);
});

test('a process whose RaftNodes are stopped exits by itself', { timeout: 30000 }, async () => {
  const { spawn } = await import('node:child_process');
  const script = `
    import { RaftNode } from 'redux-cluster-rs/raft';
    const ids = ['a', 'b', 'c'];
    const nodes = new Map();
    for (const id of ids) {
      const n = new RaftNode({ nodeId: id, peers: ids.filter((p) => p !== id) });
      n.setTransport({ requestVote: (p, r) => nodes.get(p).handleRequestVote(r), appendEntries: (p, r) => nodes.get(p).handleAppendEntries(r) });
      n.setStateMachine({ apply: () => 1 });
      nodes.set(id, n);
    }
    for (const n of nodes.values()) n.start();
    let l;
    for (let i = 0; i < 500 && !(l = [...nodes.values()].find((n) => n.isLeader)); i++) await new Promise((r) => setTimeout(r, 10));
    await l.propose({ x: 1 });
    for (const n of nodes.values()) n.stop();
    console.log('stopped');`;
  // No IPC channel: nothing but the nodes could keep it alive.
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(path.dirname(new URL(import.meta.url).pathname), '..'), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      resolve('hung');
    }, 10000);
    p.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, out);
  assert.match(out, /stopped/);
  assert.ok(Date.now() - t0 < 10000);
});
