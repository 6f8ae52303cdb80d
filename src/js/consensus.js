'use strict';
// @unrdf/consensus's API (RaftCoordinator, ClusterManager, DistributedStateMachine) on
// the Rust Raft engine (openraft). The engine does elections, replication, storage and
// the key-value state; this file keeps the seed's names, options, defaults and events.

const { EventEmitter } = require('node:events');
const native = require('./native.js');
const { ErrorCode } = require('./errors.js');

class RaftError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
    Object.assign(this, extra);
  }
}

function invalid(message) {
  return new RaftError(ErrorCode.InvalidConfig, message);
}

/** An async call's answer, parsed; its rejection, as the seed's RaftError (naming the
 *  leader for ERR_NOT_LEADER). */
async function settle(call) {
  let json;
  try {
    json = await call;
  } catch (e) {
    throw new RaftError(e.code, e.message, e.leaderId ? { leaderId: e.leaderId } : {});
  }
  return JSON.parse(json);
}

/** A promise that may be left unawaited (as the seed's sync addPeer is) without an
 *  unhandled rejection; awaiting it still sees the error. */
function safe(p) {
  p.catch(() => {});
  return p;
}

/** Emits `name` to each listener in turn; an exception from one is handed to `fail`
 *  instead of escaping, so that a throwing listener keeps neither the other listeners nor
 *  the rest of an event batch from their events. (`rawListeners` keeps `once` working.) */
function deliver(emitter, fail, name, payload) {
  for (const listener of emitter.rawListeners(name)) {
    try {
      listener.call(emitter, payload);
    } catch (error) {
      fail(error);
    }
  }
}

/** The seed's three node states; a node that is not (yet) a voter follows. */
const SEED_STATE = { leader: 'leader', candidate: 'candidate', follower: 'follower', learner: 'follower', shutdown: 'stopped' };

