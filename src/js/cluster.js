'use strict';
// noex's Cluster API (membership: seeds, gossip, failure detection) on the Rust engine.
// Names, error classes, messages and validation follow noex (src/distribution/node-id.ts
// and cluster/cluster.ts); every error also carries a stable `code`. Deliberate
// differences are listed in the README (Cluster membership).

const { ErrorCode } = require('./errors.js');
const native = require('./native.js');

class InvalidClusterConfigError extends Error {
  constructor(reason) {
    super(`Invalid cluster configuration: ${reason}`);
    this.name = 'InvalidClusterConfigError';
    this.reason = reason;
    this.code = ErrorCode.InvalidConfig;
  }
}

/** noex's error (and message) for a query on a node that is not running. Its code is
 *  ERR_CLUSTER_NOT_STARTED before the first start; once a node has run and stopped (or is
 *  stopping), ERR_CLOSED, like every other handle of this package that has stopped. */
class ClusterNotStartedError extends Error {
  constructor(stopped = false) {
    super('Cluster has not been started. Call Cluster.start() first.');
    this.name = 'ClusterNotStartedError';
    this.code = stopped ? ErrorCode.Closed : ErrorCode.ClusterNotStarted;
  }
}

class InvalidNodeIdError extends Error {
  /** `value`: the rejected id, or the rejected part of it (as noex reports it). */
  constructor(value, reason) {
    super(`Invalid NodeId '${value}': ${reason}`);
    this.name = 'InvalidNodeIdError';
    this.value = value;
    this.reason = reason;
    this.code = ErrorCode.InvalidNodeId;
  }
}

// ---- NodeId ------------------------------------------------------------------------------

// The engine holds noex's rules (src/link/identity.rs) and answers with noex's reasons,
// so an id this module accepts is one the engine accepts (seeds, gossip), in the
// canonical form the engine reports (an IPv6 host bare: `a@[::1]:1` → `a@::1:1`).
function checked(verdict) {
  if (verdict.id == null) throw new InvalidNodeIdError(verdict.value, verdict.reason);
  return verdict.id;
}

/** `name@host:port` identities; a NodeId is its string form. */
const NodeId = {
  /** Validates `name@host:port`; throws InvalidNodeIdError with noex's reasons. */
  parse(value) {
    if (typeof value !== 'string') throw new InvalidNodeIdError(String(value), 'must be a string');
    return checked(native.nodeIdParse(value));
  },

  /** `parse`, returning undefined instead of throwing. */
  tryParse(value) {
    try {
      return NodeId.parse(value);
    } catch {
      return undefined;
    }
  },

  create(name, host, port) {
    if (typeof name !== 'string') throw new InvalidNodeIdError(String(name), 'name must be a string');
    if (typeof host !== 'string') throw new InvalidNodeIdError(String(host), 'host must be a string');
    if (typeof port !== 'number') throw new InvalidNodeIdError(`${name}@${host}:${port}`, 'port must be an integer');
    return checked(native.nodeIdCreate(name, host, port));
  },

  getName(nodeId) {
    return nodeId.slice(0, nodeId.indexOf('@'));
  },

  getHost(nodeId) {
    return nodeId.slice(nodeId.indexOf('@') + 1, nodeId.lastIndexOf(':'));
  },

  getPort(nodeId) {
    return parseInt(nodeId.slice(nodeId.lastIndexOf(':') + 1), 10);
  },

  components(nodeId) {
    return { name: NodeId.getName(nodeId), host: NodeId.getHost(nodeId), port: NodeId.getPort(nodeId) };
  },

  isValid(value) {
    return NodeId.tryParse(value) !== undefined;
  },

  equals(a, b) {
    return a === b;
  },

  toString(nodeId) {
    return nodeId;
  },
};

/** Type guard: a string that is a valid NodeId. */
function isNodeId(value) {
  return typeof value === 'string' && NodeId.isValid(value);
}

// ---- Cluster -----------------------------------------------------------------------------

let node = null; // the running NativeCluster
let everStarted = false; // whether a node ran in this process (then a query answers ERR_CLOSED)
let status = 'stopped';
let startedAt = null;
let stopping = null; // the promise of a stop() under way
const handlers = { up: new Set(), down: new Set(), status: new Set(), error: new Set() };

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

/** Delivers what the engine queued for this node (it wakes JS once per burst). */
function drain(n) {
  for (const e of JSON.parse(n.takeEvents())) {
    // The queue's own report that events were dropped (the JS thread was away too long).
    if (e.type === 'error') onEvent({ kind: 'warning', id: e.code, reason: e.message });
    else onEvent(e);
  }
}

function onEvent(e) {
  if (e.kind === 'status') {
    // 'running' is announced by start() itself; later changes come from the engine.
    if (e.reason !== 'starting' && e.reason !== 'running') setStatus(e.reason);
  } else if (e.kind === 'up') {
    const info = node && node.nodes().find((n) => n.id === e.id);
    emit(handlers.up, info || { id: e.id, status: 'connected' });
  } else if (e.kind === 'down') {
    emit(handlers.down, e.id, e.reason);
  } else if (e.kind === 'warning') {
    // A link refused for a wrong secret or garbage: to onError's handlers, else to
    // process warnings (noex has no error event; these must not go unheard).
    const err = Object.assign(new Error(e.reason), { code: e.id });
    if (handlers.error.size > 0) emit(handlers.error, err);
    else process.emitWarning(e.reason, { code: e.id });
  }
}

// As noex: the queries answer only while 'running' (not while starting or stopping).
function running() {
  if (status !== 'running' || !node) throw new ClusterNotStartedError(everStarted);
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
  'tls',
  'heartbeatIntervalMs',
  'heartbeatMissThreshold',
  'reconnectBaseDelayMs',
  'reconnectMaxDelayMs',
]);

