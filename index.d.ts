/// <reference types="node" />
// Typings of redux-cluster-rs: a drop-in for redux-cluster's createStore, generic like
// Redux's own. The native classes the JS layer is built on are in binding.d.ts.

import type { Action, Reducer, Store, UnknownAction } from 'redux';
import { applyMiddleware, bindActionCreators, combineReducers, compose } from 'redux';

export * from 'redux';

/** How actions and states cross the wire (redux-cluster 2.0's enum). */
export declare enum SerializationMode {
  /** Plain JSON. */
  JSON = 'json',
  /**
   * JSON in which class instances are tagged with their class name and rebuilt on the
   * receiving side: instances of the optional `protoobject` package's ProtoObject, and
   * of classes given to `store.registerClass`.
   */
  PROTOOBJECT = 'protoobject',
}

/**
 * redux-cluster 2.0's message kinds. Only `MSG_TO_WORKER` and `SYNC` mean something to
 * this package (in `sendtoall` / `sendtoallsock`); its wire protocol is its own.
 */
export declare enum MessageType {
  CONN_STATUS = 'REDUX_CLUSTER_CONNSTATUS',
  MSG_TO_WORKER = 'REDUX_CLUSTER_MSGTOWORKER',
  MSG_TO_MASTER = 'REDUX_CLUSTER_MSGTOMASTER',
  SOCKET_AUTH = 'REDUX_CLUSTER_SOCKET_AUTH',
  SOCKET_AUTH_STATE = 'REDUX_CLUSTER_SOCKET_AUTHSTATE',
  START = 'REDUX_CLUSTER_START',
  SYNC = 'REDUX_CLUSTER_SYNC',
}

export type SyncMode = 'action' | 'snapshot';
export type Role = 'master' | 'worker' | 'server' | 'client';
export type ErrorHandler = (message: string) => void;
/** A state or value made of ProtoObject instances (redux-cluster 2.0's alias). */
export type ProtoObjectState = any;

/** Engine tuning; every field is optional. */
export interface EngineConfig {
  /**
   * Largest frame (one message, after decompression) sent or accepted, in bytes. A
   * state larger than this cannot be sent to a fresh client.
   * @default 268435456 (256 MiB)
   */
  maxFrameSize?: number;
  /**
   * Frames larger than this are deflate-compressed, in bytes.
   * @default 262144 (256 KiB)
   */
  compressThreshold?: number;
  /**
   * Most dispatched actions a client holds until the server acknowledges them
   * (including those dispatched while disconnected). Past it, `dispatch` throws
   * `ERR_QUEUE_FULL`.
   * @default 1000000
   */
  queueLimit?: number;
  /**
   * Ordered actions a server keeps so that a reconnecting client receives only what it
   * missed; a client further behind receives the state instead.
   * @default 100000
   */
  logRetention?: number;
  /**
   * First reconnect delay of a client, in ms; doubles per failed attempt, with jitter.
   * @default 100
   */
  reconnectInitialMs?: number;
  /**
   * Largest reconnect delay of a client, in ms.
   * @default 5000
   */
  reconnectMaxMs?: number;
  /**
   * Time a peer has to complete the handshake before it is dropped, in ms.
   * @default 10000
   */
  handshakeTimeoutMs?: number;
  /**
   * A server that sends nothing (no data, no heartbeat) for this long is gone, in ms:
   * its client moves to the next server in its list (a resume, as after a closed
   * connection). A server drops a client silent for twenty times this (10 s by
   * default: a drop only frees a socket sooner, so a busy client process gets room). Catches a
   * peer that stops without closing its socket (SIGSTOP, a GC or VM pause, a network
   * path that drops packets). Time this side spends not reading (backpressure) or
   * frozen itself does not count.
   * @default 500
   */
  livenessTimeoutMs?: number;
  /**
   * An idle server sends each client a small heartbeat this often, in ms (an idle
   * client sends its server one every three intervals); at most half of
   * livenessTimeoutMs.
   * @default 150 (or 3/10 of livenessTimeoutMs, if less)
   */
  heartbeatIntervalMs?: number;
}

export interface StoreConfig extends EngineConfig {
  /**
   * 'action': every action is sent to and replayed by every replica. 'snapshot': the
   * server sends its state after applying actions. Both end in the same state.
   * @default 'action'
   */
  mode?: SyncMode;
  /**
   * 'json': actions and states cross the wire as plain JSON. 'protoobject': class
   * instances in them (ProtoObject's, with the optional `protoobject` package installed,
   * and classes given to `registerClass`) are rebuilt as instances on the receiving side.
   * @default 'json'
   */
  serializationMode?: SerializationMode | 'json' | 'protoobject';
  /** @default false */
  debug?: boolean;
  /**
   * Accepted for compatibility with redux-cluster 2.0, where it has no effect either: a
   * store in a node:cluster worker syncs with the primary, `createServer` /
   * `createClient` set up sockets.
   */
  syncMode?: 'ipc' | 'tcp';
  /** Accepted for compatibility; `store.role` says what the store actually does. */
  role?: Role[];
  /** Accepted for compatibility (no effect, as in redux-cluster 2.0): call `createServer`. */
  server?: ServerSettings;
  /** Accepted for compatibility (no effect, as in redux-cluster 2.0): call `createClient`. */
  client?: ClientSettings;
  /** Accepted for compatibility (no effect, as in redux-cluster 2.0): call `backup`. */
  backup?: BackupOptions;
  /**
   * Kept for compatibility with redux-cluster (a count of actions). The engine never
   * needs periodic resyncs: gaps are detected by sequence numbers and filled at once.
   * @default 1000
   */
  resync?: number;
  /**
   * Where errors go (refused connections, protocol errors, reducer errors). A message
   * with a stable code ends with it in brackets: `... [ERR_AUTH]`.
   * @default console.error
   */
  stderr?: (message: string) => void;
  /**
   * 'json': each message handed to `stderr` is one JSON object on one line,
   * `{"level":"error","time":"<ISO 8601>","code":"ERR_AUTH","msg":"..."}` (no `code` when
   * the message has none), for pino, ELK or Loki to take as they come. The environment
   * variable `REDUX_CLUSTER_RS_LOG_FORMAT=json` sets it for every store of a process.
   * @default 'text'
   */
  logFormat?: 'text' | 'json';
  /**
   * The store's name, beside its reducer's: stores of one reducer with different names
   * are different stores (one per room, document or tenant). A client and its server
   * match on both; a replicated group hosts many named stores on one port
   * (`createServer({ group })`). Without it, the store is its reducer's, as in
   * redux-cluster.
   */
  name?: string;
  /**
   * The divergence guard: the authority (a server, or a Raft group's leader) puts a
   * checkpoint in the ordered stream at most every `everyActions` actions and every
   * `everyMs` ms (longer for a large state, to keep the digests under 0.5% of a thread);
   * every replica compares its state there with the authority's. On a difference the
   * replica says so on `stderr` (`ERR_DIVERGED`), emits `divergence` and, with
   * `onDivergence: 'resync'`, takes the authority's state (its queued actions stay
   * queued); `'report'` keeps its state. `false` turns it off (so does the environment
   * variable `REDUX_CLUSTER_RS_GUARD=off`).
   * @default { everyActions: 1000, everyMs: 5000, onDivergence: 'resync' }
   */
  guard?: false | { everyActions?: number; everyMs?: number; onDivergence?: 'resync' | 'report' };
}

/** A divergence the guard found: at the checkpoint `seq`, the authority's digest and this replica's. */
export interface Divergence {
  seq: number;
  expected: string;
  actual: string;
  /** The first place where the states differed (a JSON pointer), when this replica could learn it; else null. */
  path: string | null;
}

/** redux-cluster 2.0's name for the store options. */
export type ReduxClusterConfig = StoreConfig;

