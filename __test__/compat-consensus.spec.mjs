// What @unrdf/consensus's own test suite (packages/consensus/test/consensus.test.mjs)
// expects beyond our other consensus tests: the seed's property names, stats and events,
// checked here against the real engine (numbers must move with real writes).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { waitFor, ROOT } from './helpers.mjs';
import {
  createRaftCoordinator, createClusterManager, createDistributedStateMachine, RaftError,
} from '../src/js/index.mjs';

const until = (what, f) => waitFor(f, { what });
const open = [];
after(async () => {
  for (const c of open) await c.shutdown().catch(() => {});
});

async function coordinator(nodeId, extra = {}) {
  const c = createRaftCoordinator({ nodeId, host: '127.0.0.1', port: 0, ...extra });
  const events = [];
  for (const e of ['initialized', 'peer_added', 'peer_removed', 'shutdown']) c.on(e, (p) => events.push([e, p]));
  c.events = events;
  await c.initialize();
  open.push(c);
  return c;
}

/** Collects `names` events of `emitter` as [name, payload] pairs. */
function record(emitter, ...names) {
  const seen = [];
  for (const n of names) emitter.on(n, (p) => seen.push([n, p]));
  return seen;
}

test('coordinator: a fresh node is a follower with an empty log; initialized; isLeader is not assignable into leadership', async () => {
  const c = await coordinator('fresh');
  assert.deepEqual(c.events, [['initialized', { nodeId: 'fresh' }]]);
  const s = c.getState();
  assert.equal(s.state, 'follower', 'the seed\'s word for a node that is no voter yet');
  assert.equal(s.role, 'learner', 'the engine\'s own role stays available');
  assert.equal(s.logLength, 0);
  assert.equal(s.isLeader, false);
  assert.equal(c.getWorkflowState('nothing'), null);

  // The seed's tests assign it; it must not throw, and must not fake leadership.
  c.isLeader = true;
  assert.equal(c.isLeader, false);
  assert.equal(c.getState().isLeader, false);

  // initialize() again is a no-op: no second `initialized`.
  await c.initialize();
  assert.equal(c.events.filter(([e]) => e === 'initialized').length, 1);
});

test('coordinator: logLength is the engine\'s last log index and grows with each committed entry', async () => {
  const c = await coordinator('lone');
  const sm = createDistributedStateMachine({ nodeId: 'lone', enableSnapshots: false });
  await sm.initialize(c);
  await sm.set('a', 1); // a lone fresh node founds its own cluster at its first write
  const before = c.getState();
  assert.equal(before.state, 'leader');
  assert.equal(before.logLength, before.lastLogIndex);
  const r = await c.replicateCommand({ type: 'START_WORKFLOW', workflowId: 'wf-1', data: {} });
  const s = c.getState();
  assert.equal(s.logLength, r.index);
  assert.ok(s.logLength > before.logLength);
});

test('coordinator: getWorkflowState and getAllWorkflows read the workflows commands recorded', async () => {
  const c = await coordinator('wf');
  await c.replicateCommand({ type: 'START_WORKFLOW', workflowId: 'wf-b', state: { status: 'running' } });
  await c.replicateCommand({ type: 'UPDATE_STATE', workflowId: 'wf-a', state: 3 });
  await c.replicateCommand({ type: 'UPDATE_STATE', workflowId: 'wf-b', state: { status: 'stopped' } });
  await c.replicateCommand({ type: 'NOTE', text: 'no workflowId: not a workflow' });
  assert.deepEqual(c.getWorkflowState('wf-b'), { status: 'stopped' });
  assert.equal(c.getWorkflowState('wf-c'), null);
  assert.deepEqual(c.getAllWorkflows(), [
    { id: 'wf-a', state: 3 },
    { id: 'wf-b', status: 'stopped' },
  ]);
});

