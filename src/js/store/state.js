'use strict';
// Where a store's state lives, chosen once when the store is made: in an ordinary Redux
// store run by a JS reducer (JsState), or in the engine, run by a reducer written in Rust
// (EngineState). The roles (local, server, replicated, client) order actions; these apply
// what they ordered and answer the Redux surface (getState, subscribe, replaceReducer).

const redux = require('redux');
const { ReduxClusterError, ErrorCode } = require('../errors.js');
const { SYNC } = require('../constants.js');
const { kindOf } = require('../options.js');
const { reserved, RESYNC } = require('./guard.js');
const { Replay, replaying } = require('./replay.js');

// What Redux itself uses as the interop key (Node has no Symbol.observable of its own).
const $$observable = (typeof Symbol === 'function' && Symbol.observable) || '@@observable';

class JsState {
  /** `report(message)` takes what the store writes to its stderr. */
  constructor(reducer, report) {
    this.engine = null;
    this.guard = null; // the store's divergence guard, if on
    this.onResync = null; // a RESYNC met in the stream (the store answers it if it is the authority)
    this.replay = new Replay(); // what a resync's answer is brought forward by
    this._report = report;
    this._reducer = reducer;
    this._redux = redux.legacy_createStore(this._wrap());
    // See createWSClient: a dispatch wrapper that sees each incoming action.
    this._incoming = null;
    this._incomingAction = null;
  }

  _wrap() {
    return (state, action) => (action.type === SYNC ? action.payload : this._reducer(state, action));
  }

  getState() {
    return this._redux.getState();
  }

  subscribe(listener) {
    return this._redux.subscribe(listener);
  }

  replaceReducer(next) {
    if (typeof next !== 'function') {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, `Expected the nextReducer to be a function. Instead, received: '${kindOf(next)}'`);
    }
    this._reducer = next;
    this._redux.replaceReducer(this._wrap());
  }

  observable() {
    return this._redux[$$observable]();
  }

  /** One action, applied at once (a store that orders its own actions). */
  dispatch(action) {
    return this._redux.dispatch(action);
  }

  /** Whether `action` is one the incoming wrapper handed back to be applied here. */
  isIncoming(action) {
    return action === this._incomingAction && action !== null;
  }

  /** redux-cluster-ws: `wrapper` (the store's dispatch as it was) sees each incoming action. */
  routeIncoming(wrapper) {
    this._incoming = wrapper;
  }

  /** Actions ordered from `base + 1` on, in their order; returns how many. */
  apply(actions, base) {
    const dispatch = this._incoming ? this._throughIncoming : this._redux.dispatch;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      const seq = base + i + 1;
      // The divergence guard's checkpoints are met here, never by the reducer.
      if (reserved(a.type)) {
        if (a.type === RESYNC) this.resyncMet(seq);
        if (this.guard) this.guard.met(a, seq, this._read);
        continue;
      }
      try {
        if (a.type === SYNC) {
          // The state just before it: at the same point of the stream as the payload.
          const before = this._redux.getState();
          const after = this.replay.land(a, seq, this.replayed);
          dispatch(after === a.payload ? a : { type: SYNC, payload: after });
          if (this.guard) this.guard.synced(after, before);
        } else {
          this.replay.keep(seq, a);
          dispatch(a);
        }
      } catch (e) {
        // Every replica runs the same reducer on the same action, so each one skips it
        // alike; say so rather than stop applying what follows.
        this._report(`ReduxCluster: the reducer threw on ${JSON.stringify(a.type)}: ${e && e.message ? e.message : e}`);
      }
    }
    return actions.length;
  }

  // redux-cluster-ws applies what its server sends through the store's `dispatch` as it
  // was when createWSClient was called: a wrapper installed before (to count or log
  // incoming actions) sees each of them, and its call on to the store applies it here.
  _throughIncoming = (action) => {
    this._incomingAction = action;
    try {
      this._incoming(action);
    } finally {
      this._incomingAction = null;
    }
  };

  _read = () => this._redux.getState();

  /** A RESYNC at `seq`: keep what follows for its answer; the authority answers. */
  resyncMet(seq) {
    this.replay.mark(seq);
    if (this.onResync) this.onResync();
  }

  /** An action kept for a resync's answer, applied on top of it (as apply() does). */
  replayed = replaying((state, action) => this._reducer(state, action), SYNC);

  /** Replaces the state (a snapshot, a resync, a restored backup). */
  applySync(state) {
    const before = this._redux.getState();
    this._redux.dispatch({ type: SYNC, payload: state });
    if (this.guard) this.guard.synced(state, before);
  }

  /**
   * Takes what an engine pull brought (`r`) on top of `seq`, the last sequence number
   * applied; returns the new one. A snapshot (a client far behind, a replicated server
   * that installed one) replaces the state first.
   */
  take(r, seq, decode) {
    if (r.resetState != null) {
      this.applySync(decode(r.resetState));
      seq = r.resetSeq;
      this.replay.rebase(seq);
    }
    if (r.snapshot != null) {
      this.applySync(decode(r.snapshot));
      seq = r.snapshotSeq;
      this.replay.rebase(seq);
    }
    if (r.actions == null) return seq;
    const base = r.firstSeq != null ? r.firstSeq - 1 : seq;
    return base + this.apply(decode(r.actions), base);
  }
}

