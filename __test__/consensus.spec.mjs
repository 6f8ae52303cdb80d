// The @unrdf/consensus API in one process: state machine semantics, errors with codes,
// forwarding, the cluster manager, secrets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor, freePort } from './helpers.mjs';
import {
  createRaftCoordinator, createClusterManager, createDistributedStateMachine, RaftError, ErrorCode,
} from '../src/js/index.mjs';

const until = (what, f) => waitFor(f, { what });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-consensus-'));
const open = [];
after(async () => {
  for (const c of open) await c.shutdown().catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
});


async function node(nodeId, extra = {}, smExtra = {}) {
  const coordinator = createRaftCoordinator({ nodeId, host: '127.0.0.1', port: 0, ...extra });
  await coordinator.initialize();
  open.push(coordinator);
  const state = createDistributedStateMachine({ nodeId, ...smExtra });
  await state.initialize(coordinator);
  return { coordinator, state };
}

test('three nodes: set/get/delete/update/batch, events on every node, forwarding', { timeout: 60000 }, async () => {
  const a = await node('a', {}, { maxStateSize: 5 });
  const b = await node('b');
  const c = await node('c');
  const elected = [];
  for (const n of [a, b, c]) n.coordinator.on('leader_elected', (e) => elected.push([n.coordinator.nodeId, e.leaderId]));
  const cluster = createClusterManager({ nodeId: 'a', healthCheckInterval: 100, healthCheckTimeout: 200, maxFailedHealthChecks: 2 });
  const joined = [];
  cluster.on('node_joined', (e) => joined.push(e.nodeId));
  await cluster.initialize(a.coordinator);
  await cluster.addNode({ nodeId: 'b', host: '127.0.0.1', port: b.coordinator.config.port, zone: 'z1' });
  await cluster.addNode({ nodeId: 'c', host: '127.0.0.1', port: c.coordinator.config.port });
  await until('3 voters', () => cluster.getStats().voters === 3);
  assert.deepEqual(joined.sort(), ['a', 'b', 'c']);
  assert.equal(cluster.getNodes().find((n) => n.nodeId === 'b').metadata.zone, 'z1');
  await until('leader known on every node', () => new Set(elected.map(([n]) => n)).size === 3);
  const leaderId = a.coordinator.getState().leaderId;
  assert.ok(elected.every(([, l]) => l === leaderId), 'every node heard of the same leader');
  await until('all healthy', () => cluster.getHealthyNodes().length === 3);

  // Writes on a follower are forwarded; state_changed fires on every node.
  const changes = [];
  c.state.on('state_changed', (e) => changes.push(e));
  const follower = [a, b, c].find((n) => !n.coordinator.isLeader);
  await follower.state.set('workflow:1', { status: 'running', progress: 0.5 });
  assert.deepEqual(await c.state.getLinearizable('workflow:1'), { status: 'running', progress: 0.5 });
  await until('state_changed on c', () => changes.some((e) => e.key === 'workflow:1' && e.operation === 'set'));

  // update is atomic under concurrent writers (compare-and-set with retries).
  await a.state.set('counter', 0);
  await Promise.all([a, b, c].flatMap((n) => Array.from({ length: 10 }, () => n.state.update('counter', (v) => v + 1))));
  assert.equal(await b.state.getLinearizable('counter'), 30);

  // batchUpdate: one entry, all or nothing (the key limit refuses the whole batch).
  await b.state.batchUpdate([{ key: 'w1', value: 1 }, { key: 'w2', value: 2 }]);
  assert.deepEqual(await a.state.getLinearizable('w2'), 2);
  // 5 keys now (workflow:1, counter, w1, w2 + 0) -> a's limit 5 allows one more key.
  await a.state.set('w3', 3);
  await assert.rejects(a.state.set('w4', 4), (e) => e instanceof RaftError && e.code === ErrorCode.StateFull);
  await assert.rejects(a.state.batchUpdate([{ key: 'w1', delete: true }, { key: 'x', value: 1 }, { key: 'y', value: 2 }]), { code: ErrorCode.StateFull });
  assert.equal(await a.state.getLinearizable('w1'), 1, 'nothing of the refused batch applied');
  assert.equal(await a.state.delete('w3'), true);
  assert.equal(a.state.has('w3'), false);
  assert.deepEqual(a.state.keys(), ['counter', 'w1', 'w2', 'workflow:1']);

  // replicateCommand: any JSON, command_applied everywhere, workflow state recorded.
  const applied = [];
  b.coordinator.on('command_applied', (e) => applied.push(e));
  const r = await c.coordinator.replicateCommand({ type: 'WORKFLOW', workflowId: 'wf-9', state: { step: 3 } });
  assert.ok(r.index > 0);
  await until('command_applied on b', () => applied.some((e) => e.command.workflowId === 'wf-9' && e.entry.index === r.index));
  await b.state.getLinearizable('x');
  assert.deepEqual(b.coordinator.getWorkflowState('wf-9'), { step: 3 });

  // Removing a node: a safe membership change, node_left, the rest keep committing.
  const left = [];
  cluster.on('node_left', (e) => left.push(e.nodeId));
  const victim = [a, b, c].find((n) => n !== a && !n.coordinator.isLeader) ?? b;
  await cluster.removeNode(victim.coordinator.nodeId);
  await until('node_left', () => left.includes(victim.coordinator.nodeId));
  await a.state.set('after-remove', true);
  await cluster.shutdown();
});

