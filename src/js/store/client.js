'use strict';
// A client replica (createClient, createWSClient, a node:cluster worker): its dispatches
// go to the server and are applied here when they come back in the server's order, with
// everybody else's. A worker's store is one too, from its start: what it dispatches
// before the primary's socket is known waits in the same queue.

const { Pumped } = require('./pumped.js');
const native = require('../native.js');
const { Waiters, waiter } = require('../waiters.js');
const { ReduxClusterError, ErrorCode } = require('../errors.js');
const { POLL_MAX } = require('./server.js');
const { LocalRole } = require('./local.js');
const { Speculation } = require('./optimistic.js');

// Errors after which a client stops: nothing it still waits for will come.
const FATAL = new Set([ErrorCode.StoreMismatch, ErrorCode.Auth, ErrorCode.Banned]);

class ClientRole extends Pumped {
  constructor(store) {
    super(store);
    this.native = null; // the engine's NativeClient, once connected
    this.error = null; // the last error of the connection
    this.ipc = false; // a node:cluster worker's link to its primary
    this.seq = 0; // the last sequence number applied here
    this.waiters = new Waiters((code, message) => new ReduxClusterError(code, message));
    this._outgoing = []; // dispatches not yet handed to the engine
    this._outgoingWaiters = []; // [index in _outgoing, dispatchAsync waiter]
    this._outgoingEntries = []; // [index in _outgoing, the speculation's entry] (optimistic)
    this.spec = null; // with `optimistic`: our own dispatches shown before they are confirmed
    this._pending = 0; // the engine-side queue's length, as last seen
    this._closing = false;
    this._tracking = false;
    this._flush = this._flush.bind(this);
  }

  get name() {
    return 'client';
  }

  get serves() {
    return false;
  }

  get applied() {
    return this.seq;
  }

  /** Dispatches not acknowledged yet: in the engine's queue and in this one. */
  get pending() {
    return (this.native ? this.native.pending : 0) + this._outgoing.length;
  }

  /**
   * Connects to `servers` (their order is the order of trying them); `optimistic`: this
   * store's own dispatches show at once (see optimistic.js).
   */
  connect(servers, security = {}, optimistic = false) {
    this.native = new native.NativeClient(
      this.store.RCHash,
      // Absent fields are undefined for the engine, not null.
      servers.map((a) => ({ host: a.host ?? undefined, port: a.port ?? undefined, path: a.path ?? undefined })),
      this.store._engine,
      security,
      () => this.pumpSafe(),
      this.store._state.engine
    );
    this.error = null;
    this._pending = 0;
    this._closing = false;
    this.seq = 0;
    this._tracking = false;
    this.store.connected = false;
    if (optimistic) {
      this.spec = new Speculation(this.store._state, this.store);
      // Where each of our actions went is how the speculation learns it is confirmed.
      this.native.trackOrdered(true);
      this._tracking = true;
    }
    this._flush();
    return this.native;
  }

  dispatch(action) {
    this._enqueue(this.store._encode(action), null, action);
    return action;
  }

  dispatchAsync(action, timeout) {
    // Stopped for good (a wrong store, login or a ban): nothing would ever acknowledge it.
    if (this.error && FATAL.has(this.error.code)) return Promise.reject(new ReduxClusterError(this.error.code, this.error.message));
    const w = waiter(timeout);
    this._enqueue(this.store._encode(action), w, action);
    return w.promise;
  }

  /** A restored backup, on a client: this replica's state until the server's stream moves it. */
  restore(snapshot) {
    if (this.spec) this.spec.reset(snapshot);
    else new LocalRole(this.store).restore(snapshot);
  }

  resync() {}

  get checks() {
    return false;
  }

  /** A diverged client asks its server for the authority's state (an ordered action). */
  requestResync(action) {
    try {
      this._enqueue(this.store._encode(action));
    } catch (e) {
      this.store._error(`ReduxCluster: could not ask for a resync: ${e.message}`, e.code);
    }
  }

  // Dispatches are checked here, synchronously, and handed to the engine in one batch per
  // synchronous burst (a microtask later): one boundary crossing for a whole dispatch
  // loop instead of one per action.
  _enqueue(json, w = null, action = null) {
    if (this._closing) throw new ReduxClusterError(ErrorCode.Closed, "the store's connection is closed");
    const max = this.store._maxFrame;
    if (json.length * 3 + 32 > max && Buffer.byteLength(json) + 32 > max) {
      throw new ReduxClusterError(ErrorCode.FrameTooLarge, `action of ${Buffer.byteLength(json)} bytes exceeds the maximum frame size of ${max} bytes`);
    }
    const limit = this.store._queueLimit;
    if (this._pending + this._outgoing.length >= limit) {
      if (this.native) this._pending = this.native.pending; // acknowledgements may have made room
      if (this._pending + this._outgoing.length >= limit) {
        throw new ReduxClusterError(ErrorCode.QueueFull, `${limit} actions are already waiting for the server (the queue limit); dispatch refused`);
      }
    }
    if (w) this._outgoingWaiters.push([this._outgoing.length, w]);
    // Shown now, once it is sure to be sent (past the checks above).
    if (this.spec && action) this._outgoingEntries.push([this._outgoing.length, this.spec.speculate(action, json)]);
    this._outgoing.push(json);
    if (this._outgoing.length === 1) queueMicrotask(this._flush);
  }

