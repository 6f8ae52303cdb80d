'use strict';
// @ruvector/raft's RaftNode API on the engine's Raft (openraft): the user supplies the
// transport (requestVote / appendEntries, async JS functions) and the state machine
// (apply, async); the engine runs elections, replication and commitment. A proposal
// resolves only once a majority committed it and this node's state machine applied it.

const { EventEmitter } = require('node:events');
const native = require('./native.js');

const NodeState = Object.freeze({ Follower: 'follower', Candidate: 'candidate', Leader: 'leader' });

const RaftEvent = Object.freeze({
  StateChange: 'stateChange',
  LeaderElected: 'leaderElected',
  LogAppended: 'logAppended',
  LogCommitted: 'logCommitted',
  LogApplied: 'logApplied',
  VoteRequested: 'voteRequested',
  VoteGranted: 'voteGranted',
  Heartbeat: 'heartbeat',
  Error: 'error',
});

const RaftErrorCode = Object.freeze({
  NotLeader: 'NOT_LEADER',
  NoLeader: 'NO_LEADER',
  InvalidTerm: 'INVALID_TERM',
  InvalidLogIndex: 'INVALID_LOG_INDEX',
  ElectionTimeout: 'ELECTION_TIMEOUT',
  LogInconsistency: 'LOG_INCONSISTENCY',
  SnapshotFailed: 'SNAPSHOT_FAILED',
  ConfigError: 'CONFIG_ERROR',
  Internal: 'INTERNAL',
  // Not in @ruvector/raft: a proposal not committed in time, and a stopped node.
  Timeout: 'TIMEOUT',
  Closed: 'CLOSED',
  // Not in @ruvector/raft: events the JS thread did not read in time were dropped.
  EventsDropped: 'EVENTS_DROPPED',
});

/** @ruvector/raft's RaftError (its `code` is a RaftErrorCode; NOT_LEADER names the leader). */
class RaftNodeError extends Error {
  constructor(message, code, leaderId = null) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
    this.leaderId = leaderId;
  }

  static notLeader(leaderId = null) {
    return new RaftNodeError('Node is not the leader', RaftErrorCode.NotLeader, leaderId);
  }

  static noLeader() {
    return new RaftNodeError('No leader available', RaftErrorCode.NoLeader);
  }

  static electionTimeout() {
    return new RaftNodeError('Election timeout', RaftErrorCode.ElectionTimeout);
  }

  static logInconsistency() {
    return new RaftNodeError('Log inconsistency detected', RaftErrorCode.LogInconsistency);
  }
}

function configError(message) {
  return new RaftNodeError(message, RaftErrorCode.ConfigError);
}

const OPTION_KEYS = new Set(['nodeId', 'peers', 'electionTimeout', 'heartbeatInterval', 'maxEntriesPerRequest', 'dataDir', 'proposeTimeout', 'transportTimeout']);

function readConfig(c) {
  if (typeof c !== 'object' || c === null) throw configError('RaftNode needs a config { nodeId, peers, ... }');
  for (const k of Object.keys(c)) if (!OPTION_KEYS.has(k)) throw configError(`${k} is not an option`);
  if (typeof c.nodeId !== 'string' || c.nodeId === '') throw configError('nodeId must be a non-empty string');
  if (!Array.isArray(c.peers) || !c.peers.every((p) => typeof p === 'string' && p !== '')) throw configError('peers must be an array of node ids');
  const [min, max] = c.electionTimeout === undefined ? [150, 300] : c.electionTimeout;
  if (!Array.isArray(c.electionTimeout ?? [min, max]) || !Number.isInteger(min) || !Number.isInteger(max) || min <= 0 || max <= min) {
    throw configError('electionTimeout must be [min, max] in ms, with 0 < min < max');
  }
  const heartbeat = c.heartbeatInterval ?? 50;
  if (!Number.isInteger(heartbeat) || heartbeat <= 0 || heartbeat >= min) throw configError('heartbeatInterval must be a positive integer below electionTimeout[0]');
  const maxEntries = c.maxEntriesPerRequest ?? 100;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw configError('maxEntriesPerRequest must be a positive integer');
  for (const k of ['proposeTimeout', 'transportTimeout']) {
    if (c[k] !== undefined && !(Number.isInteger(c[k]) && c[k] > 0)) throw configError(`${k} must be a positive integer (ms)`);
  }
  if (c.dataDir !== undefined && typeof c.dataDir !== 'string') throw configError('dataDir must be a string');
  return {
    nodeId: c.nodeId,
    peers: c.peers,
    electionTimeoutMin: min,
    electionTimeoutMax: max,
    heartbeatInterval: heartbeat,
    maxEntriesPerRequest: maxEntries,
    dataDir: c.dataDir,
    proposeTimeout: c.proposeTimeout,
    transportTimeout: c.transportTimeout,
  };
}

