'use strict';
// @unrdf/consensus's RaftCoordinator on the engine's Raft node (openraft): elections,
// replication, storage and the key-value state are the engine's; this keeps the seed's
// names, options, defaults and events.

const { EventEmitter } = require('node:events');
const native = require('../native.js');
const { ErrorCode } = require('../errors.js');
const { RaftError, invalid, settle, safe, deliver, SEED_STATE, int, typed } = require('./common.js');

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

module.exports = { RaftCoordinator };