class EngineState {
  /** `spec` is a NativeReducerSpec; `report(message)` as for JsState. */
  constructor(spec, report) {
    this.engine = spec.create();
    this.guard = null; // the store's divergence guard, if on
    this.onResync = null; // a RESYNC met in the stream (as JsState's)
    this._report = report;
    this._listeners = new Set();
    this._version = -1;
    this._state = undefined;
  }

  getState() {
    // Made from the engine's JSON once per change of the state, then the same object.
    const t = this.engine.stateSince(this._version);
    if (t !== null) {
      this._state = JSON.parse(t.json);
      this._version = t.version;
    }
    return this._state;
  }

  subscribe(listener) {
    if (typeof listener !== 'function') {
      throw new ReduxClusterError(ErrorCode.InvalidArgument, `Expected the listener to be a function. Instead, received: '${kindOf(listener)}'`);
    }
    // Each subscription is its own entry, so one listener subscribed twice runs twice.
    const entry = { listener };
    this._listeners.add(entry);
    return () => {
      this._listeners.delete(entry);
    };
  }

  replaceReducer() {
    throw new ReduxClusterError(ErrorCode.InvalidConfig, "invalid configuration: a native reducer's state lives in the engine; it cannot be replaced");
  }

  observable() {
    const state = this;
    return {
      subscribe(observer) {
        if (typeof observer !== 'object' || observer === null) throw new TypeError('Expected the observer to be an object.');
        const next = () => observer.next && observer.next(state.getState());
        next();
        return { unsubscribe: state.subscribe(next) };
      },
      [$$observable]() {
        return this;
      },
    };
  }

  isIncoming() {
    return false;
  }

  /** The listeners, once per applied batch (as Redux calls them once per dispatch). */
  notify() {
    for (const { listener } of [...this._listeners]) {
      try {
        listener();
      } catch (e) {
        this._report(`ReduxCluster: a subscriber threw: ${e && e.stack ? e.stack : e}`);
      }
    }
  }

  /**
   * A store that orders its own actions (`action`, or its JSON text): `submit(json)` orders the action and the engine
   * applies it at once, returning its seq. A refusal of the reducer is reported (and
   * thrown when `strict`, for dispatchAsync); the action stays ordered, and every replica
   * refuses it alike. Returns the last seq applied.
   */
  applyOwn(action, submit, strict) {
    const json = typeof action === 'string' ? action : JSON.stringify(action);
    let seq;
    try {
      seq = submit(json);
    } catch (e) {
      if (e.code !== ErrorCode.Reducer) throw new ReduxClusterError(e.code || ErrorCode.Internal, e.message);
      this._report(`ReduxCluster: the reducer refused ${JSON.stringify(action.type)}: ${e.message}`);
      this.notify();
      if (strict) throw new ReduxClusterError(ErrorCode.Reducer, e.message);
      return this.engine.seq;
    }
    this.notify();
    return seq;
  }

  /**
   * What an engine pull brought: the engine applied it already; this reports the actions
   * its reducer refused (their dispatchAsync promises reject with ERR_REDUCER) and calls
   * the listeners once if the state moved. Returns the last seq applied.
   */
  take(r, seq, _decode, waiters) {
    if (r.failures != null) {
      for (const f of r.failures) {
        this._report(`ReduxCluster: the reducer refused action #${f.seq}: ${f.message}`);
        if (waiters) waiters.failed(f.seq, f.message);
      }
      if (r.failuresDropped > 0) this._report(`ReduxCluster: ${r.failuresDropped} more actions were refused by the reducer (not listed)`);
    }
    // The engine compared its state at the guard's checkpoints (its reducer never saw them),
    // and met the resyncs replicas asked for (the store answers if it is the authority).
    if (this.guard && r.divergences != null) for (const d of r.divergences) this.guard.diverged(d);
    if (this.engine.takeResync() && this.onResync) this.onResync();
    if (r.applied !== seq) this.notify();
    return r.applied;
  }
}

/** The state of a new store: in the engine for a NativeReducerSpec, else in Redux. */
function stateFor(reducer, isEngine, report) {
  return isEngine ? new EngineState(reducer, report) : new JsState(reducer, report);
}

module.exports = { JsState, EngineState, stateFor, $$observable };