/** `createWSServer` settings (redux-cluster-ws's names, plus logins, bans and TLS as in createServer). */
export interface WSServerSettings {
  /** @default '0.0.0.0' */
  host?: string;
  /** @default 10002 */
  port?: number;
  logins?: Record<string, string>;
  ban?: { attempts?: number; durationMs?: number };
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** redux-cluster-ws's name for `tls`. */
  ssl?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** Allowed `Origin`s (browsers send one; programs, which send none, are let through). */
  origin?: string | string[];
  /** Proxy addresses whose `X-Forwarded-For` is believed (for bans); everyone else's is ignored. */
  trustProxy?: string | string[];
  /** Most connections open at once; past it, the upgrade is refused with HTTP 503. */
  limit?: number;
  /** Most clients served at once from one address (behind `trustProxy`, the forwarded one); past it, `ERR_BUSY`. Default: no cap. */
  limitPerAddress?: number;
  /** Opt-in: metrics and the dashboard on their own port. */
  http?: HttpSettings;
}

/** `createWSClient` settings (redux-cluster-ws's names). */
export type WSClientSettings = WSClientOptions &
  (
    | {
        /** 'ws://name' or 'wss://name' (it may carry its own port and path). */
        host: string;
        servers?: undefined;
      }
    | {
        host?: undefined;
        /**
         * Several endpoints (the servers of a replicated store), tried in order: the client
         * moves to the next at once when its server dies, is cut off or turns it away.
         */
        servers: Array<string | { host: string; port?: number; path?: string }>;
      }
  );

/** What `createWSClient` takes beside `host` or `servers`. */
export interface WSClientOptions {
  /** @default 10002 */
  port?: number;
  /** The URL path. @default '/' */
  path?: string;
  login?: string;
  password?: string;
  /** Accepted for compatibility; the engine reconnects with backoff (reconnectInitialMs / reconnectMaxMs). */
  reconnectInterval?: number;
  /** Accepted for compatibility. */
  timeout?: number;
  /** For wss://: the CA to trust (else the system's roots), and a client certificate. */
  tls?: boolean | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /**
   * Optimistic updates: this store's own dispatches show in `getState()` at once, before
   * the server ordered them; the server's order is applied beneath them as it comes (the
   * unconfirmed actions replayed on it), and an action the server will never order is
   * dropped and reported as a `rollback` event. Needs a JS reducer.
   * @default false
   */
  optimistic?: boolean;
}

/** `http`: an HTTP endpoint with `/metrics` (Prometheus text), `/metrics.json`, `/events` and `/`, a live dashboard. */
export interface HttpSettings {
  /** @default 0 (a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
}

export interface ServerSettings {
  /** Opt-in: metrics and the dashboard on their own port. */
  http?: HttpSettings;
  /**
   * Interface to listen on (TCP).
   * @default '0.0.0.0'
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (read it back from `server.port`).
   * @default 10001
   */
  port?: number;
  /** Unix socket path; when set, TCP settings are ignored. A stale socket file is removed. */
  path?: string;
  /**
   * Login name → password. When set, clients must prove they know a password
   * (HMAC-SHA256 challenge–response; nothing replayable crosses the wire).
   */
  logins?: Record<string, string>;
  /**
   * Serve TLS (PEM strings or Buffers). With `ca`, clients must present a certificate
   * signed by it (mutual TLS).
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** Lock out an address after failed logins (TCP only). */
  ban?: {
    /** @default 5 */
    attempts?: number;
    /** @default 10800000 (3 hours) */
    durationMs?: number;
  };
  /** Most clients served at once on this endpoint; past it a client is told `ERR_BUSY` and retries later. Default: no cap. */
  limit?: number;
  /** Most clients served at once from one address (on TCP; other servers of a replicated store do not count). Default: no cap. */
  limitPerAddress?: number;
  /**
   * Make this server one of a replicated group: the servers of the store form a Raft
   * group whose leader orders every action; any minority of them may fail.
   */
  cluster?: ReplicationSettings;
}

export interface ReplicationSettings {
  /** This server's name in the group: unique, and the same across restarts. */
  nodeName: string;
  /**
   * Other servers of the group (some or all) as `name@host:port`, with the port each
   * serves the store on (one port serves clients and peers alike).
   * Fresh servers told about each other form one group; a server started later joins
   * the running one (as a learner that catches up, then as a voter).
   */
  seeds?: string[];
  /** The host the others dial. @default the server's host, or 127.0.0.1 for a wildcard host */
  advertiseHost?: string;
  /** The port the others dial, when not the one this server listens on (a proxy, NAT). @default the server's port */
  advertisePort?: number;
  /**
   * With `tls`: the CA the other servers' certificates are signed by (PEM). The servers
   * dial each other with TLS, presenting their own certificate (with `tls.ca` set, it
   * needs the clientAuth usage too). @default `tls.ca`, else the system's roots
   */
  ca?: string | Buffer;
  /** Where the Raft log and vote are kept (durable). Without it they live in memory. */
  dataDir?: string;
  /** Shared by the group's servers: authenticates their connections. */
  secret?: string;
  /** Lowest election timeout in ms; the highest is twice it. @default 150 */
  electionTimeout?: number;
  /** @default 50 */
  heartbeatInterval?: number;
  /**
   * Raft log entries (batches of actions) between snapshots of the store. A snapshot
   * holds the reducer's state and the actions after it; the log before it is dropped,
   * so a restart replays only what came after, and a server too far behind (or added
   * later) is sent the snapshot. @default 10000
   */
  snapshotThreshold?: number;
  /** Found a one-server group at once. @default false */
  bootstrap?: boolean;
  /**
   * Join as a replica: this server applies the committed order and serves clients like
   * any other (their dispatches are forwarded to the leader), but never votes, never
   * counts toward a quorum and never leads, so adding replicas adds fan-out without
   * slowing commits. It needs `seeds` (voters of the group); its `status().role` is
   * `'replica'`, and it is a member with `voter: false`. @default false
   */
  replica?: boolean;
}

export interface ReplicationStatus {
  nodeId: string;
  /** The address the other servers reach this one on (its store port). */
  address: string;
  /** `'learner'`: a voter still catching up; `'replica'`: started with `cluster.replica`; `'starting'`: still opening its `dataDir`. */
  role: 'leader' | 'follower' | 'candidate' | 'learner' | 'replica' | 'shutdown' | 'starting' | 'failed';
  leaderId: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** The log index of this server's latest snapshot (the log before it is compacted); null before the first. */
  snapshotIndex: number | null;
  /**
   * `voter: false`: a replica (or a server being added, until it has caught up).
   * `matchIndex`: on the leader, the member's last log index known to match the leader's (else null).
   */
  members: { nodeId: string; address: string; voter: boolean; matchIndex: number | null }[];
}

/** One server a client may use: TCP or a Unix socket. */
export type ServerAddress = { host?: string; port: number } | { path: string };

export interface ClientSettings {
  /**
   * Several servers (instead of `host`/`port`/`path`): the client connects to the first
   * that answers and, when its server dies or is cut off, moves on to the next at once
   * (the reconnect backoff applies only after every server was tried in vain).
   */
  servers?: ServerAddress[];
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 10001 */
  port?: number;
  /** Unix socket path; when set, TCP settings are ignored. */
  path?: string;
  /**
   * Connect with TLS: `true` trusts the system's roots; `ca` trusts that CA instead;
   * `cert` and `key` present a client certificate (mutual TLS).
   */
  tls?: true | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** Login name, for a server with `logins` (with `password`). */
  login?: string;
  password?: string;
  /**
   * Optimistic updates: this store's own dispatches show in `getState()` at once, before
   * the server ordered them; the server's order is applied beneath them as it comes (the
   * unconfirmed actions replayed on it), and an action the server will never order is
   * dropped and reported as a `rollback` event. Needs a JS reducer.
   * @default false
   */
  optimistic?: boolean;
}

