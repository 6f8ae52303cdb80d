'use strict';
// A single server (TCP, Unix, WebSocket, a node:cluster primary's socket): the engine's
// authority orders this store's own actions and its clients' in one sequence; this store
// applies that sequence in order, and its own dispatches at once, as in Redux.

const { Pumped } = require('./pumped.js');
const { SYNC } = require('../constants.js');
const { RESYNC } = require('./guard.js');

// A RESYNC is answered at most this often (one diverged replica, or a hostile client,
// cannot make the authority send its whole state back to back).
const RESYNC_EVERY_MS = 1000;
// Actions handed to JS per pull; between pulls the event loop runs, so timers and I/O
// are not starved by a long stream of actions.
const POLL_MAX = 8192;

class ServerRole extends Pumped {
  /** `open(wake)` makes the engine's NativeAuthority, which calls `wake` when it has
   *  something for this store to apply. */
  constructor(store, open) {
    super(store);
    this.seq = 0; // the last sequence number applied here
    this._publishQueued = false;
    this._publish = () => {
      this._publishQueued = false;
      if (this.authority) this.authority.flush();
    };
    this.authority = open(() => this.pumpSafe());
    this._answeredAt = -Infinity; // when a RESYNC was last answered
    this._answerQueued = false;
  }

  get name() {
    return 'server';
  }

  get serves() {
    return true;
  }

  get clustered() {
    return false;
  }

  /** A single server is the authority: it puts the guard's checkpoints in the stream. */
  get checks() {
    return true;
  }

  /** A server is its own authority: nothing to ask. */
  requestResync() {}

  /**
   * A RESYNC met in the stream (a diverged replica asks for the authority's state): the
   * authority answers at once or, within RESYNC_EVERY_MS of its last answer, once that
   * has passed (that answer covers every request made meanwhile).
   */
  resyncAsked() {
    if (!this.checks || this._answerQueued) return;
    this._answerQueued = true;
    const wait = Math.max(0, this._answeredAt + RESYNC_EVERY_MS - Date.now());
    const answer = () => {
      this._answerQueued = false;
      if (this.store._role !== this || !this.authority) return;
      if (wait > 0) return this.answerResyncLater();
      this._answeredAt = Date.now();
      this.answerResync();
    };
    // Never from inside the pull that met the request: the answer orders (and applies)
    // itself, and this store's seq is the state's only once the pull is done.
    if (wait === 0) setImmediate(answer);
    else setTimeout(answer, wait).unref();
  }

  /** The authority's answer to a RESYNC: its state, to every replica. */
  answerResync() {
    this.resync();
  }

  /** The answer to RESYNCs met while answers were held back (resync() orders its own RESYNC first). */
  answerResyncLater() {
    this._answeredAt = Date.now();
    this.resync();
  }

  /**
   * The divergence guard's checkpoint: CHECK is ordered and applied here at once (the
   * state records its digest there), then this server's record goes out as DIGEST, for
   * every replica to compare its own with.
   */
  check(action) {
    const guard = this.store._guard;
    const seq = this._own(action);
    const engine = this.store._state.engine;
    const d = engine ? engine.checkDigest(seq) : guard._checks.get(seq);
    if (d) this._own(guard.digestAction(seq, d));
    this._publishSoon();
  }

  // One of the guard's actions, ordered and applied like this server's own.
  _own(action) {
    const { _state: state, _encode: encode } = this.store;
    if (state.engine) {
      this.seq = state.applyOwn(action, this._submit, false);
      return this.seq;
    }
    const seq = this.authority.submit(encode(action));
    if (seq !== this.seq + 1) this.drainTo(seq - 1);
    this.seq = seq;
    state.apply([action], seq - 1);
    return seq;
  }

  get applied() {
    const engine = this.store._state.engine;
    return engine ? engine.seq : this.seq;
  }

  // The engine orders the action (and, for an engine reducer, applies it) at once.
  _submit = (json) => this.authority.submit(json);

  dispatch(action) {
    const { _state: state, _encode: encode } = this.store;
    if (state.engine) {
      this.seq = state.applyOwn(action, this._submit, false);
      this._publishSoon();
      return action;
    }
    const seq = this.authority.submit(encode(action));
    // Actions from clients ordered before this one are applied first.
    if (seq !== this.seq + 1) this.drainTo(seq - 1);
    this.seq = seq;
    this._publishSoon();
    return state.dispatch(action);
  }

