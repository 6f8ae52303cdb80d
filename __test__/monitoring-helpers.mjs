// What the monitoring tests need to know of the metrics and the dashboard, with no server
// running: the metric names (the contract between the engine, the alerts and the
// dashboard), the dashboard's expressions as PromQL (for promtool here, and for a real
// Prometheus in the end-to-end test), and the metric and label names an expression uses.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT } from './helpers.mjs';

const { FAMILIES } = createRequire(import.meta.url)('../src/js/prom.js');

export const ALERTS_FILE = path.join(ROOT, 'src', 'js', 'monitoring', 'alerts.yml');
export const ALERTS_TEST_FILE = path.join(ROOT, '__test__', 'alerts.test.yml');
export const DASHBOARD_FILE = path.join(ROOT, 'src', 'js', 'monitoring', 'grafana-dashboard.json');

// Every metric a server serves on /metrics, with its type and labels (besides the `job`
// and `instance` Prometheus adds): the package's own list (src/js/prom.js, checked against
// what a running server exports by metrics.spec.mjs, and documented in the README's
// metrics table). Histograms also serve NAME_bucket (with `le`), NAME_sum and NAME_count.
export const METRICS = Object.freeze(
  Object.fromEntries(Object.entries(FAMILIES).map(([name, f]) => [`redux_cluster_${name}`, f])),
);

/** Labels every series has in Prometheus (added by the scrape). */
export const TARGET_LABELS = Object.freeze(['job', 'instance']);

/** The metric (of METRICS) a series name belongs to, `{ name, suffix }`, or null. */
export function metricOf(series) {
  if (METRICS[series]) return { name: series, suffix: '' };
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  if (m && METRICS[m[1]]?.type === 'histogram') return { name: m[1], suffix: m[2] };
  return null;
}

// Grafana's global variables, by what a test puts for them: durations a real Grafana
// would choose (at least 4 scrape intervals for the rate windows; the scrape is 15 s by
// default).
const GLOBALS = { __rate_interval: '1m', __interval: '1m', __range: '1h' };

/**
 * `expr` with Grafana's variables replaced: $__rate_interval and $__interval by 1m,
 * $__range by 1h, and each of the dashboard's template variables (`names`) by `.*`, what
 * Grafana's "All" sends (the dashboard uses them only in =~ matchers). Each spelling
 * Grafana accepts: $name, ${name}, ${name:format}, [[name]]. Any other `$` stays, and is
 * then not PromQL: the tests look for it.
 */
export function substitute(expr, names) {
  const values = { ...GLOBALS, ...Object.fromEntries(names.map((n) => [n, '.*'])) };
  return expr.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a, b, c) => values[a ?? b ?? c] ?? whole);
}

/** Panels, rows' nested panels included (a collapsed row keeps its panels inside it). */
function allPanels(panels = []) {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Every panel's Prometheus targets: `{ panel, refId, legend, raw, expr }`, expr substituted. */
export function dashboardTargets(dashboard) {
  const names = (dashboard.templating?.list ?? []).map((v) => v.name);
  return allPanels(dashboard.panels)
    .filter((p) => p.type !== 'row')
    .flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, legend: t.legendFormat, raw: t.expr, expr: substitute(t.expr ?? '', names) })),
    );
}

/** The dashboard's expressions as PromQL, ready for promtool or a Prometheus's query API. */
export function dashboardExpressions(dashboard) {
  return dashboardTargets(dashboard).map((t) => t.expr);
}

/** The dashboard (src/js/monitoring/grafana-dashboard.json), parsed. */
export function readDashboard() {
  return JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

/**
 * The series names and label names a PromQL expression uses, found lexically (strings
 * and durations set aside; no PromQL parser in JS here, promtool checks the syntax):
 * `{ series, labels }`. `labels` are those in matchers and in by/without/on/ignoring/
 * group_left/group_right lists.
 */
export function namesIn(expr) {
  const labels = new Set();
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{([^}]*)\}/g, (_, inner) => {
    for (const m of inner.matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return ' ';
  });
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, list) => {
    for (const l of list.split(',').map((x) => x.trim()).filter(Boolean)) labels.add(l);
    return ' '; // so that `sum by (x) (` reads as the call `sum (` below
  });
  s = s.replace(/\[[^\]]*\]/g, ' ');
  const series = new Set();
  // A name not right after a word character or a dot (so not the `e3` of 1e3 or the `m`
  // of 5m), not a function (followed by `(`), not a keyword.
  for (const m of s.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(?!\s*\(|[\w:])/g)) {
    if (!KEYWORDS.has(m[1].toLowerCase())) series.add(m[1]);
  }
  return { series: [...series], labels: [...labels] };
}

/** The label names `{{label}}` a legend uses. */
export function legendLabels(legend) {
  return [...(legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);
}