export interface BackupOptions {
  /** The backup file. */
  path: string;
  /** Encrypts the file (AES-256-GCM, key derived with scrypt). */
  key?: string;
  /** Write this many seconds after a change (wins over `count`). */
  timeout?: number;
  /**
   * Write after this many changes.
   * @default 1
   */
  count?: number;
}

/** redux-cluster 2.0's name for the backup options. */
export type BackupSettings = BackupOptions;

/** One connected client, in `ClusterServer.metrics()`. */
export interface ClientMetrics {
  /** The client's random id (hex). */
  clientId: string;
  address: string;
  login: string;
  transport: 'tcp' | 'tls' | 'unix' | 'ws' | 'wss';
  /** The endpoint it came through ('tcp:PORT', 'ws:PORT' or a socket path). */
  endpoint: string;
  /** The last sequence number sent to it. */
  position: number;
  /** Actions ordered but not yet sent to it. */
  lag: number;
  bytesIn: number;
  bytesOut: number;
  dispatched: number;
}

/** `ClusterServer.metrics()`. */
export interface ServerMetrics {
  time: number;
  /** This server's name in a replicated store, else null. */
  nodeId: string | null;
  /** Actions ordered (the last sequence number) and applied by this server's reducer. */
  ordered: number;
  applied: number;
  /** Per second, over the last second or so (sampled when metrics are read). */
  perSecond: { ordered: number; applied: number };
  /** Actions ordered per second over the last minute. */
  history: { t: number; perSecond: number }[];
  clients: ClientMetrics[];
  bytesIn: number;
  bytesOut: number;
  /** Errors reported on `stderr` so far. */
  errors: number;
  /** A replicated server's Raft status (as `status()`), else null. */
  raft: ReplicationStatus | null;
  /** The engine's metric families (see the README's metrics table). */
  engine: MetricFamily[];
}

/** One metric family, named without its `redux_cluster_` prefix. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: Array<{
    labels: Record<string, string>;
    /** A counter's or gauge's value. */
    value?: number;
    /** A histogram's `[upper bound in seconds, cumulative count]` (+Inf is `count`). */
    buckets?: Array<[number, number]>;
    count?: number;
    sum?: number;
  }>;
}

/** The part of a prom-client `Registry` that registerMetrics uses. */
export interface PromRegistry {
  registerMetric(metric: any): void;
  removeSingleMetric(name: string): void;
  getSingleMetric?(name: string): any;
}

/**
 * Puts a server's metrics (every family of the README's metrics table) into a
 * prom-client registry, read from the engine at each scrape; `remove()` takes them out.
 * Throws ERR_INVALID_ARGUMENT without a server or registry, ERR_INVALID_CONFIG when a
 * name is taken.
 */
export declare function registerMetrics(
  server: ClusterServer,
  registry: PromRegistry,
  options?: { prefix?: string },
): { names: string[]; remove(): void };

export interface ClusterServer {
  /** The interface listened on (TCP only). */
  readonly host?: string;
  /** The bound port (TCP only), also when 0 was asked for. */
  readonly port?: number;
  readonly path?: string;
  address(): string | { address: string; port: number };
  /**
   * Stops listening and drops every connection; resolves promptly; idempotent. The
   * store's last server of a replicated group also stops its Raft node.
   */
  close(): Promise<void>;
  /** A replicated server's view of its group; null on a single server. */
  /** What this server store is doing (the same for every endpoint of one store). */
  metrics(): ServerMetrics;
  /** With `http` in the settings: the HTTP endpoint of /metrics and the dashboard. */
  readonly dashboard?: { close(): Promise<void> };
  status(): ReplicationStatus | null;
  /**
   * Removes a server from the group (callable on any server of it); resolves once the
   * change is committed. Close the removed server afterwards. Rejects with
   * `ERR_INVALID_CONFIG` (not a replicated server), `ERR_CLOSED`, `ERR_NOT_LEADER` (no
   * leader reached), `ERR_TIMEOUT`, `ERR_BUSY` (another change in progress) or
   * `ERR_UNAVAILABLE`.
   */
  removeMember(nodeName: string): Promise<void>;
  /** A replicated server learned of a (new) leader. */
  on(event: 'leader', listener: (info: { leaderId: string; term: number }) => void): this;
  once(event: 'leader', listener: (info: { leaderId: string; term: number }) => void): this;
  off(event: 'leader', listener: (info: { leaderId: string; term: number }) => void): this;
  /** A replicated server's own role changed (it won or lost an election, was promoted from learner, ...). */
  on(event: 'role', listener: (info: { role: ReplicationStatus['role']; term: number }) => void): this;
  once(event: 'role', listener: (info: { role: ReplicationStatus['role']; term: number }) => void): this;
  off(event: 'role', listener: (info: { role: ReplicationStatus['role']; term: number }) => void): this;
}

export interface ClusterClient {
  /** The first server given. */
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  /** Every server this client may use, in the order it tries them. */
  readonly servers: ServerAddress[];
  /** The server of the current connection (or the one being tried). */
  readonly server: ServerAddress;
  /** Whether the connection to the server is up. */
  readonly connected: boolean;
  /** Dispatched actions the server has not acknowledged yet. */
  readonly pending: number;
  /**
   * The last error of this connection, or null. `ERR_AUTH`, `ERR_BANNED` and
   * `ERR_STORE_MISMATCH` stop the client; `ERR_CONNECT` and the like are retried.
   */
  readonly error: ReduxClusterError | null;
  /**
   * Waits up to `flushMs` for queued actions to reach the server, then closes;
   * idempotent. Afterwards the store works locally and nothing keeps the process alive.
   * @param flushMs @default 1000
   */
  disconnect(flushMs?: number): Promise<void>;
}

/**
 * Every error code this package hands out, in one enum shared by all its layers (the
 * store, WebSocket, Cluster, the Raft coordinator; RaftNode keeps @ruvector/raft's own
 * codes, see `RaftNodeErrorCode`). `err.code` is always one of these; the README's
 * "Error codes" table says where each one arises. A message on `stderr` that has a code
 * ends with it in brackets: `... [ERR_AUTH]`.
 */
