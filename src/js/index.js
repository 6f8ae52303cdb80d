'use strict';
// The JS layer of redux-cluster-rs: Redux semantics (from the `redux` package) on top of
// the native engine. The engine orders actions and moves them between processes; this
// file applies them, in order, to an ordinary Redux store.

const redux = require('redux');
const crypto = require('node:crypto');
const { EventEmitter } = require('node:events');
const os = require('node:os');
const path = require('node:path');
const ipc = require('./ipc.js');
const { backup } = require('./backup.js');
const { ClassCodec } = require('./protoobject.js');
const { Waiters, waiter } = require('./waiters.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');
const { reducers, loadReducer, NativeReducerSpec } = require('./reducers.js');
const metrics = require('./metrics.js');
const pkg = require('../../package.json');
const native = require('./native.js');

// redux-cluster 2.0's enums (TypeScript string enums are plain objects at run time).
const SerializationMode = Object.freeze({ JSON: 'json', PROTOOBJECT: 'protoobject' });
const MessageType = Object.freeze({
  CONN_STATUS: 'REDUX_CLUSTER_CONNSTATUS',
  MSG_TO_WORKER: 'REDUX_CLUSTER_MSGTOWORKER',
  MSG_TO_MASTER: 'REDUX_CLUSTER_MSGTOMASTER',
  SOCKET_AUTH: 'REDUX_CLUSTER_SOCKET_AUTH',
  SOCKET_AUTH_STATE: 'REDUX_CLUSTER_SOCKET_AUTHSTATE',
  START: 'REDUX_CLUSTER_START',
  SYNC: 'REDUX_CLUSTER_SYNC',
});
const SYNC = MessageType.SYNC;
// A resync (sendtoall without a message) retries this many times when clients' actions
// are ordered between reading the state and ordering it; see _resync.
const RESYNC_TRIES = 5;
// What Redux itself uses as the interop key (Node has no Symbol.observable of its own).
const $$observable = (typeof Symbol === 'function' && Symbol.observable) || '@@observable';
// Actions handed to JS per pull; between pulls the event loop runs, so timers and I/O
// are not starved by a long stream of actions.
const POLL_MAX = 8192;
const ENGINE_KEYS = [
  'maxFrameSize',
  'compressThreshold',
  'queueLimit',
  'logRetention',
  'reconnectInitialMs',
  'reconnectMaxMs',
  'handshakeTimeoutMs',
  'livenessTimeoutMs',
  'heartbeatIntervalMs',
];


function hasher(data, algorithm = 'md5') {
  if (typeof data !== 'string') return undefined;
  return crypto.createHash(algorithm).update(data).digest('hex');
}

function kindOf(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function isPlainObject(obj) {
  if (typeof obj !== 'object' || obj === null) return false;
  const proto = Object.getPrototypeOf(obj);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

// Errors after which a client stops (see FATAL_CODES in src/store/client.rs).
const CLIENT_FATAL = new Set([ErrorCode.StoreMismatch, ErrorCode.Auth, ErrorCode.Banned]);

function readTimeout(options) {
  if (options === undefined || options === null) return 30000;
  if (typeof options !== 'object') {
    throw new ReduxClusterError(ErrorCode.InvalidArgument, `dispatchAsync options must be an object, got ${kindOf(options)}`);
  }
  const { timeout = 30000 } = options;
  if (!(typeof timeout === 'number' && timeout > 0 && timeout <= 2 ** 31 - 1)) {
    throw new ReduxClusterError(ErrorCode.InvalidArgument, `timeout must be a number of milliseconds between 1 and ${2 ** 31 - 1}, got ${timeout}`);
  }
  return timeout;
}

const CLUSTER_KEYS = new Set(['nodeName', 'seeds', 'advertiseHost', 'advertisePort', 'ca', 'dataDir', 'secret', 'electionTimeout', 'heartbeatInterval', 'snapshotThreshold', 'bootstrap']);

// createServer's `cluster`: the server joins its store's Raft group.
function readCluster(c) {
  if (c === undefined || c === null) return null;
  if (typeof c !== 'object') throw invalid('cluster must be an object { nodeName, seeds, dataDir, ... }');
  for (const k of Object.keys(c)) {
    if (k === 'host' || k === 'port') {
      throw invalid(`cluster.${k} is not an option: the servers of a replicated store reach each other on the port that serves its clients (use advertiseHost / advertisePort when they must dial another address)`);
    }
    if (!CLUSTER_KEYS.has(k)) throw invalid(`cluster.${k} is not an option`);
  }
  if (typeof c.nodeName !== 'string' || c.nodeName === '') throw invalid('cluster.nodeName must be a non-empty string');
  if (c.seeds !== undefined && !(Array.isArray(c.seeds) && c.seeds.every((s) => typeof s === 'string'))) {
    throw invalid("cluster.seeds must be an array of 'name@host:port'");
  }
  for (const k of ['advertiseHost', 'dataDir', 'secret']) {
    if (c[k] !== undefined && typeof c[k] !== 'string') throw invalid(`cluster.${k} must be a string`);
  }
  if (c.snapshotThreshold !== undefined && !(Number.isInteger(c.snapshotThreshold) && c.snapshotThreshold >= 1 && c.snapshotThreshold <= 0xffffffff)) {
    throw invalid('cluster.snapshotThreshold must be an integer of at least 1');
  }
  for (const k of ['advertisePort', 'electionTimeout', 'heartbeatInterval']) {
    if (c[k] !== undefined && !(Number.isInteger(c[k]) && c[k] >= 0 && c[k] <= 65535)) throw invalid(`cluster.${k} must be an integer`);
  }
  if (c.bootstrap !== undefined && typeof c.bootstrap !== 'boolean') throw invalid('cluster.bootstrap must be a boolean');
  return { ...c, ca: pem(c.ca, 'cluster.ca') };
}

function checkAction(action) {
  if (!isPlainObject(action)) {
    throw new ReduxClusterError(
      ErrorCode.InvalidAction,
      `Actions must be plain objects. Instead, the actual type was: '${kindOf(action)}'.`
    );
  }
  if (action.type === undefined) {
    throw new ReduxClusterError(
      ErrorCode.InvalidAction,
      'Actions may not have an undefined "type" property. You may have misspelled an action type string constant.'
    );
  }
  if (typeof action.type !== 'string') {
    throw new ReduxClusterError(
      ErrorCode.InvalidAction,
      `Action "type" property must be a string. Instead, the actual type was: '${kindOf(action.type)}'.`
    );
  }
  if (action.type === SYNC) {
    throw new ReduxClusterError(ErrorCode.InvalidAction, "Please don't use REDUX_CLUSTER_SYNC action type!");
  }
}

function invalid(message) {
  return new ReduxClusterError(ErrorCode.InvalidConfig, `invalid configuration: ${message}`);
}

function readConfig(config) {
  if (config === undefined || config === null) config = {};
  if (typeof config !== 'object') throw invalid('the store config must be an object');
  const mode = config.mode === undefined ? 'action' : checkMode(config.mode);
  const serializationMode = config.serializationMode === undefined ? 'json' : config.serializationMode;
  if (serializationMode !== 'json' && serializationMode !== 'protoobject') {
    throw invalid(`serializationMode must be 'json' or 'protoobject', got ${JSON.stringify(serializationMode)}`);
  }
  const resync = config.resync === undefined ? 1000 : config.resync;
  if (typeof resync !== 'number' || !(resync > 0)) throw invalid('resync must be a positive number');
  if (config.stderr !== undefined && typeof config.stderr !== 'function') throw invalid('stderr must be a function');
  const engine = {};
  for (const k of ENGINE_KEYS) {
    if (config[k] === undefined) continue;
    if (typeof config[k] !== 'number') throw invalid(`${k} must be a number`);
    engine[k] = config[k];
  }
  return { mode, serializationMode, resync, debug: !!config.debug, stderr: config.stderr, engine };
}

function checkMode(mode) {
  if (mode !== 'action' && mode !== 'snapshot') throw invalid(`mode must be 'action' or 'snapshot', got ${JSON.stringify(mode)}`);
  return mode;
}

function readAddress(settings, what, defaultPort = 10001) {
  if (settings === undefined || settings === null) settings = {};
  if (typeof settings !== 'object') throw invalid(`${what} settings must be an object`);
  const { host, port, path } = settings;
  if (path !== undefined && typeof path !== 'string') throw invalid('path must be a string');
  if (host !== undefined && typeof host !== 'string') throw invalid('host must be a string');
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw invalid(`port must be an integer in 0..65535, got ${JSON.stringify(port)}`);
  }
  // A WebSocket server (host 'ws://name') has a port and a URL path; a Unix socket only a path.
  const ws = typeof host === 'string' && /^wss?:\/\//.test(host);
  return { host: host ?? null, port: path !== undefined && !ws ? null : port ?? defaultPort, path: path ?? null };
}

// A client's servers: `servers: [{ host, port } | { path }, ...]`, or one server given as
// `{ host, port }` / `{ path }` as in redux-cluster.
function readServers(settings) {
  const list = settings && settings.servers;
  if (list === undefined) return [readAddress(settings, 'client')];
  const { host, port, path } = settings;
  if (host !== undefined || port !== undefined || path !== undefined) {
    throw invalid('give either servers or host/port/path, not both');
  }
  if (!Array.isArray(list) || list.length === 0) throw invalid('servers must be a non-empty array of { host, port } or { path }');
  return list.map((s, i) => {
    if (typeof s !== 'object' || s === null) throw invalid(`servers[${i}] must be { host, port } or { path }`);
    return readAddress(s, `servers[${i}]`);
  });
}

function pem(v, what) {
  if (v === undefined) return undefined;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v !== 'string') throw invalid(`${what} must be a PEM string or Buffer`);
  return v;
}

