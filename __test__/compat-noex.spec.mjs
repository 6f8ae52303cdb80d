// noex compatibility of the Cluster and NodeId API: what noex's own unit tests
// (tests/distribution/cluster.test.ts, node-id.test.ts) check, in our words: the queries
// getLocalNodeInfo / getNodeIds / getUptimeMs, NodeId's helpers and isNodeId, the error
// classes with noex's fields and messages (plus our `code`), and validation as noex does
// it. Also the deliberate differences kept (port 0, canonical IPv6 ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from 'redux-cluster-rs';
import { Cluster, NodeId, isNodeId, ClusterNotStartedError, InvalidClusterConfigError, InvalidNodeIdError } from 'redux-cluster-rs';
import { child, freePort, waitFor } from './helpers.mjs';

const require = createRequire(import.meta.url);
const LOOPBACK = { host: '127.0.0.1' };

/** Asserts `fn` throws InvalidNodeIdError with exactly noex's reason and value. */
function rejectsId(fn, value, reason) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof InvalidNodeIdError, `${e}`);
    assert.equal(e.name, 'InvalidNodeIdError');
    assert.equal(e.code, 'ERR_INVALID_NODE_ID');
    assert.equal(e.value, value);
    assert.equal(e.reason, reason);
    assert.equal(e.message, `Invalid NodeId '${value}': ${reason}`);
    return true;
  });
}

test('isNodeId and every NodeId helper are exported, from ESM and CommonJS alike', () => {
  const cjs = require('redux-cluster-rs');
  assert.equal(esm.isNodeId, cjs.isNodeId);
  assert.equal(esm.NodeId, cjs.NodeId);
  for (const k of ['parse', 'tryParse', 'create', 'getName', 'getHost', 'getPort', 'components', 'isValid', 'equals', 'toString']) {
    assert.equal(typeof NodeId[k], 'function', k);
  }
  for (const k of ['getLocalNodeInfo', 'getNodeIds', 'getUptimeMs']) assert.equal(typeof Cluster[k], 'function', k);
});

test("NodeId's helpers: getName, getHost, getPort, components, tryParse, equals, toString, isNodeId", () => {
  const id = NodeId.parse('app1@192.168.1.1:4369');
  assert.equal(id, 'app1@192.168.1.1:4369');
  assert.equal(NodeId.getName(id), 'app1');
  assert.equal(NodeId.getHost(id), '192.168.1.1');
  assert.equal(NodeId.getPort(id), 4369);
  assert.deepEqual(NodeId.components('worker@node1.example.com:5000'), { name: 'worker', host: 'node1.example.com', port: 5000 });
  assert.equal(NodeId.getHost(NodeId.parse('n@fe80::1:80')), 'fe80::1');
  assert.equal(NodeId.getPort(NodeId.parse('n@fe80::1:80')), 80);

  assert.equal(NodeId.tryParse('app@localhost:4369'), 'app@localhost:4369');
  for (const bad of ['invalid', 'app@localhost', '@localhost:4369', 123, null]) assert.equal(NodeId.tryParse(bad), undefined);

  assert.equal(NodeId.equals(NodeId.parse('a@h:1'), NodeId.parse('a@h:1')), true);
  assert.equal(NodeId.equals(NodeId.parse('a@h:1'), NodeId.parse('b@h:1')), false);
  assert.equal(NodeId.toString(id), 'app1@192.168.1.1:4369');

  assert.equal(isNodeId('app@localhost:4369'), true);
  for (const v of ['invalid', 'a@256.0.0.1:1', 123, null, undefined, {}, ['a@h:1']]) assert.equal(isNodeId(v), false, String(v));
});

