'use strict';
// This store's metrics in a user's prom-client registry: a Node service keeps its own
// metrics there and serves one /metrics, so the store's go in beside them instead of on
// a port of their own. prom-client is an optional peer dependency: this module never
// loads it, it only hands the registry objects shaped as prom-client's metrics are
// (`name`, and `get()` resolving `{ name, help, type, values, aggregator }`).

const { collect, families } = require('./metrics.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');

const PREFIX = 'redux_cluster_';

// Every family a server can export, with its type and labels (besides the `job` and
// `instance` a scrape adds): what is registered up front (a replicated server's Raft
// families exist only once its node has started, and a registry takes metrics by name),
// and the list the monitoring tests check the alerts and the dashboard against. The
// README's metrics table documents it; a test checks it against what a running
// replicated server exports, so it cannot drift from the engine.
const RAFT = ['node'];
const FAMILIES = Object.freeze({
  actions_ordered_total: { type: 'counter', labels: [] },
  actions_applied_total: { type: 'counter', labels: [] },
  clients: { type: 'gauge', labels: [] },
  client_lag_actions: { type: 'gauge', labels: ['client', 'address', 'transport'] },
  bytes_received_total: { type: 'counter', labels: [] },
  bytes_sent_total: { type: 'counter', labels: [] },
  errors_total: { type: 'counter', labels: [] },
  client_connections_opened_total: { type: 'counter', labels: ['transport'] },
  client_connections_closed_total: { type: 'counter', labels: ['transport'] },
  client_moves_total: { type: 'counter', labels: [] },
  client_refusals_total: { type: 'counter', labels: ['reason'] },
  events_dropped_total: { type: 'counter', labels: [] },
  raft_term: { type: 'gauge', labels: RAFT },
  raft_commit_index: { type: 'gauge', labels: RAFT },
  raft_applied_index: { type: 'gauge', labels: RAFT },
  raft_role: { type: 'gauge', labels: [...RAFT, 'role'] },
  raft_leader: { type: 'gauge', labels: [...RAFT, 'leader'] },
  raft_member_match_index: { type: 'gauge', labels: [...RAFT, 'member'] },
  raft_has_leader: { type: 'gauge', labels: RAFT },
  raft_is_leader: { type: 'gauge', labels: RAFT },
  raft_members: { type: 'gauge', labels: RAFT },
  raft_replicas: { type: 'gauge', labels: RAFT },
  raft_members_reachable: { type: 'gauge', labels: RAFT },
  raft_proposals_pending: { type: 'gauge', labels: RAFT },
  raft_leader_changes_seen_total: { type: 'counter', labels: RAFT },
  raft_proposals_committed_total: { type: 'counter', labels: RAFT },
  raft_proposals_applied_total: { type: 'counter', labels: RAFT },
  raft_proposals_failed_total: { type: 'counter', labels: [...RAFT, 'reason'] },
  raft_commit_duration_seconds: { type: 'histogram', labels: RAFT },
  apply_duration_seconds: { type: 'histogram', labels: RAFT },
  raft_wal_fsync_duration_seconds: { type: 'histogram', labels: RAFT },
  raft_snapshot_duration_seconds: { type: 'histogram', labels: [...RAFT, 'phase'] },
  raft_peer_round_trip_seconds: { type: 'histogram', labels: [...RAFT, 'peer'] },
  raft_peer_sent_bytes_total: { type: 'counter', labels: [...RAFT, 'peer'] },
  raft_peer_received_bytes_total: { type: 'counter', labels: [...RAFT, 'peer'] },
  raft_peer_heartbeats_missed_total: { type: 'counter', labels: [...RAFT, 'peer'] },
});

/** One family's samples as prom-client's values (a histogram's as its `_bucket`, `_sum` and `_count` lines). */
function values(f, name) {
  if (f.type !== 'histogram') return f.samples.map((s) => ({ labels: s.labels, value: s.value }));
  const out = [];
  for (const s of f.samples) {
    for (const [le, n] of s.buckets) out.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le }, value: n });
    out.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
    out.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sum });
    out.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
  }
  return out;
}

/**
 * Puts the metrics of `server` (what `createServer` / `createWSServer` returned) into a
 * prom-client `registry` (e.g. `require('prom-client').register`): every family of the
 * README's metrics table, read from the engine when the registry is scraped. Returns
 * `{ names, remove() }`; `remove()` takes them out of the registry again. Throws
 * ERR_INVALID_ARGUMENT without a server or a registry, ERR_INVALID_CONFIG when a
 * family's name is taken in the registry.
 */
function registerMetrics(server, registry, { prefix = PREFIX } = {}) {
  if (!server || typeof server.metrics !== 'function' || !server._store) {
    throw new ReduxClusterError(ErrorCode.InvalidArgument, 'registerMetrics(server, registry) needs what createServer or createWSServer returned');
  }
  if (!registry || typeof registry.registerMetric !== 'function' || typeof registry.removeSingleMetric !== 'function') {
    throw new ReduxClusterError(ErrorCode.InvalidArgument, "registerMetrics(server, registry) needs a prom-client Registry (e.g. require('prom-client').register)");
  }
  const store = server._store;
  // A scrape asks every metric at once: the engine is read once for all of them.
  let scrape = null;
  const read = () => {
    if (!scrape) {
      const m = collect(store);
      scrape = new Map((m ? families(m) : []).map((f) => [f.name, f]));
      setImmediate(() => {
        scrape = null;
      });
    }
    return scrape;
  };
  const names = [];
  try {
    for (const [family, { type }] of Object.entries(FAMILIES)) {
      const name = prefix + family;
      if (registry.getSingleMetric && registry.getSingleMetric(name)) {
        throw new ReduxClusterError(ErrorCode.InvalidConfig, `the registry already has a metric named ${name}`);
      }
      registry.registerMetric({
        name,
        help: family,
        type,
        async get() {
          const f = read().get(family);
          return { name, help: f ? f.help : family, type, values: f ? values(f, name) : [], aggregator: 'sum' };
        },
      });
      names.push(name);
    }
  } catch (e) {
    for (const n of names) registry.removeSingleMetric(n);
    throw e;
  }
  return {
    names,
    remove() {
      for (const n of names) registry.removeSingleMetric(n);
    },
  };
}

module.exports = { registerMetrics, FAMILIES };
