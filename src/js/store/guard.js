'use strict';
// The divergence guard. Every replica applies the same ordered actions, so every replica
// holds the same state, if the reducer is deterministic; one that calls Math.random() or
// Date.now(), or mutates a state another store shares, makes replicas drift silently.
// So the authority (a single server, or a Raft group's leader) puts a checkpoint in the
// ordered stream now and then, and every replica compares its state there with the
// authority's:
//   1. CHECK, ordered at seq s: each replica records the digest of its state as it is
//      just before (after seq s - 1);
//   2. DIGEST { seq: s, digest }, the authority's own record, ordered later: each replica
//      compares; a replica that differs reports a divergence and, by default, asks the
//      authority (RESYNC) to send its state to every replica, ordered like any action
//      (every replica brings it forward by what was ordered meanwhile: replay.js).
// The three travel as actions (logged, sent to clients, committed through Raft) and never
// reach a reducer. A digest is SHA-256 over the state's JSON, 16 hex characters; an
// engine reducer's replicas compute theirs in the engine, at the same points.

const crypto = require('node:crypto');
const { ErrorCode } = require('../errors.js');

const PREFIX = '@@redux-cluster/';
const CHECK = `${PREFIX}CHECK`;
const DIGEST = `${PREFIX}DIGEST`;
const RESYNC = `${PREFIX}RESYNC`;

// Checks recorded and waiting for their DIGEST; an older one is dropped (its DIGEST was
// lost with a leader that stepped down).
const KEPT = 64;
// The share of one thread the digests may take: the interval grows with the state's size.
const BUDGET = 0.005;
// How long a divergence waits for the authority's state (to name where it differs).
const PATH_WAIT_MS = 5000;

const DEFAULTS = Object.freeze({ everyActions: 1000, everyMs: 5000, onDivergence: 'resync' });

