// redux-cluster-rs for browsers: a Redux store that stays in sync with a redux-cluster-rs
// server over WebSocket (`store.createWSServer` on the server). It speaks the engine's
// own protocol (the same frames as TCP), so it has the native client's guarantees:
// numbered dispatches acknowledged by the server, an offline queue resent once after a
// reconnect (the server drops what it already ordered), resume from the last applied
// sequence number, snapshots. Logins are challenge-response (HMAC-SHA256 with Web
// Crypto): the password never crosses the wire. Depends on nothing but `redux`.

import { legacy_createStore } from 'redux';
import { md5 } from './md5.mjs';
import { ErrorCode } from './codes.mjs';
import { Replay, replaying } from '../store/replay.js';

const SYNC = 'REDUX_CLUSTER_SYNC';
const VERSION = 1;
const FLAG_DEFLATE = 1;
const T = { HELLO: 1, WELCOME: 2, DISPATCH: 3, ACK: 4, ACTIONS: 5, SNAPSHOT: 6, ERROR: 7, CHALLENGE: 8, AUTH: 9, HEARTBEAT: 12 };
// Errors after which the client stops (as the native client does).
const FATAL = new Set([ErrorCode.StoreMismatch, ErrorCode.Auth, ErrorCode.Banned]);
const enc = new TextEncoder();
const dec = new TextDecoder();
// The divergence guard's actions (see src/js/store/guard.js, whose protocol this follows):
// the server's checkpoints, met here and never handed to the reducer.
const GUARD = '@@redux-cluster/';
const CHECK = `${GUARD}CHECK`;
const DIGEST = `${GUARD}DIGEST`;
const RESYNC = `${GUARD}RESYNC`;

const isGuard = (a) => typeof a.type === 'string' && a.type.startsWith(GUARD);