// The engine's answer to an async call, parsed; its rejection (RaftNode's own code, the
// leader for NOT_LEADER), as the seed's RaftError.
async function fromAnswer(call) {
  let text;
  try {
    text = await call;
  } catch (e) {
    throw new RaftNodeError(e.message, e.code, e.leaderId ?? null);
  }
  return JSON.parse(text);
}

// Committed entries pulled from the log at once (bounds what waits in JS to be applied).
const COMMITTED_BATCH = 1024;

class RaftNode extends EventEmitter {
  constructor(config) {
    super();
    this._cfg = readConfig(config);
    this._transport = null;
    this._sm = null;
    this._role = NodeState.Follower;
    this._applied = 0; // the last index this node's state machine applied
    this._queue = []; // committed entries, in order, waiting to be applied (one batch at most)
    this._pulled = 0; // the log position committed entries were pulled up to
    this._applying = false;
    this._waiting = new Map(); // index -> { resolve, reject, timer } of this node's proposals
    this._results = new Map(); // index -> applied entry with its result, until its proposer collects it
    this._native = new native.NativeRaftNode(
      this._cfg,
      (message) => this._send(message),
      () => this._pump()
    );
    // The engine builds a `logAppended` event per entry only while someone listens.
    this.on('newListener', (name) => {
      if (name === RaftEvent.LogAppended) this._native.setEntryEvents(true);
    });
    this.on('removeListener', (name) => {
      if (name === RaftEvent.LogAppended) this._native.setEntryEvents(this.listenerCount(name) > 0);
    });
  }

  get nodeId() {
    return this._cfg.nodeId;
  }

  /** 'follower' | 'candidate' | 'leader'. */
  get state() {
    return this._role;
  }

  get currentState() {
    return this._role;
  }

  get currentTerm() {
    return this._status().term;
  }

  /** The leader's id, or null when none is known. */
  get leader() {
    return this._status().leader ?? null;
  }

  get isLeader() {
    return this._status().role === 'leader';
  }

  /** The highest log index known committed (and applied by the engine). */
  get commitIndex() {
    return this._status().commitIndex;
  }

  _status() {
    return this._native.status();
  }

  /** `{ requestVote(peerId, req), appendEntries(peerId, req) }`, async; throwing or never answering is an unreachable peer. */
  setTransport(transport) {
    if (!transport || typeof transport.requestVote !== 'function' || typeof transport.appendEntries !== 'function') {
      throw configError('a transport needs requestVote(peerId, request) and appendEntries(peerId, request)');
    }
    this._transport = transport;
  }

  /** `{ apply(command) }`, sync or async; its return value comes back from `propose`. */
  setStateMachine(stateMachine) {
    if (!stateMachine || typeof stateMachine.apply !== 'function') throw configError('a state machine needs apply(command)');
    this._sm = stateMachine;
  }

  start() {
    if (!this._transport) throw configError('setTransport() before start()');
    this._native.start();
  }

  /** Stops at once; pending proposals reject with CLOSED. The process may then exit. */
  stop() {
    // The seed's stop() returns nothing; this one also tells when the engine has wound
    // down (its files closed), for callers that reopen the same dataDir.
    const done = this._native.stop();
    for (const [, w] of this._waiting) {
      clearTimeout(w.timer);
      w.reject(new RaftNodeError('the node was stopped', RaftErrorCode.Closed));
    }
    this._waiting.clear();
    return done;
  }

  /**
   * Resolves `{ term, index, command, timestamp, result }` once the command is committed
   * by a majority and applied by this node's state machine. Rejects with NOT_LEADER
   * (`err.leaderId` names the leader), NO_LEADER, TIMEOUT or CLOSED.
   */
  async propose(command) {
    let text;
    try {
      text = JSON.stringify(command);
    } catch (e) {
      throw new RaftNodeError(`the command must be JSON-serialisable: ${e.message}`, RaftErrorCode.Internal);
    }
    if (text === undefined) throw new RaftNodeError('the command must be JSON-serialisable', RaftErrorCode.Internal);
    const { index } = await fromAnswer(this._native.propose(text));
    return this._appliedAt(index);
  }

  _appliedAt(index) {
    const done = this._results.get(index);
    if (done) {
      this._results.delete(index);
      return Promise.resolve(done);
    }
    return new Promise((resolve, reject) => {
      // Committed already; only this node's own state machine is left to apply it.
      const timer = setTimeout(() => {
        this._waiting.delete(index);
        reject(new RaftNodeError(`entry ${index} was committed but not applied here in time`, RaftErrorCode.Timeout));
      }, this._cfg.proposeTimeout ?? 5000);
      timer.unref();
      this._waiting.set(index, { resolve, reject, timer });
    });
  }

