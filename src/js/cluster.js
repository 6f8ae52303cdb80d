'use strict';
// noex's Cluster API (membership: seeds, gossip, failure detection) on the Rust engine.

const native = require('../../index.js');

class InvalidClusterConfigError extends Error {
  constructor(reason) {
    super(`Invalid cluster configuration: ${reason}`);
    this.name = 'InvalidClusterConfigError';
    this.reason = reason;
    this.code = 'ERR_INVALID_CONFIG';
  }
}

class ClusterNotStartedError extends Error {
  constructor() {
    super('Cluster is not started. Call Cluster.start() first.');
    this.name = 'ClusterNotStartedError';
    this.code = 'ERR_CLUSTER_NOT_STARTED';
  }
}

class InvalidNodeIdError extends Error {
  constructor(nodeId, reason) {
    super(`Invalid NodeId ${JSON.stringify(nodeId)}: ${reason}`);
    this.name = 'InvalidNodeIdError';
    this.nodeId = nodeId;
    this.reason = reason;
    this.code = 'ERR_INVALID_NODE_ID';
  }
}

const stripPrefix = (m) => String(m).replace(/^invalid node id "[^"]*": /, '');

/** `name@host:port` identities; a NodeId is its string form. */
const NodeId = {
  parse(id) {
    if (typeof id !== 'string') throw new InvalidNodeIdError(id, 'must be a string');
    try {
      native.nodeIdParse(id);
    } catch (e) {
      throw new InvalidNodeIdError(id, stripPrefix(e.message));
    }
    return id.replace(/@\[([^\]]*)\]:/, '@$1:');
  },
  create(name, host, port) {
    try {
      return native.nodeIdCreate(String(name), String(host), Number(port));
    } catch (e) {
      throw new InvalidNodeIdError(`${name}@${host}:${port}`, stripPrefix(e.message));
    }
  },
  isValid(id) {
    if (typeof id !== 'string') return false;
    try {
      native.nodeIdParse(id);
      return true;
    } catch {
      return false;
    }
  },
  components(id) {
    try {
      return native.nodeIdParse(id);
    } catch (e) {
      throw new InvalidNodeIdError(id, stripPrefix(e.message));
    }
  },
};

let node = null; // the running NativeCluster
let status = 'stopped';
const handlers = { up: new Set(), down: new Set(), status: new Set() };

function emit(set, ...args) {
  for (const h of [...set]) {
    try {
      h(...args);
    } catch (e) {
      // One failing handler must not silence the others.
      process.nextTick(() => {
        throw e;
      });
    }
  }
}

function setStatus(s) {
  if (s === status) return;
  status = s;
  emit(handlers.status, s);
}

function onEvent(e) {
  if (e.kind === 'status') {
    // 'running' is announced by start() itself; later changes come from the engine.
    if (e.reason !== 'starting' && e.reason !== 'running') setStatus(e.reason);
  } else if (e.kind === 'up') {
    const info = node && Cluster.getNode(e.id);
    emit(handlers.up, info || { id: e.id, status: 'connected' });
  } else if (e.kind === 'down') {
    emit(handlers.down, e.id, e.reason);
  }
}

function running() {
  if (!node) throw new ClusterNotStartedError();
  return node;
}

function subscribe(set, handler) {
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  set.add(handler);
  return () => set.delete(handler);
}

const OPTION_KEYS = new Set([
  'nodeName',
  'host',
  'port',
  'advertiseHost',
  'seeds',
  'clusterSecret',
  'heartbeatIntervalMs',
  'heartbeatMissThreshold',
  'reconnectBaseDelayMs',
  'reconnectMaxDelayMs',
]);

function readConfig(config) {
  if (!config || typeof config !== 'object') throw new InvalidClusterConfigError('config must be an object');
  for (const k of Object.keys(config)) if (!OPTION_KEYS.has(k)) throw new InvalidClusterConfigError(`unknown option ${k}`);
  const { nodeName, host, port, advertiseHost, seeds, clusterSecret } = config;
  if (typeof nodeName !== 'string') throw new InvalidClusterConfigError('nodeName must be a string');
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new InvalidClusterConfigError(`port must be an integer between 0 and 65535, got ${JSON.stringify(port)}`);
  }
  for (const [k, v] of Object.entries({ host, advertiseHost, clusterSecret })) {
    if (v !== undefined && typeof v !== 'string') throw new InvalidClusterConfigError(`${k} must be a string`);
  }
  if (seeds !== undefined && !(Array.isArray(seeds) && seeds.every((s) => typeof s === 'string'))) {
    throw new InvalidClusterConfigError('seeds must be an array of node ids');
  }
  for (const k of ['heartbeatIntervalMs', 'heartbeatMissThreshold', 'reconnectBaseDelayMs', 'reconnectMaxDelayMs']) {
    if (config[k] !== undefined && !(Number.isInteger(config[k]) && config[k] >= 1)) {
      throw new InvalidClusterConfigError(`${k} must be a positive integer`);
    }
  }
  return { ...config };
}

const Cluster = {
  /** Starts this node: binds, then joins through the seeds. */
  async start(config) {
    if (node) throw new InvalidClusterConfigError('the cluster is already started');
    const options = readConfig(config);
    setStatus('starting');
    try {
      node = new native.NativeCluster(options, onEvent);
    } catch (e) {
      setStatus('stopped');
      if (e.code === 'ERR_INVALID_CONFIG') throw new InvalidClusterConfigError(e.message);
      throw e;
    }
    setStatus('running');
  },

  /** Tells every peer this node leaves (they see 'graceful_shutdown'), then closes. */
  async stop() {
    if (!node) return;
    const n = node;
    setStatus('stopping');
    await n.stop();
    node = null;
    setStatus('stopped');
  },

  getStatus() {
    return status;
  },

  getLocalNodeId() {
    return running().localId;
  },

  getNodes() {
    return running().nodes();
  },

  getConnectedNodes() {
    return running()
      .nodes()
      .filter((n) => n.status === 'connected');
  },

  getNode(id) {
    return running()
      .nodes()
      .find((n) => n.id === id);
  },

  isNodeConnected(id) {
    return Cluster.getNode(id)?.status === 'connected';
  },

  getConnectedNodeCount() {
    return Cluster.getConnectedNodes().length;
  },

  onNodeUp(handler) {
    return subscribe(handlers.up, handler);
  },

  onNodeDown(handler) {
    return subscribe(handlers.down, handler);
  },

  onStatusChange(handler) {
    return subscribe(handlers.status, handler);
  },
};

module.exports = { Cluster, NodeId, InvalidClusterConfigError, ClusterNotStartedError, InvalidNodeIdError };
