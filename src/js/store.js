'use strict';
// The store: Redux semantics (from the `redux` package) on top of the native engine. The
// engine orders actions and moves them between processes; this applies them, in order,
// to an ordinary Redux store, in whichever role the store has (local, server, client,
// replicated server, node:cluster primary or worker).

const redux = require('redux');
const os = require('node:os');
const path = require('node:path');
const ipc = require('./ipc.js');
const { backup } = require('./backup.js');
const { ClassCodec } = require('./protoobject.js');
const { Waiters, waiter } = require('./waiters.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');
const { NativeReducerSpec } = require('./reducers.js');
const metrics = require('./metrics.js');
const pkg = require('../../package.json');
const native = require('./native.js');

const { MessageType, SYNC, hasher } = require('./constants.js');
const {
  kindOf,
  readTimeout,
  readCluster,
  checkAction,
  invalid,
  readConfig,
  checkMode,
  readAddress,
  readServers,
  readAccess,
  readSecurity,
  wsEndpoint,
} = require('./options.js');
const { ClusterServer, ClusterClient } = require('./handles.js');

// A resync (sendtoall without a message) retries this many times when clients' actions
// are ordered between reading the state and ordering it; see _resync.
const RESYNC_TRIES = 5;
// What Redux itself uses as the interop key (Node has no Symbol.observable of its own).
const $$observable = (typeof Symbol === 'function' && Symbol.observable) || '@@observable';
// Actions handed to JS per pull; between pulls the event loop runs, so timers and I/O
// are not starved by a long stream of actions.
const POLL_MAX = 8192;
const CLIENT_FATAL = new Set([ErrorCode.StoreMismatch, ErrorCode.Auth, ErrorCode.Banned]);

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
        const [, firstSeq] = r.run;
        for (const [i, w] of waiters) this._waiters.known(w, firstSeq + i);
        this._waiters.applied(this._seq);
      },
      (e) => {
        this._error(`ReduxCluster.createServer: ${batch.length} actions were not ordered: ${e.message} (${e.code})`);
        for (const [, w] of waiters) {
          this._waiters.forget(w);
          w.reject(new ReduxClusterError(e.code || ErrorCode.Internal, e.message));
        }
      }
    );
  }
}

function createStore(reducer, config) {
  return new ReduxCluster(reducer, config);
}

module.exports = { ReduxCluster, createStore };
