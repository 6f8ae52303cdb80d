'use strict';
// A server store's metrics (server.metrics()), the Prometheus text of them, and the
// opt-in HTTP endpoint (`createServer({ ..., http: { port } })`): `/metrics` for
// Prometheus, `/metrics.json`, `/events` (the metrics once a second, as server-sent
// events) and `/` a live dashboard page drawn from them. No build step, no CDN.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const WINDOW_MS = 60000;

/** Samples of (time, ordered, applied) over the last minute, for rates and the sparkline. */
class Rates {
  constructor() {
    this.samples = [];
  }

  add(t, ordered, applied) {
    const last = this.samples.at(-1);
    if (!last || t - last.t >= 250) this.samples.push({ t, ordered, applied });
    while (this.samples.length > 2 && t - this.samples[0].t > WINDOW_MS) this.samples.shift();
  }

  /** Per second over the last second or so (the two samples around it). */
  perSecond() {
    const s = this.samples;
    if (s.length < 2) return { ordered: 0, applied: 0 };
    const b = s.at(-1);
    let a = s.at(-2);
    for (let i = s.length - 2; i >= 0 && b.t - s[i].t < 1000; i--) a = s[i];
    const dt = (b.t - a.t) / 1000 || 1;
    return { ordered: (b.ordered - a.ordered) / dt, applied: (b.applied - a.applied) / dt };
  }

  /** Actions ordered per second over the last minute, one point per sample. */
  history() {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const [a, b] = [this.samples[i - 1], this.samples[i]];
      out.push({ t: b.t, perSecond: (b.ordered - a.ordered) / (((b.t - a.t) / 1000) || 1) });
    }
    return out;
  }
}

/** The metrics of a serving store (see ClusterServer.metrics in index.d.ts). */
function collect(store) {
  const role = store._role;
  const a = role.authority;
  if (!a) return null;
  const now = Date.now();
  const ordered = a.head;
  const applied = role.applied;
  if (!store._rates) store._rates = new Rates();
  store._rates.add(now, ordered, applied);
  // A group's endpoints serve every store open on it: each store lists its own clients
  // (a store opened with createServer({ group }) has no endpoint of its own).
  const clients = [];
  for (const s of (store._hostedBy || store)._servers) {
    const endpoint = s.path ?? `${s._ws ? 'ws' : 'tcp'}:${s.port}`;
    for (const c of JSON.parse(s._listener.connections())) {
      if (c.store !== store.RCHash) continue;
      const { store: _, ...client } = c;
      clients.push({ ...client, endpoint, lag: Math.max(0, ordered - c.position) });
    }
  }
  const raft = role.clustered ? JSON.parse(a.status()) : null;
  return {
    time: now,
    nodeId: raft ? raft.nodeId : null,
    ordered,
    applied,
    perSecond: store._rates.perSecond(),
    history: store._rates.history(),
    clients,
    bytesIn: clients.reduce((n, c) => n + c.bytesIn, 0),
    bytesOut: clients.reduce((n, c) => n + c.bytesOut, 0),
    errors: store._errorCount,
    raft,
    // The engine's own families (see families()).
    engine: JSON.parse(a.metrics()),
  };
}

/**
 * Every metric family of `m` (what collect() returned), as the engine hands its own:
 * `{ name, help, type, samples: [{ labels, value } | { labels, buckets, count, sum }] }`,
 * names without the `redux_cluster_` prefix. The one list that /metrics and the
 * prom-client collector (prom.js) render; the README's metrics table documents it.
 */
function families(m) {
  const out = [];
  const family = (name, type, help, samples) => out.push({ name, type, help, samples: samples.map(([labels, value]) => ({ labels, value })) });
  family('actions_ordered_total', 'counter', 'Actions ordered (the last sequence number).', [[{}, m.ordered]]);
  family('actions_applied_total', 'counter', "Actions applied by this server's reducer.", [[{}, m.applied]]);
  family('clients', 'gauge', 'Clients connected now.', [[{}, m.clients.length]]);
  family('client_lag_actions', 'gauge', 'Actions ordered but not yet sent to a client.', m.clients.map((c) => [{ client: c.clientId, address: c.address, transport: c.transport }, c.lag]));
  family('bytes_received_total', 'counter', 'Bytes received from connected clients.', [[{}, m.bytesIn]]);
  family('bytes_sent_total', 'counter', 'Bytes sent to connected clients.', [[{}, m.bytesOut]]);
  family('errors_total', 'counter', 'Errors reported on stderr.', [[{}, m.errors]]);
  if (m.raft) {
    const r = m.raft;
    family('raft_term', 'gauge', 'The Raft term.', [[{ node: r.nodeId }, r.term]]);
    family('raft_commit_index', 'gauge', 'The Raft commit index.', [[{ node: r.nodeId }, r.commitIndex]]);
    family('raft_applied_index', 'gauge', 'The Raft applied index.', [[{ node: r.nodeId }, r.appliedIndex]]);
    family('raft_role', 'gauge', "This node's role (1 for the current one).", [[{ node: r.nodeId, role: r.role }, 1]]);
    family('raft_leader', 'gauge', 'The leader this node knows (1).', r.leaderId ? [[{ node: r.nodeId, leader: r.leaderId }, 1]] : []);
    const matched = r.members.filter((x) => x.matchIndex != null);
    family('raft_member_match_index', 'gauge', "On the leader: each member's last log index known to match the leader's.", matched.map((x) => [{ node: r.nodeId, member: x.nodeId }, x.matchIndex]));
  }
  return out.concat(m.engine || []);
}

const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labelText = (labels) => {
  const l = Object.entries(labels)
    .map(([k, x]) => `${k}="${esc(x)}"`)
    .join(',');
  return l ? `{${l}}` : '';
};

/** The Prometheus text exposition format (0.0.4) of `m`. */
function prometheus(m) {
  const lines = [];
  for (const f of families(m)) {
    const name = `redux_cluster_${f.name}`;
    lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    for (const s of f.samples) {
      if (f.type !== 'histogram') {
        lines.push(`${name}${labelText(s.labels)} ${s.value}`);
        continue;
      }
      for (const [le, n] of s.buckets) lines.push(`${name}_bucket${labelText({ ...s.labels, le })} ${n}`);
      lines.push(`${name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${name}_count${labelText(s.labels)} ${s.count}`);
    }
  }
  return lines.join('\n') + '\n';
}

let page = null;

/** Serves /metrics, /metrics.json, /events and the dashboard for `store`. */
function serve(store, { port = 0, host = '127.0.0.1' } = {}) {
  if (page === null) page = fs.readFileSync(path.join(__dirname, 'dashboard.html'));
  const streams = new Set();
  const server = http.createServer((req, res) => {
    const url = req.url.split('?')[0];
    const m = collect(store);
    if (url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return res.end(m ? prometheus(m) : '');
    }
    if (url === '/metrics.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(m));
    }
    if (url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(`data: ${JSON.stringify(m)}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return undefined;
    }
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(page);
    }
    res.writeHead(404);
    res.end('not found');
  });
  const timer = setInterval(() => {
    if (streams.size === 0) return;
    const text = `data: ${JSON.stringify(collect(store))}\n\n`;
    for (const r of streams) r.write(text);
  }, 1000);
  timer.unref();
  server.listen(port, host);
  server.unref();
  return {
    server,
    close() {
      clearInterval(timer);
      for (const r of streams) r.end();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { collect, families, prometheus, serve };