function readTls(tls, side) {
  if (tls === undefined || tls === false) return {};
  if (tls === true && side === 'client') return { tls: true };
  if (typeof tls !== 'object' || tls === null) throw invalid(`tls must be ${side === 'client' ? 'true or ' : ''}an object`);
  const out = { tls: true, tlsCa: pem(tls.ca, 'tls.ca'), tlsCert: pem(tls.cert, 'tls.cert'), tlsKey: pem(tls.key, 'tls.key') };
  if (side === 'server' && (out.tlsCert === undefined || out.tlsKey === undefined)) throw invalid('tls needs cert and key');
  return out;
}

function readAccess(settings) {
  const { logins, ban } = settings || {};
  // redux-cluster-ws names its TLS settings `ssl: { key, cert, ca }`.
  const tlsSetting = settings && settings.tls === undefined && settings.ssl !== undefined ? settings.ssl : (settings || {}).tls;
  const { tlsCa, tlsCert, tlsKey } = readTls(tlsSetting, 'server');
  if (logins !== undefined && (typeof logins !== 'object' || logins === null)) throw invalid('logins must be an object of login: password');
  for (const [k, v] of Object.entries(logins || {})) {
    if (typeof v !== 'string') throw invalid(`the password of login ${JSON.stringify(k)} must be a string`);
  }
  if (ban !== undefined && (typeof ban !== 'object' || ban === null)) throw invalid('ban must be an object { attempts, durationMs }');
  const { attempts, durationMs } = ban || {};
  if (attempts !== undefined && !(Number.isInteger(attempts) && attempts >= 1)) throw invalid('ban.attempts must be an integer >= 1');
  if (durationMs !== undefined && !(typeof durationMs === 'number' && durationMs >= 0)) throw invalid('ban.durationMs must be a number >= 0');
  const { limit, limitPerAddress } = settings || {};
  for (const [name, v] of [['limit', limit], ['limitPerAddress', limitPerAddress]]) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw invalid(`${name} must be an integer of at least 1`);
  }
  return { logins, banAttempts: attempts, banDurationMs: durationMs, tlsCa, tlsCert, tlsKey, limit, limitPerAddress };
}

function readSecurity(settings) {
  const { login, password, tls } = settings || {};
  if ((login !== undefined || password !== undefined) && (typeof login !== 'string' || typeof password !== 'string')) {
    throw invalid('login and password must both be strings');
  }
  return { login, password, ...readTls(tls, 'client') };
}

// One WebSocket endpoint: 'ws://h:1234/sync' carries its own port and path; else `port`
// (10002) and `path`.
function wsEndpoint(e) {
  if (!e || typeof e !== 'object' || typeof e.host !== 'string' || !/^wss?:\/\/[^/]/.test(e.host)) {
    throw invalid("host must be a ws:// or wss:// URL, e.g. 'ws://localhost'");
  }
  let url;
  try {
    url = new URL(e.host);
  } catch {
    throw invalid(`host ${JSON.stringify(e.host)} is not a URL`);
  }
  return {
    host: `${url.protocol}//${url.hostname}`,
    port: url.port ? Number(url.port) : e.port ?? 10002,
    path: url.pathname !== '/' ? url.pathname : e.path,
  };
}

