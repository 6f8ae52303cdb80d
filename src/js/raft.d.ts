/// <reference types="node" />
// Typings of `redux-cluster-rs/raft`: @ruvector/raft's API (RaftNode) on the engine's
// Raft. Names as the seed spells them; RaftError here is @ruvector/raft's.
import { EventEmitter } from 'node:events';

export type NodeId = string;
export type Term = number;
export type LogIndex = number;

export declare enum NodeState {
  Follower = 'follower',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** An entry of the replicated log. `leader` and `kind` are the engine's additions. */
export interface LogEntry<T = unknown> {
  term: Term;
  index: LogIndex;
  command: T;
  timestamp: number;
  /** The node that was leader when the entry was made. */
  leader?: NodeId | null;
  /** The engine's own entries (membership, a new leader's blank entry); absent for proposals. */
  kind?: 'blank' | 'membership' | 'engine';
}

/** What `propose` resolves: the committed, applied entry and the state machine's result. */
export interface AppliedEntry<T = unknown, R = unknown> extends LogEntry<T> {
  result: R;
}

export interface PersistentState<T = unknown> {
  currentTerm: Term;
  votedFor: NodeId | null;
  log: LogEntry<T>[];
  /** Whether the vote is a leader's committed one (the engine's addition). */
  voteCommitted?: boolean;
}

export interface RaftNodeConfig {
  nodeId: NodeId;
  /** The other nodes of the group. */
  peers: NodeId[];
  /** [min, max] in ms. @default [150, 300] */
  electionTimeout?: [number, number];
  /** @default 50 */
  heartbeatInterval?: number;
  /** @default 100 */
  maxEntriesPerRequest?: number;
  /** Keep the log and the vote here, durably (written before a vote or an append is answered). */
  dataDir?: string;
  /** A proposal not committed and applied within this many ms rejects with TIMEOUT. @default 5000 */
  proposeTimeout?: number;
  /** A transport call not answered within this many ms is an unreachable peer. @default max(1000, electionTimeout[1]) */
  transportTimeout?: number;
}

/** The seed's request fields; the engine adds `committed`, `...Leader` and entry kinds. Carry them as they are. */
export interface RequestVoteRequest {
  term: Term;
  candidateId: NodeId;
  lastLogIndex: LogIndex;
  lastLogTerm: Term;
  [extra: string]: unknown;
}

export interface RequestVoteResponse {
  term: Term;
  voteGranted: boolean;
  [extra: string]: unknown;
}

export interface AppendEntriesRequest<T = unknown> {
  term: Term;
  leaderId: NodeId;
  prevLogIndex: LogIndex;
  prevLogTerm: Term;
  entries: LogEntry<T>[];
  leaderCommit: LogIndex;
  [extra: string]: unknown;
}

export interface AppendEntriesResponse {
  term: Term;
  success: boolean;
  matchIndex?: LogIndex;
  [extra: string]: unknown;
}

/** Carries messages to peers. A throw, a rejection or no answer within transportTimeout is an unreachable peer. */
export interface RaftTransport<T = unknown> {
  requestVote(peerId: NodeId, request: RequestVoteRequest): Promise<RequestVoteResponse>;
  appendEntries(peerId: NodeId, request: AppendEntriesRequest<T>): Promise<AppendEntriesResponse>;
}

/** Applies committed commands, in log order, one at a time. */
export interface StateMachine<T = unknown, R = unknown> {
  apply(command: T): R | Promise<R>;
}

export declare enum RaftErrorCode {
  NotLeader = 'NOT_LEADER',
  NoLeader = 'NO_LEADER',
  InvalidTerm = 'INVALID_TERM',
  InvalidLogIndex = 'INVALID_LOG_INDEX',
  ElectionTimeout = 'ELECTION_TIMEOUT',
  LogInconsistency = 'LOG_INCONSISTENCY',
  SnapshotFailed = 'SNAPSHOT_FAILED',
  ConfigError = 'CONFIG_ERROR',
  Internal = 'INTERNAL',
  /** Not in @ruvector/raft: a proposal not committed (or applied here) in time. */
  Timeout = 'TIMEOUT',
  /** Not in @ruvector/raft: the node is stopped. */
  Closed = 'CLOSED',
  /** Not in @ruvector/raft: more than 65,536 events (`logAppended`, role changes) waited
   *  for a JS thread that did not run; the newest were dropped (an `error` event says how
   *  many). Committed entries are never dropped: they are pulled from the log. */
  EventsDropped = 'EVENTS_DROPPED',
}

export declare class RaftError extends Error {
  constructor(message: string, code: RaftErrorCode, leaderId?: NodeId | null);
  readonly code: RaftErrorCode;
  /** With NOT_LEADER: the leader, when known. */
  readonly leaderId: NodeId | null;
  static notLeader(leaderId?: NodeId | null): RaftError;
  static noLeader(): RaftError;
  static electionTimeout(): RaftError;
  static logInconsistency(): RaftError;
}

export declare enum RaftEvent {
  StateChange = 'stateChange',
  LeaderElected = 'leaderElected',
  LogAppended = 'logAppended',
  LogCommitted = 'logCommitted',
  LogApplied = 'logApplied',
  VoteRequested = 'voteRequested',
  VoteGranted = 'voteGranted',
  Heartbeat = 'heartbeat',
  Error = 'error',
}

export interface StateChangeEvent {
  previousState: NodeState;
  newState: NodeState;
  term: Term;
}

export interface LeaderElectedEvent {
  leaderId: NodeId;
  term: Term;
}

export interface LogCommittedEvent {
  index: LogIndex;
  term: Term;
}

export interface RaftNodeEvents<T, R> {
  stateChange: [StateChangeEvent];
  /** On every node that learns of a new leader. */
  leaderElected: [LeaderElectedEvent];
  logAppended: [LogEntry<T>];
  logCommitted: [LogCommittedEvent];
  logApplied: [AppliedEntry<T, R>];
  voteRequested: [{ term: Term; candidateId: NodeId }];
  voteGranted: [{ candidateId: NodeId; term: Term }];
  heartbeat: [{ leaderId: NodeId; term: Term }];
  /** A state machine that threw, a peer whose transport started failing. Not thrown when nobody listens. */
  error: [Error];
}

export declare class RaftNode<T = unknown, R = unknown> extends EventEmitter<RaftNodeEvents<T, R>> {
  /** Throws RaftError CONFIG_ERROR for invalid options. */
  constructor(config: RaftNodeConfig);
  readonly nodeId: NodeId;
  readonly state: NodeState;
  readonly currentState: NodeState;
  readonly currentTerm: Term;
  /** The leader's id, or null when none is known. */
  readonly leader: NodeId | null;
  readonly isLeader: boolean;
  readonly commitIndex: LogIndex;
  setTransport(transport: RaftTransport<T>): void;
  setStateMachine(stateMachine: StateMachine<T, R>): void;
  /** Synchronous; throws CONFIG_ERROR without a transport. */
  start(): void;
  /**
   * Pending proposals reject with CLOSED at once and the process may exit; the promise
   * (which the seed's stop() does not return; ignoring it is fine) resolves once the
   * engine has wound down and closed its files.
   */
  stop(): Promise<void>;
  /**
   * Resolves once a majority committed the command and this node's state machine applied
   * it. Rejects with NOT_LEADER (`leaderId`), NO_LEADER, TIMEOUT or CLOSED; a proposal
   * whose leader loses leadership before commit is never reported committed.
   */
  propose(command: T): Promise<AppliedEntry<T, R>>;
  /** Rejects with INVALID_TERM for a malformed request (nothing changes). */
  handleRequestVote(request: RequestVoteRequest): Promise<RequestVoteResponse>;
  /** Rejects with LOG_INCONSISTENCY for a malformed request, INVALID_LOG_INDEX for entries that do not follow prevLogIndex (nothing changes). */
  handleAppendEntries(request: AppendEntriesRequest<T>): Promise<AppendEntriesResponse>;
  /** Before start(); a dataDir that holds a log takes precedence. Throws CONFIG_ERROR for an invalid state, INVALID_LOG_INDEX for a log with gaps. */
  loadState(state: PersistentState<T>): void;
  getState(): PersistentState<T>;
}