/** The guard's digest: SHA-256 of the state's JSON, 16 hex characters (Web Crypto). */
async function digest(json) {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(json)));
  return Array.from(h.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The first place (a JSON pointer) where two JSON values differ, or null. */
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
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const here = `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!(k in a) || !(k in b)) return here;
    const d = firstDifference(a[k], b[k], here);
    if (d !== null) return d;
  }
  return null;
}

export class ReduxClusterError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ReduxClusterError';
    this.code = code;
  }
}

// ---- bytes

class Writer {
  constructor() {
    this.parts = [];
    this.len = 0;
  }
  u8(v) {
    this.parts.push(Uint8Array.of(v));
    this.len += 1;
  }
  u32(v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    this.parts.push(b);
    this.len += 4;
  }
  u64(v) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v));
    this.parts.push(b);
    this.len += 8;
  }
  bytes(b) {
    this.u32(b.length);
    this.parts.push(b);
    this.len += b.length;
  }
  /** The frame: [u32 length][version][flags][payload]. */
  frame() {
    const out = new Uint8Array(6 + this.len);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, this.len + 2);
    out[4] = VERSION;
    out[5] = 0;
    let at = 6;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

class Reader {
  constructor(b) {
    this.b = b;
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.at = 0;
  }
  need(n) {
    if (this.at + n > this.b.length) throw new ReduxClusterError(ErrorCode.Protocol, 'truncated message');
  }
  u8() {
    this.need(1);
    return this.b[this.at++];
  }
  u32() {
    this.need(4);
    const v = this.dv.getUint32(this.at);
    this.at += 4;
    return v;
  }
  u64() {
    this.need(8);
    const v = this.dv.getBigUint64(this.at);
    this.at += 8;
    return v;
  }
  num() {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ReduxClusterError(ErrorCode.Protocol, 'a number beyond 2^53');
    return Number(v);
  }
  bytes() {
    const n = this.u32();
    this.need(n);
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  text() {
    return dec.decode(this.bytes());
  }
}

async function inflate(b) {
  const s = new Blob([b]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function decode(payload) {
  const r = new Reader(payload);
  const tag = r.u8();
  switch (tag) {
    case T.WELCOME:
      return { tag, epoch: r.u64(), acked: r.num(), mode: r.u8() === 1 ? 'snapshot' : 'action' };
    case T.CHALLENGE:
      return { tag, nonce: r.bytes() };
    case T.ACK: {
      const counter = r.num();
      const n = r.u32();
      const ordered = [];
      for (let i = 0; i < n; i++) ordered.push({ firstCounter: r.num(), firstSeq: r.num(), count: r.u32() });
      return { tag, counter, ordered };
    }
    case T.ACTIONS: {
      const firstSeq = r.num();
      const n = r.u32();
      const actions = [];
      for (let i = 0; i < n; i++) actions.push(r.text());
      return { tag, firstSeq, actions };
    }
    case T.SNAPSHOT:
      return { tag, seq: r.num(), state: r.text() };
    case T.ERROR:
      return { tag, code: r.text(), message: r.text() };
    case T.HEARTBEAT:
      return { tag };
    default:
      throw new ReduxClusterError(ErrorCode.Protocol, `unexpected message ${tag}`);
  }
}

// ---- logins: the engine's challenge-response (src/store/auth.rs)

async function proof(password, nonce, clientId, store, login) {
  const seed = new Uint8Array([...enc.encode('redux-cluster-rs/login/v1\0'), ...enc.encode(password)]);
  const key = new Uint8Array(await crypto.subtle.digest('SHA-256', seed));
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const id = new Uint8Array(8);
  new DataView(id.buffer).setBigUint64(0, clientId);
  const msg = new Uint8Array([...nonce, ...id, ...enc.encode(store), 0, ...enc.encode(login)]);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, msg));
}

function randomId() {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return b[0] === 0n ? 1n : b[0];
}

// ---- optimistic updates (`createWSClient({ ..., optimistic: true })`), as the Node
// client's (src/js/store/optimistic.js): the page's own dispatches show in getState() at
// once. Two states: the confirmed one, which the server's ordered stream advances (the
// state every replica has there), and the visible one, the confirmed state with this
// page's actions not confirmed yet replayed on top. When the stream moves the confirmed
// state, the pending actions are replayed on the new one (a rebase) and the visible state
// is set once: subscribers are called once per visible change, and not at all when the
// stream brings exactly our own next actions. An action of ours is confirmed once the
// server said where it went (its seq, from the acknowledgements) and the stream got
// there; one the server will never order (a refused login, a disconnect, a fatal error)
// is dropped and reported as a 'rollback' event.
//
// A rebase must not replay an action of ours that the stream already brought: one the
// server ordered but whose place (the acknowledgement) has not come yet. Such an action is
// equal to one of the stream's that came after it was dispatched; an action of ours with
// no equal there cannot be in the confirmed state, and is replayed. So the rebase waits
// for the acknowledgement only while an action of ours not placed yet has an equal in the
// stream since it was dispatched (or a snapshot came since): others' actions show at
// once even while this page keeps dispatching.

/** JSON with every object's keys sorted: equal for equal actions, whoever encoded them. */
function canonical(v) {
  return JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((key) => [key, x[key]])) : x));
}

class Speculation {
  constructor(store, fail) {
    this.store = store;
    this.fail = fail; // (code, message): a reducer that threw on an ordered action
    this.confirmed = store._redux.getState();
    // { action, json, counter, seq, after, key, suspect } of our own dispatches, in
    // dispatch order; `suspect`: the stream may hold it without its place known.
    this.entries = [];
    this.byCounter = new Map(); // counter -> entry
    // The confirmed state moved (or an entry went) since the entries were last replayed
    // on it: their `after` states are not what they would be now.
    this.stale = false;
  }

  /** Our own action (numbered `counter`, sent as `json`), shown at once. */
  speculate(action, counter, json) {
    // `after`: the visible state once this entry is applied (what the confirmed state
    // becomes when the server confirms it with nothing else in between). `key`: its
    // canonical JSON, made when first needed.
    const entry = { action, json, counter, seq: 0, after: null, key: null, suspect: false };
    this.entries.push(entry);
    this.byCounter.set(counter, entry);
    try {
      this.store._redux.dispatch(action);
    } catch (e) {
      // As every replica will when it is ordered: reported, and skipped.
      this.store._say(`ReduxCluster: the reducer threw on ${JSON.stringify(action.type)}: ${e && e.message}`);
    }
    entry.after = this.store._redux.getState();
    return entry;
  }

  /**
   * An acknowledgement: every dispatch up to `acked` is ordered, and `runs` say where some
   * went. One the server ordered but whose place it no longer knows (runs it dropped, a
   * move to a server that never had them) is no longer ours to replay: the stream shows
   * it when it gets there.
   */
  ordered(runs, acked) {
    for (const o of runs) {
      if (o.count <= this.entries.length) {
        for (let i = 0; i < o.count; i++) {
          const e = this.byCounter.get(o.firstCounter + i);
          if (e) e.seq = o.firstSeq + i;
        }
      } else {
        for (const e of this.entries) if (e.counter >= o.firstCounter && e.counter < o.firstCounter + o.count) e.seq = o.firstSeq + (e.counter - o.firstCounter);
      }
    }
    const lost = this.entries.filter((e) => e.seq === 0 && e.counter <= acked);
    if (lost.length > 0) {
      this._drop(lost);
      this.stale = true;
    }
  }

  /** Ordered actions (parsed), from `base + 1` on, into the confirmed state; then a rebase. */
  take(actions, base) {
    const n = actions.length;
    if (n === 0) return;
    // The common case: the stream brought our own next actions and nothing else (but the
    // guard's checkpoints, which change no state). The confirmed state is then what was
    // shown after the last of them: nothing to show.
    // (Not while a resync's answer is awaited: what is applied is kept for it.)
    if (!this.stale && !this.store._replay.active && this._ours(actions, base)) {
      let s = this.confirmed;
      let j = 0;
      for (let i = 0; i < n; i++) {
        if (isGuard(actions[i])) this.store._guard(actions[i], base + i + 1, s);
        else s = this.entries[j++].after;
      }
      this.confirmed = s;
      this._drop(this.entries.slice(0, j));
      return;
    }
    this._suspect(actions, base);
    const synced = this._advance(actions, base);
    this.stale = true;
    this.rebase(base + n);
    if (synced !== undefined) this.store._settled(synced[0], synced[1]);
  }

  /** A snapshot as of `seq`: the confirmed state, then a rebase. */
  reset(state, seq) {
    // Any of ours not placed yet may be in it.
    for (const e of this.entries) if (e.seq === 0) e.suspect = true;
    this.confirmed = state;
    this.stale = true;
    this.rebase(seq);
  }

  /** A snapshot as of `seq` equal to the confirmed state: kept, so nothing shows unless it holds some of ours. */
  same(seq) {
    for (const e of this.entries) if (e.seq === 0) e.suspect = true;
    if (this.entries.some((e) => e.seq > 0 && e.seq <= seq)) this.stale = true;
    this.rebase(seq);
  }

  // Whether the actions ordered from `base + 1` are, but for the guard's, our next
  // entries, in order.
  _ours(actions, base) {
    let j = 0;
    for (let i = 0; i < actions.length; i++) {
      if (isGuard(actions[i])) continue;
      if (j >= this.entries.length || this.entries[j].seq !== base + i + 1) return false;
      j++;
    }
    return true;
  }

  // Marks our actions not placed yet that have an equal among `actions` (ordered from
  // `base + 1` on; the places of ours we know are skipped): the stream may hold them.
  _suspect(actions, base) {
    const byType = new Map();
    for (const e of this.entries) {
      if (e.seq !== 0 || e.suspect) continue;
      const t = e.action.type;
      if (!byType.has(t)) byType.set(t, []);
      byType.get(t).push(e);
    }
    if (byType.size === 0) return;
    const known = new Set(this.entries.filter((e) => e.seq > base && e.seq <= base + actions.length).map((e) => e.seq));
    for (let i = 0; i < actions.length; i++) {
      const list = byType.get(actions[i].type);
      if (!list || known.has(base + i + 1)) continue;
      const key = canonical(actions[i]);
      for (const e of list) {
        e.key ??= canonical(JSON.parse(e.json));
        if (e.key === key) e.suspect = true;
      }
    }
  }

  // The confirmed state through `actions`; the guard's checkpoints are met with the
  // confirmed state as it is there (the server's digests are of that state, never of
  // what this page shows). Returns the last SYNC's state, if any.
  _advance(actions, base) {
    let s = this.confirmed;
    let synced;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      if (isGuard(a)) {
        this.store._guard(a, base + i + 1, s);
        continue;
      }
      if (a.type === SYNC) {
        // With the confirmed state just before it: the page's, at the same point.
        const after = this.store._replay.land(a, base + i + 1, this.store._replayed);
        synced = [after, s];
        s = after;
        continue;
      }
      this.store._replay.keep(base + i + 1, a);
      try {
        s = this.store._reducer(s, a);
      } catch (e) {
        this.fail(ErrorCode.Reducer, `the reducer threw on ${JSON.stringify(a.type)}: ${e.message}`);
      }
    }
    this.confirmed = s;
    return synced;
  }

  /**
   * The stream is at `delivered`: drops our entries it holds, replays the rest on the
   * confirmed state and shows the result (one visible change), if it moved.
   */
  rebase(delivered) {
    const done = this.entries.filter((e) => e.seq > 0 && e.seq <= delivered);
    if (done.length > 0) this._drop(done);
    // One of ours that the server may hold without having said where it went yet may be
    // in what the stream brought (an equal action came since it was dispatched):
    // replaying it now would show it twice. The acknowledgement that places it follows at
    // once; the rebase waits for it.
    if (this.entries.some((e) => e.seq === 0 && e.suspect)) return;
    if (this.stale) this._show();
  }

  _show() {
    let visible = this.confirmed;
    for (const e of this.entries) {
      try {
        visible = this.store._reducer(visible, e.action);
      } catch {
        // reported when it was dispatched
      }
      e.after = visible;
    }
    this.stale = false;
    const redux = this.store._redux;
    if (visible !== redux.getState()) redux.dispatch({ type: SYNC, payload: visible });
  }

  _drop(gone) {
    const set = new Set(gone);
    this.entries = this.entries.filter((e) => !set.has(e));
    for (const e of gone) this.byCounter.delete(e.counter);
  }

  /** Our actions the server will never order (`entries`, or all): dropped, the rest replayed, each reported. */
  rollback(code, message, entries = null) {
    const which = entries && new Set(entries);
    const gone = which ? this.entries.filter((e) => which.has(e)) : this.entries;
    if (gone.length === 0) return;
    this._drop(gone);
    this._show();
    for (const e of gone) this.store._emit('rollback', { action: e.action, code, message });
  }
}

// ---- the store

function isPlainObject(o) {
  if (typeof o !== 'object' || o === null) return false;
  const p = Object.getPrototypeOf(o);
  return p === null || Object.getPrototypeOf(p) === null;
}

export function createStore(reducer) {
  if (typeof reducer !== 'function') throw new ReduxClusterError(ErrorCode.InvalidConfig, 'Expected the root reducer to be a function');
  return new BrowserStore(reducer);
}

class BrowserStore {
  constructor(reducer) {
    /** md5 of the reducer's name, as the server's: stores sync only with the same reducer. */
    this.RCHash = md5(reducer.name || '');
    this.role = [];
    this.connected = false;
    this.mode = 'action';
    this.stderr = (m) => console.error(m);
    this._reducer = reducer;
    this._redux = legacy_createStore((s, a) => (a.type === SYNC ? a.payload : this._reducer(s, a)));
    this._client = null;
    this._listeners = new Map(); // event name -> Set of listeners ('divergence', 'rollback')
    this._checks = new Map(); // seq of a CHECK -> the promise of this replica's digest there
    this._diverged = null; // a divergence waiting for the server's state (to name where)
    this._replay = new Replay(); // what a resync's answer is brought forward by (replay.js)
    this.dispatch = this.dispatch.bind(this);
    this.getState = this.getState.bind(this);
    this.subscribe = this.subscribe.bind(this);
  }

  getState() {
    return this._redux.getState();
  }

  subscribe(listener) {
    return this._redux.subscribe(listener);
  }

  replaceReducer(next) {
    this._reducer = next;
  }

  /**
   * `on('divergence', ({ seq, expected, actual, path }) => ...)`: see the guard in the
   * README. `on('rollback', ({ action, code, message }) => ...)`: with `optimistic`, an
   * action shown at once that the server will never order, dropped from the state.
   */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return this;
  }

  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
    return this;
  }

  _say(message) {
    try {
      this.stderr(message);
    } catch {
      /* a throwing sink must not break the store */
    }
  }

  _emit(event, payload) {
    for (const l of [...(this._listeners.get(event) ?? [])]) {
      try {
        l(payload);
      } catch (e) {
        this.stderr(`ReduxCluster: a ${event} listener threw: ${e && e.message}`);
      }
    }
  }

  // One of the guard's actions at `seq`, met with `state`, this replica's state just
  // before it in the ordered stream (with `optimistic`, the confirmed state: what the page
  // shows has its own actions on top). The digest is of that state (Web Crypto hashes
  // asynchronously; the JSON is taken at once).
  _guard(a, seq, state) {
    if (a.type === RESYNC) this._replay.mark(seq); // its answer is brought forward by what follows
    if (typeof crypto === 'undefined' || !crypto.subtle) return; // not a secure context: no digests
    if (a.type === CHECK) {
      this._checks.set(seq, digest(JSON.stringify(state)));
      if (this._checks.size > 64) this._checks.delete(this._checks.keys().next().value);
    } else if (a.type === DIGEST) {
      const mine = this._checks.get(a.seq);
      if (!mine) return;
      this._checks.delete(a.seq);
      const before = state;
      mine.then((actual) => {
        if (actual !== a.digest) this._divergedAt({ seq: a.seq, expected: a.digest, actual, path: null }, before);
      });
    }
  }

  // As the Node client by default: reported on stderr with ERR_DIVERGED, the server asked
  // for its state, and the event sent once it came (with where the states differed).
  _divergedAt(info, before) {
    this.stderr(`ReduxCluster: this replica's state differs from its authority's at #${info.seq} (digest ${info.actual}, expected ${info.expected}); resyncing [${ErrorCode.Diverged}]`);
    if (this._diverged) return;
    const timer = setTimeout(() => this._settled(null), 5000);
    this._diverged = { info, before, timer };
    try {
      this._client?.queue(JSON.stringify({ type: RESYNC, by: 'browser' }));
    } catch {
      // closed: the event still goes, without a path
    }
  }

  // An action kept for a resync's answer, applied on top of it (replay.js).
  _replayed = replaying((state, a) => this._reducer(state, a), SYNC);

  // `before`: this page's state at the same point of the stream as `authoritative` (the
  // state just before the resync), which the path compares; else the state at detection.
  _settled(authoritative, before) {
    const d = this._diverged;
    if (!d) return;
    this._diverged = null;
    clearTimeout(d.timer);
    if (authoritative !== null) d.info.path = firstDifference(before === undefined ? d.before : before, authoritative);
    this._emit('divergence', d.info);
  }

  /**
   * Queued for the server (kept while offline); applied here when it comes back in order
   * (with `optimistic`, shown at once, and confirmed then).
   */
  dispatch(action) {
    this._check(action);
    if (!this._client) return this._redux.dispatch(action);
    this._client.queue(JSON.stringify(action), undefined, action);
    return action;
  }

  /** Resolves `{ seq }` once the server ordered the action and it was applied here. */
  dispatchAsync(action, { timeout = 30000 } = {}) {
    try {
      this._check(action);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!this._client) {
      this._redux.dispatch(action);
      return Promise.resolve({ seq: 0 });
    }
    return this._client.queue(JSON.stringify(action), timeout, action);
  }

  _check(action) {
    if (!isPlainObject(action)) throw new ReduxClusterError(ErrorCode.InvalidAction, 'Actions must be plain objects.');
    if (typeof action.type !== 'string') throw new ReduxClusterError(ErrorCode.InvalidAction, 'Action "type" property must be a string.');
    if (action.type === SYNC) throw new ReduxClusterError(ErrorCode.InvalidAction, "Please don't use REDUX_CLUSTER_SYNC action type!");
    if (action.type.startsWith(GUARD)) throw new ReduxClusterError(ErrorCode.InvalidAction, `${action.type}: action types beginning with ${GUARD} are the divergence guard's`);
  }

  /**
   * Connects to a redux-cluster-rs WebSocket server: `{ host: 'ws://name' | 'wss://name',
   * port = 10002, path = '/', login, password }`, or to the first of several that
   * answers: `{ servers: ['wss://a.example', { host: 'wss://b.example', port }], ... }`
   * (the servers of a replicated store; the client moves on when its server goes).
   * `optimistic: true`: the page's own dispatches show in getState() at once, before the
   * server has ordered them (see Speculation). Returns `{ connected, pending, error,
   * server, disconnect() }`.
   */
  createWSClient(settings) {
    if (this._client) throw new ReduxClusterError(ErrorCode.AlreadyConnected, 'One storage cannot be connected to two servers at the same time.');
    const s = settings || {};
    let list = [{ host: s.host, port: s.port, path: s.path }];
    if (s.servers !== undefined) {
      if (!Array.isArray(s.servers) || s.servers.length === 0) throw new ReduxClusterError(ErrorCode.InvalidConfig, "servers must be a non-empty array of 'ws://host:port' URLs or { host, port, path }");
      list = s.servers.map((e) => (typeof e === 'string' ? { host: e } : e || {}));
    }
    const urls = list.map((e) => {
      if (typeof e.host !== 'string' || !/^wss?:\/\//.test(e.host)) throw new ReduxClusterError(ErrorCode.InvalidConfig, "host must be a ws:// or wss:// URL, e.g. 'ws://localhost'");
      const u = new URL(e.host);
      return `${u.protocol}//${u.hostname}:${u.port || e.port || 10002}${u.pathname !== '/' ? u.pathname : e.path || '/'}`;
    });
    if ((s.login === undefined) !== (s.password === undefined)) throw new ReduxClusterError(ErrorCode.InvalidConfig, 'login and password go together');
    const liveness = s.livenessTimeoutMs ?? 500;
    if (!Number.isInteger(liveness) || liveness < 20) throw new ReduxClusterError(ErrorCode.InvalidConfig, `livenessTimeoutMs must be an integer of at least 20, got ${liveness}`);
    const optimistic = s.optimistic ?? false;
    if (typeof optimistic !== 'boolean') throw new ReduxClusterError(ErrorCode.InvalidConfig, 'optimistic must be true or false');
    this._client = new WsClient(this, urls, s.login ?? '', s.password ?? '', liveness, optimistic);
    this.role.push('client');
    return this._client.handle();
  }
}