test('coordinator: peer_added and peer_removed once the membership change committed, not for a failed one', { timeout: 30000 }, async () => {
  const a = await coordinator('pa', { bootstrap: true });
  const b = await coordinator('pb');
  const other = await coordinator('po', { bootstrap: true });
  await assert.rejects(a.addPeer('po', '127.0.0.1', other.config.port), { code: 'ERR_OTHER_CLUSTER' });
  await assert.rejects(a.addPeer('pz', '127.0.0.1', 0), { code: 'ERR_INVALID_CONFIG' });
  await a.addPeer('pb', 'localhost', b.config.port);
  const added = a.events.filter(([e]) => e === 'peer_added');
  assert.deepEqual(added, [['peer_added', { nodeId: 'pb', host: 'localhost', port: b.config.port }]]);
  assert.deepEqual(a.getState().peers, ['pb']);
  await until('pb knows the leader', () => b.leaderId === 'pa');
  assert.equal(b.getState().state, 'follower');

  await a.removePeer('pb');
  assert.deepEqual(a.events.filter(([e]) => e === 'peer_removed'), [['peer_removed', { nodeId: 'pb' }]]);
  assert.deepEqual(a.getState().peers, []);
});

test('coordinator: shutdown is emitted once, even for concurrent calls, and the node reports stopped', async () => {
  const c = await coordinator('closing');
  await Promise.all([c.shutdown(), c.shutdown()]);
  await c.shutdown();
  assert.deepEqual(c.events.filter(([e]) => e === 'shutdown'), [['shutdown', undefined]]);
  assert.equal(c.getState().state, 'stopped');
  assert.equal(c.getState().logLength, 0);
  assert.equal(c.getWorkflowState('x'), null);
});

test('cluster manager: raftCoordinator, healthStats from real health checks, initialized and shutdown', { timeout: 30000 }, async () => {
  const a = await coordinator('ma', { bootstrap: true });
  const b = await coordinator('mb');
  const cluster = createClusterManager({ nodeId: 'ma', healthCheckInterval: 50, healthCheckTimeout: 200, maxFailedHealthChecks: 2 });
  const seen = record(cluster, 'initialized', 'shutdown', 'discovery_requested');
  assert.equal(cluster.raftCoordinator, null);
  await cluster.initialize(a);
  assert.equal(cluster.raftCoordinator, a);
  assert.equal(cluster.coordinator, a, 'our earlier name stays an alias');
  assert.deepEqual(seen, [['initialized', undefined]]);

  await until('ma listed', () => cluster.getStats().totalNodes === 1);
  let st = cluster.getStats();
  assert.deepEqual(st.healthStats, { unknown: 0, healthy: 1, degraded: 0, unhealthy: 0 });
  assert.equal(st.totalNodes, 1);
  assert.equal(st.autoDiscovery, false);

  await cluster.addNode({ nodeId: 'mb', host: '127.0.0.1', port: b.config.port });
  await until('mb healthy', () => cluster.getStats().healthStats.healthy === 2);
  st = cluster.getStats();
  assert.equal(st.totalNodes, 2);
  assert.equal(st.healthyNodes, st.healthStats.healthy);

  // mb stops answering: degraded after one failed check, unhealthy after two.
  const changes = record(cluster, 'node_health_changed');
  await b.shutdown();
  await until('mb unhealthy', () => cluster.getStats().healthStats.unhealthy === 1);
  assert.deepEqual(cluster.getStats().healthStats, { unknown: 0, healthy: 1, degraded: 0, unhealthy: 1 });
  assert.deepEqual(changes.map(([, e]) => e.health), ['degraded', 'unhealthy']);

  await cluster.shutdown();
  await cluster.shutdown();
  assert.deepEqual(seen.map(([e]) => e), ['initialized', 'shutdown'], 'no discovery without autoDiscovery; shutdown once');
});

