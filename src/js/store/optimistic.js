'use strict';
// Optimistic updates for a client (`createClient({ ..., optimistic: true })`): the store's
// own dispatches show in getState() at once, before the server has ordered them.
//
// Two states: the confirmed one, which the server's ordered stream advances (exactly the
// state every replica has at that point), and the visible one, the confirmed state with
// this client's own actions not confirmed yet replayed on top. Whenever the stream moves
// the confirmed state, the pending actions are replayed on the new one (a rebase), and
// the visible state is set once: subscribers are called once per visible change. An
// action of ours is confirmed once the server said where it went (its seq, from the
// acknowledgements) and the stream got there; an action the server will never order (the
// client stopped: a refused login, a disconnect) is dropped and reported ('rollback').

const { reserved, RESYNC } = require('./guard.js');
const { SYNC } = require('../constants.js');

class Speculation {
  /**
   * Over `state`, the store's JsState: its Redux store holds the visible state (its
   * subscribers are the store's), its reducer advances the confirmed one. `store` emits
   * `rollback`.
   */
  constructor(state, store) {
    this.state = state;
    this.store = store;
    this._confirmed = state.getState();
    this._pending = []; // { action, counter, seq, after } of our own dispatches, in dispatch order
    // The confirmed state moved since the pending actions were last replayed on it (their
    // `after` states are not what they would be now).
    this._stale = false;
  }

  /** What the server confirmed so far (the state every replica has there). */
  get confirmed() {
    return this._confirmed;
  }

  /** Own dispatches not confirmed yet. */
  get pendingCount() {
    return this._pending.length;
  }

  /** Our own action (`json` as sent), shown at once; returns its entry (numbered when it is sent). */
  speculate(action, json) {
    // `after`: the visible state once this entry is applied (what the confirmed state
    // becomes when the server confirms it with nothing else in between). `maybe`: an
    // equal action came down the stream since it was sent, so it may be there already.
    const entry = { action, json, counter: 0, seq: 0, after: null, maybe: false };
    this._pending.push(entry);
    try {
      this.state._redux.dispatch(action);
    } catch (e) {
      // As every replica will when it is ordered: reported, and skipped.
      this.state._report(`ReduxCluster: the reducer threw on ${JSON.stringify(action.type)}: ${e && e.message ? e.message : e}`);
    }
    entry.after = this.state._redux.getState();
    return entry;
  }

  /** The runs of the server's acknowledgements, `[firstCounter, firstSeq, count, ...]`: where ours went. */
  ordered(runs) {
    for (let i = 0; i + 2 < runs.length; i += 3) {
      const [first, seq, count] = [runs[i], runs[i + 1], runs[i + 2]];
      // Entries are in counter order, the unsent ones (counter 0) last.
      for (const e of this._pending) {
        if (e.counter === 0 || e.counter >= first + count) break;
        if (e.counter >= first) e.seq = seq + (e.counter - first);
      }
    }
  }

  /** Takes a pull of the ordered stream (as JsState.take) into the confirmed state, then rebases. */
  take(r, seq, decode) {
    // Where our actions went, learnt now, may settle actions the stream brought before.
    const learnt = r.ordered != null;
    if (learnt) this.ordered(r.ordered);
    let moved = false;
    if (r.resetState != null || r.snapshot != null) {
      const before = this._confirmed;
      this._confirmed = decode(r.resetState ?? r.snapshot);
      seq = r.resetState != null ? r.resetSeq : r.snapshotSeq;
      moved = true;
      this.state.replay.rebase(seq);
      // Anything sent may be in a snapshot.
      for (const e of this._pending) if (e.counter > 0 && e.seq === 0) e.maybe = true;
      if (this.state.guard) this.state.guard.synced(this._confirmed, before);
    }
    if (r.actions != null) {
      const actions = decode(r.actions);
      const base = r.firstSeq != null ? r.firstSeq - 1 : seq;
      seq = base + actions.length;
      // The common case: the stream brought our own next actions and nothing else. The
      // confirmed state is then what was shown after the last of them: nothing to show.
      // (Not while a resync's answer is awaited: what is applied is kept for it.)
      if (!moved && !this._stale && !this.state.replay.active && this._ours(actions.length, base)) {
        this._confirmed = this._pending[actions.length - 1].after;
        this._pending.splice(0, actions.length);
        return seq;
      }
      this._suspect(actions);
      this._advance(actions, base);
      moved = true;
    }
    if (moved) this._stale = true;
    if (moved || learnt) this._rebase(seq);
    return seq;
  }

