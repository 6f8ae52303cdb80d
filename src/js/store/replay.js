'use strict';
// A resync's answer, brought forward to where it lands in the ordered stream.
//
// A resync puts a RESYNC in the stream first; the authority then sends its state as of a
// point at or after it (`at`), ordered like an action: SYNC { payload, at }. Actions
// ordered meanwhile land between `at` and the SYNC (on a replicated store, a Raft round's
// worth). Taking the payload as it is would drop them, on every replica alike. So every
// replica keeps what it applies from the RESYNC on, and takes the payload and then those
// of them ordered after `at`: the state the authority has at the SYNC.
//
// Shared by the Node stores (state.js, optimistic.js) and the browser client (bundled);
// it needs nothing from Node.

// Kept at most while an answer is awaited (one that never comes: its leader was lost).
// Past it, nothing is kept: a SYNC is then taken as it is, alike on every replica that
// saw the same stream, and the divergence guard's next check finds any difference.
const LIMIT = 100000;

class Replay {
  constructor() {
    this.from = null; // the seq of the first RESYNC not answered yet
    this.marks = []; // the seqs of the RESYNCs met since, in order
    this.kept = []; // seq, action, seq, action, ... applied after `from`
  }

  /** Whether actions are being kept (a resync was asked for and not answered yet). */
  get active() {
    return this.from !== null;
  }

  /** A RESYNC at `seq`: keep what follows, until an answer as of a point at or after it. */
  mark(seq) {
    if (this.from === null) {
      this.from = seq;
      this.kept = [];
    }
    this.marks.push(seq);
  }

  /** An action applied at `seq`. */
  keep(seq, action) {
    if (this.from === null) return;
    if (this.kept.length < LIMIT * 2) this.kept.push(seq, action);
    else this.clear();
  }

  /** The state jumped to `seq` (a snapshot): what was kept before it is in it. */
  rebase(seq) {
    if (this.from !== null) {
      this.from = seq;
      this.kept = [];
    }
  }

  clear() {
    this.from = null;
    this.marks = [];
    this.kept = [];
  }

  /**
   * The state a SYNC met at `seq` leaves: its payload, then the actions kept from after
   * its `at`, through `reduce(state, action)` (which takes a SYNC among them too). A
   * SYNC without `at` (a restored backup) is kept like an action and taken as it is.
   */
  land(sync, seq, reduce) {
    if (typeof sync.at !== 'number') {
      this.keep(seq, sync);
      return sync.payload;
    }
    const { from, kept, marks } = this;
    let s = sync.payload;
    // Not all of them here (keeping started after `at`, or stopped): taken as it is.
    if (from !== null && from <= sync.at) {
      for (let i = 0; i < kept.length; i += 2) if (kept[i] > sync.at) s = reduce(s, kept[i + 1]);
    }
    // A RESYNC met after `at` is not answered by this SYNC: keep on from it, with this
    // SYNC's outcome among what is kept (an answer as of a point before it needs it).
    const next = marks.findIndex((m) => m > sync.at);
    if (next === -1) {
      this.clear();
    } else {
      this.from = marks[next];
      this.marks = marks.slice(next);
      this.kept = [];
      for (let i = 0; i < kept.length; i += 2) if (kept[i] > this.from) this.kept.push(kept[i], kept[i + 1]);
      this.kept.push(seq, { type: sync.type, payload: s });
    }
    return s;
  }
}

/**
 * `reducer` as a replay applies the kept actions: a SYNC among them (`syncType`: a
 * restored backup, an earlier answer's outcome) replaces the state; an action the reducer
 * throws on is skipped, as it was when first applied (and reported then).
 */
function replaying(reducer, syncType) {
  return (state, action) => {
    if (action.type === syncType) return action.payload;
    try {
      return reducer(state, action);
    } catch {
      return state;
    }
  };
}

module.exports = { Replay, replaying };