test('cluster manager: autoDiscovery asks the application every discoveryInterval, until shutdown', { timeout: 20000 }, async () => {
  const a = await coordinator('da');
  const on = createClusterManager({ nodeId: 'da', autoDiscovery: true, discoveryInterval: 20 });
  const off = createClusterManager({ nodeId: 'da', discoveryInterval: 20 });
  const onSeen = record(on, 'discovery_requested');
  const offSeen = record(off, 'discovery_requested');
  await off.initialize(a);
  await on.initialize(a);
  assert.equal(on.getStats().autoDiscovery, true);
  await until('two discovery requests', () => onSeen.length >= 2);
  await on.shutdown();
  const stoppedAt = onSeen.length;

  // A third manager's timer firing twice shows time enough passed for the stopped one
  // (and the one without autoDiscovery) to have fired, had they still been running.
  const probe = createClusterManager({ nodeId: 'da', autoDiscovery: true, discoveryInterval: 20 });
  const probeSeen = record(probe, 'discovery_requested');
  await probe.initialize(a);
  await until('the probe fired twice', () => probeSeen.length >= 2);
  await probe.shutdown();
  await off.shutdown();
  assert.equal(onSeen.length, stoppedAt, 'no discovery_requested after shutdown');
  assert.equal(offSeen.length, 0, 'no discovery_requested without autoDiscovery');
});

test('state machine: raftCoordinator, events, and stats that follow the engine', { timeout: 30000 }, async () => {
  const c = await coordinator('sa');
  const sm = createDistributedStateMachine({ nodeId: 'sa', snapshotInterval: 5 });
  const seen = record(sm, 'initialized', 'shutdown');
  const snaps = record(sm, 'snapshot_created');
  assert.equal(sm.raftCoordinator, null);
  await sm.initialize(c);
  assert.equal(sm.raftCoordinator, c);
  assert.equal(sm.coordinator, c);
  assert.deepEqual(seen, [['initialized', undefined]]);
  assert.deepEqual(
    (({ stateSize, changeLogSize, snapshotCount, lastSnapshotIndex, latestSnapshot }) => ({ stateSize, changeLogSize, snapshotCount, lastSnapshotIndex, latestSnapshot }))(sm.getStats()),
    { stateSize: 0, changeLogSize: 0, snapshotCount: 0, lastSnapshotIndex: 0, latestSnapshot: null },
  );

  for (let i = 0; i < 12; i++) await sm.set(`k${i}`, i);
  await sm.delete('k0');
  await c.replicateCommand({ type: 'START_WORKFLOW', workflowId: 'w' });
  let st = sm.getStats();
  assert.equal(st.stateSize, 11);
  assert.equal(st.stateSize, sm.keys().length);
  assert.equal(st.changeLogSize, 14, '12 sets, 1 delete, 1 workflow command applied');

  // openraft builds a snapshot in the background: writes that land while one is being
  // built fold into the next, so how many 14 writes make depends on timing. Write on
  // (bounded) until a second one was taken.
  for (let i = 0; snaps.length < 2 && i < 200; i++) await sm.set('more', i);
  await until('two snapshots', () => snaps.length >= 2);
  await until('stats caught up with the events', () => sm.getStats().snapshotCount === snaps.length);
  st = sm.getStats();
  const last = snaps.at(-1)[1];
  assert.equal(st.latestSnapshot, last.snapshotId);
  assert.equal(st.lastSnapshotIndex, last.index);
  assert.equal(st.lastSnapshotIndex, c.getState().snapshotIndex);

  await sm.shutdown();
  await sm.shutdown();
  assert.deepEqual(seen.map(([e]) => e), ['initialized', 'shutdown']);
  assert.equal(sm.raftCoordinator, null);
  assert.equal(sm.getStats().stateSize, 0);
});