export declare const ErrorCode: {
  /** A bad option or setting (the message names it); thrown where it is given. */
  readonly InvalidConfig: 'ERR_INVALID_CONFIG';
  /** A peer or server sent something the protocol does not allow (or no handshake in
   *  `handshakeTimeoutMs`); that connection closes and a client retries. */
  readonly Protocol: 'ERR_PROTOCOL';
  /** An I/O error: a socket that cannot listen, a backup file that cannot be written, a
   *  connection reset during a handshake, the Raft log's storage failing. */
  readonly Io: 'ERR_IO';
  /** The store's client, a replicated server, a Raft coordinator or Cluster node is
   *  closed (or closing) and cannot take the call. */
  readonly Closed: 'ERR_CLOSED';
  /** Nobody can answer now: no leader, a server cut off from its group (its clients move
   *  on), a peer unreachable. Retried, or tried elsewhere. */
  readonly Unavailable: 'ERR_UNAVAILABLE';
  /** Wrong or missing login; without a clusterSecret, a membership change asked from a
   *  host that is no member. Stops a client. */
  readonly Auth: 'ERR_AUTH';
  /** Not done within its time (`dispatchAsync`'s `timeout`, `commitTimeout`); it may
   *  still happen later: a timeout takes nothing back. */
  readonly Timeout: 'ERR_TIMEOUT';
  /** Only the leader can do this (`forwardToLeader: false`); `leaderId` names it. */
  readonly NotLeader: 'ERR_NOT_LEADER';
  /** Too many failed logins from this address: locked out for a while. Stops a client. */
  readonly Banned: 'ERR_BANNED';
  /** The replicated key-value state is at its key limit; the write changed nothing. */
  readonly StateFull: 'ERR_STATE_FULL';
  /** A compare-and-set (`update`) found another version, past its retries. */
  readonly Conflict: 'ERR_CONFLICT';
  /** The TLS handshake failed (an untrusted certificate, a plain peer); retried. */
  readonly Tls: 'ERR_TLS';
  /** The server runs another reducer than this client's store. Stops a client. */
  readonly StoreMismatch: 'ERR_STORE_MISMATCH';
  /** The node asked to join already belongs to another Raft cluster. */
  readonly OtherCluster: 'ERR_OTHER_CLUSTER';
  /** Not a plain object with a string `type` (or a bare REDUX_CLUSTER_SYNC). */
  readonly InvalidAction: 'ERR_INVALID_ACTION';
  /** An action or state larger than `maxFrameSize`. */
  readonly FrameTooLarge: 'ERR_FRAME_TOO_LARGE';
  /** Connecting to the server failed; retried with backoff. */
  readonly Connect: 'ERR_CONNECT';
  /** Not a valid `name@host:port` node id. */
  readonly InvalidNodeId: 'ERR_INVALID_NODE_ID';
  /** A bad argument to a call (`dispatchAsync` options, a key, a non-function). */
  readonly InvalidArgument: 'ERR_INVALID_ARGUMENT';
  /** A bug in this package (a panic in the engine is caught and reported as this instead
   *  of aborting Node); please report it with the message. */
  readonly Internal: 'ERR_INTERNAL';
  /** The connection to the server was lost; the client reconnects and resumes. */
  readonly Disconnected: 'ERR_DISCONNECTED';
  /** Full up for now: past a server's `limit` / `limitPerAddress`, or another Raft
   *  membership change in progress. Retried. */
  readonly Busy: 'ERR_BUSY';
  /** The address is in use (`createServer`, a Raft node, `Cluster.start`). */
  readonly AddrInUse: 'ERR_ADDR_IN_USE';
  /** A queue is full: `queueLimit` actions wait for the server, or 65,536 writes wait
   *  on a Raft node. Nothing was queued; try again later. */
  readonly QueueFull: 'ERR_QUEUE_FULL';
  /** The operating system refused (a privileged port, a socket path's directory). */
  readonly Permission: 'ERR_PERMISSION';
  /** Events for JS were dropped because the JS thread did not read them in time (a long
   *  synchronous task); said on `stderr` or as an `error` event, with how many. */
  readonly EventsDropped: 'ERR_EVENTS_DROPPED';
  /** A native reducer refused the action (or panicked on it); the state is unchanged,
   *  on every replica alike. */
  readonly Reducer: 'ERR_REDUCER';
  /** `loadReducer` could not load the library (not found, not a reducer library, another
   *  ABI version, config refused). */
  readonly ReducerLoad: 'ERR_REDUCER_LOAD';
  /** A second `createClient` / `createWSClient` on one store. */
  readonly AlreadyConnected: 'ERR_ALREADY_CONNECTED';
  /** A backup file with a wrong key, altered or truncated; nothing is loaded. */
  readonly BackupCorrupt: 'ERR_BACKUP_CORRUPT';
  /** A Raft `dataDir` an older version wrote, in a format this one does not read; nothing in it is changed. */
  readonly DataFormat: 'ERR_DATA_FORMAT';
  /** A Raft coordinator, cluster manager or state machine used before `initialize()`. */
  readonly NotInitialized: 'ERR_NOT_INITIALIZED';
  /** `Cluster.start()` while the node is running, starting or stopping. */
  readonly ClusterRunning: 'ERR_CLUSTER_RUNNING';
  /** A `Cluster` query before `Cluster.start()`. */
  readonly ClusterNotStarted: 'ERR_CLUSTER_NOT_STARTED';
  /** A replica's state differs from its authority's at the same point of the ordered
   *  actions: a reducer that is not deterministic (`Math.random`, `Date.now`) or that
   *  mutates its state, found by the divergence guard. */
  readonly Diverged: 'ERR_DIVERGED';
};
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export declare class ReduxClusterError extends Error {
  readonly code: ErrorCode;
}

export interface DispatchAsyncOptions {
  /**
   * Milliseconds to wait for the acknowledgement (and, on a client, for the action to
   * be applied here) before rejecting with `ERR_TIMEOUT`.
   * @default 30000
   */
  timeout?: number;
}

export interface ReduxClusterStore<S = any, A extends Action = UnknownAction> extends Store<S, A> {
  /**
   * 'divergence': this replica's state differed from its authority's at a checkpoint of
   * the divergence guard (see StoreConfig.guard). The store is a Node EventEmitter.
   */
  on(event: 'divergence', listener: (d: Divergence) => void): this;
  once(event: 'divergence', listener: (d: Divergence) => void): this;
  off(event: 'divergence', listener: (d: Divergence) => void): this;
  /**
   * 'rollback' (an `optimistic` client): one of this store's own actions, shown at once,
   * will never be ordered (a refused login, a disconnect); it is gone from the state.
   */
  on(event: 'rollback', listener: (r: { action: A; code: ErrorCode; message: string }) => void): this;
  once(event: 'rollback', listener: (r: { action: A; code: ErrorCode; message: string }) => void): this;
  off(event: 'rollback', listener: (r: { action: A; code: ErrorCode; message: string }) => void): this;
  /**
   * Dispatches `action` and resolves once it is ordered and applied to this store, so
   * `getState()` then includes it. `seq` is its position in the ordered stream of the
   * store's server (on a server or a standalone store, resolved at once). Each action is
   * applied once even when its acknowledgement is lost with a connection. Rejects with
   * `ERR_INVALID_ACTION`, `ERR_QUEUE_FULL`, `ERR_FRAME_TOO_LARGE`, `ERR_TIMEOUT`,
   * `ERR_CLOSED`, `ERR_INVALID_ARGUMENT`, `ERR_REDUCER` (a native reducer refused it,
   * here, after it was ordered: every replica refused it alike), or the code that
   * stopped the client (`ERR_AUTH`, `ERR_BANNED`, `ERR_STORE_MISMATCH`).
   */
  dispatchAsync(action: A, options?: DispatchAsyncOptions): Promise<{ seq: number }>;
  /** md5 of the reducer's name: stores sync only with stores of the same reducer. */
  readonly RCHash: string;
  /** The store's `name`, if it was given one. */
  readonly name?: string;
  /**
   * Read when the store starts serving (`createServer`, or its first node:cluster
   * worker); setting anything but 'action' or 'snapshot' throws `ERR_INVALID_CONFIG`.
   */
  mode: SyncMode;
  /**
   * As in redux-cluster: 'master' outside a node:cluster worker, 'worker' in one (synced
   * with the primary automatically), plus 'server' while serving and 'client' while
   * connected to a server.
   */
  role: Role[];
  /** Whether the store is in sync with its server (a master with no server: true). */
  connected: boolean;
  resync: number;
  stderr: ErrorHandler;
  /** The options given, over the defaults `{ serializationMode: 'json', debug: false }`. */
  readonly config: Readonly<StoreConfig & { serializationMode: SerializationMode | 'json' | 'protoobject'; debug: boolean }>;
  /** This package's version. */
  readonly version: string;
  /** This package's homepage. */
  readonly homepage: string;
  /**
   * redux-cluster's broadcast, reaching every replica (node:cluster workers and socket
   * clients alike, as they are replicas of one ordered stream). Without a message every
   * replica takes this store's current state; with a `MSG_TO_WORKER` message of this
   * store's hash, its `_action` is ordered and applied by every replica, this store
   * included (a `REDUX_CLUSTER_SYNC` action replaces the state with its `payload`).
   * Other messages are ignored; a store that serves no one does nothing.
   */
  sendtoall(message?: ClusterMessage): void;
  /** The same as `sendtoall` (redux-cluster's broadcast to socket clients). */
  sendtoallsock(message?: ClusterMessage): void;
  /**
   * serializationMode 'protoobject': instances of `classConstructor` cross the wire tagged
   * `name` and are rebuilt with `new classConstructor(fields)`; register it in every
   * process. In 'json' mode: ignored, with a process warning. A bad name or constructor
   * throws `ERR_INVALID_CONFIG`.
   */
  registerClass(name: string, classConstructor: new (fields: any) => unknown): void;
  /** Class names this store rebuilds (registered, or ProtoObject subclasses it sent); [] in 'json' mode. */
  getRegisteredClasses(): string[];
  /**
   * Restores the state from `path` if the file exists (on a server, as an ordered state
   * replacement every client applies), then writes it after every `count` changes or
   * `timeout` seconds after a change (timeout wins; with neither, after every change).
   * Writes are atomic (temp file, fsync, rename). With `key`, AES-256-GCM with a
   * scrypt-derived key and random salt. Rejects with `ERR_BACKUP_CORRUPT` (wrong key,
   * altered or truncated file; nothing is loaded), `ERR_INVALID_CONFIG` or `ERR_IO`.
   */
  backup(options: BackupOptions): Promise<boolean>;
  /** Serves this store over TCP or a Unix socket; one store may serve several endpoints. */
  createServer(settings?: ServerSettings): ClusterServer;
  /**
   * Opens this store on the group of a replicated server of this process (`group`: what
   * its `createServer({ cluster })` returned): the store's actions go through the group's
   * Raft log with their own order, its clients reach it on the group's port by its
   * reducer and `name`, and it shares the group's failover and snapshots. Open it on
   * every server of the group (a server that opens it later takes over what was ordered
   * for it). Throws `ERR_INVALID_CONFIG` for anything but `group` and `http`.
   */
  createServer(settings: { group: ClusterServer; http?: ServerSettings['http'] }): ClusterServer;
  /**
   * Serves this store to WebSocket clients (browsers, `createWSClient`), with the same
   * ordering, acknowledgements and resume as TCP. redux-cluster-ws's names. Throws
   * `ERR_INVALID_CONFIG` (bad settings), `ERR_ADDR_IN_USE`.
   */
  createWSServer(settings?: WSServerSettings): ClusterServer;
  /**
   * Connects this store to a WebSocket server (`host: 'ws://name'` or `'wss://name'`),
   * with createClient's guarantees. Throws `ERR_INVALID_CONFIG`, `ERR_ALREADY_CONNECTED`.
   */
  createWSClient(settings: WSClientSettings): ClusterClient;
  /**
   * Connects this store to a server: it receives the server's state, then stays in
   * sync. Reconnects by itself. Throws if the store is already a client.
   */
  createClient(settings?: ClientSettings): ClusterClient;
}

