'use strict';
// @unrdf/consensus's DistributedStateMachine: the replicated key-value state, its writes
// proposed through the coordinator's node and applied by the engine's key-value machine.

const { EventEmitter } = require('node:events');
const { ErrorCode } = require('../errors.js');
const { RaftCoordinator } = require('./coordinator.js');
const { RaftError, invalid, settle, deliver, int } = require('./common.js');

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

module.exports = { DistributedStateMachine };