test('state machine: a write the log refused is an error on every replica; a lost compare-and-set is not', { timeout: 30000 }, async () => {
  const a = await coordinator('ea', { bootstrap: true });
  const b = await coordinator('eb');
  await a.addPeer('eb', '127.0.0.1', b.config.port);
  const sa = createDistributedStateMachine({ nodeId: 'ea', maxStateSize: 2, enableSnapshots: false });
  const sb = createDistributedStateMachine({ nodeId: 'eb', enableSnapshots: false });
  await sa.initialize(a);
  await sb.initialize(b);
  const errorsA = record(sa, 'error');
  const errorsB = record(sb, 'error');

  await sa.set('n', 0);
  await Promise.all(Array.from({ length: 8 }, () => sa.update('n', (v) => v + 1)));
  assert.equal(await sa.getLinearizable('n'), 8);
  assert.ok(sa.getStats().conflicts > 0, 'concurrent updates did conflict');

  await sa.set('m', 0);
  await assert.rejects(sa.set('o', 0), { code: 'ERR_STATE_FULL' });
  // Events come in log order: once the refusal is in, any error for the earlier lost
  // compare-and-sets would be in too.
  await until('the refusal reported on both', () => errorsA.length > 0 && errorsB.length > 0);
  for (const errors of [errorsA, errorsB]) {
    assert.equal(errors.length, 1, 'only the refusal, no conflict, is an error');
    const [, e] = errors[0];
    assert.equal(e.source, 'apply_state_change');
    assert.ok(e.error instanceof RaftError);
    assert.equal(e.error.code, 'ERR_STATE_FULL');
    assert.ok(e.error.index > 0);
  }
});

test('state machine: a throwing state_changed listener reaches error listeners and does not cut the batch', { timeout: 30000 }, async () => {
  const c = await coordinator('ta');
  const sm = createDistributedStateMachine({ nodeId: 'ta', enableSnapshots: false });
  await sm.initialize(c);
  const boom = new Error('listener bug');
  sm.on('state_changed', (e) => {
    if (e.key === 'bad') throw boom;
  });
  const later = [];
  sm.on('state_changed', (e) => later.push(e.key));
  const errors = record(sm, 'error');
  const applied = record(c, 'command_applied');

  // One batch of three changes: the first listener throws on the middle one.
  await sm.batchUpdate([{ key: 'ok1', value: 1 }, { key: 'bad', value: 2 }, { key: 'ok2', value: 3 }]);
  await sm.set('after', 4);
  await until('later changes delivered', () => later.includes('after'));
  assert.deepEqual(later, ['ok1', 'bad', 'ok2', 'after']);
  assert.deepEqual(errors, [['error', { error: boom, source: 'apply_state_change' }]]);
  assert.equal(applied.length, 2, 'the coordinator delivered both entries');

  // Without error listeners on the state machine, the coordinator's get it.
  sm.removeAllListeners('error');
  const coordErrors = record(c, 'error');
  await sm.set('bad', 5);
  await until('the coordinator\'s error', () => coordErrors.length > 0);
  assert.equal(coordErrors[0][1].error, boom);
  assert.equal(coordErrors[0][1].source, 'apply_command');
});

test('a listener error with no error listener anywhere is rethrown, after the rest of the batch', { timeout: 30000 }, async () => {
  const script = `
    import { createRaftCoordinator, createDistributedStateMachine } from ${JSON.stringify(`${ROOT}/src/js/index.mjs`)};
    const c = createRaftCoordinator({ nodeId: 'u', host: '127.0.0.1', port: 0 });
    await c.initialize();
    const sm = createDistributedStateMachine({ nodeId: 'u', enableSnapshots: false });
    await sm.initialize(c);
    const seen = [];
    sm.on('state_changed', (e) => { if (e.key === 'bad') throw new Error('listener bug'); });
    sm.on('state_changed', (e) => seen.push(e.key));
    process.on('uncaughtException', async (e) => {
      console.log(JSON.stringify({ uncaught: e.message, seen }));
      await c.shutdown();
      process.exit(0);
    });
    await sm.batchUpdate([{ key: 'bad', value: 1 }, { key: 'ok', value: 2 }]);
  `;
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)), { uncaught: 'listener bug', seen: ['bad', 'ok'] });
});
