'use strict';
// A store that neither serves nor is a client (standalone, or a node:cluster primary no
// worker has asked for yet): it orders its own actions, one after the other, as Redux does.

const { SYNC } = require('../constants.js');

class LocalRole {
  /** `applied`: the sequence number to go on from (a store that was a server or client). */
  constructor(store, applied = 0) {
    this.store = store;
    this._seq = applied;
  }

  get name() {
    return 'local';
  }

  /** Whether this store serves replicas (sendtoall has anyone to send to). */
  get serves() {
    return false;
  }

  get applied() {
    const engine = this.store._state.engine;
    return engine ? engine.seq : this._seq;
  }

  dispatch(action) {
    const state = this.store._state;
    if (state.engine) {
      this._seq = state.applyOwn(action, (json) => state.engine.apply(json), false);
      return action;
    }
    this._seq += 1;
    return state.dispatch(action);
  }

  async dispatchAsync(action) {
    const state = this.store._state;
    if (state.engine) return { seq: state.applyOwn(action, (json) => state.engine.apply(json), true) };
    this.dispatch(action);
    return { seq: this._seq };
  }

  /** A state restored from a backup. */
  restore(snapshot) {
    const state = this.store._state;
    // The engine takes a sync's payload as the new state.
    if (state.engine) state.applyOwn({ type: SYNC, payload: snapshot }, (json) => state.engine.apply(json), true);
    else state.applySync(snapshot);
  }

  resync() {}

  /** Nobody to ask: a store that orders its own actions is its own authority. */
  requestResync() {}

  /** Whether this store puts the divergence guard's checkpoints in the stream. */
  get checks() {
    return false;
  }

  pump() {}

  failed() {}

  close() {
    return Promise.resolve();
  }
}

module.exports = { LocalRole };