class ReduxCluster {
  constructor(reducer, config) {
    const isNative = reducer instanceof NativeReducerSpec;
    if (typeof reducer !== 'function' && !isNative) {
      throw new ReduxClusterError(
        ErrorCode.InvalidConfig,
        `Expected the root reducer to be a function (or one of reducers.* / loadReducer()). Instead, received: '${kindOf(reducer)}'`
      );
    }
    const cfg = readConfig(config);
    // A reducer in the engine: its state lives in Rust; JS reads it once per change.
    this._native = isNative ? reducer.create() : null;
    /** md5 of the reducer's name: stores sync only with stores of the same reducer. */
    this.RCHash = hasher(isNative ? this._native.identity : reducer.name || '');
    this.version = pkg.version;
    this.homepage = pkg.homepage;
    this.role = [];
    this._mode = cfg.mode;
    this.connected = false;
    this.resync = cfg.resync;
    this.stderr = cfg.stderr || console.error;
    // As redux-cluster: the defaults, then the caller's options.
    this.config = Object.freeze({
      ...(config || {}),
      serializationMode: cfg.serializationMode,
      debug: config && config.debug !== undefined ? config.debug : false,
    });
    // What crosses the wire: plain JSON, or JSON with class tags ('protoobject').
    this._codec = cfg.serializationMode === 'protoobject' ? new ClassCodec((m) => this._error(m)) : null;
    this._encode = this._codec ? this._codec.encode : JSON.stringify;
    this._decode = this._codec ? this._codec.decode : JSON.parse;
    this._engine = cfg.engine;
    if (this._native) {
      if (cfg.serializationMode !== 'json') throw invalid("a native reducer's state is JSON: serializationMode must be 'json'");
      this._reducer = null;
      this._redux = null;
      this._listeners = new Set();
      this._stateVersion = -1;
      this._state = undefined;
    } else {
      this._reducer = reducer;
      this._redux = redux.legacy_createStore((state, action) =>
        action.type === SYNC ? action.payload : this._reducer(state, action)
      );
    }
    this._authority = null; // set while this store serves (it orders actions)
    this._seq = 0; // last sequence number applied, while serving
    this._servers = new Set();
    this._client = null; // set while this store is a client
    this._clientError = null;
    this._pumpQueued = false;
    this._publishQueued = false;
    this._outgoing = []; // client dispatches not yet handed to the engine
    this._outgoingWaiters = []; // [index in _outgoing, dispatchAsync waiter]
    this._waiters = new Waiters((code, message) => new ReduxClusterError(code, message));
    this._clientSeq = 0; // on a client: the last sequence number applied here
    this._localSeq = 0; // on a store that neither serves nor is a client: dispatches so far
    this._clustered = false; // a replicated server: the Raft group orders its actions
    this._ownOutgoing = []; // a replicated server's own actions not yet proposed
    this._ownWaiters = []; // [index in _ownOutgoing, dispatchAsync waiter]
    this._clientPending = 0; // engine-side queue length, as last seen
    this._maxFrame = cfg.engine.maxFrameSize ?? 256 * 1024 * 1024;
    this._queueLimit = cfg.engine.queueLimit ?? 1000000;
    this._ipcWaiting = false; // a cluster worker's store, until the primary's socket path arrives
    this._ipcServer = null; // a cluster primary's socket for its workers
    this._flushOutgoing = this._flushOutgoing.bind(this);
    this._publish = () => {
      this._publishQueued = false;
      if (this._authority) this._authority.flush();
    };
    // Redux store methods work when detached from the store (`const { dispatch } = store`).
    this.dispatch = this.dispatch.bind(this);
    this._ownDispatch = this.dispatch;
    this._incoming = null; // see createWSClient: a dispatch wrapper that sees incoming actions
    this._incomingAction = null; // the action that wrapper is handed, while it runs
    this.getState = this.getState.bind(this);
    this.subscribe = this.subscribe.bind(this);
    this.replaceReducer = this.replaceReducer.bind(this);
    ipc.attach(this);
  }

  /** 'action' or 'snapshot'; read when the store starts serving. */
  get mode() {
    return this._mode;
  }

  set mode(mode) {
    this._mode = checkMode(mode);
  }

  getState() {
    if (!this._native) return this._redux.getState();
    // Made from the engine's JSON once per change of the state, then the same object.
    const t = this._native.stateSince(this._stateVersion);
    if (t !== null) {
      this._state = JSON.parse(t.json);
      this._stateVersion = t.version;
    }
    return this._state;
  }

  subscribe(listener) {
    if (!this._native) return this._redux.subscribe(listener);
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

  // A native store's listeners, once per applied batch (as Redux calls them per dispatch).
  _notify() {
    for (const { listener } of [...this._listeners]) {
      try {
        listener();
      } catch (e) {
        this._error(`ReduxCluster: a subscriber threw: ${e && e.stack ? e.stack : e}`);
      }
    }
  }

  replaceReducer(nextReducer) {
    if (this._native) {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, "invalid configuration: a native reducer's state lives in the engine; it cannot be replaced");
    }
    if (typeof nextReducer !== 'function') {
      throw new ReduxClusterError(
        ErrorCode.InvalidConfig,
        `Expected the nextReducer to be a function. Instead, received: '${kindOf(nextReducer)}'`
      );
    }
    this._reducer = nextReducer;
    this._redux.replaceReducer((state, action) =>
      action.type === SYNC ? action.payload : this._reducer(state, action)
    );
  }

  [$$observable]() {
    if (!this._native) return this._redux[$$observable]();
    const store = this;
    return {
      subscribe(observer) {
        if (typeof observer !== 'object' || observer === null) throw new TypeError('Expected the observer to be an object.');
        const next = () => observer.next && observer.next(store.getState());
        next();
        return { unsubscribe: store.subscribe(next) };
      },
      [$$observable]() {
        return this;
      },
    };
  }