  async dispatchAsync(action) {
    const state = this.store._state;
    if (state.engine) {
      let seq;
      try {
        seq = state.applyOwn(action, this._submit, true);
      } finally {
        this._publishSoon();
      }
      this.seq = seq;
      return { seq };
    }
    this.dispatch(action);
    return { seq: this.seq };
  }

  // Connections are woken once per synchronous burst of dispatches, not per action.
  _publishSoon() {
    if (!this._publishQueued) {
      this._publishQueued = true;
      queueMicrotask(this._publish);
    }
  }

  /** A state restored from a backup: ordered like any action, so every replica replaces its state at the same point. */
  restore(snapshot) {
    const { _state: state, _encode: encode } = this.store;
    if (state.engine) {
      // The engine takes a sync's payload as the new state, ordered.
      try {
        this.seq = state.applyOwn({ type: SYNC, payload: snapshot }, this._submit, true);
      } finally {
        this._publishSoon();
      }
      return;
    }
    const seq = this.authority.submit(encode({ type: SYNC, payload: snapshot }));
    if (seq !== this.seq + 1) this.drainTo(seq - 1);
    this.seq = seq;
    this.authority.flush();
    state.applySync(snapshot);
  }

  // Every replica takes this store's state (sendtoall without a message, or the answer
  // to a RESYNC). A RESYNC goes first, from which every replica keeps what it applies;
  // then the state as of it, ordered like an action: SYNC { payload, at }. Clients'
  // actions ordered between the two are applied by every replica after the payload
  // (replay.js), so none is lost, and this store, the authority, keeps its own state.
  resync() {
    const { _state: state, _encode: encode } = this.store;
    const a = this.authority;
    if (state.engine) {
      // The same in the engine, which applies this store's own actions too (and keeps
      // and replays alike): the RESYNC it applies here needs no other answer than this.
      this._submit(encode({ type: RESYNC, by: 'server' }));
      state.engine.takeResync();
      this.seq = state.applyOwn(state.engine.resyncAnswer(), this._submit, false);
      this._publishSoon();
      return;
    }
    this.drainTo(Number.MAX_SAFE_INTEGER);
    const mark = a.submit(encode({ type: RESYNC, by: 'server' }));
    if (mark !== this.seq + 1) this.drainTo(mark - 1);
    this.seq = mark;
    const seq = a.submit(encode({ type: SYNC, payload: state.getState(), at: mark }));
    if (seq !== this.seq + 1) this.drainTo(seq - 1);
    this.seq = seq;
    // This store never applies its own SYNC: what it kept for one (RESYNCs it met) goes.
    state.replay.clear();
    a.flush();
  }

  /** Applies what the engine ordered since the last pull (clients' actions, commits). */
  pump() {
    const a = this.authority;
    if (!a) return;
    const { _state: state, _decode: decode } = this.store;
    const r = a.poll(this.seq + 1, Number.MAX_SAFE_INTEGER, POLL_MAX);
    this.store._engineEvents(r.events);
    this.seq = state.take(r, this.seq, decode, this.waiters);
    // A JS reducer's state is snapshotted here when the engine asks (to trim its log);
    // an engine reducer's is the engine's own.
    if (r.wantSnapshot && !state.engine) a.setSnapshot(this.seq, this.store._encode(state.getState()));
    this._settle();
    if (r.more) this._queuePump();
  }

  /** After each pull (a replicated server settles its dispatchAsync promises here). */
  _settle() {}



  // Applies what clients had ordered up to `upto` before this store's own next action.
  drainTo(upto) {
    const a = this.authority;
    const { _state: state, _decode: decode } = this.store;
    while (this.seq < upto) {
      const r = a.poll(this.seq + 1, upto, POLL_MAX);
      this.store._engineEvents(r.events);
      this.seq = state.take(r, this.seq, decode);
      if (r.actions == null) break;
    }
    // The pull above took the engine's pending wake-up; whatever came after `upto`
    // (and any snapshot request) is handled by a pump of our own.
    this._queuePump();
  }

  failed() {}

  /** The last endpoint closed: the authority goes (its clients were dropped with their endpoints). */
  close() {
    const a = this.authority;
    this.authority = null;
    if (a) a.detach();
    return Promise.resolve();
  }
}

module.exports = { ServerRole, POLL_MAX };