test('errors: no forwarding names the leader, invalid options, persistSnapshots without dataDir', async () => {
  const a = await node('p', { bootstrap: true });
  const b = await node('q', { forwardToLeader: false });
  await a.coordinator.addPeer('q', '127.0.0.1', b.coordinator.config.port);
  await until('q follows p', () => b.coordinator.leaderId === 'p');
  await assert.rejects(b.state.set('k', 1), (e) => e.code === ErrorCode.NotLeader && e.leaderId === 'p');
  assert.throws(() => createRaftCoordinator({}), { code: ErrorCode.InvalidConfig });
  const bad = createRaftCoordinator({ nodeId: 'r', port: 0, electionTimeoutMin: 300, electionTimeoutMax: 150 });
  await assert.rejects(bad.initialize(), { code: ErrorCode.InvalidConfig });
  const sm = createDistributedStateMachine({ nodeId: 'p', persistSnapshots: true });
  await assert.rejects(sm.initialize(a.coordinator), { code: ErrorCode.InvalidConfig });
  await assert.rejects(a.state.set('', 1), { code: ErrorCode.InvalidArgument });
  await assert.rejects(createDistributedStateMachine({}).set('k', 1), { code: ErrorCode.NotInitialized });
  // A node with a cluster of its own is refused, not overwritten.
  const other = await node('o', { bootstrap: true });
  await other.state.set('k', 'mine');
  await assert.rejects(a.coordinator.addPeer('o', '127.0.0.1', other.coordinator.config.port), {
    code: ErrorCode.OtherCluster,
  });
  assert.equal(other.state.get('k'), 'mine');
});

test('a wrong clusterSecret never joins; snapshots persist and restore from dataDir', { timeout: 30000 }, async () => {
  const a = await node('s1', { clusterSecret: 'right', bootstrap: true, commitTimeout: 1000 });
  const m = await node('m1', { clusterSecret: 'wrong' });
  const heard = [];
  m.coordinator.on('error', (e) => heard.push(e));
  await assert.rejects(a.coordinator.addPeer('m1', '127.0.0.1', m.coordinator.config.port), (e) => typeof e.code === 'string');
  assert.equal(m.coordinator.getState().initialized, false, 'the node with the wrong secret took nothing');
  // The node that refused the peer says so to its owner, with the code.
  await until('the refusal reaches the error event', () => heard.some((e) => e.error.code === ErrorCode.Auth && /s1/.test(e.error.message)));

  const d = path.join(dir, 'solo');
  let n = await node('solo', { dataDir: d, bootstrap: true }, { snapshotInterval: 10, persistSnapshots: true });
  const created = [];
  n.state.on('snapshot_created', (e) => created.push(e));
  for (let i = 0; i < 25; i++) await n.state.set(`k${i}`, i);
  await until('a snapshot', () => created.length > 0);
  assert.ok(created[0].stateSize > 0 && created[0].snapshotId);
  await n.state.shutdown();
  await n.coordinator.shutdown();
  const restored = [];
  const c2 = createRaftCoordinator({ nodeId: 'solo', port: 0, dataDir: d });
  c2.on('_snapshot_restored', (e) => restored.push(e));
  await c2.initialize();
  open.push(c2);
  const s2 = createDistributedStateMachine({ nodeId: 'solo' });
  await s2.initialize(c2);
  await until('state back from disk', () => s2.get('k24') === 24);
  assert.equal(s2.entries().length, 25);
  await until('snapshot_restored', () => restored.length > 0);
  assert.ok(restored[0].index > 0);
});

// Found while testing peer_added for a failed add. openraft's blocking add_learner calls
// a learner "up to date" while it is within 5,000 entries of the leader, so the engine
// promoted a learner that never answered: the joint configuration then needed it, and a
// one-node cluster lost its quorum for good. The add must fail and leave the node out.
test('adding a node nobody answers at fails and leaves the cluster able to commit', { timeout: 30000 }, async () => {
  const a = await node('g1', { bootstrap: true, commitTimeout: 1000 });
  await a.state.set('before', 1);
  const dead = await freePort();
  await assert.rejects(a.coordinator.addPeer('ghost', '127.0.0.1', dead), (e) => e.code === ErrorCode.Unavailable && /did not answer/.test(e.message));
  assert.deepEqual(a.coordinator.getState().voters.map((m) => m.nodeId), ['g1']);
  await a.state.set('after', 2);
});

test('a stopped state machine answers ERR_CLOSED; ERR_NOT_INITIALIZED only before the first start', async () => {
  const fresh = createDistributedStateMachine({});
  await assert.rejects(fresh.set('k', 1), { code: ErrorCode.NotInitialized });
  const a = await node('closed-sm', { bootstrap: true });
  await until('closed-sm leads', () => a.coordinator.leaderId === 'closed-sm');
  await a.state.set('k', 1);
  await a.state.shutdown();
  await assert.rejects(a.state.set('k', 2), { code: ErrorCode.Closed });
  assert.throws(() => a.state.get('k'), { code: ErrorCode.Closed });
  // Attached again, it works; its coordinator stopped under it, it answers ERR_CLOSED too.
  await a.state.initialize(a.coordinator);
  await a.state.set('k', 3);
  assert.equal(a.state.get('k'), 3);
  await a.coordinator.shutdown();
  await assert.rejects(a.state.set('k', 4), { code: ErrorCode.Closed });
});