  /**
   * On a client, queues the action for the server and returns at once; the action is
   * applied here when it comes back in order. On a server (or a standalone store) it is
   * ordered and applied at once, as in Redux.
   */
  dispatch(action) {
    // An incoming action handed back by the wrapper of createWSClient: apply it here.
    if (action === this._incomingAction && action !== null) return this._redux.dispatch(action);
    checkAction(action);
    if (this._client || this._ipcWaiting) {
      this._enqueue(this._encode(action));
      return action;
    }
    if (this._clustered) {
      // A replicated server's own action is ordered by the group, like a client's: it
      // is applied here when the committed log brings it back.
      this._enqueueOwn(this._encode(action));
      return action;
    }
    if (this._native) {
      this._applyNative(action);
      return action;
    }
    if (this._authority) {
      const seq = this._authority.submit(this._encode(action));
      // Actions from clients ordered before this one are applied first.
      if (seq !== this._seq + 1) this._drainTo(seq - 1);
      this._seq = seq;
      if (!this._publishQueued) {
        // Connections are woken once per synchronous burst of dispatches, not per action.
        this._publishQueued = true;
        queueMicrotask(this._publish);
      }
      return this._redux.dispatch(action);
    }
    this._localSeq += 1;
    return this._redux.dispatch(action);
  }