/** Creates a store that can serve, or connect to, stores of the same reducer elsewhere. */
export declare function createStore<S, A extends Action = UnknownAction, PreloadedState = S>(
  reducer: Reducer<S, A, PreloadedState>,
  config?: StoreConfig
): ReduxClusterStore<S, A>;
/**
 * A store whose reducer runs in the engine (`reducers.patch()`, `reducers.entities()`,
 * `loadReducer()`): its state lives in Rust; `getState()` returns a plain object made
 * once per change of the state (the same object until it changes); `subscribe` fires
 * once per dispatch here and once per batch applied from elsewhere. A refused action
 * changes nothing, is reported on `stderr`, and rejects `dispatchAsync` with
 * `ERR_REDUCER`. `serializationMode` must be 'json'; `replaceReducer` throws.
 */
export declare function createStore<S, A extends Action = UnknownAction>(
  reducer: NativeReducerSpec<S, A>,
  config?: StoreConfig
): ReduxClusterStore<S, A>;

/** A reducer that runs in the engine; give it to `createStore`. Each store gets its own state. */
export declare class NativeReducerSpec<S = unknown, A extends Action = UnknownAction> {
  private constructor();
  readonly kind: 'patch' | 'entities' | 'library';
  /** 'patch', 'entities(<name>)', or the name a library gives its reducer. */
  readonly name: string;
  /** Types only: the state and actions of stores made with it. */
  readonly __types?: { state: S; action: A };
}

/** One RFC 6902 operation. */
export type PatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** The action `reducers.patch()` applies: its operations, all or none. */
export interface PatchAction {
  type: 'PATCH';
  ops: PatchOperation[];
}

/** Redux Toolkit's `EntityState`. */
export interface EntityState<T, Id extends string | number = string | number> {
  ids: Id[];
  entities: Record<Id, T>;
}

/** `updateOne`'s payload, as RTK's `Update`. */
export interface EntityUpdate<T, Id extends string | number = string | number> {
  id: Id;
  changes: Partial<T>;
}

/** The operations of RTK's entity adapter that `reducers.entities()` runs. */
export type EntityOperation =
  | 'addOne'
  | 'addMany'
  | 'setOne'
  | 'setMany'
  | 'setAll'
  | 'upsertOne'
  | 'upsertMany'
  | 'updateOne'
  | 'updateMany'
  | 'removeOne'
  | 'removeMany'
  | 'removeAll';

/** Each operation's payload, as RTK's adapter takes it. */
export interface EntityPayloads<T, Id extends string | number = string | number> {
  addOne: T;
  addMany: readonly T[] | Record<Id, T>;
  setOne: T;
  setMany: readonly T[] | Record<Id, T>;
  setAll: readonly T[] | Record<Id, T>;
  upsertOne: T;
  upsertMany: readonly T[] | Record<Id, T>;
  updateOne: EntityUpdate<T, Id>;
  updateMany: readonly EntityUpdate<T, Id>[];
  removeOne: Id;
  removeMany: readonly Id[];
  removeAll: undefined;
}

/** The actions of an entities store named `N`: `{ type: 'N/addOne', payload }`, ... */
export type EntityAction<T, N extends string = string, Id extends string | number = string | number> = {
  [K in EntityOperation]: K extends 'removeAll' ? { type: `${N}/${K}` } : { type: `${N}/${K}`; payload: EntityPayloads<T, Id>[K] };
}[EntityOperation];

export interface EntitiesOptions<N extends string = string> {
  /** The slice name: action types are `<name>/addOne`, ... @default 'entities' */
  name?: N;
  /** The field that holds an entity's id (RTK's `selectId`, as a field name). @default 'id' */
  idKey?: string;
}

export interface EntitiesSpec<T, N extends string, Id extends string | number = string | number>
  extends NativeReducerSpec<EntityState<T, Id>, EntityAction<T, N, Id>> {
  /** The action type of each operation: `{ addOne: '<name>/addOne', ... }`. */
  readonly types: { readonly [K in EntityOperation]: `${N}/${K}` };
  /** Action creators with RTK's names: `actions.addOne(entity)` → `{ type, payload }`. */
  readonly actions: {
    readonly [K in EntityOperation]: K extends 'removeAll'
      ? () => { type: `${N}/removeAll` }
      : (payload: EntityPayloads<T, Id>[K]) => { type: `${N}/${K}`; payload: EntityPayloads<T, Id>[K] };
  };
}

