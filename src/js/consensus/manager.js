'use strict';
// @unrdf/consensus's ClusterManager: the group's members and their health, read from the
// engine's one liveness view (its peer probe) rather than pinged again from Node.

const { EventEmitter } = require('node:events');
const { ErrorCode } = require('../errors.js');
const { RaftCoordinator } = require('./coordinator.js');
const { RaftError, invalid, int } = require('./common.js');

const HEALTH = ['unknown', 'healthy', 'degraded', 'unhealthy'];

class ClusterManager extends EventEmitter {
  constructor(options = {}) {
    super();
    this.config = {
      nodeId: options.nodeId,
      healthCheckInterval: int(options.healthCheckInterval, 'healthCheckInterval', 5000, 1),
      healthCheckTimeout: int(options.healthCheckTimeout, 'healthCheckTimeout', 2000, 1),
      maxFailedHealthChecks: int(options.maxFailedHealthChecks, 'maxFailedHealthChecks', 3, 1),
      autoDiscovery: options.autoDiscovery ?? false,
      discoveryInterval: int(options.discoveryInterval, 'discoveryInterval', 10000, 1),
    };
    this.nodes = new Map();
    /** The coordinator given to initialize() (the seed's name; `coordinator` is an alias). */
    this.raftCoordinator = null;
    this._timer = null;
    this._discoveryTimer = null;
  }

  get coordinator() {
    return this.raftCoordinator;
  }

  async initialize(coordinator) {
    if (!(coordinator instanceof RaftCoordinator)) throw invalid('initialize() needs a RaftCoordinator');
    await coordinator.initialize();
    this.raftCoordinator = coordinator;
    this._onMembers = (m) => this._members(m);
    coordinator.on('_members', this._onMembers);
    const s = coordinator.getState();
    this._members({ voters: s.voters, learners: s.learners });
    this._timer = setInterval(() => this._check(), this.config.healthCheckInterval);
    this._timer.unref();
    // Members come from the Raft membership; discovery of nodes not yet in it is left to
    // the application, as in the seed: it hears `discovery_requested` and calls addNode.
    if (this.config.autoDiscovery) {
      this._discoveryTimer = setInterval(() => this.emit('discovery_requested'), this.config.discoveryInterval);
      this._discoveryTimer.unref();
    }
    this.emit('initialized');
  }

  _members({ voters, learners }) {
    const seen = new Set();
    for (const [list, role] of [[voters, 'voter'], [learners, 'learner']]) {
      for (const m of list) {
        seen.add(m.nodeId);
        const i = m.address.lastIndexOf(':');
        const known = this.nodes.get(m.nodeId);
        if (known) {
          known.role = role;
          continue;
        }
        const node = {
          nodeId: m.nodeId,
          host: m.address.slice(0, i),
          port: Number(m.address.slice(i + 1)),
          role,
          health: m.nodeId === this.coordinator.nodeId ? 'healthy' : 'unknown',
          failedChecks: 0,
          lastHealthCheck: null,
          joinedAt: Date.now(),
          metadata: this._pending?.get(m.nodeId) ?? {},
        };
        this.nodes.set(m.nodeId, node);
        this.emit('node_joined', { nodeId: m.nodeId, metadata: node.metadata });
      }
    }
    for (const id of [...this.nodes.keys()]) {
      if (!seen.has(id)) {
        this.nodes.delete(id);
        this.emit('node_left', { nodeId: id });
      }
    }
  }

  _setHealth(node, health) {
    const previousHealth = node.health;
    if (previousHealth === health) return;
    node.health = health;
    this.emit('node_health_changed', { nodeId: node.nodeId, health, previousHealth });
    if (health === 'unhealthy') this.emit('node_unhealthy', { nodeId: node.nodeId });
  }

  /**
   * Reads the engine's probes of its peers (the one detector of the group, run in the
   * engine, off this thread): a failed probe not seen before counts as a failed check.
   */
  _check() {
    const n = this.coordinator?._native;
    if (!n) return;
    const probes = JSON.parse(n.peerHealth());
    for (const node of this.nodes.values()) {
      const p = probes[node.nodeId];
      if (node.nodeId === this.coordinator.nodeId || !p || p.checkedAt === node.lastHealthCheck) continue;
      node.lastHealthCheck = p.checkedAt;
      if (p.up) {
        node.failedChecks = 0;
        node.latencyMs = p.latencyMs;
        this._setHealth(node, 'healthy');
      } else {
        node.failedChecks += 1;
        this._setHealth(node, node.failedChecks >= this.config.maxFailedHealthChecks ? 'unhealthy' : 'degraded');
      }
    }
  }

  /** Adds a node as a voter through a learner phase; callable on any member. */
  async addNode(metadata) {
    if (!this.coordinator) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    const { nodeId, host, port } = metadata ?? {};
    (this._pending ??= new Map()).set(nodeId, { ...metadata });
    await this.coordinator.addPeer(nodeId, host, port);
    const node = this.nodes.get(nodeId);
    if (node) node.metadata = { ...metadata };
    return node ? { ...node } : { nodeId, host, port, metadata };
  }

  async removeNode(nodeId) {
    if (!this.coordinator) throw new RaftError(ErrorCode.NotInitialized, 'call initialize() first');
    await this.coordinator.removePeer(nodeId);
  }

  getNodes() {
    return [...this.nodes.values()].map((n) => ({ ...n }));
  }

  getHealthyNodes() {
    return this.getNodes().filter((n) => n.health === 'healthy');
  }

  getNodeHealth(nodeId) {
    return this.nodes.get(nodeId)?.health ?? 'unknown';
  }

  getStats() {
    const nodes = this.getNodes();
    const healthStats = Object.fromEntries(HEALTH.map((h) => [h, 0]));
    for (const n of nodes) healthStats[n.health] += 1;
    const s = this.coordinator?.getState();
    return {
      totalNodes: nodes.length,
      healthStats,
      autoDiscovery: this.config.autoDiscovery,
      healthyNodes: healthStats.healthy,
      degradedNodes: healthStats.degraded,
      unhealthyNodes: healthStats.unhealthy,
      unknownNodes: healthStats.unknown,
      voters: nodes.filter((n) => n.role === 'voter').length,
      learners: nodes.filter((n) => n.role === 'learner').length,
      leaderId: s?.leaderId ?? null,
      term: s?.term ?? 0,
    };
  }

  /** Stops the health checks and discovery (the coordinator keeps running); `shutdown`
   *  is emitted once. */
  async shutdown() {
    const running = this._timer !== null;
    clearInterval(this._timer);
    clearInterval(this._discoveryTimer);
    this._timer = null;
    this._discoveryTimer = null;
    this.coordinator?.off('_members', this._onMembers);
    if (running) this.emit('shutdown');
  }
}

module.exports = { ClusterManager };