class WsClient {
  constructor(store, urls, login, password, livenessTimeoutMs, optimistic) {
    this.store = store;
    this.livenessTimeoutMs = livenessTimeoutMs;
    this.urls = urls;
    this.at = 0; // the server in use (an index in urls)
    this.tried = 0; // servers tried in vain since the last one that welcomed us
    this.login = login;
    this.password = password;
    this.clientId = randomId();
    this.epoch = 0n;
    this.delivered = 0; // the last sequence number applied here
    this.counter = 0; // the last dispatch counter given
    this.acked = 0; // the last dispatch counter the server said it ordered
    this.pending = []; // [counter, json], not yet acknowledged
    this.outbox = []; // [counter, json] queued in this turn, not sent yet
    this.waiting = new Map(); // counter -> waiter (until ordered)
    this.bySeq = []; // waiters that know their seq
    this.error = null;
    this.closed = false;
    this.ws = null;
    this.backoff = 100;
    this.inbox = Promise.resolve();
    // With `optimistic`: our own dispatches, shown before they are confirmed.
    this.spec = optimistic ? new Speculation(store, (code, message) => this.fail(code, message)) : null;
    this.connect();
  }

  handle() {
    const c = this;
    return {
      get connected() {
        return c.store.connected;
      },
      get pending() {
        return c.pending.length;
      },
      get error() {
        return c.error;
      },
      get server() {
        return c.urls[c.at];
      },
      disconnect: () => c.close(),
    };
  }

