'use strict';
// The store: Redux's surface on top of the engine. Two choices make a store:
// - where its state lives, chosen once at creation (store/state.js: a JS reducer in an
//   ordinary Redux store, or a reducer in the engine);
// - its role, which decides who orders its actions (store/local.js, server.js,
//   replicated.js, client.js) and changes as the user calls createServer, createClient,
//   close or disconnect.
// This file routes the Redux calls to the two and turns the user's calls into roles.

const { EventEmitter } = require('node:events');
const ipc = require('./ipc.js');
const { backup } = require('./backup.js');
const { ClassCodec } = require('./protoobject.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');
const { NativeReducerSpec } = require('./reducers.js');
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
  readOptimistic,
  wsEndpoint,
} = require('./options.js');
const { ClusterClient } = require('./handles.js');
const { stateFor, $$observable } = require('./store/state.js');
const { LocalRole } = require('./store/local.js');
const { ReplicatedRole } = require('./store/replicated.js');
const { ClientRole } = require('./store/client.js');
const endpoints = require('./store/endpoints.js');
const { Guard } = require('./store/guard.js');

class ReduxCluster extends EventEmitter {
  constructor(reducer, config) {
    super();
    const isEngine = reducer instanceof NativeReducerSpec;
    if (typeof reducer !== 'function' && !isEngine) {
      throw new ReduxClusterError(
        ErrorCode.InvalidConfig,
        `Expected the root reducer to be a function (or one of reducers.* / loadReducer()). Instead, received: '${kindOf(reducer)}'`
      );
    }
    const cfg = readConfig(config);
    this._errorCount = 0;
    if (isEngine && cfg.serializationMode !== 'json') throw invalid("a native reducer's state is JSON: serializationMode must be 'json'");
    this._state = stateFor(reducer, isEngine, (m) => this._error(m));
    /** md5 of the reducer's name (and the store's `name`, when given): stores sync only
     *  with stores of the same reducer and name. */
    const identity = isEngine ? this._state.engine.identity : reducer.name || '';
    this.RCHash = hasher(cfg.name === undefined ? identity : `${identity}\u0000${cfg.name}`);
    this.name = cfg.name;
    this.version = pkg.version;
    this.homepage = pkg.homepage;
    this.role = [];
    this._mode = cfg.mode;
    this.connected = false;
    this.resync = cfg.resync;
    this.stderr = cfg.stderr || console.error;
    this._logJson = cfg.logFormat === 'json';
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
    this._maxFrame = cfg.engine.maxFrameSize ?? 256 * 1024 * 1024;
    this._queueLimit = cfg.engine.queueLimit ?? 1000000;
    // The divergence guard (see store/guard.js): on unless `guard: false`.
    this._guard = cfg.guard ? new Guard(this, cfg.guard) : null;
    this._state.guard = this._guard;
    // A RESYNC met in the stream: the store's role answers it if it is the authority.
    this._state.onResync = () => this._role.resyncAsked?.();
    this._role = new LocalRole(this);
    this._servers = new Set(); // the ClusterServer handles of a serving store
    this._ipcServer = null; // a node:cluster primary's socket for its workers
    // Redux store methods work when detached from the store (`const { dispatch } = store`).
    this.dispatch = this.dispatch.bind(this);
    this._ownDispatch = this.dispatch;
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
    return this._state.getState();
  }

  subscribe(listener) {
    return this._state.subscribe(listener);
  }

  replaceReducer(nextReducer) {
    this._state.replaceReducer(nextReducer);
  }

  [$$observable]() {
    return this._state.observable();
  }