/** Reducers built into the engine. */
export declare const reducers: {
  /**
   * The state is a JSON document (default `{}`); `{ type: 'PATCH', ops }` applies RFC 6902
   * operations atomically. Other action types leave it unchanged.
   */
  patch<S = any>(initialState?: S): NativeReducerSpec<S, PatchAction>;
  /**
   * Redux Toolkit's `createEntityAdapter` state `{ ids, entities }` and operations, as
   * the actions a slice named `options.name` dispatches (`<name>/addOne`, ...).
   * `initialState` may carry other fields (left alone). Invalid initial state throws
   * `ERR_INVALID_CONFIG`.
   */
  entities<T = any, N extends string = 'entities', Id extends string | number = string | number>(
    initialState?: EntityState<T, Id> & Record<string, unknown>,
    options?: EntitiesOptions<N>
  ): EntitiesSpec<T, N, Id>;
};

/**
 * A reducer written in Rust with the `redux-cluster-reducer` crate and compiled to a
 * shared library (cdylib), loaded into this addon; `config` (JSON) goes to its `new`.
 * Throws `ERR_REDUCER_LOAD` (no such file, not a reducer library, another ABI version,
 * config refused). Stores sync only with stores of the same reducer name and config.
 */
export declare function loadReducer<S = any, A extends Action = UnknownAction>(path: string, config?: unknown): NativeReducerSpec<S, A>;

export declare const functions: {
  /** Hex digest of a string (md5 by default), as redux-cluster's hasher; undefined for non-strings. */
  hasher(data: string, algorithm?: string): string;
  hasher(data: unknown, algorithm?: string): string | undefined;
};

/**
 * redux-cluster's default export (CommonJS: `require('redux-cluster-rs').default`). The
 * ESM default import is the whole module, which has all of these.
 */
declare const _default: {
  createStore: typeof createStore;
  functions: typeof functions;
  combineReducers: typeof combineReducers;
  bindActionCreators: typeof bindActionCreators;
  applyMiddleware: typeof applyMiddleware;
  compose: typeof compose;
};
export default _default;

// ---- redux-cluster 2.0's message and utility types, for code that names them --------

export interface BaseMessage {
  _msg: MessageType;
  _hash: string;
}
export interface ConnectionStatusMessage extends BaseMessage {
  _msg: MessageType.CONN_STATUS;
  _connected: boolean;
}
export interface ActionToWorkerMessage extends BaseMessage {
  _msg: MessageType.MSG_TO_WORKER;
  _action: Action;
}
export interface ActionToMasterMessage extends BaseMessage {
  _msg: MessageType.MSG_TO_MASTER;
  _action: Action;
}
export interface SocketAuthMessage extends BaseMessage {
  _msg: MessageType.SOCKET_AUTH;
  _login: string;
  _password: string;
}
export interface SocketAuthStateMessage extends BaseMessage {
  _msg: MessageType.SOCKET_AUTH_STATE;
  _value: boolean;
  _banned?: boolean;
}
export interface StartMessage extends BaseMessage {
  _msg: MessageType.START;
}
export type ClusterMessage =
  | ConnectionStatusMessage
  | ActionToWorkerMessage
  | ActionToMasterMessage
  | SocketAuthMessage
  | SocketAuthStateMessage
  | StartMessage;
/** redux-cluster 2.0's socket type; this package never hands one out. */
export interface ClusterSocket {
  uid: string;
  writeNEW: (data: any) => boolean;
  write(data: any): boolean;
  on(event: string, listener: (...args: any[]) => void): any;
  pipe(...args: any[]): any;
  end(): void;
  remoteAddress?: string;
}
export type HasherFunction = (data: string, algorithm?: string) => string | undefined;
export type EncrypterFunction = (data: string, pass: string) => string;
export type DecrypterFunction = (data: string, pass: string) => string;

// ---- Cluster membership (noex's Cluster API) ----------------------------------------

/** `name@host:port`; a NodeId is its string form. */
export type NodeIdString = string;
/** noex's names for the same type (a plain string here, not a branded one). */
export type NodeId = NodeIdString;
export type NodeIdType = NodeIdString;

export interface NodeIdComponents {
  name: string;
  host: string;
  port: number;
}

export type NodeStatus = 'connecting' | 'connected' | 'disconnected';
export type ClusterStatus = 'starting' | 'running' | 'stopping' | 'stopped';
export type NodeDownReason = 'heartbeat_timeout' | 'connection_closed' | 'connection_refused' | 'graceful_shutdown';

export interface NodeInfo {
  id: NodeIdString;
  host: string;
  port: number;
  status: NodeStatus;
  /** Always 0 for now (no process registry yet). */
  processCount: number;
  /** Unix ms of the last heartbeat; 0 before the first. */
  lastHeartbeatAt: number;
  /** The node's reported uptime. */
  uptimeMs: number;
}

export interface ClusterConfig {
  /** Starts with a letter; letters, digits, `_`, `-`; at most 64. */
  nodeName: string;
  /** @default '0.0.0.0' */
  host?: string;
  /** 1..65535; 0 binds a free port (read it from getLocalNodeInfo().port). @default 4369 */
  port?: number;
  /**
   * The host in this node's id, as other machines reach it.
   * @default host, or the machine's hostname when host is a wildcard address
   */
  advertiseHost?: string;
  /** Nodes to join through, `name@host:port`; one naming this node is skipped. */
  seeds?: readonly string[];
  /** Every message is HMAC-SHA256-signed and replay-protected; all nodes share it. */
  clusterSecret?: string;
  /**
   * TLS under every membership link. One certificate per node, presented either way;
   * with `ca`, a peer must present a certificate signed by it (mutual TLS), and it
   * then needs both the serverAuth and clientAuth usages.
   */
  tls?: { cert: string; key: string; ca?: string };
  /** An integer >= 100. @default 5000 */
  heartbeatIntervalMs?: number;
  /** A node silent for interval × threshold is down; an integer >= 1. @default 3 */
  heartbeatMissThreshold?: number;
  /** @default 1000 */
  reconnectBaseDelayMs?: number;
  /** @default 30000 */
  reconnectMaxDelayMs?: number;
}

/**
 * The queries throw ClusterNotStartedError unless the status is 'running'.
 */
export declare const Cluster: {
  /**
   * Binds, then joins through the seeds (unreachable seeds do not fail it).
   * @throws InvalidClusterConfigError (ERR_INVALID_CONFIG) for a bad config
   * @throws Error 'Cluster is already running' / 'Cannot start cluster in <status> state'
   *   (code ERR_CLUSTER_RUNNING)
   */
  start(config: ClusterConfig): Promise<void>;
  /** Peers see 'graceful_shutdown'; idempotent (concurrent calls share one stop); lets the process exit. */
  stop(): Promise<void>;
  getStatus(): ClusterStatus;
  getLocalNodeId(): NodeIdString;
  /** This node: status 'connected', processCount 0, lastHeartbeatAt now. */
  getLocalNodeInfo(): NodeInfo;
  /** Milliseconds since start() completed. */
  getUptimeMs(): number;
  /** Every known peer (never this node), connected or not. */
  getNodes(): NodeInfo[];
  getNodeIds(): NodeIdString[];
  getConnectedNodes(): NodeInfo[];
  getNode(id: NodeIdString): NodeInfo | undefined;
  isNodeConnected(id: NodeIdString): boolean;
  getConnectedNodeCount(): number;
  /** Returns an unsubscribe function. */
  onNodeUp(handler: (node: NodeInfo) => void): () => void;
  onNodeDown(handler: (nodeId: NodeIdString, reason: NodeDownReason) => void): () => void;
  onStatusChange(handler: (status: ClusterStatus) => void): () => void;
  /**
   * Not in noex: a membership link refused or broken for a reason the owner should hear
   * of, such as a peer with a wrong cluster secret (`code` 'ERR_AUTH'). Without a
   * handler these go to `process.emitWarning` with the same code.
   */
  onError(handler: (error: Error & { code: string }) => void): () => void;
};

