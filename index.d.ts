// Typings of redux-cluster-rs: a drop-in for redux-cluster's createStore, generic like
// Redux's own. The native classes the JS layer is built on are in binding.d.ts.

import type { Action, Reducer, Store, UnknownAction } from 'redux';

export * from 'redux';

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
}

export interface StoreConfig extends EngineConfig {
  /**
   * 'action': every action is sent to and replayed by every replica. 'snapshot': the
   * server sends its state after applying actions. Both end in the same state.
   * @default 'action'
   */
  mode?: 'action' | 'snapshot';
  /**
   * Accepted for compatibility; everything crosses the wire as JSON.
   * @default 'json'
   */
  serializationMode?: 'json' | 'protoobject';
  /** @default false */
  debug?: boolean;
  /**
   * Kept for compatibility with redux-cluster (a count of actions). The engine never
   * needs periodic resyncs: gaps are detected by sequence numbers and filled at once.
   * @default 1000
   */
  resync?: number;
  /**
   * Where errors go (refused connections, protocol errors, reducer errors).
   * @default console.error
   */
  stderr?: (message: string) => void;
}

export interface ServerSettings {
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
}

export interface ClientSettings {
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

export interface ClusterServer {
  /** The interface listened on (TCP only). */
  readonly host?: string;
  /** The bound port (TCP only), also when 0 was asked for. */
  readonly port?: number;
  readonly path?: string;
  address(): string | { address: string; port: number };
  /** Stops listening and drops every connection; resolves promptly; idempotent. */
  close(): Promise<void>;
}

export interface ClusterClient {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
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
 * Error codes thrown or reported by this package:
 * - `ERR_INVALID_CONFIG`: a bad option (the message names it).
 * - `ERR_INVALID_ACTION`: not a plain object with a string `type`, or REDUX_CLUSTER_SYNC.
 * - `ERR_ALREADY_CONNECTED`: a second `createClient` on one store.
 * - `ERR_QUEUE_FULL`: `queueLimit` actions are waiting for the server.
 * - `ERR_FRAME_TOO_LARGE`: an action or state larger than `maxFrameSize`.
 * - `ERR_ADDR_IN_USE`, `ERR_PERMISSION`, `ERR_IO`: `createServer` could not listen.
 * - `ERR_CLOSED`: dispatch on a client that is being closed.
 * `ERR_BACKUP_CORRUPT`: a backup file with a wrong key, altered or truncated.
 * On `client.error` and `stderr`: `ERR_TLS` (untrusted certificate, retried),
 * `ERR_AUTH` (wrong or missing login), `ERR_BANNED`
 * (address locked out), `ERR_STORE_MISMATCH` (a server of another reducer), which stop
 * the client; `ERR_CONNECT`, `ERR_DISCONNECTED`, `ERR_PROTOCOL`, which are retried.
 */
export type ErrorCode =
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_ACTION'
  | 'ERR_ALREADY_CONNECTED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_ADDR_IN_USE'
  | 'ERR_PERMISSION'
  | 'ERR_IO'
  | 'ERR_CLOSED'
  | 'ERR_AUTH'
  | 'ERR_BANNED'
  | 'ERR_STORE_MISMATCH'
  | 'ERR_CONNECT'
  | 'ERR_DISCONNECTED'
  | 'ERR_PROTOCOL'
  | 'ERR_TLS'
  | 'ERR_BACKUP_CORRUPT';

export declare class ReduxClusterError extends Error {
  readonly code: ErrorCode;
}

export interface ReduxClusterStore<S = any, A extends Action = UnknownAction> extends Store<S, A> {
  /** sha1 of the reducer's name: stores sync only with stores of the same reducer. */
  readonly RCHash: string;
  readonly mode: 'action' | 'snapshot';
  /**
   * As in redux-cluster: 'master' outside a node:cluster worker, 'worker' in one (synced
   * with the primary automatically), plus 'server' while serving and 'client' while
   * connected to a server.
   */
  role: string[];
  /** Whether the store is in sync with its server (a master with no server: true). */
  connected: boolean;
  resync: number;
  stderr: (message: string) => void;
  readonly config: Readonly<StoreConfig>;
  readonly version: string;
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

export declare const functions: {
  /** Hex digest of a string (sha1 by default), as redux-cluster's hasher; undefined for non-strings. */
  hasher(data: string, algorithm?: string): string;
  hasher(data: unknown, algorithm?: string): string | undefined;
};

// ---- Cluster membership (noex's Cluster API) ----------------------------------------

/** `name@host:port`; a NodeId is its string form. */
export type NodeIdString = string;

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
  /** 0 binds a free port (read it from getLocalNodeId()). @default 4369 */
  port?: number;
  /**
   * The host in this node's id, as other machines reach it.
   * @default host, or the machine's hostname when host is a wildcard address
   */
  advertiseHost?: string;
  /** Nodes to join through, `name@host:port`. */
  seeds?: string[];
  /** Every message is HMAC-SHA256-signed and replay-protected; all nodes share it. */
  clusterSecret?: string;
  /** @default 5000 */
  heartbeatIntervalMs?: number;
  /** A node silent for interval × threshold is down. @default 3 */
  heartbeatMissThreshold?: number;
  /** @default 1000 */
  reconnectBaseDelayMs?: number;
  /** @default 30000 */
  reconnectMaxDelayMs?: number;
}

export declare const Cluster: {
  start(config: ClusterConfig): Promise<void>;
  /** Peers see 'graceful_shutdown'; idempotent; lets the process exit. */
  stop(): Promise<void>;
  getStatus(): ClusterStatus;
  /** @throws ClusterNotStartedError */
  getLocalNodeId(): NodeIdString;
  getNodes(): NodeInfo[];
  getConnectedNodes(): NodeInfo[];
  getNode(id: NodeIdString): NodeInfo | undefined;
  isNodeConnected(id: NodeIdString): boolean;
  getConnectedNodeCount(): number;
  /** Returns an unsubscribe function. */
  onNodeUp(handler: (node: NodeInfo) => void): () => void;
  onNodeDown(handler: (nodeId: NodeIdString, reason: NodeDownReason) => void): () => void;
  onStatusChange(handler: (status: ClusterStatus) => void): () => void;
};

export declare const NodeId: {
  /** @throws InvalidNodeIdError */
  parse(id: string): NodeIdString;
  /** @throws InvalidNodeIdError */
  create(name: string, host: string, port: number): NodeIdString;
  isValid(id: string): boolean;
  /** @throws InvalidNodeIdError */
  components(id: string): { name: string; host: string; port: number };
};

export declare class InvalidClusterConfigError extends Error {
  readonly reason: string;
  readonly code: 'ERR_INVALID_CONFIG';
}

export declare class ClusterNotStartedError extends Error {
  readonly code: 'ERR_CLUSTER_NOT_STARTED';
}

export declare class InvalidNodeIdError extends Error {
  readonly nodeId: unknown;
  readonly reason: string;
  readonly code: 'ERR_INVALID_NODE_ID';
}

// ---------------------------------------------------------------------------------------
// Consensus: @unrdf/consensus's API on the Rust Raft engine (openraft).

import { EventEmitter } from 'node:events';

export type RaftErrorCode =
  | 'ERR_NOT_LEADER' | 'ERR_TIMEOUT' | 'ERR_UNAVAILABLE' | 'ERR_BUSY' | 'ERR_CONFLICT'
  | 'ERR_STATE_FULL' | 'ERR_INVALID_CONFIG' | 'ERR_INVALID_ARGUMENT' | 'ERR_NOT_INITIALIZED'
  | 'ERR_ADDR_IN_USE' | 'ERR_IO' | 'ERR_RAFT' | 'ERR_PROTOCOL' | 'ERR_OTHER_CLUSTER';

export declare class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** With ERR_NOT_LEADER: the leader's nodeId, when known. */
  readonly leaderId?: string;
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
  role: 'leader' | 'follower' | 'candidate' | 'learner' | 'shutdown' | 'stopped';
  state: RaftState['role'];
  isLeader: boolean;
  term: number;
  leaderId: string | null;
  votedFor?: string | null;
  lastLogIndex: number;
  commitIndex: number;
  lastApplied: number;
  snapshotIndex: number | null;
  voters: RaftMemberInfo[];
  learners: RaftMemberInfo[];
  peers: string[];
  initialized: boolean;
}

export interface RaftCoordinatorEvents {
  leader_elected: [{ leaderId: string; term: number }];
  became_follower: [{ term: number }];
  command_applied: [{ command: unknown; entry: { index: number }; error?: string | null }];
  peer_connected: [{ nodeId: string }];
  peer_disconnected: [{ nodeId: string }];
}

export declare class RaftCoordinator extends EventEmitter<RaftCoordinatorEvents & Record<string, any[]>> {
  readonly nodeId: string;
  readonly isLeader: boolean;
  readonly leaderId: string | null;
  initialize(): Promise<void>;
  addPeer(nodeId: string, host: string, port: number): Promise<void>;
  removePeer(nodeId: string): Promise<void>;
  replicateCommand(command: unknown): Promise<{ index: number; committed: true }>;
  getState(): RaftState;
  getWorkflowState(workflowId: string): unknown;
  shutdown(): Promise<void>;
}

export interface ClusterManagerOptions {
  nodeId?: string;
  /** @default 5000 */
  healthCheckInterval?: number;
  /** @default 2000 */
  healthCheckTimeout?: number;
  /** @default 3 */
  maxFailedHealthChecks?: number;
  /** Accepted; members are always discovered from the Raft membership. @default false */
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
  metadata: Record<string, unknown>;
}

export declare class ClusterManager extends EventEmitter {
  initialize(coordinator: RaftCoordinator): Promise<void>;
  addNode(metadata: { nodeId: string; host: string; port: number; [k: string]: unknown }): Promise<ClusterNode | object>;
  removeNode(nodeId: string): Promise<void>;
  getNodes(): ClusterNode[];
  getHealthyNodes(): ClusterNode[];
  getNodeHealth(nodeId: string): NodeHealth;
  getStats(): { totalNodes: number; healthyNodes: number; degradedNodes: number; unhealthyNodes: number; unknownNodes: number; voters: number; learners: number; leaderId: string | null; term: number };
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

export declare class DistributedStateMachine<V = unknown> extends EventEmitter {
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
  getStats(): Record<string, number | null>;
  shutdown(): Promise<void>;
}

export declare function createRaftCoordinator(options: RaftCoordinatorOptions): RaftCoordinator;
export declare function createClusterManager(options?: ClusterManagerOptions): ClusterManager;
export declare function createDistributedStateMachine<V = unknown>(options?: DistributedStateMachineOptions): DistributedStateMachine<V>;
