'use strict';
// The endpoints a server store listens on: TCP, Unix, WebSocket, a node:cluster
// primary's socket for its workers, and the HTTP port of its metrics and dashboard. The
// engine serves each; this opens them on the store's authority and wraps them in the
// ClusterServer handle that createServer / createWSServer return.

const os = require('node:os');
const path = require('node:path');
const native = require('../native.js');
const metrics = require('../metrics.js');
const { ReduxClusterError, ErrorCode } = require('../errors.js');
const { invalid } = require('../options.js');
const { ClusterServer } = require('../handles.js');
const { ServerRole } = require('./server.js');
const { LocalRole } = require('./local.js');
const { ReplicatedRole } = require('./replicated.js');

function clientCannotServe() {
  // A relay (client of one server, server to others) would need two orderings.
  return new ReduxClusterError(ErrorCode.InvalidConfig, 'invalid configuration: a client store cannot also be a server');
}

/** The store's authority (a single server's, made on its first endpoint), for an endpoint. */
function serving(store) {
  const role = store._role;
  if (role.serves) return role;
  if (!(role instanceof LocalRole)) throw clientCannotServe();
  const state = store._state;
  store._setRole(new ServerRole(
    store,
    (wake) =>
      new native.NativeAuthority(store.RCHash, store.mode, state.engine ? '' : store._encode(state.getState()), store._engine, wake, state.engine)
  ));
  return store._role;
}

/**
 * Opens one endpoint of the store: `addr` ({ host, port } or { path }), `access` (logins,
 * bans, TLS, limit; see options.readAccess) and, for WebSocket, `ws` (origin, trustProxy,
 * limit). The store becomes a server if it was not one.
 */
function listen(store, addr, access = null, ws = null) {
  const role = serving(store);
  let listener;
  try {
    listener = role.authority.listen(addr.host, addr.port, addr.path, access, ws ?? undefined);
  } catch (e) {
    if (store._servers.size === 0) store._leave(role);
    throw e;
  }
  const server = new ClusterServer(store, listener, addr);
  store._servers.add(server);
  return server;
}

/**
 * createServer({ group }): this store joins the group of a replicated server of this
 * process (`group`, what its createServer({ cluster }) returned), on its port: its
 * actions go through the group's log with their own order, its clients reach it there
 * by the store's hash (reducer and name), and every server of the group that opens it
 * serves it. The group's port, access rules and Raft settings are the group's.
 */
function host(store, group, settings) {
  const other = Object.keys(settings).filter((k) => k !== 'group' && k !== 'http');
  if (other.length) throw invalid(`group: the store is served on its group's port, with its rules; ${other[0]} is not an option here`);
  const owner = group instanceof ClusterServer ? group._store : null;
  const first = owner && owner._role.clustered ? owner._role.authority : null;
  if (!first) throw invalid("group must be a replicated server: what createServer({ cluster }) returned, not closed");
  if (owner === store) throw invalid('group: this store is the group\'s first store already');
  if (store._role.serves) throw invalid('group: this store serves already; a store joins a group as its first server');
  if (!(store._role instanceof LocalRole)) throw clientCannotServe();
  if (store.RCHash === owner.RCHash) throw invalid("group: this store has the group's first store's reducer and name; give it its own name (createStore(reducer, { name }))");
  const state = store._state;
  store._setRole(new ReplicatedRole(store, (wake) =>
    native.NativeAuthority.hosted(first, store.RCHash, store.mode, state.engine ? '' : store._encode(state.getState()), store._engine, wake, state.engine)
  ));
  // No port of its own: closing it closes the store here (the group goes on).
  const server = new ClusterServer(store, { close: () => Promise.resolve(), port: group.port }, { host: group.host, port: group.port });
  store._servers.add(server);
  // Its clients connect through the first store's endpoints (metrics() lists them there).
  store._hostedBy = owner;
  return withHttp(store, server, settings);
}

// `http: { port, host }`: /metrics (Prometheus), /metrics.json, /events and the
// dashboard, on their own port, closed with the server.
function withHttp(store, server, settings) {
  // A server the user made (not a node:cluster primary's socket for its workers).
  if (!store.role.includes('server')) store.role.push('server');
  const h = settings && settings.http;
  if (h === undefined || h === null) return server;
  if (typeof h !== 'object' || !(h.port === undefined || (Number.isInteger(h.port) && h.port >= 0 && h.port <= 65535))) {
    server.close();
    throw invalid('http must be { port, host }');
  }
  server.dashboard = metrics.serve(store, h);
  return server;
}

/** createWSServer's settings, checked: the address, the access rules and the upgrade's. */
function readWsServer(settings) {
  const s = settings === undefined || settings === null ? {} : settings;
  if (typeof s !== 'object') throw invalid('WebSocket server settings must be an object');
  if (s.path !== undefined) throw invalid('a WebSocket server listens on TCP (host, port), not a Unix path');
  if (s.server !== undefined) throw invalid('server (an HTTP server to attach to) is not supported: give host and port; the engine serves the upgrade itself');
  const list = (v, what) => {
    if (v === undefined) return undefined;
    const a = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) throw invalid(`${what} must be a string or an array of strings`);
    return a;
  };
  if (s.limit !== undefined && !(Number.isInteger(s.limit) && s.limit >= 1)) throw invalid('limit must be an integer of at least 1');
  return { s, ws: { origin: list(s.origin, 'origin'), trustProxy: list(s.trustProxy, 'trustProxy'), limit: s.limit } };
}

// A node:cluster primary: the Unix socket its workers connect to, made on first request.
function ipcPath(store) {
  if (!store._ipcServer) {
    const p = path.join(os.tmpdir(), `redux-cluster-rs-${process.pid}-${store.RCHash.slice(0, 16)}.sock`);
    store._ipcServer = listen(store, { host: null, port: null, path: p });
  }
  return store._ipcServer.path;
}

module.exports = { listen, host, withHttp, readWsServer, ipcPath, clientCannotServe };
