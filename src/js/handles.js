'use strict';
// What createServer and createClient return: a server endpoint (its address, status,
// metrics, close) and a client connection (its servers, disconnect). Each holds its store
// and the engine's handle.

const { EventEmitter } = require('node:events');
const { ReduxClusterError, ErrorCode } = require('./errors.js');
const metrics = require('./metrics.js');

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
    const a = this._store._role.authority;
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
    const a = this._store._role.authority;
    if (!a || typeof nodeName !== 'string') {
      throw new ReduxClusterError(ErrorCode.InvalidConfig, 'removeMember(nodeName) needs a replicated server and a node name');
    }
    try {
      await a.removeMember(nodeName);
    } catch (e) {
      throw new ReduxClusterError(e.code, e.message);
    }
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
        if (s._servers.size === 0) return s._leave(s._role);
      });
    }
    return this._closing;
  }
}

const shown = (a) => (a.path ? { path: a.path } : { host: a.host ?? '127.0.0.1', port: a.port });

class ClusterClient {
  /** `role` is the store's ClientRole, `link` the engine's NativeClient it opened. */
  constructor(store, role, link, servers) {
    this._store = store;
    this._role = role;
    this._native = link;
    this._closing = null;
    const first = servers[0];
    this.host = first.path ? undefined : first.host ?? '127.0.0.1';
    this.port = first.path ? undefined : first.port;
    this.path = first.path ?? undefined;
    /** Every server this client may use, in the order it tries them. */
    this.servers = servers.map(shown);
  }

  // Whether this connection is still the store's (not disconnected, not replaced).
  get _current() {
    return this._role.native === this._native;
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
    return this._current ? this._role.error : null;
  }

  /** Dispatched actions the server has not acknowledged yet. */
  get pending() {
    return this._native.pending + (this._current ? this._role.queued : 0);
  }

  /**
   * Waits up to `flushMs` (default 1000) for queued actions to reach the server, then
   * closes the connection; idempotent. The store keeps its state and works locally.
   */
  disconnect(flushMs) {
    if (!this._closing) {
      const role = this._role;
      this._closing = this._current
        ? role.disconnect(flushMs ?? 1000).then(() => this._store._leave(role))
        : this._native.close(flushMs ?? 1000);
    }
    return this._closing;
  }
}

module.exports = { ClusterServer, ClusterClient };