  // Marks our sent, unplaced actions that have an equal in `actions`: the stream may hold
  // them (their acknowledgement, which says, is on its way). Only those make a rebase
  // wait: the others cannot be in the stream yet, and replaying them is safe, so a client
  // that keeps dispatching still sees everybody else's actions as they come.
  _suspect(actions) {
    let unplaced = null;
    for (const e of this._pending) {
      if (e.counter > 0 && e.seq === 0 && !e.maybe) (unplaced ??= new Map()).set(e.json, e);
    }
    if (unplaced === null) return;
    const encode = this.store._encode;
    for (const a of actions) {
      if (reserved(a.type)) continue;
      const json = encode(a);
      if (!unplaced.has(json)) continue;
      for (const e of this._pending) if (e.json === json && e.seq === 0) e.maybe = true;
    }
  }

  // Whether the `n` actions ordered from `base + 1` are our first `n` pending, in order.
  _ours(n, base) {
    if (n === 0 || n > this._pending.length) return false;
    for (let i = 0; i < n; i++) if (this._pending[i].seq !== base + i + 1) return false;
    return true;
  }

  // The confirmed state through `actions`, ordered from `base + 1` on.
  _advance(actions, base) {
    let s = this._confirmed;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      const seq = base + i + 1;
      if (reserved(a.type)) {
        if (a.type === RESYNC) this.state.resyncMet(seq);
        if (this.state.guard) {
          const now = s;
          this.state.guard.met(a, seq, () => now);
        }
        continue;
      }
      if (a.type === SYNC) {
        const before = s;
        s = this.state.replay.land(a, seq, this.state.replayed);
        if (this.state.guard) this.state.guard.synced(s, before);
        continue;
      }
      this.state.replay.keep(seq, a);
      try {
        s = this.state._reducer(s, a);
      } catch (e) {
        this.state._report(`ReduxCluster: the reducer threw on ${JSON.stringify(a.type)}: ${e && e.message ? e.message : e}`);
      }
    }
    this._confirmed = s;
  }

  // Drops our actions the confirmed state now holds, replays the rest on it, and shows
  // the result: one visible change.
  _rebase(seq) {
    this._pending = this._pending.filter((e) => !(e.seq > 0 && e.seq <= seq));
    // One of ours that the stream may hold but whose place the server has not said yet:
    // replaying it now could show it twice. The acknowledgement that says where it went
    // follows at once; the rebase waits for it.
    if (this._pending.some((e) => e.maybe && e.seq === 0)) return;
    // Only an acknowledgement, and nothing waited: what is shown is still right.
    if (!this._stale) return;
    this._show();
  }

  _show() {
    let visible = this._confirmed;
    for (const e of this._pending) {
      try {
        visible = this.state._reducer(visible, e.action);
      } catch {
        // reported when it was dispatched
      }
      e.after = visible;
    }
    this._stale = false;
    const redux = this.state._redux;
    if (visible !== redux.getState()) redux.dispatch({ type: SYNC, payload: visible });
  }

  /** Our actions the server will never order (`entries`, or all): dropped, reported, the rest replayed. */
  rollback(code, message, entries = null) {
    const gone = entries ? this._pending.filter((e) => entries.includes(e)) : this._pending;
    if (gone.length === 0) return;
    this._pending = entries ? this._pending.filter((e) => !entries.includes(e)) : [];
    this._show();
    for (const e of gone) this.store.emit('rollback', { action: e.action, code, message });
  }

  /** A state replacing everything (a restored backup on a client): confirmed until the stream moves it. */
  reset(state) {
    this._confirmed = state;
    this._show();
  }
}

module.exports = { Speculation };