/**
 * noex's rules: the name starts with a letter, then letters, digits, `_`, `-` (at most
 * 64); the host an IPv4 address (digits and dots must be one), an IPv6 address or a
 * hostname; the port 1..65535. An IPv6 host is returned bare (`a@[::1]:1` → `a@::1:1`).
 */
export declare const NodeId: {
  /** @throws InvalidNodeIdError */
  parse(value: string): NodeIdString;
  /** `parse`, or undefined instead of throwing. */
  tryParse(value: string): NodeIdString | undefined;
  /** @throws InvalidNodeIdError */
  create(name: string, host: string, port: number): NodeIdString;
  isValid(value: string): value is NodeIdString;
  /** The parts of a valid id (not checked again). */
  getName(nodeId: NodeIdString): string;
  getHost(nodeId: NodeIdString): string;
  getPort(nodeId: NodeIdString): number;
  components(nodeId: NodeIdString): NodeIdComponents;
  equals(a: NodeIdString, b: NodeIdString): boolean;
  toString(nodeId: NodeIdString): string;
};

/** A string that is a valid NodeId. */
export declare function isNodeId(value: unknown): value is NodeIdString;

/** `Invalid cluster configuration: <reason>`, with noex's reasons. */
export declare class InvalidClusterConfigError extends Error {
  constructor(reason: string);
  readonly name: 'InvalidClusterConfigError';
  readonly reason: string;
  readonly code: 'ERR_INVALID_CONFIG';
}

/** `Cluster has not been started. Call Cluster.start() first.` Its code is
 *  `ERR_CLUSTER_NOT_STARTED` before the first start, and `ERR_CLOSED` once a node has run
 *  and stopped (or is stopping). */
export declare class ClusterNotStartedError extends Error {
  constructor();
  readonly name: 'ClusterNotStartedError';
  readonly code: 'ERR_CLUSTER_NOT_STARTED' | 'ERR_CLOSED';
}

/** `Invalid NodeId '<value>': <reason>`, with noex's reasons. */
export declare class InvalidNodeIdError extends Error {
  constructor(value: string, reason: string);
  readonly name: 'InvalidNodeIdError';
  /** The rejected id, or the part of it at fault (the name or the host), as noex reports it. */
  readonly value: string;
  readonly reason: string;
  readonly code: 'ERR_INVALID_NODE_ID';
}

// ---------------------------------------------------------------------------------------
// Consensus: @unrdf/consensus's API on the Rust Raft engine (openraft).

import { EventEmitter } from 'node:events';

/** The codes of the Raft coordinator's errors (members of {@link ErrorCode}). */
export type RaftErrorCode = Extract<
  ErrorCode,
  | 'ERR_NOT_LEADER' | 'ERR_TIMEOUT' | 'ERR_UNAVAILABLE' | 'ERR_BUSY' | 'ERR_CONFLICT'
  | 'ERR_STATE_FULL' | 'ERR_INVALID_CONFIG' | 'ERR_INVALID_ARGUMENT' | 'ERR_NOT_INITIALIZED'
  | 'ERR_ADDR_IN_USE' | 'ERR_PERMISSION' | 'ERR_IO' | 'ERR_PROTOCOL' | 'ERR_OTHER_CLUSTER'
  | 'ERR_AUTH' | 'ERR_CLOSED' | 'ERR_QUEUE_FULL' | 'ERR_EVENTS_DROPPED' | 'ERR_INTERNAL'
  | 'ERR_DATA_FORMAT'
>;

export declare class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** With ERR_NOT_LEADER: the leader's nodeId, when known. */
  readonly leaderId?: string;
  /** With a write the log refused (ERR_STATE_FULL, ERR_CONFLICT): its log index. */
  readonly index?: number;
}

export interface RaftCoordinatorOptions {
  nodeId: string;
  /** Raft listener port (0: any free port). @default 8080 */
  port?: number;
  /** @default 'localhost' (bound as 127.0.0.1) */
  host?: string;
  /** The host other nodes dial. @default host */
  advertiseHost?: string;
  /** @default 150 */
  electionTimeoutMin?: number;
  /** @default 300 */
  electionTimeoutMax?: number;
  /** @default 50 */
  heartbeatInterval?: number;
  /** Entries between snapshots; the log before a snapshot is purged. @default 1000 */
  snapshotThreshold?: number;
  /** Durable log, vote and snapshots (fsync before acknowledging). Without it, memory only. */
  dataDir?: string;
  /** HMAC-SHA256 on every Raft message; nodes must share it. */
  clusterSecret?: string;
  /** Forward writes made on a follower to the leader; else reject with ERR_NOT_LEADER. @default true */
  forwardToLeader?: boolean;
  /** How long a write or membership change may wait for its commit (ms). @default 5000 */
  commitTimeout?: number;
  /** Found a one-node cluster at initialize() (else formed by addPeer, see README). @default false */
  bootstrap?: boolean;
}

export interface RaftMemberInfo { nodeId: string; address: string }

export interface RaftState {
  nodeId: string;
  address: string;
  /** The engine's role; `'learner'`: not a voter (yet), e.g. a fresh node. */
  role: 'leader' | 'follower' | 'candidate' | 'learner' | 'shutdown' | 'stopped';
  /** The seed's states: a learner is a `'follower'`; `'stopped'` before initialize() and after shutdown(). */
  state: 'leader' | 'follower' | 'candidate' | 'stopped';
  isLeader: boolean;
  term: number;
  leaderId: string | null;
  votedFor?: string | null;
  /** The seed's name for `lastLogIndex`: entries ever appended (compacted ones included). */
  logLength: number;
  lastLogIndex: number;
  commitIndex: number;
  lastApplied: number;
  snapshotIndex: number | null;
  voters: RaftMemberInfo[];
  learners: RaftMemberInfo[];
  peers: string[];
  initialized: boolean;
}

/** A workflow recorded by replicateCommand: its state's fields, or `state` when that is not an object. */
export type RaftWorkflow = { id: string; state?: unknown; [field: string]: unknown };

export interface RaftCoordinatorEvents {
  /** At the end of initialize(). */
  initialized: [{ nodeId: string }];
  leader_elected: [{ leaderId: string; term: number }];
  became_follower: [{ term: number }];
  command_applied: [{ command: unknown; entry: { index: number }; error?: string | null }];
  peer_connected: [{ nodeId: string }];
  peer_disconnected: [{ nodeId: string }];
  /** On the node addPeer() was called on, once the node is a voter. */
  peer_added: [{ nodeId: string; host: string; port: number }];
  /** On the node removePeer() was called on, once the removal committed. */
  peer_removed: [{ nodeId: string }];
  /** A listener of another event threw (`apply_command`: a `command_applied` or state machine listener). */
  /** A listener threw (`apply_command`, `event_listener`), or the engine dropped events
   *  nobody read in time (`engine`, a RaftError with `ERR_EVENTS_DROPPED`; without an
   *  `error` listener that one is a process warning instead). */
  error: [{ error: unknown; source: 'apply_command' | 'event_listener' | 'engine'; event: string }];
  /** Once, when shutdown() has stopped the node. */
  shutdown: [];
}

export declare class RaftCoordinator extends EventEmitter<RaftCoordinatorEvents & Record<string, any[]>> {
  readonly nodeId: string;
  /** The options with their defaults; `port` is the bound one after initialize(). */
  readonly config: Required<Omit<RaftCoordinatorOptions, 'dataDir' | 'clusterSecret' | 'advertiseHost'>> &
    Pick<RaftCoordinatorOptions, 'dataDir' | 'clusterSecret' | 'advertiseHost'>;
  /** Whether this node is the leader now. Assigning it (as the seed's tests do) is
   *  accepted and has no effect: leadership only comes from elections. */
  get isLeader(): boolean;
  set isLeader(value: boolean);
  readonly leaderId: string | null;
  initialize(): Promise<void>;
  addPeer(nodeId: string, host: string, port: number): Promise<void>;
  removePeer(nodeId: string): Promise<void>;
  replicateCommand(command: unknown): Promise<{ index: number; committed: true }>;
  getState(): RaftState;
  /** The state the last committed command with this `workflowId` recorded, or `null`. */
  getWorkflowState(workflowId: string): unknown;
  /** Every recorded workflow, in id order. */
  getAllWorkflows(): RaftWorkflow[];
  shutdown(): Promise<void>;
}