function int(v, name, dflt, min = 0) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw invalid(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function typed(v, name, type, dflt) {
  if (v === undefined) return dflt;
  if (typeof v !== type || (type === 'string' && v === '')) {
    throw invalid(`${name} must be a ${type === 'string' ? 'non-empty string' : type}, got ${JSON.stringify(v) ?? typeof v}`);
  }
  return v;
}

class RaftCoordinator extends EventEmitter {
  constructor(options = {}) {
    super();
    // The engine builds a `command_applied` event per committed command only while
    // someone listens for it (a state machine does, through `_applied`).
    const perEntry = (name) => name === 'command_applied' || name === '_applied';
    this.on('newListener', (name) => {
      if (perEntry(name)) this._native?.setEntryEvents(true);
    });
    this.on('removeListener', (name) => {
      if (perEntry(name)) this._native?.setEntryEvents(this._wantsEntries());
    });
    if (typeof options.nodeId !== 'string' || options.nodeId === '') {
      throw invalid('nodeId must be a non-empty string');
    }
    this.config = {
      nodeId: options.nodeId,
      port: int(options.port, 'port', 8080),
      host: typed(options.host, 'host', 'string', 'localhost'),
      electionTimeoutMin: int(options.electionTimeoutMin, 'electionTimeoutMin', 150, 1),
      electionTimeoutMax: int(options.electionTimeoutMax, 'electionTimeoutMax', 300, 1),
      heartbeatInterval: int(options.heartbeatInterval, 'heartbeatInterval', 50, 1),
      snapshotThreshold: int(options.snapshotThreshold, 'snapshotThreshold', 1000, 1),
      dataDir: typed(options.dataDir, 'dataDir', 'string'),
      clusterSecret: typed(options.clusterSecret, 'clusterSecret', 'string'),
      forwardToLeader: typed(options.forwardToLeader, 'forwardToLeader', 'boolean', true),
      commitTimeout: int(options.commitTimeout, 'commitTimeout', 5000, 1),
      bootstrap: typed(options.bootstrap, 'bootstrap', 'boolean', false),
      advertiseHost: typed(options.advertiseHost, 'advertiseHost', 'string'),
    };
    this.nodeId = options.nodeId;
    this._native = null;
    this._state = { leaderId: null, term: 0 };
    /** The snapshot this node holds (taken or installed), from the engine's events. */
    this._lastSnapshot = null;
  }

  async initialize() {
    if (this._native) return;
    // A second call while the first is starting waits for the same start.
    if (!this._starting) this._starting = this._start().finally(() => (this._starting = null));
    return this._starting;
  }

  async _start() {
    this._stopped = false;
    const c = this.config;
    // 'localhost' may resolve to ::1 first; Raft peers dial the advertised address.
    const host = c.host === 'localhost' ? '127.0.0.1' : c.host;
    // Started off Node's thread: opening dataDir and replaying its log do not stall the
    // event loop.
    this._native = await native.startRaft(
      {
        nodeId: c.nodeId,
        host,
        port: c.port,
        advertiseHost: c.advertiseHost,
        electionTimeoutMin: c.electionTimeoutMin,
        electionTimeoutMax: c.electionTimeoutMax,
        heartbeatInterval: c.heartbeatInterval,
        snapshotThreshold: c.snapshotThreshold,
        dataDir: c.dataDir,
        clusterSecret: c.clusterSecret,
        forwardToLeader: c.forwardToLeader,
        commitTimeout: c.commitTimeout,
        bootstrap: c.bootstrap,
      },
      () => this._drain(),
    );
    this._native.setEntryEvents(this._wantsEntries());
    this.address = this._native.address;
    this.config.port = Number(this.address.slice(this.address.lastIndexOf(':') + 1));
    this.emit('initialized', { nodeId: this.nodeId });
    // Events the engine queued while it started (its wake-up may have come first).
    this._drain();
  }

  _wantsEntries() {
    return this.listenerCount('command_applied') + this.listenerCount('_applied') > 0;
  }

  _need() {
    if (!this._native && this._stopped) throw new RaftError(ErrorCode.Closed, 'this coordinator was shut down');
    if (!this._native) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    return this._native;
  }

  /** Delivers the engine's queued events. A listener that throws does not stop the
   *  batch: its error goes to this coordinator's `error` listeners as
   *  `{ error, source, event }` or, with none, is rethrown once the batch is delivered. */
  _drain() {
    if (!this._native) return;
    const thrown = [];
    for (const e of JSON.parse(this._native.poll())) {
      const { type, ...rest } = e;
      const fail = (error) => {
        const source = type === 'command_applied' ? 'apply_command' : 'event_listener';
        if (this.listenerCount('error') > 0) deliver(this, (x) => thrown.push(x), 'error', { error, source, event: type });
        else thrown.push(error);
      };
      if (type === 'error') {
        // ERR_EVENTS_DROPPED: the JS thread did not read the engine's events in time.
        const error = new RaftError(e.code, e.message);
        if (this.listenerCount('error') > 0) deliver(this, (x) => thrown.push(x), 'error', { error, source: 'engine', event: type });
        else process.emitWarning(e.message, { code: e.code });
        continue;
      }
      if (type === 'leader_elected') this._state = { leaderId: e.leaderId, term: e.term };
      if (type === 'snapshot_created' || type === 'snapshot_restored') this._lastSnapshot = rest;
      if (type === 'members' || type === 'snapshot_created' || type === 'snapshot_restored') {
        deliver(this, fail, `_${type}`, rest);
        continue;
      }
      deliver(this, fail, type, rest);
      if (type === 'command_applied') deliver(this, fail, '_applied', rest);
    }
    for (const error of thrown) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** Whether this node is the leader now, as the engine knows it. */
  get isLeader() {
    return this.leaderId === this.nodeId;
  }

  /** Accepted and ignored: the seed's tests assign `isLeader = true` to skip an election,
   *  but here leadership only comes from the engine's elections (a lone node becomes its
   *  own leader at its first write), so an assignment must not make a follower write as
   *  a leader. */
  set isLeader(_value) {}

  get leaderId() {
    return this._native?.leader ?? null;
  }

  /** Adds a voting member (callable on any node; safe membership change). */
  addPeer(nodeId, host, port) {
    return safe(
      (async () => {
        const n = this._need();
        if (typeof nodeId !== 'string' || !nodeId) throw invalid('nodeId must be a non-empty string');
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`port must be 1..65535, got ${port}`);
        const h = host === 'localhost' ? '127.0.0.1' : host;
        await settle(n.addNode(nodeId, `${h}:${port}`));
        this.emit('peer_added', { nodeId, host, port });
      })(),
    );
  }

  /** Removes a member (callable on any node); `peer_removed` once the change committed. */
  removePeer(nodeId) {
    return safe(
      (async () => {
        await settle(this._need().removeNode(nodeId));
        this.emit('peer_removed', { nodeId });
      })(),
    );
  }

  /** Commits any JSON command; resolves with `{ index }` once it is committed. */
  async replicateCommand(command) {
    const n = this._need();
    if (command === undefined) throw new RaftError(ErrorCode.InvalidArgument, 'command must be JSON');
    const r = await settle(n.write(JSON.stringify({ Custom: command })));
    return { index: r.index, committed: true };
  }

  /** The engine's view of this node. `state` is in the seed's words (`'follower'` for a
   *  node that is not a voter yet, which `role` reports as `'learner'`); `logLength` is the
   *  index of the last log entry (entries ever appended, compacted ones included). */
  getState() {
    if (!this._native) {
      return { nodeId: this.nodeId, state: 'stopped', role: 'stopped', term: 0, leaderId: null, isLeader: false, logLength: 0, peers: [] };
    }
    const s = JSON.parse(this._native.state());
    return {
      ...s,
      state: SEED_STATE[s.role] ?? s.role,
      isLeader: s.role === 'leader',
      logLength: s.lastLogIndex,
      peers: [...s.voters, ...s.learners].filter((m) => m.nodeId !== this.nodeId).map((m) => m.nodeId),
    };
  }

  /** The state recorded by the last committed command with this `workflowId`, or `null`. */
  getWorkflowState(workflowId) {
    const v = this._native?.workflow(String(workflowId));
    return v === undefined || v === null ? null : JSON.parse(v);
  }

  /** Every recorded workflow, in id order, as `{ id, ...state }` (`{ id, state }` when the
   *  state is not an object). */
  getAllWorkflows() {
    const n = this._native;
    if (!n) return [];
    return JSON.parse(n.workflows()).map(([id, state]) => (
      state !== null && typeof state === 'object' && !Array.isArray(state) ? { id, ...state } : { id, state }
    ));
  }

  /** Stops the node; `shutdown` is emitted once, when it has stopped. */
  async shutdown() {
    if (this._closing) return this._closing;
    if (!this._native && this._starting) await this._starting.catch(() => {});
    const n = this._native;
    if (!n) return;
    this._drain();
    this._closing = (async () => {
      try {
        await n.shutdown();
      } finally {
        this._native = null;
        this._closing = null;
        this._stopped = true;
      }
      this.emit('shutdown');
    })();
    return this._closing;
  }
}

const HEALTH = ['unknown', 'healthy', 'degraded', 'unhealthy'];

class ClusterManager extends EventEmitter {
  constructor(options = {}) {
    super();
    this.config = {
      nodeId: options.nodeId,
      healthCheckInterval: int(options.healthCheckInterval, 'healthCheckInterval', 5000, 1),
      healthCheckTimeout: int(options.healthCheckTimeout, 'healthCheckTimeout', 2000, 1),
      maxFailedHealthChecks: int(options.maxFailedHealthChecks, 'maxFailedHealthChecks', 3, 1),
      autoDiscovery: options.autoDiscovery ?? false,
      discoveryInterval: int(options.discoveryInterval, 'discoveryInterval', 10000, 1),
    };
    this.nodes = new Map();
    /** The coordinator given to initialize() (the seed's name; `coordinator` is an alias). */
    this.raftCoordinator = null;
    this._timer = null;
    this._discoveryTimer = null;
  }

  get coordinator() {
    return this.raftCoordinator;
  }

  async initialize(coordinator) {
    if (!(coordinator instanceof RaftCoordinator)) throw invalid('initialize() needs a RaftCoordinator');
    await coordinator.initialize();
    this.raftCoordinator = coordinator;
    this._onMembers = (m) => this._members(m);
    coordinator.on('_members', this._onMembers);
    const s = coordinator.getState();
    this._members({ voters: s.voters, learners: s.learners });
    this._timer = setInterval(() => this._check(), this.config.healthCheckInterval);
    this._timer.unref();
    // Members come from the Raft membership; discovery of nodes not yet in it is left to
    // the application, as in the seed: it hears `discovery_requested` and calls addNode.
    if (this.config.autoDiscovery) {
      this._discoveryTimer = setInterval(() => this.emit('discovery_requested'), this.config.discoveryInterval);
      this._discoveryTimer.unref();
    }
    this.emit('initialized');
  }

  _members({ voters, learners }) {
    const seen = new Set();
    for (const [list, role] of [[voters, 'voter'], [learners, 'learner']]) {
      for (const m of list) {
        seen.add(m.nodeId);
        const i = m.address.lastIndexOf(':');
        const known = this.nodes.get(m.nodeId);
        if (known) {
          known.role = role;
          continue;
        }
        const node = {
          nodeId: m.nodeId,
          host: m.address.slice(0, i),
          port: Number(m.address.slice(i + 1)),
          role,
          health: m.nodeId === this.coordinator.nodeId ? 'healthy' : 'unknown',
          failedChecks: 0,
          lastHealthCheck: null,
          joinedAt: Date.now(),
          metadata: this._pending?.get(m.nodeId) ?? {},
        };
        this.nodes.set(m.nodeId, node);
        this.emit('node_joined', { nodeId: m.nodeId, metadata: node.metadata });
      }
    }
    for (const id of [...this.nodes.keys()]) {
      if (!seen.has(id)) {
        this.nodes.delete(id);
        this.emit('node_left', { nodeId: id });
      }
    }
  }

  _setHealth(node, health) {
    const previousHealth = node.health;
    if (previousHealth === health) return;
    node.health = health;
    this.emit('node_health_changed', { nodeId: node.nodeId, health, previousHealth });
    if (health === 'unhealthy') this.emit('node_unhealthy', { nodeId: node.nodeId });
  }

  /**
   * Reads the engine's probes of its peers (the one detector of the group, run in the
   * engine, off this thread): a failed probe not seen before counts as a failed check.
   */
  _check() {
    const n = this.coordinator?._native;
    if (!n) return;
    const probes = JSON.parse(n.peerHealth());
    for (const node of this.nodes.values()) {
      const p = probes[node.nodeId];
      if (node.nodeId === this.coordinator.nodeId || !p || p.checkedAt === node.lastHealthCheck) continue;
      node.lastHealthCheck = p.checkedAt;
      if (p.up) {
        node.failedChecks = 0;
        node.latencyMs = p.latencyMs;
        this._setHealth(node, 'healthy');
      } else {
        node.failedChecks += 1;
        this._setHealth(node, node.failedChecks >= this.config.maxFailedHealthChecks ? 'unhealthy' : 'degraded');
      }
    }
  }

  /** Adds a node as a voter through a learner phase; callable on any member. */
  async addNode(metadata) {
    if (!this.coordinator) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    const { nodeId, host, port } = metadata ?? {};
    (this._pending ??= new Map()).set(nodeId, { ...metadata });
    await this.coordinator.addPeer(nodeId, host, port);
    const node = this.nodes.get(nodeId);
    if (node) node.metadata = { ...metadata };
    return node ? { ...node } : { nodeId, host, port, metadata };
  }

  async removeNode(nodeId) {
    if (!this.coordinator) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    await this.coordinator.removePeer(nodeId);
  }

  getNodes() {
    return [...this.nodes.values()].map((n) => ({ ...n }));
  }

  getHealthyNodes() {
    return this.getNodes().filter((n) => n.health === 'healthy');
  }

  getNodeHealth(nodeId) {
    return this.nodes.get(nodeId)?.health ?? 'unknown';
  }

  getStats() {
    const nodes = this.getNodes();
    const healthStats = Object.fromEntries(HEALTH.map((h) => [h, 0]));
    for (const n of nodes) healthStats[n.health] += 1;
    const s = this.coordinator?.getState();
    return {
      totalNodes: nodes.length,
      healthStats,
      autoDiscovery: this.config.autoDiscovery,
      healthyNodes: healthStats.healthy,
      degradedNodes: healthStats.degraded,
      unhealthyNodes: healthStats.unhealthy,
      unknownNodes: healthStats.unknown,
      voters: nodes.filter((n) => n.role === 'voter').length,
      learners: nodes.filter((n) => n.role === 'learner').length,
      leaderId: s?.leaderId ?? null,
      term: s?.term ?? 0,
    };
  }

  /** Stops the health checks and discovery (the coordinator keeps running); `shutdown`
   *  is emitted once. */
  async shutdown() {
    const running = this._timer !== null;
    clearInterval(this._timer);
    clearInterval(this._discoveryTimer);
    this._timer = null;
    this._discoveryTimer = null;
    this.coordinator?.off('_members', this._onMembers);
    if (running) this.emit('shutdown');
  }
}

class DistributedStateMachine extends EventEmitter {
  constructor(options = {}) {
    super();
    this.config = {
      nodeId: options.nodeId,
      snapshotInterval: int(options.snapshotInterval, 'snapshotInterval', 1000, 1),
      maxStateSize: int(options.maxStateSize, 'maxStateSize', 100000, 1),
      enableSnapshots: options.enableSnapshots ?? true,
      persistSnapshots: options.persistSnapshots ?? false,
    };
    /** The coordinator given to initialize() (the seed's name; `coordinator` is an alias). */
    this.raftCoordinator = null;
    this.stats = { sets: 0, deletes: 0, updates: 0, conflicts: 0, snapshots: 0, restores: 0 };
  }

  get coordinator() {
    return this.raftCoordinator;
  }

  async initialize(coordinator) {
    if (!(coordinator instanceof RaftCoordinator)) throw invalid('initialize() needs a RaftCoordinator');
    if (this.config.persistSnapshots && !coordinator.config.dataDir) {
      throw invalid('persistSnapshots needs the coordinator to have a dataDir');
    }
    await coordinator.initialize();
    this.raftCoordinator = coordinator;
    this._stopped = false;
    coordinator._native.setSnapshotInterval(this.config.enableSnapshots ? this.config.snapshotInterval : 0);
    this._listeners = {
      _applied: (e) => this._applied(e),
      _snapshot_created: (e) => {
        this.stats.snapshots += 1;
        this.emit('snapshot_created', e);
      },
      _snapshot_restored: (e) => {
        this.stats.restores += 1;
        this.emit('snapshot_restored', e);
      },
    };
    for (const [k, f] of Object.entries(this._listeners)) coordinator.on(k, f);
    this.emit('initialized');
  }

  /** An applied command, on every replica. A write the log refused (ERR_STATE_FULL) is an
   *  `error` here (the writer's promise rejects too); a compare-and-set that lost a race
   *  is not, `update` retries it. A `state_changed` listener that throws does not stop
   *  the others: its error goes to `error` listeners, or is rethrown with none. */
  _applied({ command, entry, error }) {
    if (!command || typeof command !== 'object' || !STATE_OPS.has(command.type)) return;
    const thrown = [];
    const fail = (e) => {
      if (this.listenerCount('error') > 0) deliver(this, (x) => thrown.push(x), 'error', { error: e, source: 'apply_state_change' });
      else thrown.push(e);
    };
    const changed = (key, value, operation) => deliver(this, fail, 'state_changed', { key, value, operation });
    if (error) {
      if (error !== ErrorCode.Conflict && this.listenerCount('error') > 0) {
        const keys = command.type === 'batch' ? command.changes.map((c) => c.key) : [command.key];
        const e = new RaftError(error, `${command.type} of ${keys.join(', ')} refused at log index ${entry.index}: ${error}`, { index: entry.index });
        deliver(this, (x) => thrown.push(x), 'error', { error: e, source: 'apply_state_change' });
      }
    } else if (command.type === 'batch') {
      for (const c of command.changes) {
        if (c.delete) changed(c.key, undefined, 'delete');
        else changed(c.key, c.value, 'set');
      }
    } else {
      changed(command.key, command.value, command.type);
    }
    if (thrown.length) throw thrown[0];
  }

  _n() {
    // A handle that was started and stopped answers ERR_CLOSED, as every stopped handle
    // does; ERR_NOT_INITIALIZED is only for one never started.
    if (this._stopped) throw new RaftError(ErrorCode.Closed, 'this state machine was shut down');
    const c = this.raftCoordinator;
    if (!c) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    return c._need();
  }

  async _write(cmd) {
    const r = await settle(this._n().write(JSON.stringify(cmd)));
    if (r.error) {
      const msg = r.error === ErrorCode.StateFull
        ? `the state already holds maxStateSize (${this.config.maxStateSize}) keys`
        : `${r.error}`;
      throw new RaftError(r.error, msg, { index: r.index });
    }
    return r;
  }

  /** Resolves once the write is committed (and applied on this node's leader). */
  async set(key, value) {
    checkKey(key);
    if (value === undefined) throw new RaftError(ErrorCode.InvalidArgument, 'value must be JSON (not undefined)');
    const r = await this._write({ Set: { key, value, limit: this.config.maxStateSize } });
    this.stats.sets += 1;
    return { key, value, index: r.index, version: r.version };
  }

  /** A local read: this node's applied state (may lag the leader). */
  get(key) {
    const v = this._n().get(String(key));
    return v === null || v === undefined ? undefined : JSON.parse(v);
  }

  /** A linearizable read: reflects every write committed before the call. */
  async getLinearizable(key) {
    await settle(this._n().readBarrier());
    return this.get(key);
  }

  has(key) {
    return this._n().has(String(key));
  }

  async delete(key) {
    checkKey(key);
    const r = await this._write({ Delete: { key } });
    this.stats.deletes += 1;
    return r.previous !== null && r.previous !== undefined;
  }

  /** Atomic read-modify-write: compare-and-set on the key's version, retried on
   *  conflict with the current value. */
  async update(key, updateFn, { maxRetries = 100 } = {}) {
    checkKey(key);
    if (typeof updateFn !== 'function') throw new RaftError(ErrorCode.InvalidArgument, 'updateFn must be a function');
    let [version, current] = JSON.parse(this._n().versioned(key));
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const next = await updateFn(version === 0 ? undefined : current);
      const r = await settle(this._n().write(JSON.stringify({
        Cas: { key, version, value: next === undefined ? null : next, limit: this.config.maxStateSize },
      })));
      if (!r.error) {
        this.stats.updates += 1;
        return next;
      }
      if (r.error !== ErrorCode.Conflict) throw new RaftError(r.error, `update of ${key} refused: ${r.error}`);
      this.stats.conflicts += 1;
      version = r.version;
      current = r.previous;
    }
    throw new RaftError(ErrorCode.Conflict, `update of ${key} kept conflicting after ${maxRetries} retries`);
  }

  /** All changes as one log entry: all applied or none. */
  async batchUpdate(changes) {
    if (!Array.isArray(changes)) throw new RaftError(ErrorCode.InvalidArgument, 'changes must be an array');
    const ops = changes.map((c) => {
      checkKey(c?.key);
      const del = c.delete === true || c.operation === 'delete';
      if (!del && c.value === undefined) throw new RaftError(ErrorCode.InvalidArgument, `value of ${c.key} must be JSON`);
      return { key: c.key, value: del ? null : c.value };
    });
    const r = await this._write({ Batch: { ops, limit: this.config.maxStateSize } });
    return { index: r.index, count: ops.length };
  }

  keys() {
    return this.entries().map(([k]) => k);
  }

  values() {
    return this.entries().map(([, v]) => v);
  }

  entries() {
    return JSON.parse(this._n().entries());
  }

  /** Numbers from the engine: `stateSize` keys held, `changeLogSize` commands applied
   *  (the replicated history, the same on every caught-up replica, kept across snapshots
   *  and restarts), `snapshotCount` snapshots this node took since initialize(),
   *  `lastSnapshotIndex` / `latestSnapshot` the log index and id of the snapshot it holds. */
  getStats() {
    const c = this.raftCoordinator;
    const live = Boolean(c?._native);
    const s = live ? c.getState() : null;
    const size = live ? this._n().size() : 0;
    const commands = live ? this._n().commands() : 0;
    return {
      stateSize: size,
      changeLogSize: commands,
      snapshotCount: this.stats.snapshots,
      lastSnapshotIndex: s?.snapshotIndex ?? 0,
      latestSnapshot: (live && c._lastSnapshot?.snapshotId) || null,
      ...this.stats,
      size,
      maxStateSize: this.config.maxStateSize,
      lastApplied: s?.lastApplied ?? 0,
      snapshotIndex: s?.snapshotIndex ?? null,
      commandsApplied: commands,
    };
  }

  /** Detaches from the coordinator (which keeps running); `shutdown` is emitted once. */
  async shutdown() {
    const c = this.raftCoordinator;
    if (!c) return;
    if (this._listeners) {
      for (const [k, f] of Object.entries(this._listeners)) c.off(k, f);
    }
    this.raftCoordinator = null;
    this._stopped = true;
    this.emit('shutdown');
  }
}

/** The command types of the state machine's own writes (see command_js in bindings/raft.rs). */
const STATE_OPS = new Set(['set', 'update', 'delete', 'batch']);

function checkKey(key) {
  if (typeof key !== 'string' || key === '') throw new RaftError(ErrorCode.InvalidArgument, 'key must be a non-empty string');
}

module.exports = {
  RaftError,
  RaftCoordinator,
  ClusterManager,
  DistributedStateMachine,
  createRaftCoordinator: (o) => new RaftCoordinator(o),
  createClusterManager: (o) => new ClusterManager(o),
  createDistributedStateMachine: (o) => new DistributedStateMachine(o),
};