  /**
   * On a client, queues the action for the server and returns at once; the action is
   * applied here when it comes back in order. On a server (or a standalone store) it is
   * ordered and applied at once, as in Redux.
   */
  dispatch(action) {
    // An incoming action handed back by the wrapper of createWSClient: apply it here.
    if (this._state.isIncoming(action)) return this._state.dispatch(action);
    checkAction(action);
    return this._role.dispatch(action);
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
      return this._role.dispatchAsync(action, timeout);
    } catch (e) {
      return Promise.reject(e);
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
    this._role.restore(state);
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
    if (!this._role.serves) return;
    if (message === undefined || message === null) {
      this._role.resync();
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
    // Another store on a replicated server's group: served on the group's port.
    if (settings && settings.group !== undefined) return endpoints.host(this, settings.group, settings);
    const addr = readAddress(settings, 'server');
    const cluster = readCluster(settings && settings.cluster);
    const access = readAccess(settings);
    if (cluster) {
      if (this._role.serves) throw invalid('cluster: a replicated server must be the first server of its store');
      if (!(this._role instanceof LocalRole)) throw endpoints.clientCannotServe();
      if (addr.path) throw invalid('cluster: a replicated server listens on TCP (host, port), not on a Unix path');
      const state = this._state;
      // Binds the port here: it serves the store's clients and the other servers alike.
      this._setRole(new ReplicatedRole(this, (wake) =>
        native.NativeAuthority.clustered(
          this.RCHash,
          this.mode,
          state.engine ? '' : this._encode(state.getState()),
          this._engine,
          cluster,
          addr.host,
          addr.port,
          access,
          wake,
          state.engine
        )
      ));
    }
    return endpoints.withHttp(this, endpoints.listen(this, addr, access), settings);
  }

  /**
   * Serves this store to WebSocket clients (browsers, createWSClient): redux-cluster-ws's
   * createWSServer, with the same ordering, acknowledgements and resume as TCP.
   * Settings: host ('0.0.0.0'), port (10002), logins, ban, tls (or ssl), origin (an
   * allow-list of Origin headers), trustProxy (proxy addresses whose X-Forwarded-For is
   * believed), limit (most connections at once).
   */
  createWSServer(settings) {
    const { s, ws } = endpoints.readWsServer(settings);
    const addr = readAddress(s, 'WebSocket server', 10002);
    // `limit` is the upgrade's (counted before the handshake, refused with HTTP 503).
    const server = endpoints.listen(this, addr, { ...readAccess(s), limit: undefined }, ws);
    server._ws = true;
    return endpoints.withHttp(this, server, s);
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
    const wrapper = this.dispatch !== this._ownDispatch && !this._state.engine ? this.dispatch : null;
    const client = this.createClient({ ...rest, servers: list.map(wsEndpoint) });
    if (wrapper) {
      // As redux-cluster-ws: the wrapper now sees what arrives, and `dispatch` sends.
      this._state.routeIncoming(wrapper);
      this.dispatch = this._ownDispatch;
    }
    return client;
  }

  createClient(settings) {
    if (this.role.includes('client')) {
      throw new ReduxClusterError(ErrorCode.AlreadyConnected, 'One storage cannot be connected to two servers at the same time.');
    }
    const servers = readServers(settings);
    if (this._role.serves) {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, 'invalid configuration: a server store cannot also be a client');
    }
    const creds = readSecurity(settings);
    const optimistic = readOptimistic(settings, this._state);
    let role = this._role;
    if (role instanceof ClientRole) {
      // As in redux-cluster: a worker's store given its own server stops syncing over
      // IPC; what it queued goes to its own server.
      role.leaveIpc();
      this.role = this.role.filter((r) => r !== 'worker');
    } else {
      role = new ClientRole(this);
      this._setRole(role);
    }
    const link = role.connect(servers, creds, optimistic);
    this.role.push('client');
    return new ClusterClient(this, role, link, servers);
  }

  /** The store takes `role`; the guard checks while the store is the authority. */
  _setRole(role) {
    this._role = role;
    if (!this._guard) return;
    if (role.serves) this._guard.start(role);
    else this._guard.stop();
  }

  /** The store leaves `role` (its last server closed, its client disconnected): it is a local store again. */
  _leave(role) {
    if (this._role !== role) return Promise.resolve();
    this._setRole(new LocalRole(this, role.applied));
    this.role = this.role.filter((r) => r !== role.name);
    return role.close();
  }

  // ---- node:cluster (see ipc.js) ---------------------------------------------------------

  // A worker's store is a client from the start; its dispatches wait for the primary's
  // socket path.
  _becomeWorker() {
    const role = new ClientRole(this);
    role.ipc = true;
    this._setRole(role);
    this.role.push('worker');
  }

  _connectIpc(p) {
    const role = this._role;
    if (role instanceof ClientRole && role.ipc && !role.native) role.connect([{ host: null, port: null, path: p }]);
  }

  // The primary went away: a worker's store that still syncs through it works locally.
  _dropIpc() {
    const role = this._role;
    if (!(role instanceof ClientRole && role.ipc)) return;
    role.close('the primary went away before the action could be sent');
    this._setRole(new LocalRole(this, role.applied));
    this.role = this.role.filter((r) => r !== 'worker');
  }

  _ipcPath() {
    return endpoints.ipcPath(this);
  }

  _closeIpcServer() {
    const s = this._ipcServer;
    this._ipcServer = null;
    if (s) s.close().catch((e) => this._error(`ReduxCluster: ${e.message}`));
  }

  // ---- what the engine reports -----------------------------------------------------------

  _engineEvents(events) {
    for (const e of events) {
      if (e.kind === 'connected') this.connected = true;
      else if (e.kind === 'disconnected') this.connected = false;
      else if (e.kind === 'role') {
        const info = { role: e.code, term: Number(e.message) };
        if (this._role.roleChanged) this._role.roleChanged(e.code);
        for (const s of this._servers) s.emit('role', info);
      } else if (e.kind === 'leader') {
        const info = { leaderId: e.code, term: Number(e.message) };
        for (const s of this._servers) s.emit('leader', info);
      } else {
        this._error(e.message, e.code);
        this._role.failed(e.code, e.message);
      }
    }
  }

  /**
   * Reports on `stderr`: a message with a stable code ends with it (`... [ERR_AUTH]`), or
   * with `logFormat: 'json'` is one JSON line with the code in its own field.
   */
  _error(message, code) {
    this._errorCount += 1;
    let line;
    if (this._logJson) {
      line = JSON.stringify(code ? { level: 'error', time: new Date().toISOString(), code, msg: message } : { level: 'error', time: new Date().toISOString(), msg: message });
    } else {
      line = code ? `${message} [${code}]` : message;
    }
    try {
      this.stderr(line);
    } catch {
      // A throwing error sink must not break the store.
    }
  }
}

function createStore(reducer, config) {
  return new ReduxCluster(reducer, config);
}

module.exports = { ReduxCluster, createStore };