const isInt = Number.isInteger;

// noex's checks and messages first, then the options noex leaves unchecked; the engine
// checks the rest (an advertised host that cannot be in an id, a secret that is empty).
function validateConfig(config) {
  if (!config || typeof config !== 'object') throw new InvalidClusterConfigError('config must be an object');
  const { nodeName, port, seeds } = config;
  if (!nodeName || typeof nodeName !== 'string') {
    throw new InvalidClusterConfigError('nodeName is required and must be a string');
  }
  // The engine's reason for the name ('name must start with a letter...'), as noex words it for a nodeName.
  const named = native.nodeIdCreate(nodeName, 'localhost', 1);
  if (named.id == null) throw new InvalidClusterConfigError(`nodeN${named.reason.slice(1)}`);
  // Unlike noex, 0 binds a free port (the id carries the port bound).
  if (port !== undefined && !(isInt(port) && port >= 0 && port <= 65535)) {
    throw new InvalidClusterConfigError('port must be an integer between 1 and 65535 (or 0 for a free port)');
  }
  if (seeds !== undefined) {
    if (!Array.isArray(seeds)) throw new InvalidClusterConfigError('seeds must be an array');
    for (const seed of seeds) {
      if (!NodeId.isValid(seed)) throw new InvalidClusterConfigError(`invalid seed node: ${seed}`);
    }
  }
  if (config.heartbeatIntervalMs !== undefined && !(isInt(config.heartbeatIntervalMs) && config.heartbeatIntervalMs >= 100)) {
    throw new InvalidClusterConfigError('heartbeatIntervalMs must be an integer >= 100');
  }
  if (config.heartbeatMissThreshold !== undefined && !(isInt(config.heartbeatMissThreshold) && config.heartbeatMissThreshold >= 1)) {
    throw new InvalidClusterConfigError('heartbeatMissThreshold must be an integer >= 1');
  }
  // Beyond noex: a misspelt option would otherwise be silently ignored.
  for (const k of Object.keys(config)) if (!OPTION_KEYS.has(k)) throw new InvalidClusterConfigError(`unknown option ${k}`);
  for (const k of ['host', 'advertiseHost', 'clusterSecret']) {
    if (config[k] !== undefined && typeof config[k] !== 'string') throw new InvalidClusterConfigError(`${k} must be a string`);
  }
  if (config.tls !== undefined) {
    const t = config.tls;
    if (!t || typeof t !== 'object' || typeof t.cert !== 'string' || typeof t.key !== 'string' || (t.ca !== undefined && typeof t.ca !== 'string')) {
      throw new InvalidClusterConfigError('tls must be { cert, key, ca? } with PEM strings');
    }
  }
  for (const k of ['reconnectBaseDelayMs', 'reconnectMaxDelayMs']) {
    if (config[k] !== undefined && !(isInt(config[k]) && config[k] >= 1)) {
      throw new InvalidClusterConfigError(`${k} must be an integer >= 1`);
    }
  }
  // Seeds in canonical form, so the engine and this module agree on every spelling.
  return seeds === undefined ? { ...config } : { ...config, seeds: seeds.map((s) => NodeId.parse(s)) };
}

function alreadyRunning(message) {
  const e = new Error(message);
  e.code = ErrorCode.ClusterRunning;
  return e;
}

const Cluster = {
  /** Starts this node: binds, then joins through the seeds. */
  async start(config) {
    if (status === 'running') throw alreadyRunning('Cluster is already running');
    if (status !== 'stopped') throw alreadyRunning(`Cannot start cluster in ${status} state`);
    const options = validateConfig(config);
    setStatus('starting');
    try {
      // The wake-up runs later, on this thread: `n` is set by then.
      const n = new native.NativeCluster(options, () => drain(n));
      node = n;
    } catch (e) {
      node = null;
      setStatus('stopped');
      if (e.code === ErrorCode.InvalidConfig) throw new InvalidClusterConfigError(e.message);
      throw e;
    }
    startedAt = Date.now();
    everStarted = true;
    setStatus('running');
  },

  /** Tells every peer this node leaves (they see 'graceful_shutdown'), then closes. */
  stop() {
    if (stopping) return stopping;
    if (!node) return Promise.resolve();
    const n = node;
    setStatus('stopping');
    stopping = (async () => {
      try {
        await n.stop();
        drain(n);
      } finally {
        node = null;
        startedAt = null;
        stopping = null;
        setStatus('stopped');
      }
    })();
    return stopping;
  },

  getStatus() {
    return status;
  },

  getLocalNodeId() {
    return running().localId;
  },

  /** This node as a NodeInfo (always 'connected'). */
  getLocalNodeInfo() {
    const id = running().localId;
    return {
      id,
      host: NodeId.getHost(id),
      port: NodeId.getPort(id),
      status: 'connected',
      processCount: 0,
      lastHeartbeatAt: Date.now(),
      uptimeMs: Cluster.getUptimeMs(),
    };
  },

  /** Milliseconds since start() completed. */
  getUptimeMs() {
    running();
    return Date.now() - startedAt;
  },

  getNodes() {
    return running().nodes();
  },

  getNodeIds() {
    return running()
      .nodes()
      .map((n) => n.id);
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

  /** Links refused or broken for a reason the owner should hear of (a peer with a wrong
   *  cluster secret: `code` ErrorCode.Auth). Not in noex; without a handler these go to
   *  `process.emitWarning`. Returns the unsubscribe function. */
  onError(handler) {
    return subscribe(handlers.error, handler);
  },
};

module.exports = { Cluster, NodeId, isNodeId, InvalidClusterConfigError, ClusterNotStartedError, InvalidNodeIdError };
