'use strict';
// dispatchAsync's promises on a client store. Each waits for the server to say where its
// action went (a sequence number, from the runs an Ack carries), then for this replica to
// have applied that far, so that `getState()` includes the action once it resolves.

const { ErrorCode } = require('./errors.js');

const SWEEP_MS = 50;
// Refusals of a native reducer remembered for waiters that learn their seq later.
const FAILED_KEPT = 4096;

class Waiters {
  /** `fail(code, message)` makes the error a promise rejects with. */
  constructor(fail) {
    this._fail = fail;
    this._byCounter = new Map(); // counter -> waiter, until the server says where it went
    this._bySeq = []; // waiters that know their seq, until this replica applied it
    this._own = new Set(); // a replicated server's own, until the group commits them
    this._failed = new Map(); // seq -> why the reducer refused it (native reducers)
    this._timer = null;
  }

  get size() {
    return this._byCounter.size + this._bySeq.length + this._own.size;
  }

  /** A replicated server's own action, waiting for the group to commit it (or time out). */
  addOwn(waiter) {
    this._own.add(waiter);
    this._arm();
  }

  /** Settled elsewhere (refused before it got a place). */
  forget(waiter) {
    this._own.delete(waiter);
  }

  /** A promise for the action with this dispatch `counter`, rejected after `timeoutMs`. */
  add(counter, waiter) {
    this._byCounter.set(counter, waiter);
    this._arm();
  }

  /**
   * Runs of the server's Ack, flattened: `[firstCounter, firstSeq, count, ...]`.
   * Runs may repeat ones already seen (after a reconnect); those find nobody waiting.
   */
  ordered(runs) {
    for (let i = 0; i + 2 < runs.length; i += 3) {
      const [first, seq, count] = [runs[i], runs[i + 1], runs[i + 2]];
      if (this._byCounter.size === 0) return;
      if (this._byCounter.size < count) {
        for (const [c, w] of this._byCounter) {
          if (c >= first && c < first + count) this._known(c, w, seq + (c - first));
        }
      } else {
        for (let c = first; c < first + count; c++) {
          const w = this._byCounter.get(c);
          if (w) this._known(c, w, seq + (c - first));
        }
      }
    }
  }

  _known(counter, w, seq) {
    this._byCounter.delete(counter);
    this.known(w, seq);
  }

  /** A waiter whose action is known to be ordered as `seq` (a replicated server's own). */
  known(w, seq) {
    if (this._own.delete(w) === false && w.own) return; // timed out meanwhile
    w.seq = seq;
    this._bySeq.push(w);
    this._arm();
  }

  /** The reducer refused the action ordered as `seq` (its waiter rejects with ERR_REDUCER). */
  failed(seq, message) {
    this._failed.set(seq, message);
    if (this._failed.size > FAILED_KEPT) this._failed.delete(this._failed.keys().next().value);
  }

  /** This replica has applied everything up to `seq`. */
  applied(seq) {
    if (this._bySeq.length === 0) return;
    const left = [];
    for (const w of this._bySeq) {
      if (w.seq > seq) {
        left.push(w);
        continue;
      }
      const why = this._failed.get(w.seq);
      if (why === undefined) w.resolve({ seq: w.seq });
      else w.reject(this._fail(ErrorCode.Reducer, `the reducer refused the action (#${w.seq}): ${why}`));
    }
    this._bySeq = left;
  }

  rejectAll(code, message) {
    const all = [...this._byCounter.values(), ...this._bySeq, ...this._own];
    this._byCounter.clear();
    this._bySeq = [];
    this._own.clear();
    for (const w of all) w.reject(this._fail(code, message));
  }

  // One timer for every waiter, while there are any; it does not keep the process alive
  // (the connection does, while it is open).
  _arm() {
    if (this._timer) return;
    this._timer = setInterval(() => this._sweep(), SWEEP_MS);
    this._timer.unref();
  }

  _sweep() {
    const now = Date.now();
    const late = (w) => w.deadline <= now;
    for (const [c, w] of this._byCounter) {
      if (late(w)) {
        this._byCounter.delete(c);
        w.reject(this._fail(ErrorCode.Timeout, `the server did not acknowledge the action within ${w.timeoutMs} ms (it may still be applied later)`));
      }
    }
    for (const w of this._own) {
      if (late(w)) {
        this._own.delete(w);
        w.reject(this._fail(ErrorCode.Timeout, `the group did not commit the action within ${w.timeoutMs} ms (it may still be applied later)`));
      }
    }
    const left = [];
    for (const w of this._bySeq) {
      if (late(w)) w.reject(this._fail(ErrorCode.Timeout, `the action was ordered as #${w.seq} but not applied here within ${w.timeoutMs} ms`));
      else left.push(w);
    }
    this._bySeq = left;
    if (this.size === 0) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }
}

/** A waiter for `dispatchAsync`: its promise, and how to settle it. */
function waiter(timeoutMs) {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, timeoutMs, deadline: Date.now() + timeoutMs, seq: 0 };
}

module.exports = { Waiters, waiter };