  _flush() {
    const batch = this._outgoing;
    if (batch.length === 0 || !this.native) return;
    const waiters = this._outgoingWaiters;
    const entries = this._outgoingEntries;
    this._outgoing = [];
    this._outgoingWaiters = [];
    this._outgoingEntries = [];
    // Before the batch is queued, so that no acknowledgement of it can pass unseen.
    if (waiters.length > 0 && !this._tracking) {
      this.native.trackOrdered(true);
      this._tracking = true;
    }
    let queued;
    try {
      queued = this.native.dispatchBatch('[' + batch.join(',') + ']');
    } catch (e) {
      this.store._error(`ReduxCluster.createClient: ${batch.length} actions could not be queued: ${e.message} (${e.code})`);
      for (const [, w] of waiters) w.reject(new ReduxClusterError(e.code || ErrorCode.Internal, e.message));
      if (this.spec) this.spec.rollback(e.code || ErrorCode.Internal, e.message, entries.map(([, x]) => x));
      return;
    }
    this._pending = queued.pending;
    const first = queued.lastCounter - batch.length + 1;
    for (const [i, w] of waiters) this.waiters.add(first + i, w);
    for (const [i, entry] of entries) entry.counter = first + i;
  }

  /** Applies what the server sent since the last pull, and settles dispatchAsync promises. */
  pump() {
    if (!this.native) return;
    const { _state: state, _decode: decode } = this.store;
    const r = this.native.poll(POLL_MAX);
    this.store._engineEvents(r.events);
    this.seq = this.spec ? this.spec.take(r, this.seq, decode) : state.take(r, this.seq, decode, this.waiters);
    if (r.ordered != null) this.waiters.ordered(r.ordered);
    this.waiters.applied(this.seq);
    if (r.more) this._queuePump();
  }



  /** An error event of the connection (see `ClusterClient.error`). */
  failed(code, message) {
    this.error = new ReduxClusterError(code, message);
    if (FATAL.has(code)) {
      this.waiters.rejectAll(code, message);
      this._rejectOutgoing(code, message);
      if (this.spec) this.spec.rollback(code, message);
    }
  }

  _rejectOutgoing(code, message) {
    const waiters = this._outgoingWaiters;
    this._outgoingWaiters = [];
    for (const [, w] of waiters) w.reject(new ReduxClusterError(code, message));
  }

  /**
   * Hands what is queued to the engine, waits up to `flushMs` for the server to take it,
   * then closes; whatever was not acknowledged and applied by then is refused.
   */
  async disconnect(flushMs) {
    this._flush();
    this._closing = true;
    await this.native.close(flushMs);
    this._closing = false;
    this.pumpSafe(); // apply whatever had arrived
    this._refuseAll(ErrorCode.Closed, 'the client was disconnected before the action was acknowledged and applied');
    this.native = null;
    this.store.connected = false;
  }

  /** Drops the connection at once; what waits is refused with `why`. */
  close(why = 'the connection was closed') {
    this._refuseAll(ErrorCode.Closed, why);
    if (this.native) this.native.shutdown();
    this.native = null;
    this.store.connected = false;
    return Promise.resolve();
  }

  _refuseAll(code, why) {
    this.waiters.rejectAll(code, why);
    this._outgoing = [];
    this._outgoingEntries = [];
    this._rejectOutgoing(code, why);
    if (this.spec) this.spec.rollback(code, why);
  }

  /** Dispatches queued here, not yet handed to the engine. */
  get queued() {
    return this._outgoing.length;
  }

  /**
   * A worker's store given its own server (createClient): the link to the primary goes,
   * the actions not handed to it yet stay queued for the new server; those the primary
   * had are refused (the new server never saw them).
   */
  leaveIpc() {
    this.ipc = false;
    this.waiters.rejectAll(ErrorCode.Closed, 'the store left its node:cluster primary before the action was applied');
    if (this.native) this.native.shutdown();
    this.native = null;
    this.store.connected = false;
  }
}

module.exports = { ClientRole };