test("NodeId.parse and create refuse with noex's reasons; the error carries value, reason and code", () => {
  rejectsId(() => NodeId.parse('applocalhost:4369'), 'applocalhost:4369', "missing '@' separator");
  rejectsId(() => NodeId.parse('app@localhost'), 'app@localhost', "missing ':' port separator");
  rejectsId(() => NodeId.parse('@localhost:4369'), '', 'name cannot be empty');
  const letters = 'name must start with a letter and contain only alphanumeric characters, underscores, or hyphens';
  rejectsId(() => NodeId.parse('1app@localhost:4369'), '1app', letters);
  rejectsId(() => NodeId.parse('app.name@localhost:4369'), 'app.name', letters);
  const long = 'a'.repeat(65);
  rejectsId(() => NodeId.parse(`${long}@localhost:4369`), long, 'name exceeds maximum length of 64 characters');
  rejectsId(() => NodeId.parse('app@:4369'), '', 'host cannot be empty');
  rejectsId(() => NodeId.parse('app@-invalid:4369'), '-invalid', 'host must be a valid IPv4 address, IPv6 address, or hostname');
  rejectsId(() => NodeId.parse('app@invalid-:4369'), 'invalid-', 'host must be a valid IPv4 address, IPv6 address, or hostname');
  rejectsId(() => NodeId.parse('app@localhost:abc'), 'app@localhost:abc', 'port is not a valid number');
  for (const p of ['0', '65536', '-1']) {
    rejectsId(() => NodeId.parse(`app@localhost:${p}`), `app@localhost:${p}`, 'port must be between 1 and 65535');
  }
  rejectsId(() => NodeId.parse(123), '123', 'must be a string');
  rejectsId(() => NodeId.parse(null), 'null', 'must be a string');

  assert.equal(NodeId.create('app', '192.168.1.1', 4369), 'app@192.168.1.1:4369');
  rejectsId(() => NodeId.create('', 'localhost', 4369), '', 'name cannot be empty');
  rejectsId(() => NodeId.create('app', '', 4369), '', 'host cannot be empty');
  rejectsId(() => NodeId.create('app', 'localhost', 0), 'app@localhost:0', 'port must be between 1 and 65535');
  rejectsId(() => NodeId.create('app', 'localhost', 1.5), 'app@localhost:1.5', 'port must be an integer');

  // Constructed directly, as noex's tests do.
  const e = new InvalidNodeIdError('bad-value', 'missing port');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'InvalidNodeIdError');
  assert.equal(e.value, 'bad-value');
  assert.equal(e.reason, 'missing port');
  assert.equal(e.code, 'ERR_INVALID_NODE_ID');
  assert.equal(e.message, "Invalid NodeId 'bad-value': missing port");
});

test('hosts: digits-and-dots strings must be valid IPv4 (256.0.0.1 is refused), and the engine agrees with NodeId', () => {
  const looks = 'host looks like IPv4 but is not a valid IPv4 address';
  for (const host of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '123', '01.2.3.4']) {
    rejectsId(() => NodeId.parse(`app@${host}:4369`), host, looks);
    rejectsId(() => NodeId.create('app', host, 4369), host, looks);
  }
  for (const ok of ['0.0.0.0', '127.0.0.1', '255.255.255.255', '10.0.0.1', 'localhost', 'node-1', 'a.b.c', 'sub.domain.example.com', '::1', 'fe80::1']) {
    assert.ok(NodeId.isValid(`app@${ok}:4369`), ok);
  }
  // The engine's parser (the one that reads seeds and gossip) is NodeId's: the edges it
  // decides, including those noex's regular expressions let through (`a@1::2::3:1`).
  const valid = ['a@h:1', 'a@1.2.3.4:1', 'a@::1:1', 'a@[::1]:1', 'a@h:04369'];
  const invalid = ['a@256.0.0.1:1', 'a@1.2.3:1', 'a@123:1', 'a@-h:1', 'a@h-:1', 'a@h_x:1', 'a@h:0', 'a@h:65536', 'a@h:1x', '1a@h:1', 'a@:1', 'ah:1', 'a@1::2::3:1'];
  for (const s of valid) assert.equal(NodeId.isValid(s), true, s);
  for (const s of invalid) assert.equal(NodeId.isValid(s), false, s);
  assert.equal(NodeId.parse('a@[::1]:1'), 'a@::1:1');
});

test("deliberate: an IPv6 host is written bare, as the engine reports ids (noex keeps the brackets)", () => {
  assert.equal(NodeId.parse('n@[::1]:4369'), 'n@::1:4369');
  assert.equal(NodeId.create('n', '[::1]', 4369), 'n@::1:4369');
  assert.equal(NodeId.getHost(NodeId.parse('n@[::1]:4369')), '::1');
});