  fail(code, message) {
    this.error = new ReduxClusterError(code, message);
    try {
      this.store.stderr(`ReduxCluster.createWSClient: ${message}`);
    } catch {
      /* a throwing sink must not break the store */
    }
  }

  /** `action`: the store's own (shown at once with `optimistic`); a guard's request has none. */
  queue(json, timeout, action = null) {
    if (this.closed) throw new ReduxClusterError(ErrorCode.Closed, "the store's connection is closed");
    const counter = ++this.counter;
    this.pending.push([counter, json]);
    let p;
    if (timeout !== undefined) {
      p = new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiting.delete(counter);
          this.bySeq = this.bySeq.filter((w) => w.counter !== counter);
          reject(new ReduxClusterError(ErrorCode.Timeout, `the action was not acknowledged and applied within ${timeout} ms (it may still be applied later)`));
        }, timeout);
        this.waiting.set(counter, { counter, resolve, reject, timer });
      });
    }
    this.outbox.push([counter, json]);
    // Shown at once (before the frame is even made): a subscriber that dispatches in turn
    // adds to the outbox after this action, and the frame goes out in counter order.
    if (this.spec && action) {
      const entry = this.spec.speculate(action, counter, json);
      // A stopped client (refused login, ban, another store) sends nothing more: shown,
      // then dropped, as the actions it held when it stopped were.
      if (this.stopped) {
        const why = this.error ?? new ReduxClusterError(ErrorCode.Closed, 'the client stopped');
        queueMicrotask(() => this.spec?.rollback(why.code, why.message, [entry]));
      }
    }
    this.flush();
    return p;
  }

  // Sends what queue() left in the outbox (consecutive counters); offline, they wait in
  // `pending` for the next welcome.
  flush() {
    if (this.outbox.length === 0) return;
    const items = this.outbox;
    this.outbox = [];
    if (this.ready) this.send(this.dispatchFrame(items));
  }

  dispatchFrame(items) {
    const w = new Writer();
    w.u8(T.DISPATCH);
    w.u64(items[0][0]);
    w.u32(items.length);
    for (const [, json] of items) w.bytes(enc.encode(json));
    return w.frame();
  }

  send(frame) {
    try {
      this.ws.send(frame);
    } catch {
      /* closing: the queue is resent after the reconnect */
    }
  }

  connect() {
    if (this.closed) return;
    this.ready = false;
    let ws;
    const url = this.urls[this.at];
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.fail(ErrorCode.Connect, `cannot connect to ${url}: ${e.message}`);
      return this.retry();
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    // Bytes received and not yet a whole frame, in the messages they came in; joined once
    // `rxNeed` bytes are there (a frame's length), not copied again at every message.
    this.rxParts = [];
    this.rxHave = 0;
    this.rxNeed = 4;
    // Liveness: the server sends a heartbeat on an idle link; silent past the timeout, it
    // stopped without closing (paused, or a dead path) and the next server is tried.
    // Every heartbeat is answered at once, from the message event (not a timer, which a
    // background tab throttles), so the server sees this tab alive.
    // Silence is counted in this watch's ticks, each worth at most 1.5 ticks however late
    // it comes (as the engine's own watch does): a throttled or frozen tab stretches the
    // timeout instead of leaving a live server.
    let heard = true;
    let quiet = 0;
    let lastTick = Date.now();
    const tick = Math.max(10, Math.floor(this.livenessTimeoutMs / 5));
    const watch = setInterval(() => {
      const now = Date.now();
      const step = Math.min(now - lastTick, tick * 1.5);
      lastTick = now;
      quiet = heard || ws.readyState !== 1 ? 0 : quiet + step;
      heard = false;
      if (ws.readyState === 1 && quiet >= this.livenessTimeoutMs) {
        this.fail(ErrorCode.Timeout, `the server at ${url} stopped answering (no sign of life for ${Math.round(quiet)} ms); trying the next server`);
        lost();
        try {
          ws.close();
        } catch {
          /* already closing */
        }
      }
    }, tick);
    ws.onopen = () => {
      const w = new Writer();
      w.u8(T.HELLO);
      w.bytes(enc.encode(this.store.RCHash));
      w.u64(this.clientId);
      w.u64(this.epoch);
      w.u64(this.delivered);
      w.bytes(enc.encode(this.login));
      this.send(w.frame());
    };
    ws.onmessage = (ev) => {
      heard = true;
      if (typeof ev.data === 'string') return;
      // The server writes a large frame as many messages (of 4 KiB).
      const chunk = new Uint8Array(ev.data);
      this.rxParts.push(chunk);
      this.rxHave += chunk.length;
      if (this.rxHave < this.rxNeed) return;
      let buf = this.rxParts[0];
      if (this.rxParts.length > 1) {
        buf = new Uint8Array(this.rxHave);
        let at = 0;
        for (const p of this.rxParts) {
          buf.set(p, at);
          at += p.length;
        }
      }
      this.rxParts = [];
      this.rxHave = 0;
      this.rxNeed = 4;
      // Whole frames, handled one after another (an inflate is asynchronous).
      while (buf.length >= 4) {
        const len = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
        if (buf.length < 4 + len) {
          this.rxNeed = 4 + len;
          break;
        }
        const body = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        this.inbox = this.inbox.then(() => this.frame(ws, body)).catch((e) => {
          this.fail(e.code || ErrorCode.Protocol, e.message);
          ws.close();
        });
      }
      if (buf.length) {
        this.rxParts.push(buf);
        this.rxHave = buf.length;
      }
    };
    let gone = false;
    const lost = () => {
      clearInterval(watch);
      if (gone || this.ws !== ws) return;
      gone = true;
      this.store.connected = false;
      this.ready = false;
      this.retry();
    };
    ws.onclose = lost;
    // Browsers follow a failed connection's error with close; some WebSocket
    // implementations (Node 20's) do not, so an error before the socket opened counts too.
    ws.onerror = () => {
      if (ws.readyState !== 1) lost();
    };
  }

  // The next server at once; the backoff only after a whole round of them in vain.
  retry() {
    if (this.closed || this.stopped) return;
    this.at = (this.at + 1) % this.urls.length;
    this.tried += 1;
    if (this.tried < this.urls.length) return this.connect();
    this.tried = 0;
    const wait = this.backoff * (0.5 + Math.random());
    this.backoff = Math.min(this.backoff * 2, 5000);
    setTimeout(() => this.connect(), wait);
  }

  async frame(ws, body) {
    if (body[0] !== VERSION) throw new ReduxClusterError(ErrorCode.Protocol, `unsupported protocol version ${body[0]}`);
    let payload = body.subarray(2);
    if (body[1] & FLAG_DEFLATE) payload = await inflate(payload);
    const m = decode(payload);
    if (ws !== this.ws) return;
    switch (m.tag) {
      case T.CHALLENGE: {
        const p = await proof(this.password, m.nonce, this.clientId, this.store.RCHash, this.login);
        const w = new Writer();
        w.u8(T.AUTH);
        w.bytes(p);
        this.send(w.frame());
        break;
      }
      case T.WELCOME: {
        if (m.epoch !== this.epoch) {
          // A server that lost its history (not a move within a replicated store, whose
          // servers share an epoch): what the last one ordered and this page has not
          // applied yet is gone, never to be ordered again.
          if (this.spec && this.epoch !== 0n) {
            const lost = this.spec.entries.filter((e) => e.counter <= this.acked);
            this.spec.rollback(ErrorCode.Unavailable, 'the server that ordered the action lost its history before the action reached this page', lost);
          }
          this.delivered = 0;
        }
        this.epoch = m.epoch;
        this.store.mode = m.mode;
        this.backoff = 100;
        this.tried = 0;
        this.error = null;
        // What the server already ordered is dropped; the rest is resent, once.
        this.pending = this.pending.filter(([c]) => c > m.acked);
        this.ready = true;
        this.store.connected = true;
        for (let i = 0; i < this.pending.length; i += 1000) this.send(this.dispatchFrame(this.pending.slice(i, i + 1000)));
        break;
      }
      case T.ACK:
        this.pending = this.pending.filter(([c]) => c > m.counter);
        this.acked = Math.max(this.acked, m.counter);
        if (this.spec) {
          // Where our actions went may settle ones the stream already brought.
          this.spec.ordered(m.ordered, m.counter);
          this.spec.rebase(this.delivered);
        }
        for (const o of m.ordered) {
          for (let i = 0; i < o.count; i++) {
            const w = this.waiting.get(o.firstCounter + i);
            if (w) {
              this.waiting.delete(w.counter);
              w.seq = o.firstSeq + i;
              this.bySeq.push(w);
            }
          }
        }
        this.settle();
        break;
      case T.SNAPSHOT:
        if (this.spec) {
          this.delivered = m.seq;
          this.store._replay.rebase(m.seq);
          // A snapshot equal to the confirmed state (a server that answers a resume with
          // its state, a restarted one) changes nothing visible: no replay, no call to
          // subscribers. (Unless the guard found this page wrong: then it is the fix.)
          if (!this.store._diverged && m.state === JSON.stringify(this.spec.confirmed)) {
            this.spec.same(m.seq);
          } else {
            const state = JSON.parse(m.state);
            this.spec.reset(state, m.seq);
            this.store._settled(state);
          }
        } else {
          this.store._redux.dispatch({ type: SYNC, payload: JSON.parse(m.state) });
          this.store._settled(this.store.getState());
          this.delivered = m.seq;
          this.store._replay.rebase(m.seq);
        }
        this.settle();
        break;
      case T.ACTIONS: {
        if (m.firstSeq > this.delivered + 1) throw new ReduxClusterError(ErrorCode.Protocol, `actions from #${m.firstSeq} after #${this.delivered}: a gap`);
        const skip = this.delivered + 1 - m.firstSeq;
        if (this.spec) {
          const fresh = m.actions.slice(skip).map((t) => JSON.parse(t));
          this.delivered = Math.max(this.delivered, m.firstSeq + m.actions.length - 1);
          this.spec.take(fresh, m.firstSeq + skip - 1);
          this.settle();
          break;
        }
        for (let i = skip; i < m.actions.length; i++) {
          const a = JSON.parse(m.actions[i]);
          if (typeof a.type === 'string' && a.type.startsWith(GUARD)) {
            this.store._guard(a, m.firstSeq + i, this.store.getState());
            continue;
          }
          try {
            const before = this.store.getState();
            if (a.type === SYNC) {
              const after = this.store._replay.land(a, m.firstSeq + i, this.store._replayed);
              this.store._redux.dispatch({ type: SYNC, payload: after });
              this.store._settled(after, before);
            } else {
              this.store._replay.keep(m.firstSeq + i, a);
              this.store._redux.dispatch(a);
            }
          } catch (e) {
            this.fail(ErrorCode.Reducer, `the reducer threw on ${JSON.stringify(a.type)}: ${e.message}`);
          }
        }
        this.delivered = Math.max(this.delivered, m.firstSeq + m.actions.length - 1);
        this.settle();
        break;
      }
      case T.HEARTBEAT: {
        const w = new Writer();
        w.u8(T.HEARTBEAT);
        this.send(w.frame());
        break;
      }
      case T.ERROR:
        this.fail(m.code, m.message);
        if (FATAL.has(m.code)) {
          this.stopped = true;
          for (const w of [...this.waiting.values(), ...this.bySeq]) {
            clearTimeout(w.timer);
            w.reject(new ReduxClusterError(m.code, m.message));
          }
          this.waiting.clear();
          this.bySeq = [];
          if (this.spec) this.spec.rollback(m.code, m.message);
        }
        break;
      default:
        break;
    }
  }

  settle() {
    const left = [];
    for (const w of this.bySeq) {
      if (w.seq <= this.delivered) {
        clearTimeout(w.timer);
        w.resolve({ seq: w.seq });
      } else left.push(w);
    }
    this.bySeq = left;
  }

  async close() {
    this.closed = true;
    this.store.role = this.store.role.filter((r) => r !== 'client');
    this.store._client = null;
    this.store.connected = false;
    for (const w of [...this.waiting.values(), ...this.bySeq]) {
      clearTimeout(w.timer);
      w.reject(new ReduxClusterError(ErrorCode.Closed, 'the client was disconnected before the action was acknowledged and applied'));
    }
    this.waiting.clear();
    this.bySeq = [];
    // What the server did not confirm will not show here any more (the store is local now).
    if (this.spec) this.spec.rollback(ErrorCode.Closed, 'the client was disconnected before the action was acknowledged and applied');
    this.spec = null;
    if (this.ws) this.ws.close();
  }
}