function digest(json) {
  return crypto.createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/** Whether `type` is one of the guard's own (a user may not dispatch them). */
function reserved(type) {
  return typeof type === 'string' && type.startsWith(PREFIX);
}

/** The first place (a JSON pointer) where `a` and `b` differ, or null when they do not. */
function firstDifference(a, b, at = '') {
  if (Object.is(a, b)) return null;
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(a) !== kind(b) || typeof a !== 'object') return at || '/';
  if (Array.isArray(a)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${at}/${i}`);
      if (d !== null) return d;
    }
    return a.length === b.length ? null : `${at}/${Math.min(a.length, b.length)}`;
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const k of keys) {
    if (!(k in a) || !(k in b)) return `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const d = firstDifference(a[k], b[k], `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (d !== null) return d;
  }
  return null;
}

/** `guard` of createStore's config, checked: false (off) or the settings over the defaults. */
function readGuard(v, invalid) {
  if (v === false) return null;
  // An operator's switch for a whole process (no code change); an explicit option wins.
  if (v === undefined && process.env.REDUX_CLUSTER_RS_GUARD === 'off') return null;
  if (v === undefined || v === true) return { ...DEFAULTS };
  if (typeof v !== 'object' || v === null) throw invalid('guard must be false or { everyActions, everyMs, onDivergence }');
  const o = { ...DEFAULTS, ...v };
  for (const k of Object.keys(v)) if (!(k in DEFAULTS)) throw invalid(`guard.${k} is not an option`);
  if (!(Number.isInteger(o.everyActions) && o.everyActions >= 1)) throw invalid('guard.everyActions must be an integer of at least 1');
  if (!(Number.isInteger(o.everyMs) && o.everyMs >= 10)) throw invalid('guard.everyMs must be an integer of at least 10');
  if (o.onDivergence !== 'resync' && o.onDivergence !== 'report') throw invalid("guard.onDivergence must be 'resync' or 'report'");
  return o;
}

class Guard {
  constructor(store, options) {
    this.store = store;
    this.options = options;
    this.id = crypto.randomBytes(6).toString('hex');
    this._checks = new Map(); // seq of a CHECK -> this replica's digest there
    this._lastSeq = 0; // where the authority checked last
    this._lastAt = 0;
    this._costMs = 0; // what the last digest of this state took
    this._timer = null;
    this._waiting = null; // a divergence waiting for the authority's state
  }

  // ---- every replica ---------------------------------------------------------------

  /** A JS state's digest, and what it cost (the interval adapts to it). */
  digestOf(state) {
    const t = process.hrtime.bigint();
    const d = digest(this.store._encode(state));
    this._costMs = Number(process.hrtime.bigint() - t) / 1e6;
    return d;
  }

  /**
   * One of the guard's actions, met at `seq` in the ordered stream of a JS state
   * (`state()` reads the state as it is before it). Never reaches the reducer.
   */
  met(action, seq, state) {
    if (action.type === CHECK) this.record(seq, this.digestOf(state()));
    else if (action.type === DIGEST) this.compare(action.seq, action.digest);
    // A RESYNC is the store's: it keeps what follows for the answer, which its role gives.
  }

  record(seq, d) {
    this._checks.set(seq, d);
    if (this._checks.size > KEPT) this._checks.delete(this._checks.keys().next().value);
  }

  compare(seq, expected) {
    const actual = this._checks.get(seq);
    if (actual === undefined) return; // not checked here (it joined later, or it was dropped)
    this._checks.delete(seq);
    if (actual !== expected) this.diverged({ seq, expected, actual });
  }

  /**
   * This replica differs from its authority: said on stderr with ERR_DIVERGED at once;
   * the `divergence` event follows with where it differs, once the authority's state is
   * here to compare (a resync), or without (`path: null`) when it does not come.
   */
  diverged({ seq, expected, actual }) {
    const s = this.store;
    const resync = this.options.onDivergence === 'resync';
    s._error(
      `ReduxCluster: this replica's state differs from its authority's at #${seq} (digest ${actual}, expected ${expected}): ` +
        `a reducer that is not deterministic (Math.random, Date.now) or mutates a shared state? ${resync ? 'Resyncing from the authority.' : 'Kept as it is (guard.onDivergence: report).'}`,
      ErrorCode.Diverged
    );
    const info = { seq, expected, actual, path: null };
    if (this._waiting) return; // one resync answers every divergence found meanwhile
    if (resync) s._role.requestResync({ type: RESYNC, by: this.id });
    // An engine reducer's state changes inside the engine: there is no moment in JS to
    // compare it with the authority's, so its event goes at once, without a path.
    if (!resync || s._state.engine) {
      s.emit('divergence', info);
      return;
    }
    const timer = setTimeout(() => this._settle(null), PATH_WAIT_MS);
    timer.unref();
    this._waiting = { info, before: s.getState(), timer };
  }

  /**
   * The authority's state arrived (a resync), replacing `before` (this replica's state at
   * the same point of the stream): the divergence is settled, and where it was is known.
   */
  synced(authoritative, before) {
    if (this._waiting) this._settle(authoritative, before);
  }

  _settle(authoritative, before) {
    const w = this._waiting;
    this._waiting = null;
    clearTimeout(w.timer);
    if (authoritative !== null) w.info.path = firstDifference(before === undefined ? w.before : before, authoritative);
    this.store.emit('divergence', w.info);
  }

  // ---- the authority ---------------------------------------------------------------

  /** Checks every `everyActions` and `everyMs` (longer for a large state), while `role` serves. */
  start(role) {
    this.stop();
    this._lastSeq = role.applied;
    this._lastAt = Date.now();
    this._timer = setInterval(() => this._tick(role), Math.max(10, Math.floor(this.options.everyMs / 2)));
    this._timer.unref();
  }

  stop() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
  }

  _tick(role) {
    if (!role.checks) return;
    const now = Date.now();
    const every = Math.max(this.options.everyMs, this._costMs / BUDGET);
    if (role.applied - this._lastSeq < this.options.everyActions || now - this._lastAt < every) return;
    this._lastSeq = role.applied;
    this._lastAt = now;
    try {
      role.check({ type: CHECK, by: this.id });
    } catch (e) {
      this.store._error(`ReduxCluster: the divergence guard could not check: ${e.message}`, e.code);
    }
  }

  /** The authority's DIGEST for its CHECK at `seq`, as an action. */
  digestAction(seq, d) {
    return { type: DIGEST, seq, digest: d };
  }
}

module.exports = { Guard, readGuard, reserved, firstDifference, digest, CHECK, DIGEST, RESYNC, DEFAULTS };
