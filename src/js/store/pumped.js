'use strict';
// What every role that pulls from the engine shares: a pull started by the engine's
// wake-up reports what goes wrong instead of throwing into the engine's callback, and a
// pull that left more behind asks for another on the next turn of the event loop (so
// timers and I/O are not starved by a long stream of actions).

class Pumped {
  constructor(store) {
    this.store = store;
    this._pumpQueued = false;
  }

  /** `pump()` (the role's own), reporting instead of throwing. */
  pumpSafe() {
    try {
      this.pump();
    } catch (e) {
      this.store._error(`ReduxCluster: ${e && e.stack ? e.stack : e}`);
    }
  }

  _queuePump() {
    if (this._pumpQueued) return;
    this._pumpQueued = true;
    setImmediate(() => {
      this._pumpQueued = false;
      this.pumpSafe();
    });
  }
}

module.exports = { Pumped };