test("config validation as noex: its checks, reasons and the heartbeat interval floor", async () => {
  const refused = async (config, reason) => {
    await assert.rejects(Cluster.start(config), (e) => {
      assert.ok(e instanceof InvalidClusterConfigError, `${e}`);
      assert.equal(e.name, 'InvalidClusterConfigError');
      assert.equal(e.code, 'ERR_INVALID_CONFIG');
      assert.equal(e.reason, reason);
      assert.equal(e.message, `Invalid cluster configuration: ${reason}`);
      return true;
    });
    assert.equal(Cluster.getStatus(), 'stopped');
  };
  await refused({}, 'nodeName is required and must be a string');
  await refused({ nodeName: 7 }, 'nodeName is required and must be a string');
  await refused({ nodeName: '123invalid' }, 'nodeName must start with a letter and contain only alphanumeric characters, underscores, or hyphens');
  await refused({ nodeName: 'a'.repeat(65) }, 'nodeName exceeds maximum length of 64 characters');
  await refused({ nodeName: 'test', port: 70000 }, 'port must be an integer between 1 and 65535 (or 0 for a free port)');
  await refused({ nodeName: 'test', port: 1.5 }, 'port must be an integer between 1 and 65535 (or 0 for a free port)');
  await refused({ nodeName: 'test', seeds: 'a@h:1' }, 'seeds must be an array');
  await refused({ nodeName: 'test', seeds: ['invalid'] }, 'invalid seed node: invalid');
  await refused({ nodeName: 'test', seeds: ['a@256.0.0.1:1'] }, 'invalid seed node: a@256.0.0.1:1');
  await refused({ nodeName: 'test', heartbeatIntervalMs: 50 }, 'heartbeatIntervalMs must be an integer >= 100');
  await refused({ nodeName: 'test', heartbeatIntervalMs: 99 }, 'heartbeatIntervalMs must be an integer >= 100');
  await refused({ nodeName: 'test', heartbeatIntervalMs: 150.5 }, 'heartbeatIntervalMs must be an integer >= 100');
  await refused({ nodeName: 'test', heartbeatMissThreshold: 0 }, 'heartbeatMissThreshold must be an integer >= 1');
  // Beyond noex: a misspelt option is refused rather than ignored.
  await refused({ nodeName: 'test', heartbeatInterval: 1000 }, 'unknown option heartbeatInterval');
  // Checked by the engine, reported the same way.
  await refused({ nodeName: 'test', ...LOOPBACK, port: 0, reconnectBaseDelayMs: 5000, reconnectMaxDelayMs: 1000 }, 'reconnectBaseDelayMs must not exceed reconnectMaxDelayMs');
  await refused({ nodeName: 'test', host: 'bad_host', port: 0 }, 'host must be a valid IPv4 address, IPv6 address, or hostname');

  // The floor itself is accepted.
  await Cluster.start({ nodeName: 'floor', ...LOOPBACK, port: 0, heartbeatIntervalMs: 100 });
  assert.equal(Cluster.getStatus(), 'running');
  await Cluster.stop();
});

test("before start, every query throws ClusterNotStartedError with noex's message", () => {
  assert.equal(Cluster.getStatus(), 'stopped');
  const queries = {
    getLocalNodeId: [],
    getLocalNodeInfo: [],
    getUptimeMs: [],
    getNodes: [],
    getNodeIds: [],
    getConnectedNodes: [],
    getConnectedNodeCount: [],
    getNode: ['a@127.0.0.1:4369'],
    isNodeConnected: ['a@127.0.0.1:4369'],
  };
  for (const [k, args] of Object.entries(queries)) {
    assert.throws(() => Cluster[k](...args), (e) => {
      assert.ok(e instanceof ClusterNotStartedError, k);
      assert.equal(e.name, 'ClusterNotStartedError');
      // A node ran (and stopped) earlier in this file: the code says it is closed.
      assert.equal(e.code, 'ERR_CLOSED');
      assert.equal(e.message, 'Cluster has not been started. Call Cluster.start() first.');
      return true;
    });
  }
});

