'use strict';
// Every option and argument the store API takes, checked once, with the error a user
// should see (ERR_INVALID_CONFIG, ERR_INVALID_ARGUMENT, ERR_INVALID_ACTION).

const { ReduxClusterError, ErrorCode } = require('./errors.js');
const { SYNC } = require('./constants.js');
const { readGuard, reserved } = require('./store/guard.js');

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

const CLUSTER_KEYS = new Set(['nodeName', 'seeds', 'advertiseHost', 'advertisePort', 'ca', 'dataDir', 'secret', 'electionTimeout', 'heartbeatInterval', 'snapshotThreshold', 'bootstrap', 'replica']);

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
  for (const k of ['bootstrap', 'replica']) {
    if (c[k] !== undefined && typeof c[k] !== 'boolean') throw invalid(`cluster.${k} must be a boolean`);
  }
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
  if (reserved(action.type)) {
    throw new ReduxClusterError(ErrorCode.InvalidAction, `${action.type}: action types beginning with @@redux-cluster/ are the divergence guard's`);
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
  // The environment sets it for a whole process (an operator's switch, no code change).
  const logFormat = config.logFormat ?? (process.env.REDUX_CLUSTER_RS_LOG_FORMAT || 'text');
  if (logFormat !== 'text' && logFormat !== 'json') throw invalid(`logFormat must be 'text' or 'json', got ${JSON.stringify(logFormat)}`);
  const engine = {};
  for (const k of ENGINE_KEYS) {
    if (config[k] === undefined) continue;
    if (typeof config[k] !== 'number') throw invalid(`${k} must be a number`);
    engine[k] = config[k];
  }
  const guard = readGuard(config.guard, invalid);
  // A store's name tells apart stores of one reducer (one per room, document, tenant):
  // clients and servers match on it, and a replicated group hosts each under it.
  if (config.name !== undefined && !(typeof config.name === 'string' && config.name !== '' && config.name.length <= 256)) {
    throw invalid('name must be a non-empty string (at most 256 characters)');
  }
  return { mode, serializationMode, resync, debug: !!config.debug, stderr: config.stderr, logFormat, guard, engine, name: config.name };
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

// createClient's `optimistic`: a JS reducer replays the pending actions on every change of
// the confirmed state; an engine reducer's state cannot be forked that way.
function readOptimistic(settings, state) {
  const v = settings && settings.optimistic;
  if (v === undefined || v === false) return false;
  if (v !== true) throw invalid('optimistic must be true or false');
  if (state.engine) throw invalid('optimistic needs a JS reducer: a reducer in the engine cannot replay speculative actions');
  return true;
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

module.exports = {
  readOptimistic,
  ENGINE_KEYS,
  kindOf,
  isPlainObject,
  readTimeout,
  readCluster,
  checkAction,
  invalid,
  readConfig,
  checkMode,
  readAddress,
  readServers,
  readTls,
  readAccess,
  readSecurity,
  wsEndpoint,
};