  /**
   * Dispatches and resolves `{ seq }` once the action is ordered (acknowledged by the
   * server, on a client) and applied to this store, so `getState()` includes it. On a
   * server or a standalone store that is at once. Rejects with `err.code`:
   * ERR_INVALID_ACTION, ERR_QUEUE_FULL, ERR_FRAME_TOO_LARGE, ERR_TIMEOUT (after
   * `timeout` ms, default 30000; the action may still be applied later), ERR_CLOSED (the
   * client was disconnected first), or the code that stopped the client (ERR_AUTH, ...).
   */
  dispatchAsync(action, options) {
    try {
      const timeout = readTimeout(options);
      checkAction(action);
      if (this._client || this._ipcWaiting) {
        const w = waiter(timeout);
        this._enqueue(this._encode(action), w);
        return w.promise;
      }
      if (this._clustered) {
        const w = waiter(timeout);
        this._enqueueOwn(this._encode(action), w);
        return w.promise;
      }
      if (this._native) return Promise.resolve({ seq: this._applyNative(action, true) });
      this.dispatch(action);
      return Promise.resolve({ seq: this._authority ? this._seq : this._localSeq });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // A client's dispatches are checked here, synchronously, and handed to the engine in
  // one batch per synchronous burst (a microtask later): one boundary crossing for a
  // whole dispatch loop instead of one per action.
  _enqueue(json, waiter = null) {
    if (this._clientClosing) {
      throw new ReduxClusterError(ErrorCode.Closed, "the store's connection is closed");
    }
    if (json.length * 3 + 32 > this._maxFrame && Buffer.byteLength(json) + 32 > this._maxFrame) {
      throw new ReduxClusterError(
        ErrorCode.FrameTooLarge,
        `action of ${Buffer.byteLength(json)} bytes exceeds the maximum frame size of ${this._maxFrame} bytes`
      );
    }
    if (this._clientPending + this._outgoing.length >= this._queueLimit) {
      if (this._client) this._clientPending = this._client.pending; // acknowledgements may have made room
      if (this._clientPending + this._outgoing.length >= this._queueLimit) {
        throw new ReduxClusterError(
          ErrorCode.QueueFull,
          `${this._queueLimit} actions are already waiting for the server (the queue limit); dispatch refused`
        );
      }
    }
    if (waiter) this._outgoingWaiters.push([this._outgoing.length, waiter]);
    this._outgoing.push(json);
    if (this._outgoing.length === 1) queueMicrotask(this._flushOutgoing);
  }

  _flushOutgoing() {
    const batch = this._outgoing;
    if (batch.length === 0 || !this._client) return;
    const waiters = this._outgoingWaiters;
    this._outgoing = [];
    this._outgoingWaiters = [];
    // Before the batch is queued, so that no acknowledgement of it can pass unseen.
    if (waiters.length > 0 && !this._tracking) {
      this._client.trackOrdered(true);
      this._tracking = true;
    }
    let queued;
    try {
      queued = this._client.dispatchBatch('[' + batch.join(',') + ']');
    } catch (e) {
      this._error(`ReduxCluster.createClient: ${batch.length} actions could not be queued: ${e.message} (${e.code})`);
      for (const [, w] of waiters) w.reject(new ReduxClusterError(e.code || ErrorCode.Internal, e.message));
      return;
    }
    this._clientPending = queued.pending;
    const first = queued.lastCounter - batch.length + 1;
    for (const [i, w] of waiters) this._waiters.add(first + i, w);
  }

  // A native store that orders its own actions (standalone, or a single server): the
  // engine applies the action now. A refusal is reported (and thrown for dispatchAsync);
  // on a server the action stays ordered, and every replica refuses it alike.
  _applyNative(action, strict = false) {
    const json = JSON.stringify(action);
    let seq;
    try {
      seq = this._authority ? this._authority.submit(json) : this._native.apply(json);
    } catch (e) {
      if (e.code !== ErrorCode.Reducer) throw new ReduxClusterError(e.code || ErrorCode.Internal, e.message);
      this._error(`ReduxCluster: the reducer refused ${JSON.stringify(action.type)}: ${e.message}`);
      if (this._authority) this._publishSoon();
      this._notify();
      if (strict) throw new ReduxClusterError(ErrorCode.Reducer, e.message);
      return this._native.seq;
    }
    this._seq = seq;
    if (this._authority) this._publishSoon();
    this._notify();
    return seq;
  }

  _publishSoon() {
    if (!this._publishQueued) {
      this._publishQueued = true;
      queueMicrotask(this._publish);
    }
  }

  /**
   * Restores the state from `path` if the file exists, then keeps it written there.
   * Resolves to true; rejects with code ERR_BACKUP_CORRUPT for a tampered file or a wrong
   * key (nothing is loaded then).
   */
  backup(options) {
    return backup(this, options);
  }

  // A state restored from a backup: on a server it is ordered like any action, so every
  // replica replaces its state at the same point.
  _restore(state) {
    if (this._clustered) {
      this._enqueueOwn(this._encode({ type: SYNC, payload: state }));
      return;
    }
    if (this._native) {
      // The engine takes a sync's payload as the new state (ordered, on a server).
      this._applyNative({ type: SYNC, payload: state }, true);
      return;
    }
    if (this._authority) {
      const seq = this._authority.submit(this._encode({ type: SYNC, payload: state }));
      if (seq !== this._seq + 1) this._drainTo(seq - 1);
      this._seq = seq;
      this._authority.flush();
    }
    this._applySync(state);
  }

  /**
   * redux-cluster's broadcast to node:cluster workers. Here workers and socket clients are
   * replicas of one ordered stream, so this and `sendtoallsock` do the same:
   * - no message: every replica takes this store's current state (a resync);
   * - `{ _msg: MSG_TO_WORKER, _hash: store.RCHash, _action }`: the action is ordered and
   *   applied by every replica, this store included (a REDUX_CLUSTER_SYNC action with a
   *   `payload` replaces the state everywhere);
   * - any other message, or another store's hash: ignored, as redux-cluster's workers do.
   * A store that serves no one (standalone, client, worker) has no one to send to.
   */
  sendtoall(message) {
    this._broadcast(message);
  }

  /** redux-cluster's broadcast to socket clients; the same as `sendtoall` here. */
  sendtoallsock(message) {
    this._broadcast(message);
  }

  _broadcast(message) {
    if (!this._authority) return;
    if (message === undefined || message === null) {
      this._resync();
      return;
    }
    if (typeof message !== 'object' || message._msg !== MessageType.MSG_TO_WORKER || message._hash !== this.RCHash) return;
    const action = message._action;
    if (action !== null && typeof action === 'object' && action.type === SYNC) {
      if (action.payload === undefined) {
        throw new ReduxClusterError(ErrorCode.InvalidAction, 'a REDUX_CLUSTER_SYNC action needs the state as its payload');
      }
      this._restore(action.payload);
      return;
    }
    this.dispatch(action);
  }

  // Every replica takes this store's state. It is ordered like an action; if clients'
  // actions were ordered between reading the state and ordering it, the replicas apply
  // them before a state that lacks them, so it is read and sent again (each later state
  // includes them). Past RESYNC_TRIES such races this store takes the last state sent,
  // as the replicas do: the same state everywhere comes first.
  _resync() {
    if (this._clustered) {
      // Ordered by the group after everything this server has applied: every replica
      // takes this state at the same point.
      this._enqueueOwn(this._encode({ type: SYNC, payload: this.getState() }));
      return;
    }
    const a = this._authority;
    if (this._native) {
      // The replicas of a native store apply the same actions in the engine, so they
      // cannot drift; a resync still sends the state, ordered like any action.
      this._applyNative({ type: SYNC, payload: this.getState() });
      return;
    }
    for (let i = 1; ; i++) {
      this._drainTo(Number.MAX_SAFE_INTEGER);
      const state = this.getState();
      const seq = a.submit(this._encode({ type: SYNC, payload: state }));
      if (seq === this._seq + 1) {
        this._seq = seq;
        break;
      }
      this._drainTo(seq - 1);
      this._seq = seq;
      if (i === RESYNC_TRIES) {
        this._applySync(state);
        break;
      }
    }
    a.flush();
  }

  /**
   * serializationMode 'protoobject': instances of `cls` cross the wire tagged `name` and
   * are rebuilt with `new cls(fields)` on the receiving side (register it on every
   * process). In 'json' mode it is ignored with a warning, as in redux-cluster.
   */
  registerClass(name, cls) {
    if (typeof name !== 'string' || name === '') throw invalid('registerClass needs a class name (a non-empty string)');
    if (typeof cls !== 'function') throw invalid(`registerClass(${JSON.stringify(name)}) needs a class (a constructor function)`);
    if (!this._codec) {
      process.emitWarning('registerClass() is only available in ProtoObject mode', {
        type: 'ReduxClusterWarning',
        code: 'REDUX_CLUSTER_JSON_MODE',
      });
      return;
    }
    this._codec.register(name, cls);
  }

  /** The class names known to this store's 'protoobject' codec; [] in 'json' mode. */
  getRegisteredClasses() {
    return this._codec ? this._codec.names() : [];
  }

  createServer(settings) {
    const addr = readAddress(settings, 'server');
    const cluster = readCluster(settings && settings.cluster);
    if (cluster) {
      if (this._authority) {
        throw invalid('cluster: a replicated server must be the first server of its store');
      }
      if (this._client || this._ipcWaiting) {
        throw new ReduxClusterError(ErrorCode.InvalidConfig, 'invalid configuration: a client store cannot also be a server');
      }
      if (addr.path) throw invalid('cluster: a replicated server listens on TCP (host, port), not on a Unix path');
      const access = readAccess(settings);
      // Binds the port here: it serves the store's clients and the other servers alike.
      this._authority = native.NativeAuthority.clustered(
        this.RCHash,
        this.mode,
        this._native ? '' : this._encode(this.getState()),
        this._engine,
        cluster,
        addr.host,
        addr.port,
        access,
        () => this._pump(),
        this._native
      );
      this._seq = 0;
      this._clustered = true;
      const server = this._listen(addr, access);
      if (!this.role.includes('server')) this.role.push('server');
      return this._withHttp(server, settings);
    }
    const server = this._listen(addr, readAccess(settings));
    if (!this.role.includes('server')) this.role.push('server');
    return this._withHttp(server, settings);
  }

  // `http: { port, host }`: /metrics (Prometheus), /metrics.json, /events and the
  // dashboard, on their own port, closed with the server.
  _withHttp(server, settings) {
    const h = settings && settings.http;
    if (h === undefined || h === null) return server;
    if (typeof h !== 'object' || !(h.port === undefined || (Number.isInteger(h.port) && h.port >= 0 && h.port <= 65535))) {
      server.close();
      throw invalid('http must be { port, host }');
    }
    server.dashboard = metrics.serve(this, h);
    return server;
  }

  /**
   * Serves this store to WebSocket clients (browsers, createWSClient): redux-cluster-ws's
   * createWSServer, with the same ordering, acknowledgements and resume as TCP.
   * Settings: host ('0.0.0.0'), port (10002), logins, ban, tls (or ssl), origin (an
   * allow-list of Origin headers), trustProxy (proxy addresses whose X-Forwarded-For is
   * believed), limit (most connections at once).
   */
  createWSServer(settings) {
    const s = settings === undefined || settings === null ? {} : settings;
    if (typeof s !== 'object') throw invalid('WebSocket server settings must be an object');
    if (s.path !== undefined) throw invalid('a WebSocket server listens on TCP (host, port), not a Unix path');
    if (s.server !== undefined) throw invalid('server (an HTTP server to attach to) is not supported: give host and port; the engine serves the upgrade itself');
    const addr = readAddress(s, 'WebSocket server', 10002);
    const list = (v, what) => {
      if (v === undefined) return undefined;
      const a = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) throw invalid(`${what} must be a string or an array of strings`);
      return a;
    };
    if (s.limit !== undefined && !(Number.isInteger(s.limit) && s.limit >= 1)) throw invalid('limit must be an integer of at least 1');
    const ws = { origin: list(s.origin, 'origin'), trustProxy: list(s.trustProxy, 'trustProxy'), limit: s.limit };
    // `limit` is the upgrade's (counted before the handshake, refused with HTTP 503).
    const server = this._listen(addr, { ...readAccess(s), limit: undefined }, ws);
    server._ws = true;
    if (!this.role.includes('server')) this.role.push('server');
    return this._withHttp(server, s);
  }

  /**
   * Connects this store to a WebSocket server: redux-cluster-ws's createWSClient
   * ({ host: 'ws://name' or 'wss://name', port = 10002, path, login, password }), with
   * createClient's guarantees (numbered dispatches, offline queue, resume).
   */
  createWSClient(settings) {
    const s = settings === undefined || settings === null ? {} : settings;
    if (typeof s !== 'object') throw invalid('WebSocket client settings must be an object');
    // redux-cluster-ws's reconnectInterval and timeout are taken and not needed: the
    // engine reconnects with backoff (reconnectInitialMs / reconnectMaxMs).
    const { host, port, path, servers, reconnectInterval, timeout, ...rest } = s;
    // `servers` lists several endpoints (the servers of a replicated store): the client
    // moves to the next one when its server dies or is cut off, as createClient does.
    let list = [{ host, port, path }];
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0) throw invalid("servers must be a non-empty array of 'ws://host:port' URLs or { host, port, path }");
      if (host !== undefined) throw invalid('give host or servers, not both');
      list = servers.map((e) => (typeof e === 'string' ? { host: e } : e));
    }
    const wrapper = this.dispatch !== this._ownDispatch && !this._native ? this.dispatch : null;
    const client = this.createClient({ ...rest, servers: list.map(wsEndpoint) });
    if (wrapper) {
      // As redux-cluster-ws: the wrapper now sees what arrives, and `dispatch` sends.
      this._incoming = wrapper;
      this.dispatch = this._ownDispatch;
    }
    return client;
  }

  _listen(addr, access = null, ws = null) {
    if (this._client || this._ipcWaiting) {
      // A relay (client of one server, server to others) would need two orderings.
      throw new ReduxClusterError(ErrorCode.InvalidConfig, 'invalid configuration: a client store cannot also be a server');
    }
    if (!this._authority) {
      this._authority = new native.NativeAuthority(
        this.RCHash,
        this.mode,
        this._native ? '' : this._encode(this.getState()),
        this._engine,
        () => this._pump(),
        this._native
      );
      this._seq = 0;
    }
    let listener;
    try {
      listener = this._authority.listen(addr.host, addr.port, addr.path, access, ws ?? undefined);
    } catch (e) {
      if (this._servers.size === 0) this._dropAuthority();
      throw e;
    }
    const server = new ClusterServer(this, listener, addr);
    this._servers.add(server);
    return server;
  }

  // node:cluster primary: the Unix socket its workers connect to, made on first request.
  _ipcPath() {
    if (!this._ipcServer) {
      const p = path.join(os.tmpdir(), `redux-cluster-rs-${process.pid}-${this.RCHash.slice(0, 16)}.sock`);
      this._ipcServer = this._listen({ host: null, port: null, path: p });
    }
    return this._ipcServer.path;
  }

  _closeIpcServer() {
    const s = this._ipcServer;
    this._ipcServer = null;
    if (s) s.close().catch((e) => this._error(`ReduxCluster: ${e.message}`));
  }

  // node:cluster worker: connect to the primary's socket; queued dispatches follow.
  _connectIpc(p) {
    this._ipcWaiting = false;
    this._connect([{ host: null, port: null, path: p }]);
    this._flushOutgoing();
  }

  _dropIpc() {
    this._ipcWaiting = false;
    this._outgoing = [];
    this._rejectOutgoing(ErrorCode.Closed, 'the primary went away before the action could be sent');
    if (this.role.includes('worker')) {
      this.role = this.role.filter((r) => r !== 'worker');
      if (this._client) {
        this._client.shutdown();
        this._client = null;
        this.connected = false;
      }
    }
  }

  createClient(settings) {
    if (this.role.includes('client')) {
      throw new ReduxClusterError(ErrorCode.AlreadyConnected, 'One storage cannot be connected to two servers at the same time.');
    }
    const servers = readServers(settings);
    if (this._authority) {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, 'invalid configuration: a server store cannot also be a client');
    }
    const creds = readSecurity(settings);
    // As in redux-cluster: a worker's store given its own server stops syncing over IPC.
    const queued = this._outgoing;
    const queuedWaiters = this._outgoingWaiters;
    this._outgoingWaiters = [];
    this._dropIpc();
    const native = this._connect(servers, creds);
    this._outgoing = queued;
    this._outgoingWaiters = queuedWaiters;
    this._flushOutgoing();
    this.role.push('client');
    return new ClusterClient(this, native, servers);
  }

  _connect(servers, security = {}) {
    this._client = new native.NativeClient(
      this.RCHash,
      // Absent fields are undefined for the engine, not null.
      servers.map((a) => ({ host: a.host ?? undefined, port: a.port ?? undefined, path: a.path ?? undefined })),
      this._engine,
      security,
      () => this._pump(),
      this._native
    );
    this._clientError = null;
    this._clientPending = 0;
    this._clientClosing = false;
    this._clientSeq = 0;
    this._tracking = false;
    this.connected = false;
    return this._client;
  }

  _pump() {
    try {
      if (this._client) this._pumpClient(this._client);
      else if (this._authority) this._pumpServer(this._authority);
    } catch (e) {
      this._error(`ReduxCluster: ${e && e.stack ? e.stack : e}`);
    }
  }

  _queuePump() {
    if (this._pumpQueued) return;
    this._pumpQueued = true;
    setImmediate(() => {
      this._pumpQueued = false;
      this._pump();
    });
  }

  _pumpServer(a) {
    const r = a.poll(this._seq + 1, Number.MAX_SAFE_INTEGER, POLL_MAX);
    if (this._native) {
      this._events(r.events);
      this._failures(r);
      const changed = r.applied !== this._seq;
      this._seq = r.applied;
      if (this._clustered) this._waiters.applied(this._seq);
      if (changed) this._notify();
      return;
    }
    this._events(r.events);
    this._reset(r);
    if (r.actions != null) this._seq += this._apply(this._decode(r.actions));
    if (r.wantSnapshot) a.setSnapshot(this._seq, this._encode(this.getState()));
    if (this._clustered) this._waiters.applied(this._seq);
    if (r.more) this._queuePump();
  }

  // A replicated server that installed a Raft snapshot (it was far behind, or restarted
  // after its log was compacted) takes the snapshot's state, then the actions after it.
  _reset(r) {
    if (r.resetState == null) return;
    this._applySync(this._decode(r.resetState));
    this._seq = r.resetSeq;
  }

  _drainTo(upto) {
    const a = this._authority;
    while (this._seq < upto) {
      const r = a.poll(this._seq + 1, upto, POLL_MAX);
      this._events(r.events);
      this._reset(r);
      if (r.actions == null) break;
      this._seq += this._apply(this._decode(r.actions));
    }
    // The pull above took the engine's pending wake-up; whatever came after `upto`
    // (and any snapshot request) is handled by a pump of our own.
    this._queuePump();
  }

  _pumpClient(c) {
    const r = c.poll(POLL_MAX);
    if (this._native) {
      this._events(r.events);
      this._failures(r);
      const changed = r.applied !== this._clientSeq;
      this._clientSeq = r.applied;
      if (r.ordered != null) this._waiters.ordered(r.ordered);
      this._waiters.applied(this._clientSeq);
      if (changed) this._notify();
      if (r.more) this._queuePump();
      return;
    }
    this._events(r.events);
    if (r.snapshot != null) {
      this._applySync(this._decode(r.snapshot));
      this._clientSeq = r.snapshotSeq;
    }
    if (r.actions != null) this._clientSeq = r.firstSeq - 1 + this._apply(this._decode(r.actions));
    if (r.ordered != null) this._waiters.ordered(r.ordered);
    this._waiters.applied(this._clientSeq);
    if (r.more) this._queuePump();
  }

  // Actions the engine's reducer refused on this replica: reported, and their
  // dispatchAsync promises rejected with ERR_REDUCER.
  _failures(r) {
    if (r.failures == null) return;
    for (const f of r.failures) {
      this._error(`ReduxCluster: the reducer refused action #${f.seq}: ${f.message}`);
      this._waiters.failed(f.seq, f.message);
    }
    if (r.failuresDropped > 0) this._error(`ReduxCluster: ${r.failuresDropped} more actions were refused by the reducer (not listed)`);
  }

  _rejectOutgoing(code, message) {
    const waiters = this._outgoingWaiters;
    this._outgoingWaiters = [];
    for (const [, w] of waiters) w.reject(new ReduxClusterError(code, message));
  }

  _apply(actions) {
    const dispatch = this._incoming ? this._throughIncoming : this._redux.dispatch;
    for (let i = 0; i < actions.length; i++) {
      try {
        dispatch(actions[i]);
      } catch (e) {
        // Every replica runs the same reducer on the same action, so each one skips it
        // alike; say so rather than stop applying what follows.
        this._error(`ReduxCluster: the reducer threw on ${JSON.stringify(actions[i].type)}: ${e && e.message ? e.message : e}`);
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

  _applySync(state) {
    this._redux.dispatch({ type: SYNC, payload: state });
  }

  _events(events) {
    for (const e of events) {
      if (e.kind === 'connected') this.connected = true;
      else if (e.kind === 'disconnected') this.connected = false;
      else if (e.kind === 'role') {
        const info = { role: e.code, term: Number(e.message) };
        for (const s of this._servers) s.emit('role', info);
      } else if (e.kind === 'leader') {
        const info = { leaderId: e.code, term: Number(e.message) };
        for (const s of this._servers) s.emit('leader', info);
      }
      else {
        if (this._client) this._clientError = new ReduxClusterError(e.code, e.message);
        this._error(e.message, e.code);
        // These stop the client: nothing it still waits for will come.
        if (this._client && CLIENT_FATAL.has(e.code)) {
          this._waiters.rejectAll(e.code, e.message);
          this._rejectOutgoing(e.code, e.message);
        }
      }
    }
  }

  /** Reports on `stderr`; a message with a stable code ends with it: `... [ERR_AUTH]`. */
  _error(message, code) {
    this._errorCount = (this._errorCount || 0) + 1;
    try {
      this.stderr(code ? `${message} [${code}]` : message);
    } catch {
      // A throwing error sink must not break the store.
    }
  }

  _dropAuthority() {
    const a = this._authority;
    if (!a) return Promise.resolve();
    this._authority = null;
    this.role = this.role.filter((r) => r !== 'server');
    if (!this._clustered) {
      a.detach();
      return Promise.resolve();
    }
    this._clustered = false;
    const why = 'the server was closed before the action was ordered and applied';
    this._waiters.rejectAll(ErrorCode.Closed, why);
    for (const [, w] of this._ownWaiters) w.reject(new ReduxClusterError(ErrorCode.Closed, why));
    this._ownOutgoing = [];
    this._ownWaiters = [];
    return a.shutdown().finally(() => a.detach());
  }

  // A replicated server's own actions, proposed to the group once per synchronous burst.
  _enqueueOwn(json, waiter = null) {
    if (waiter) {
      waiter.own = true;
      this._waiters.addOwn(waiter);
      this._ownWaiters.push([this._ownOutgoing.length, waiter]);
    }
    this._ownOutgoing.push(json);
    if (this._ownOutgoing.length === 1) queueMicrotask(() => this._flushOwn());
  }

  _flushOwn() {
    const batch = this._ownOutgoing;
    const waiters = this._ownWaiters;
    this._ownOutgoing = [];
    this._ownWaiters = [];
    const a = this._authority;
    if (batch.length === 0 || !a || !this._clustered) return;
    a.submitOwn('[' + batch.join(',') + ']').then(
      (text) => {
        const r = JSON.parse(text);
        if (!r.ok) {
          this._error(`ReduxCluster.createServer: ${batch.length} actions were not ordered: ${r.message} (${r.code})`);
          for (const [, w] of waiters) {
            this._waiters.forget(w);
            w.reject(new ReduxClusterError(r.code, r.message));
          }
          return;
        }
        const [, firstSeq] = r.run;
        for (const [i, w] of waiters) this._waiters.known(w, firstSeq + i);
        this._waiters.applied(this._seq);
      },
      (e) => {
        for (const [, w] of waiters) {
          this._waiters.forget(w);
          w.reject(new ReduxClusterError(e.code || ErrorCode.Internal, e.message));
        }
      }
    );
  }
}

class ClusterServer extends EventEmitter {
  constructor(store, listener, addr) {
    super();
    this._store = store;
    this._listener = listener;
    this._closing = null;
    this.host = addr.path ? undefined : addr.host ?? '0.0.0.0';
    this.port = addr.path ? undefined : listener.port;
    this.path = addr.path ?? undefined;
  }

  address() {
    return this.path !== undefined ? this.path : { address: this.host, port: this.port };
  }

  /**
   * On a replicated server: `{ nodeId, address, role, leaderId, term, commitIndex,
   * appliedIndex, members }`; null on a single server.
   */
  status() {
    const a = this._store._authority;
    const s = a && a.status();
    return s ? JSON.parse(s) : null;
  }

  /**
   * Removes a server (by its `nodeName`) from a replicated store's group, on any of its
   * servers; resolves once the group committed the change. The removed server stops
   * taking part (close it); the others go on. Rejects with `err.code` (ERR_TIMEOUT,
   * ERR_NOT_LEADER, ERR_BUSY, ERR_INVALID_CONFIG on a single server, ...).
   */
  async removeMember(nodeName) {
    if (this._closing) throw new ReduxClusterError(ErrorCode.Closed, 'this server is closed');
    const a = this._store._authority;
    if (!a || typeof nodeName !== 'string') {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, 'removeMember(nodeName) needs a replicated server and a node name');
    }
    const r = JSON.parse(await a.removeMember(nodeName));
    if (!r.ok) throw new ReduxClusterError(r.code, r.message);
  }

  /**
   * What this server store is doing: actions ordered and applied (and per second), the
   * connected clients with their lag, bytes in and out, errors, and in a replicated
   * store its Raft status. The same for every endpoint of one store.
   */
  metrics() {
    return metrics.collect(this._store);
  }

  /** Stops listening and drops every connection (and stops a replicated server's Raft
   *  node with the store's last server); idempotent. */
  close() {
    if (!this._closing) {
      const dashboard = this.dashboard ? this.dashboard.close() : Promise.resolve();
      this._closing = Promise.all([this._listener.close(), dashboard]).then(() => {
        const s = this._store;
        s._servers.delete(this);
        if (s._servers.size === 0) return s._dropAuthority();
      });
    }
    return this._closing;
  }
}

const shown = (a) => (a.path ? { path: a.path } : { host: a.host ?? '127.0.0.1', port: a.port });

class ClusterClient {
  constructor(store, native, servers) {
    this._store = store;
    this._native = native;
    this._closing = null;
    const first = servers[0];
    this.host = first.path ? undefined : first.host ?? '127.0.0.1';
    this.port = first.path ? undefined : first.port;
    this.path = first.path ?? undefined;
    /** Every server this client may use, in the order it tries them. */
    this.servers = servers.map(shown);
  }

  get connected() {
    return this._native.connected;
  }

  /** The server of the current connection (or the one being tried). */
  get server() {
    return shown(this._native.server);
  }

  /**
   * The last error of this connection, with its `code` (e.g. `ERR_AUTH`, `ERR_BANNED`,
   * `ERR_STORE_MISMATCH`, which stop the client; `ERR_CONNECT` while retrying), or null.
   */
  get error() {
    return this._store._client === this._native ? this._store._clientError : null;
  }

  /** Dispatched actions the server has not acknowledged yet. */
  get pending() {
    const s = this._store;
    return this._native.pending + (s._client === this._native ? s._outgoing.length : 0);
  }

  /**
   * Waits up to `flushMs` (default 1000) for queued actions to reach the server, then
   * closes the connection; idempotent. The store keeps its state and works locally.
   */
  disconnect(flushMs) {
    if (!this._closing) {
      const s = this._store;
      if (s._client === this._native) {
        s._flushOutgoing();
        s._clientClosing = true;
      }
      this._closing = this._native.close(flushMs ?? 1000).then(() => {
        if (s._client === this._native) {
          s._clientClosing = false;
          s._pump(); // apply whatever had arrived
          const why = 'the client was disconnected before the action was acknowledged and applied';
          s._waiters.rejectAll(ErrorCode.Closed, why);
          s._rejectOutgoing(ErrorCode.Closed, why);
          s._client = null;
          s.role = s.role.filter((r) => r !== 'client');
          s.connected = false;
        }
      });
    }
    return this._closing;
  }
}

function createStore(reducer, config) {
  return new ReduxCluster(reducer, config);
}

const membership = require('./cluster.js');
const consensus = require('./consensus.js');
const raftnode = require('./raftnode.js');

const functions = { hasher };

module.exports = {
  ...redux,
  ...membership,
  ...consensus,
  // @ruvector/raft's API; its RaftError and RaftErrorCode are RaftNodeError and
  // RaftNodeErrorCode here (the others are @unrdf/consensus's). `redux-cluster-rs/raft`
  // exports them under their own names.
  RaftNode: raftnode.RaftNode,
  NodeState: raftnode.NodeState,
  RaftEvent: raftnode.RaftEvent,
  RaftNodeErrorCode: raftnode.RaftErrorCode,
  RaftNodeError: raftnode.RaftNodeError,
  createStore,
  reducers,
  loadReducer,
  ReduxClusterError,
  ErrorCode,
  SerializationMode,
  MessageType,
  functions,
  // redux-cluster's CommonJS build exports this object as `default` (its ESM default).
  default: {
    createStore,
    functions,
    combineReducers: redux.combineReducers,
    bindActionCreators: redux.bindActionCreators,
    applyMiddleware: redux.applyMiddleware,
    compose: redux.compose,
  },
};
