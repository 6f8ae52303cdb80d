'use strict';
// This store's metrics in a user's prom-client registry: a Node service keeps its own
// metrics there and serves one /metrics, so the store's go in beside them instead of on
// a port of their own. prom-client is an optional peer dependency: this module never
// loads it, it only hands the registry objects shaped as prom-client's metrics are
// (`name`, and `get()` resolving `{ name, help, type, values, aggregator }`).

const { collect, families } = require('./metrics.js');
const { ReduxClusterError, ErrorCode } = require('./errors.js');

const PREFIX = 'redux_cluster_';

// Every family a server can export, with its type: what is registered up front (a
// replicated server's Raft families exist only once its node has started, and a
// registry takes metrics by name). A test checks it against what a running
// replicated server exports, so it cannot drift from the engine.
const FAMILIES = Object.freeze({
  actions_ordered_total: 'counter',
  actions_applied_total: 'counter',
  clients: 'gauge',
  client_lag_actions: 'gauge',
  bytes_received_total: 'counter',
  bytes_sent_total: 'counter',
  errors_total: 'counter',
  client_connections_opened_total: 'counter',
  client_connections_closed_total: 'counter',
  client_moves_total: 'counter',
  client_refusals_total: 'counter',
  events_dropped_total: 'counter',
  raft_term: 'gauge',
  raft_commit_index: 'gauge',
  raft_applied_index: 'gauge',
  raft_role: 'gauge',
  raft_leader: 'gauge',
  raft_member_match_index: 'gauge',
  raft_has_leader: 'gauge',
  raft_is_leader: 'gauge',
  raft_members: 'gauge',
  raft_members_reachable: 'gauge',
  raft_proposals_pending: 'gauge',
  raft_leader_changes_seen_total: 'counter',
  raft_proposals_committed_total: 'counter',
  raft_proposals_applied_total: 'counter',
  raft_proposals_failed_total: 'counter',
  raft_commit_duration_seconds: 'histogram',
  apply_duration_seconds: 'histogram',
  raft_wal_fsync_duration_seconds: 'histogram',
  raft_snapshot_duration_seconds: 'histogram',
  raft_peer_round_trip_seconds: 'histogram',
  raft_peer_sent_bytes_total: 'counter',
  raft_peer_received_bytes_total: 'counter',
  raft_peer_heartbeats_missed_total: 'counter',
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
    for (const [family, type] of Object.entries(FAMILIES)) {
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
