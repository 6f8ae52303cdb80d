// The operator's side of the metrics (issue 27), with no server running: the alerting
// rules pass `promtool check rules` and their unit tests (`promtool test rules`), every
// alert has a case where it fires and one where it does not, and the Grafana dashboard is
// well formed: each panel queries, each expression is PromQL (promtool parses it as a
// recording rule) once Grafana's variables are substituted, and it names only the metrics
// and labels the servers serve (monitoring-helpers.mjs's METRICS). Running the
// expressions and the alerts against a real Prometheus is the end-to-end test's part.
// Without promtool (and no way to install it) the promtool tests skip, saying what to run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers.mjs';
import { HOWTO, ensurePrometheus } from './prometheus.mjs';
import {
  ALERTS_FILE,
  ALERTS_TEST_FILE,
  METRICS,
  TARGET_LABELS,
  dashboardExpressions,
  dashboardTargets,
  legendLabels,
  metricOf,
  namesIn,
  readDashboard,
} from './monitoring-helpers.mjs';

// Installs Debian's prometheus if it can (once `pretest` runs prometheus.mjs, it is there
// already); null when it cannot, the reason printed.
const PROM = ensurePrometheus(process.env, (line) => console.log(line));
const NO_PROMTOOL = PROM ? false : `promtool not found: ${HOWTO}`;

/** Runs promtool, bounded (a hung promtool fails the test instead of stalling the run). */
function promtool(...args) {
  const r = spawnSync(PROM.promtool, args, { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

// ---------------------------------------------------------------- the rules, read as text
// alerts.yml is ours and written one way (`- alert:` items with expr/for/labels/annotations);
// there is no YAML parser among the dependencies, so it is read lexically, and promtool
// (above) is what says it is valid.

/** `[{ name, expr, body }]` for each alert of alerts.yml. */
function alertRules() {
  const text = fs.readFileSync(ALERTS_FILE, 'utf8');
  return text
    .split(/^\s*- alert:\s*/m)
    .slice(1)
    .map((chunk) => {
      const body = chunk.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
      const name = body.split('\n')[0].trim();
      const expr = /\bexpr:\s*(?:\|[-+]?\s*\n)?([\s\S]*?)\n\s*for:/.exec(body)?.[1] ?? '';
      return { name, expr, body };
    });
}

/** `[{ alert, fires }]` for each alert_rule_test case of alerts.test.yml. */
function alertCases() {
  const text = fs.readFileSync(ALERTS_TEST_FILE, 'utf8');
  return text
    .split(/^\s*- eval_time:/m)
    .slice(1)
    .map((chunk) => ({ alert: /\balertname:\s*(\S+)/.exec(chunk)?.[1], fires: !/\bexp_alerts:\s*\[\]/.test(chunk) }))
    .filter((c) => c.alert);
}

test('promtool check rules: the alerting rules are valid', { skip: NO_PROMTOOL }, () => {
  const r = promtool('check', 'rules', ALERTS_FILE);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, new RegExp(`SUCCESS: ${alertRules().length} rules found`), r.out);
});

test('promtool test rules: each alert fires and stays quiet as its unit tests expect', { skip: NO_PROMTOOL }, () => {
  const r = promtool('test', 'rules', ALERTS_TEST_FILE);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS/, r.out);
});

test('every alert has a severity, a for, a summary and a description, and a unit test where it fires and one where it does not', () => {
  const rules = alertRules();
  assert.ok(rules.length >= 9, `alerts found: ${rules.map((r) => r.name)}`);
  const cases = alertCases();
  for (const { name, body } of rules) {
    assert.match(body, /^\s*for:\s*\d+[smh]\s*$/m, `${name}: for`);
    assert.match(body, /^\s*severity:\s*(critical|warning)\s*$/m, `${name}: labels.severity`);
    assert.match(body, /^\s*summary:/m, `${name}: annotations.summary`);
    assert.match(body, /^\s*description:/m, `${name}: annotations.description`);
    // Where it is: the node and instance, or the group (job) for the group-wide alerts.
    assert.match(body, /description:[\s\S]*\$labels\.(node|instance|job)/, `${name}: the description says where`);
    const mine = cases.filter((c) => c.alert === name);
    assert.ok(mine.some((c) => c.fires), `${name}: no unit test where it fires`);
    assert.ok(mine.some((c) => !c.fires), `${name}: no unit test where it stays quiet`);
  }
  const names = new Set(rules.map((r) => r.name));
  for (const c of cases) assert.ok(names.has(c.alert), `alerts.test.yml tests ${c.alert}, which alerts.yml does not have`);
  // The no-quorum alert must be able to fire within about a minute (the end-to-end test).
  const quorum = rules.find((r) => r.name === 'ReduxClusterInsufficientMembers');
  assert.match(quorum.body, /^\s*for:\s*(\d|[1-5]\d)s\s*$/m, 'ReduxClusterInsufficientMembers: for under a minute');
});

test("the alerts' expressions use only the servers' metrics (and Prometheus's up)", () => {
  for (const { name, expr } of alertRules()) {
    assert.ok(expr.trim(), `${name}: no expr found`);
    for (const s of namesIn(expr).series) assert.ok(s === 'up' || metricOf(s), `${name}: ${s} is not a metric the servers serve`);
  }
});

// ---------------------------------------------------------------- the dashboard

test('the dashboard parses, has a prometheus datasource variable, and every panel queries through it', () => {
  const d = readDashboard();
  assert.equal(typeof d.title, 'string');
  assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
  assert.match(d.description, /\$__rate_interval/, 'the description says what a test substitutes');
  const vars = d.templating.list;
  const ds = vars.find((v) => v.type === 'datasource');
  assert.ok(ds, 'a datasource template variable');
  assert.equal(ds.query, 'prometheus');
  const dsRef = `\${${ds.name}}`;
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
  assert.ok(panels.length > 0);
  assert.equal(new Set(d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id)).size, d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).length, 'panel ids unique');
  for (const p of panels) {
    assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `panel "${p.title}" has no targets`);
    assert.equal(p.datasource?.uid, dsRef, `panel "${p.title}": datasource`);
    for (const t of p.targets) {
      assert.ok(typeof t.expr === 'string' && t.expr.trim(), `panel "${p.title}" ${t.refId}: no expr`);
      assert.equal(t.datasource?.uid, dsRef, `panel "${p.title}" ${t.refId}: datasource`);
      // Rate windows follow Grafana's scrape-aware interval, not a fixed duration.
      for (const [w] of t.expr.matchAll(/\[[^\]]*\]/g)) assert.equal(w, '[$__rate_interval]', `panel "${p.title}" ${t.refId}: window ${w}`);
    }
  }
  assert.equal(new Set(panels.flatMap((p) => p.targets.map((t) => `${p.id}/${t.refId}`))).size, panels.reduce((n, p) => n + p.targets.length, 0), 'refIds unique per panel');
});