export interface ClusterManagerOptions {
  nodeId?: string;
  /** How often the manager reads the engine's probes of its peers. @default 5000 */
  healthCheckInterval?: number;
  /** Accepted for compatibility and unused: a check reads the engine's own probe of the
   *  peer, answered within the election timeout. @default 2000 */
  healthCheckTimeout?: number;
  /** @default 3 */
  maxFailedHealthChecks?: number;
  /** Emit `discovery_requested` every `discoveryInterval` (members themselves always come
   *  from the Raft membership). @default false */
  autoDiscovery?: boolean;
  /** @default 10000 */
  discoveryInterval?: number;
}

export type NodeHealth = 'unknown' | 'healthy' | 'degraded' | 'unhealthy';

export interface ClusterNode {
  nodeId: string;
  host: string;
  port: number;
  role: 'voter' | 'learner';
  health: NodeHealth;
  failedChecks: number;
  lastHealthCheck: number | null;
  /** When this manager first saw the node in the membership (ms since the epoch). */
  joinedAt: number;
  metadata: Record<string, unknown>;
}

export interface ClusterStats {
  totalNodes: number;
  /** Nodes per health, the seed's shape. */
  healthStats: Record<NodeHealth, number>;
  autoDiscovery: boolean;
  healthyNodes: number;
  degradedNodes: number;
  unhealthyNodes: number;
  unknownNodes: number;
  voters: number;
  learners: number;
  leaderId: string | null;
  term: number;
}

export interface ClusterManagerEvents {
  initialized: [];
  node_joined: [{ nodeId: string; metadata: Record<string, unknown> }];
  node_left: [{ nodeId: string }];
  node_health_changed: [{ nodeId: string; health: NodeHealth; previousHealth: NodeHealth }];
  node_unhealthy: [{ nodeId: string }];
  /** Every `discoveryInterval` with `autoDiscovery`: add what you discover with addNode(). */
  discovery_requested: [];
  shutdown: [];
}

export declare class ClusterManager extends EventEmitter<ClusterManagerEvents & Record<string, any[]>> {
  /** The options with their defaults. */
  readonly config: Required<Omit<ClusterManagerOptions, 'nodeId'>> & Pick<ClusterManagerOptions, 'nodeId'>;
  /** The coordinator given to initialize(); `null` before. */
  readonly raftCoordinator: RaftCoordinator | null;
  /** Alias of `raftCoordinator`. */
  readonly coordinator: RaftCoordinator | null;
  initialize(coordinator: RaftCoordinator): Promise<void>;
  addNode(metadata: { nodeId: string; host: string; port: number; [k: string]: unknown }): Promise<ClusterNode | object>;
  removeNode(nodeId: string): Promise<void>;
  getNodes(): ClusterNode[];
  getHealthyNodes(): ClusterNode[];
  getNodeHealth(nodeId: string): NodeHealth;
  getStats(): ClusterStats;
  /** Stops health checks and discovery; the coordinator keeps running. */
  shutdown(): Promise<void>;
}

export interface DistributedStateMachineOptions {
  nodeId?: string;
  /** Applied commands between snapshots. @default 1000 */
  snapshotInterval?: number;
  /** Most keys the state may hold (enforced in the log: ERR_STATE_FULL). @default 100000 */
  maxStateSize?: number;
  /** @default true */
  enableSnapshots?: boolean;
  /** Requires the coordinator's dataDir. @default false */
  persistSnapshots?: boolean;
}

export interface StateMachineStats {
  /** Keys held. */
  stateSize: number;
  /** Commands applied (replicated history, replicateCommand's included; kept across snapshots). */
  changeLogSize: number;
  /** Snapshots this node took since initialize(). */
  snapshotCount: number;
  /** Log index of the snapshot this node holds (0: none). */
  lastSnapshotIndex: number;
  /** Id of the snapshot this node holds. */
  latestSnapshot: string | null;
  sets: number;
  deletes: number;
  updates: number;
  conflicts: number;
  snapshots: number;
  restores: number;
  size: number;
  maxStateSize: number;
  lastApplied: number;
  snapshotIndex: number | null;
  commandsApplied: number;
}

export interface SnapshotInfo { snapshotId: string; index: number; stateSize: number }

export interface DistributedStateMachineEvents<V> {
  initialized: [];
  state_changed: [{ key: string; value: V | undefined; operation: 'set' | 'update' | 'delete' }];
  snapshot_created: [SnapshotInfo];
  snapshot_restored: [SnapshotInfo];
  /** A write the log refused (RaftError with its code and index), or a `state_changed`
   *  listener that threw. Emitted only when listened to. */
  error: [{ error: unknown; source: 'apply_state_change' }];
  shutdown: [];
}

export declare class DistributedStateMachine<V = unknown> extends EventEmitter<DistributedStateMachineEvents<V> & Record<string, any[]>> {
  /** The options with their defaults. */
  readonly config: Required<Omit<DistributedStateMachineOptions, 'nodeId'>> & Pick<DistributedStateMachineOptions, 'nodeId'>;
  /** The coordinator given to initialize(); `null` before and after shutdown(). */
  readonly raftCoordinator: RaftCoordinator | null;
  /** Alias of `raftCoordinator`. */
  readonly coordinator: RaftCoordinator | null;
  initialize(coordinator: RaftCoordinator): Promise<void>;
  set(key: string, value: V): Promise<{ key: string; value: V; index: number; version: number }>;
  /** Local read (this node's applied state). */
  get(key: string): V | undefined;
  /** Linearizable read: reflects every write committed before the call. */
  getLinearizable(key: string): Promise<V | undefined>;
  has(key: string): boolean;
  delete(key: string): Promise<boolean>;
  update(key: string, updateFn: (current: V | undefined) => V | Promise<V>, options?: { maxRetries?: number }): Promise<V>;
  batchUpdate(changes: Array<{ key: string; value?: V; delete?: boolean }>): Promise<{ index: number; count: number }>;
  keys(): string[];
  values(): V[];
  entries(): Array<[string, V]>;
  getStats(): StateMachineStats;
  /** Detaches from the coordinator (which keeps running). */
  shutdown(): Promise<void>;
}

export declare function createRaftCoordinator(options: RaftCoordinatorOptions): RaftCoordinator;
export declare function createClusterManager(options?: ClusterManagerOptions): ClusterManager;
export declare function createDistributedStateMachine<V = unknown>(options?: DistributedStateMachineOptions): DistributedStateMachine<V>;

// ---- @ruvector/raft's RaftNode (also `redux-cluster-rs/raft`, with its RaftError) ----
export { RaftNode, NodeState, RaftEvent } from './src/js/raft.js';
export type {
  RaftNodeConfig,
  RaftTransport,
  StateMachine as RaftStateMachine,
  LogEntry as RaftLogEntry,
  AppliedEntry,
  PersistentState,
  RequestVoteRequest,
  RequestVoteResponse,
  AppendEntriesRequest,
  AppendEntriesResponse,
  StateChangeEvent,
  LeaderElectedEvent,
  LogCommittedEvent,
} from './src/js/raft.js';
/** @ruvector/raft's RaftError and RaftErrorCode (`RaftError` here is @unrdf/consensus's). */
export { RaftError as RaftNodeError, RaftErrorCode as RaftNodeErrorCode } from './src/js/raft.js';
