// The engine's metrics as an operator reads them: in the Prometheus text of /metrics,
// and in a user's own prom-client registry (the real package), with what they count
// moving when the things they count happen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import promClient from 'prom-client';
import { createStore, registerMetrics, ErrorCode } from 'redux-cluster-rs';
import { counter, freePort, sink, waitFor } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { FAMILIES } = require('../src/js/prom.js');
const { families } = require('../src/js/metrics.js');

/** The value of `name{labels}` in Prometheus text, or undefined. */
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === String(v))) return Number(m[3]);
  }
  return undefined;
}

function promtool() {
  const found = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => fs.existsSync(p));
  return found ?? null;
}

async function replicatedServer(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-metrics-'));
  const port = await freePort();
  const store = createStore(counter, { stderr: sink() });
  const srv = store.createServer({ host: '127.0.0.1', port, cluster: { nodeName: 'solo', bootstrap: true, dataDir: dir } });
  t.after(async () => {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => srv.status().role === 'leader', { what: 'the one server to lead' });
  return { store, srv, port };
}

test('prom-client: every family goes into the user registry beside its own metrics, read from the engine at each scrape', async (t) => {
  const { store, srv, port } = await replicatedServer(t);
  for (let i = 0; i < 20; i++) await store.dispatchAsync({ type: 'INC' });
  // A client of another store is refused (and counted as such).
  const other = createStore(function otherReducer(s = 0) {
    return s;
  }, { stderr: sink() });
  const refused = other.createClient({ host: '127.0.0.1', port });
  await waitFor(() => refused.error?.code === ErrorCode.StoreMismatch, { what: 'the mismatched client refused' });
  await refused.disconnect(0);

  const registry = new promClient.Registry();
  const mine = new promClient.Counter({ name: 'app_requests_total', help: 'the app', registers: [registry] });
  mine.inc(3);
  const handle = registerMetrics(srv, registry);
  assert.equal(handle.names.length, Object.keys(FAMILIES).length);
  const text = await registry.metrics();
  assert.equal(sample(text, 'app_requests_total'), 3);
  assert.equal(sample(text, 'redux_cluster_actions_applied_total'), 20);
  assert.equal(sample(text, 'redux_cluster_raft_has_leader', { node: 'solo' }), 1);
  assert.equal(sample(text, 'redux_cluster_raft_is_leader', { node: 'solo' }), 1);
  assert.equal(sample(text, 'redux_cluster_raft_members_reachable', { node: 'solo' }), 1);
  assert.ok(sample(text, 'redux_cluster_raft_proposals_committed_total', { node: 'solo' }) >= 20);
  assert.ok(sample(text, 'redux_cluster_raft_commit_duration_seconds_count', { node: 'solo' }) >= 20);
  assert.equal(
    sample(text, 'redux_cluster_raft_commit_duration_seconds_bucket', { node: 'solo', le: '+Inf' }),
    sample(text, 'redux_cluster_raft_commit_duration_seconds_count', { node: 'solo' }),
  );
  // A dataDir: the log's fdatasync is timed.
  assert.ok(sample(text, 'redux_cluster_raft_wal_fsync_duration_seconds_count', { node: 'solo' }) > 0);
  assert.equal(sample(text, 'redux_cluster_client_refusals_total', { reason: 'mismatch' }), 1);
  assert.equal(sample(text, 'redux_cluster_client_refusals_total', { reason: 'auth' }), 0);

  // Every family a server exports is registered, and nothing else: the list cannot drift.
  const exported = srv.metrics().engine.map((f) => f.name);
  const js = ['actions_ordered_total', 'actions_applied_total', 'clients', 'client_lag_actions', 'bytes_received_total', 'bytes_sent_total', 'errors_total',
    'raft_term', 'raft_commit_index', 'raft_applied_index', 'raft_role', 'raft_leader', 'raft_member_match_index'];
  assert.deepEqual([...js, ...exported].sort(), Object.keys(FAMILIES).sort());
  // And each sample carries exactly the labels the list declares (the alerts and the
  // dashboard aggregate by them).
  for (const f of families(srv.metrics())) {
    assert.equal(f.type, FAMILIES[f.name].type, f.name);
    for (const s of f.samples) assert.deepEqual(Object.keys(s.labels).sort(), [...FAMILIES[f.name].labels].sort(), f.name);
  }

  const tool = promtool();
  if (tool) {
    const r = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
  } else {
    t.diagnostic('promtool not installed: the exposition was not linted');
  }

  // Taken: refused with its code, and nothing half-registered.
  assert.throws(() => registerMetrics(srv, registry), (e) => e.code === ErrorCode.InvalidConfig);
  handle.remove();
  assert.equal((await registry.metrics()).includes('redux_cluster_'), false);
  assert.equal(sample(await registry.metrics(), 'app_requests_total'), 3);
  assert.throws(() => registerMetrics(null, registry), (e) => e.code === ErrorCode.InvalidArgument);
  assert.throws(() => registerMetrics(srv, {}), (e) => e.code === ErrorCode.InvalidArgument);
});

test("a single server's client metrics: sessions by transport, logins refused, and the Prometheus text stays clean", async (t) => {
  const port = await freePort();
  const store = createStore(counter, { stderr: sink() });
  const srv = store.createServer({ host: '127.0.0.1', port, logins: { ann: 'secret' } });
  t.after(() => srv.close());
  const good = createStore(counter, { stderr: sink() });
  const c = good.createClient({ host: '127.0.0.1', port, login: 'ann', password: 'secret' });
  await waitFor(() => c.connected, { what: 'the client with the right password' });
  const bad = createStore(counter, { stderr: sink() });
  const b = bad.createClient({ host: '127.0.0.1', port, login: 'ann', password: 'wrong' });
  await waitFor(() => b.error?.code === ErrorCode.Auth, { what: 'the wrong password refused' });
  await b.disconnect(0);
  await c.disconnect(0);
  await waitFor(() => srv.metrics().clients.length === 0, { what: 'both sessions over' });

  const registry = new promClient.Registry();
  registerMetrics(srv, registry);
  const text = await registry.metrics();
  assert.equal(sample(text, 'redux_cluster_client_connections_opened_total', { transport: 'tcp' }), 1);
  assert.equal(sample(text, 'redux_cluster_client_connections_closed_total', { transport: 'tcp' }), 1);
  assert.equal(sample(text, 'redux_cluster_client_refusals_total', { reason: 'auth' }), 1);
  // A single server has no Raft families' samples.
  assert.equal(sample(text, 'redux_cluster_raft_has_leader'), undefined);
  const tool = promtool();
  if (tool) {
    const r = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
  }
});

test("logFormat 'json' (or REDUX_CLUSTER_RS_LOG_FORMAT=json): each stderr line is one JSON object with level, time, code and msg", async (t) => {
  const port = await freePort();
  const lines = sink();
  const store = createStore(counter, { stderr: lines, logFormat: 'json' });
  const srv = store.createServer({ host: '127.0.0.1', port, logins: { ann: 'secret' } });
  t.after(() => srv.close());
  const bad = createStore(counter, { stderr: sink() });
  const b = bad.createClient({ host: '127.0.0.1', port, login: 'ann', password: 'wrong' });
  await waitFor(() => lines.lines.length > 0, { what: "the server's report of the refused login" });
  await b.disconnect(0);
  const entry = JSON.parse(lines.lines[0]);
  assert.deepEqual(Object.keys(entry), ['level', 'time', 'code', 'msg']);
  assert.equal(entry.level, 'error');
  assert.equal(entry.code, ErrorCode.Auth);
  assert.ok(!Number.isNaN(Date.parse(entry.time)), entry.time);
  assert.match(entry.msg, /refused/);
  assert.doesNotMatch(entry.msg, /\[ERR_AUTH\]$/);

  // The environment's switch, and a bad value refused.
  process.env.REDUX_CLUSTER_RS_LOG_FORMAT = 'json';
  try {
    const env = sink();
    const s = createStore(counter, { stderr: env });
    s._error('hello');
    assert.deepEqual(Object.keys(JSON.parse(env.lines[0])), ['level', 'time', 'msg']);
    // An explicit option wins over the environment.
    const text = sink();
    createStore(counter, { stderr: text, logFormat: 'text' })._error('plain', ErrorCode.Io);
    assert.equal(text.lines[0], `plain [${ErrorCode.Io}]`);
  } finally {
    delete process.env.REDUX_CLUSTER_RS_LOG_FORMAT;
  }
  assert.throws(() => createStore(counter, { logFormat: 'xml' }), (e) => e.code === ErrorCode.InvalidConfig);
});