test("the dashboard's expressions name only the servers' metrics and labels", () => {
  const targets = dashboardTargets(readDashboard());
  for (const t of targets) {
    const where = `panel "${t.panel}" ${t.refId}`;
    assert.doesNotMatch(t.expr, /\$|\[\[/, `${where}: a variable left after substitution: ${t.expr}`);
    const { series, labels } = namesIn(t.expr);
    assert.ok(series.length > 0, `${where}: no metric in ${t.expr}`);
    const known = new Set(TARGET_LABELS);
    for (const s of series) {
      const m = metricOf(s);
      assert.ok(m, `${where}: ${s} is not a metric the servers serve (monitoring-helpers.mjs METRICS)`);
      for (const l of METRICS[m.name].labels) known.add(l);
      if (m.suffix === 'bucket') known.add('le');
    }
    for (const l of [...labels, ...legendLabels(t.legend)]) assert.ok(known.has(l), `${where}: label ${l} is not one of ${[...known]}`);
  }
});

test('the dashboard has the panels an operator needs', () => {
  const used = new Set(dashboardExpressions(readDashboard()).flatMap((e) => namesIn(e).series.map((s) => metricOf(s)?.name)));
  for (const m of [
    'redux_cluster_raft_is_leader', // leader per node
    'redux_cluster_raft_term',
    'redux_cluster_raft_proposals_committed_total', // commit rate
    'redux_cluster_raft_commit_duration_seconds', // commit p99
    'redux_cluster_raft_wal_fsync_duration_seconds',
    'redux_cluster_raft_commit_index',
    'redux_cluster_raft_applied_index',
    'redux_cluster_raft_member_match_index',
    'redux_cluster_clients',
    'redux_cluster_client_lag_actions',
    'redux_cluster_client_moves_total',
    'redux_cluster_client_refusals_total',
    'redux_cluster_raft_proposals_failed_total',
    'redux_cluster_raft_peer_round_trip_seconds',
  ]) {
    assert.ok(used.has(m), `no panel shows ${m}`);
  }
});

test("promtool parses every dashboard expression (as a recording rule's)", { skip: NO_PROMTOOL }, (t) => {
  const exprs = dashboardExpressions(readDashboard());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redux-cluster-rs-dashboard-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'dashboard-rules.yml');
  // A JSON string is a YAML double-quoted scalar: no escaping of our own.
  const rules = exprs.map((e, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(e)}\n`).join('');
  fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}`);
  const r = promtool('check', 'rules', file);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, new RegExp(`SUCCESS: ${exprs.length} rules found`), r.out);
});

test('no Prometheus and no way to install it: prometheus.mjs says what to run and lets npm test go on', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, '__test__', 'prometheus.mjs')], {
    env: { ...process.env, REDUX_CLUSTER_RS_NO_PROMETHEUS: '1', REDUX_CLUSTER_RS_NO_INSTALL: '1' },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sudo apt-get install -y --no-install-recommends prometheus/);
  assert.match(r.stdout, /PROMETHEUS_PATH/);
});