  /** A peer's RequestVote, as the transport delivered it; resolves the response. */
  async handleRequestVote(request) {
    return (await fromAnswer(this._native.handleRequestVote(JSON.stringify(request)))).response;
  }

  /** A peer's AppendEntries, as the transport delivered it; resolves the response. */
  async handleAppendEntries(request) {
    return (await fromAnswer(this._native.handleAppendEntries(JSON.stringify(request)))).response;
  }

  /** Term, vote and log, before `start()` (then the node starts from them). */
  loadState(state) {
    this._native.loadState(JSON.stringify(state));
  }

  /** `{ currentTerm, votedFor, log }`: what `loadState` takes. */
  getState() {
    return JSON.parse(this._native.getState());
  }

  // The engine asks the user's transport; whatever it does, the engine gets an answer
  // (a throw or a rejection is an unreachable peer; the engine bounds the wait).
  _send(message) {
    const { method, peer, request } = JSON.parse(message);
    return Promise.resolve()
      .then(() => this._transport[method](peer, request))
      .then(
        (response) => JSON.stringify({ ok: response }),
        (e) => JSON.stringify({ error: String((e && e.message) || e) })
      );
  }

  _pump() {
    let events;
    try {
      events = JSON.parse(this._native.poll());
    } catch (e) {
      this._emitError(e);
      return;
    }
    for (const e of events) {
      switch (e.type) {
        case 'role': {
          const next = e.role === 'leader' || e.role === 'candidate' ? e.role : 'follower';
          if (next !== this._role) {
            const previousState = this._role;
            this._role = next;
            this.emit(RaftEvent.StateChange, { previousState, newState: next, term: e.term });
          }
          break;
        }
        case 'leaderElected':
          this.emit(RaftEvent.LeaderElected, { leaderId: e.leaderId, term: e.term });
          break;
        case 'logAppended':
          this.emit(RaftEvent.LogAppended, e.entry);
          break;
        case 'committed':
          break; // the entries are pulled from the log below, a batch at a time
        case 'voteRequested':
          this.emit(RaftEvent.VoteRequested, { term: e.term, candidateId: e.candidateId });
          break;
        case 'voteGranted':
          this.emit(RaftEvent.VoteGranted, { candidateId: e.candidateId, term: e.term });
          break;
        case 'heartbeat':
          this.emit(RaftEvent.Heartbeat, { leaderId: e.leaderId, term: e.term });
          break;
        case 'error':
          this._emitError(new RaftNodeError(e.message, e.code));
          break;
        default:
          break;
      }
    }
    this._applyQueued();
  }

  // Committed entries go to the user's state machine one at a time, in log order. They
  // are pulled from the engine's log a batch at a time, so however slow the state machine
  // is, JS holds one batch, not everything committed meanwhile.
  async _applyQueued() {
    if (this._applying) return;
    this._applying = true;
    try {
      for (;;) {
        if (this._queue.length === 0) {
          if (!this._pullCommitted()) break;
          continue;
        }
        const entry = this._queue.shift();
        if (entry.index <= this._applied) continue;
        let result;
        try {
          result = this._sm ? await this._sm.apply(entry.command) : undefined;
        } catch (e) {
          // Every node's state machine sees the same command; reported, and the log goes on.
          this._emitError(e);
        }
        this._applied = entry.index;
        const done = { ...entry, result };
        this.emit(RaftEvent.LogApplied, done);
        const w = this._waiting.get(entry.index);
        if (w) {
          this._waiting.delete(entry.index);
          clearTimeout(w.timer);
          w.resolve(done);
        } else {
          // Its proposer may not be waiting yet (the apply raced the commit's answer);
          // kept a while (the latest 10,000), then forgotten.
          this._results.set(entry.index, done);
          if (this._results.size > 10000) this._results.delete(this._results.keys().next().value);
        }
      }
    } finally {
      this._applying = false;
    }
  }

  /** Takes the next batch of committed entries; false once there is nothing new. */
  _pullCommitted() {
    const { upTo, entries } = JSON.parse(this._native.committed(this._pulled, COMMITTED_BATCH));
    const progressed = upTo > this._pulled;
    this._pulled = upTo;
    for (const entry of entries) {
      this.emit(RaftEvent.LogCommitted, { index: entry.index, term: entry.term });
      this._queue.push(entry);
    }
    return progressed;
  }

  _emitError(e) {
    // An EventEmitter throws on 'error' without a listener; a Raft error must not crash.
    if (this.listenerCount(RaftEvent.Error) > 0) this.emit(RaftEvent.Error, e);
  }
}

module.exports = { RaftNode, NodeState, RaftEvent, RaftErrorCode, RaftNodeError };
