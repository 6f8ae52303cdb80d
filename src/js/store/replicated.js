'use strict';
// A server of a replicated store: the Raft group orders every action, this server's own
// included. Its own dispatches are proposed to the group once per synchronous burst and
// applied here when the committed log brings them back, like everybody's.

const { ServerRole } = require('./server.js');
const { Waiters, waiter } = require('../waiters.js');
const { ReduxClusterError, ErrorCode } = require('../errors.js');
const { SYNC } = require('../constants.js');
const { RESYNC } = require('./guard.js');

class ReplicatedRole extends ServerRole {
  constructor(store, open) {
    super(store, open);
    this.waiters = new Waiters((code, message) => new ReduxClusterError(code, message));
    this._own = []; // this server's actions not yet proposed
    this._ownWaiters = []; // [index in _own, dispatchAsync waiter]
    this.leading = false;
  }

  /** The group's leader is the authority that puts the guard's checkpoints in the stream. */
  get checks() {
    return this.leading;
  }

  /** This server's role in its group changed (a `role` event). */
  roleChanged(role) {
    this.leading = role === 'leader';
  }

  /** A diverged server asks the leader, through the group, for its state. */
  requestResync(action) {
    this._enqueue(this.store._encode(action));
  }

  /**
   * The guard's checkpoint, proposed like this server's own actions: once the group
   * committed the CHECK and this server applied it (recording its digest there), its
   * record goes out as DIGEST.
   */
  check(action) {
    const w = waiter(this.store._guard.options.everyMs * 4);
    this._enqueue(this.store._encode(action), w);
    w.promise.then(
      ({ seq }) => {
        const guard = this.store._guard;
        const engine = this.store._state.engine;
        const d = engine ? engine.checkDigest(seq) : guard._checks.get(seq);
        if (d && this.authority) this._enqueue(this.store._encode(guard.digestAction(seq, d)));
      },
      () => {} // not committed in time (no quorum, a new leader): the next check will do
    );
  }

  get clustered() {
    return true;
  }

  dispatch(action) {
    this._enqueue(this.store._encode(action));
    return action;
  }

  dispatchAsync(action, timeout) {
    const w = waiter(timeout);
    this._enqueue(this.store._encode(action), w);
    return w.promise;
  }

  /** A restored state, ordered by the group: every replica takes it at the same point. */
  restore(snapshot) {
    this._enqueue(this.store._encode({ type: SYNC, payload: snapshot }));
  }

  /**
   * sendtoall() without a message: every server and client takes the leader's state. A
   * RESYNC through the group, which the leader answers (answerResync) once it applied
   * it: a follower's own state may be behind the leader's.
   */
  resync() {
    this.requestResync({ type: RESYNC, by: 'server' });
  }

  /**
   * Held back answers go out as a RESYNC of the leader's own, answered when it comes
   * back: an answer as of now would be brought forward by what every replica kept since
   * the first RESYNC held back (up to a second's worth, past replay.js's bound under
   * load); from a fresh RESYNC, by a round's worth.
   */
  answerResyncLater() {
    if (this.leading) this.requestResync({ type: RESYNC, by: 'server' });
  }

  /**
   * The leader's answer to a RESYNC it applied: its state as of what it has applied
   * (`at`), ordered through the group. Every replica has kept what it applied since the
   * RESYNC, and applies those ordered after `at` on top of the state (replay.js): the
   * actions ordered while the answer went through the group are not lost.
   */
  answerResync() {
    if (!this.leading) return;
    const state = this.store._state;
    if (state.engine) this._enqueue(state.engine.resyncAnswer());
    else this._enqueue(this.store._encode({ type: SYNC, payload: state.getState(), at: this.seq }));
  }

  _settle() {
    this.waiters.applied(this.seq);
  }

  _enqueue(json, w = null) {
    if (w) {
      w.own = true;
      this.waiters.addOwn(w);
      this._ownWaiters.push([this._own.length, w]);
    }
    this._own.push(json);
    if (this._own.length === 1) queueMicrotask(() => this._propose());
  }

  _propose() {
    const batch = this._own;
    const waiters = this._ownWaiters;
    this._own = [];
    this._ownWaiters = [];
    const a = this.authority;
    if (batch.length === 0 || !a) return;
    const refuse = (code, message) => {
      for (const [, w] of waiters) {
        this.waiters.forget(w);
        w.reject(new ReduxClusterError(code, message));
      }
    };
    a.submitOwn('[' + batch.join(',') + ']').then(
      (text) => {
        const [, firstSeq] = JSON.parse(text).run;
        for (const [i, w] of waiters) this.waiters.known(w, firstSeq + i);
        this.waiters.applied(this.seq);
      },
      (e) => {
        this.store._error(`ReduxCluster.createServer: ${batch.length} actions were not ordered: ${e.message} (${e.code})`);
        refuse(e.code || ErrorCode.Internal, e.message);
      }
    );
  }

  /** The last endpoint closed: the Raft node stops; what was not applied yet is refused. */
  close() {
    const a = this.authority;
    this.authority = null;
    if (!a) return Promise.resolve();
    const why = 'the server was closed before the action was ordered and applied';
    this.waiters.rejectAll(ErrorCode.Closed, why);
    for (const [, w] of this._ownWaiters) w.reject(new ReduxClusterError(ErrorCode.Closed, why));
    this._own = [];
    this._ownWaiters = [];
    return a.shutdown().finally(() => a.detach());
  }
}

module.exports = { ReplicatedRole };