test('a lone node: getLocalNodeInfo, getNodeIds, getUptimeMs; "Cluster is already running"; port 0 binds a free port', async () => {
  await Cluster.start({ nodeName: 'mynode', ...LOOPBACK, port: 0 });
  const id = Cluster.getLocalNodeId();
  const port = NodeId.getPort(id);
  assert.ok(port > 0, 'port 0 bound a real port, carried in the id');

  const info = Cluster.getLocalNodeInfo();
  assert.equal(info.id, id);
  assert.equal(info.host, '127.0.0.1');
  assert.equal(info.port, port);
  assert.equal(info.status, 'connected');
  assert.equal(info.processCount, 0);
  assert.ok(Math.abs(info.lastHeartbeatAt - Date.now()) < 1000);
  assert.ok(info.uptimeMs >= 0);

  assert.deepEqual(Cluster.getNodeIds(), []);
  assert.deepEqual(Cluster.getNodes(), []);
  assert.equal(Cluster.getNode(NodeId.create('unknown', '127.0.0.1', 9999)), undefined);
  assert.equal(Cluster.isNodeConnected(NodeId.create('unknown', '127.0.0.1', 9999)), false);

  const u1 = Cluster.getUptimeMs();
  assert.ok(u1 >= 0);
  await waitFor(() => Cluster.getUptimeMs() > u1, { timeoutMs: 2000, what: 'uptime to grow' });

  await assert.rejects(Cluster.start({ nodeName: 'other', ...LOOPBACK, port: 0 }), (e) => {
    assert.equal(e.message, 'Cluster is already running');
    assert.equal(e.code, 'ERR_CLUSTER_RUNNING');
    return true;
  });
  assert.equal(Cluster.getLocalNodeId(), id, 'the running node is untouched');
  await Cluster.stop();
});

test('stop: concurrent calls share one stop; while stopping, queries throw and start is refused', async () => {
  await Cluster.start({ nodeName: 'stopper', ...LOOPBACK, port: 0 });
  const statuses = [];
  const off = Cluster.onStatusChange((s) => statuses.push(s));
  const first = Cluster.stop();
  assert.equal(Cluster.getStatus(), 'stopping');
  assert.throws(() => Cluster.getNodes(), ClusterNotStartedError);
  assert.throws(() => Cluster.getUptimeMs(), ClusterNotStartedError);
  const second = Cluster.stop();
  await assert.rejects(Cluster.start({ nodeName: 'again', ...LOOPBACK, port: 0 }), (e) => {
    assert.equal(e.message, 'Cannot start cluster in stopping state');
    assert.equal(e.code, 'ERR_CLUSTER_RUNNING');
    return true;
  });
  await Promise.all([first, second]);
  off();
  assert.deepEqual(statuses, ['stopping', 'stopped']);
  assert.equal(Cluster.getStatus(), 'stopped');
  await Cluster.stop(); // already stopped: returns at once
  // Startable again after a stop.
  await Cluster.start({ nodeName: 'again', ...LOOPBACK, port: 0 });
  assert.equal(Cluster.getStatus(), 'running');
  await Cluster.stop();
});

test('with a peer: getNodeIds lists it once, getLocalNodeInfo stays this node; a seed spelling itself is skipped', { timeout: 30000 }, async () => {
  const port = await freePort();
  await Cluster.start({
    nodeName: 'local',
    ...LOOPBACK,
    port,
    heartbeatIntervalMs: 100,
    reconnectBaseDelayMs: 50,
    reconnectMaxDelayMs: 500,
    seeds: [`local@127.0.0.1:${port}`], // itself: never a member
  });
  const me = Cluster.getLocalNodeId();
  assert.equal(me, `local@127.0.0.1:${port}`);
  const peer = child('cluster-node.mjs', [
    JSON.stringify({ nodeName: 'peer', ...LOOPBACK, port: 0, seeds: [me], heartbeatIntervalMs: 100, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 500 }),
  ]);
  try {
    const { id: peerId } = await peer.next((m) => m.id);
    await waitFor(() => Cluster.isNodeConnected(peerId), { timeoutMs: 10000, what: 'the peer to connect', show: () => Cluster.getNodes() });
    assert.deepEqual(Cluster.getNodeIds(), [peerId]);
    assert.deepEqual(Cluster.getNodeIds(), Cluster.getNodes().map((n) => n.id));
    assert.equal(Cluster.getConnectedNodeCount(), 1);
    assert.equal(Cluster.getLocalNodeInfo().id, me);
    assert.ok(!Cluster.getNodeIds().includes(me), 'this node never lists itself');
  } finally {
    await peer.kill();
    await Cluster.stop();
  }
});
