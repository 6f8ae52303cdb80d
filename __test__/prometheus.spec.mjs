// The operator's side of the metrics end to end (issue 27), with a real Prometheus: three
// server processes of a replicated store serve /metrics, Prometheus scrapes them (one job,
// `redux-cluster`, as the alerting rules expect) with the rules of alerts.yml loaded.
// Every expression of the Grafana dashboard returns data; the rules load healthy and none
// fires for the healthy group; kill -9 of two of the three servers makes the no-quorum
// alert (ReduxClusterInsufficientMembers) fire, and restarting them resolves it. The
// timeline (kill, pending, firing, resolved) is printed as a diagnostic, from Prometheus's
// own ALERTS series. Loopback only; every wait bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createStore } from 'redux-cluster-rs';
import { ask, child, counter, freePort, oneLeader } from './helpers.mjs';
import { HOWTO, findPrometheus } from './prometheus.mjs';
import { ALERTS_FILE, dashboardTargets, readDashboard } from './monitoring-helpers.mjs';

const PROM = findPrometheus();
// `npm test`'s pretest (node __test__/prometheus.mjs) installs it; only a machine where it
// could not (no root, no password-less sudo) gets here.
const SKIP = PROM ? false : `prometheus not found (npm test's set-up, node __test__/prometheus.mjs, installs it when it can): ${HOWTO}`;

const NO_QUORUM = 'ReduxClusterInsufficientMembers';
/** Alerts on latencies against fixed thresholds: how fast this machine is, not whether the
 *  group is healthy. */
const MACHINE_BOUND = new Set(['ReduxClusterSlowCommits', 'ReduxClusterSlowWalFsync', 'ReduxClusterSlowPeerRoundTrips']);

/** Polls `cond` every `everyMs` until it gives something truthy; bounded by `timeoutMs`.
 *  A throw from `cond` counts as "not yet" (kept for the message), unless `fatal()` says
 *  why waiting is pointless (Prometheus exited). */
async function poll(cond, { timeoutMs, what, show, everyMs = 250, fatal = () => null }) {
  const t0 = Date.now();
  let lastError;
  for (;;) {
    const dead = fatal();
    if (dead) throw new Error(`${dead} (while waiting for ${what})`);
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - t0 > timeoutMs) {
      const last = show ? `; last: ${JSON.stringify(show())}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${lastError ? `; last error: ${lastError.message}` : ''}`);
    }
    await delay(everyMs);
  }
}

/** The value of a series without labels in Prometheus text, or undefined. */
function sampleOf(text, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const alertNames = () => [...fs.readFileSync(ALERTS_FILE, 'utf8').matchAll(/^\s*- alert:\s*(\w+)/gm)].map((m) => m[1]);

test(
  'a real Prometheus scrapes a replicated store: every dashboard expression has data, the rules load healthy and stay quiet, and kill -9 of a majority fires the no-quorum alert until the servers are back',
  { skip: SKIP, timeout: 180000 },
  async (t) => {
    const T0 = Date.now();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-prometheus-'));
    const servers = [];
    let prom = null;
    let promExit = null;
    let promErr = '';
    let promExited = Promise.resolve();
    let client = null;
    const pump = { running: false, ok: 0, failed: 0, done: Promise.resolve() };

    // Everything this test started ends here, whether it passed or not.
    let ended = false;
    t.after(async () => {
      ended = true; // a body still running (the test timed out) starts nothing more
      pump.running = false;
      await Promise.race([pump.done, delay(15000)]);
      if (client) await Promise.race([client.disconnect().catch(() => {}), delay(5000)]);
      await Promise.all(servers.map((k) => k.kill('SIGKILL')));
      if (prom && !promExit) {
        prom.kill('SIGTERM');
        const gone = await Promise.race([promExited.then(() => true), delay(5000).then(() => false)]);
        if (!gone) {
          prom.kill('SIGKILL');
          await Promise.race([promExited, delay(5000)]);
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    });

    // ---- the group: three processes, each with its dataDir and its /metrics port
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    const httpPorts = await Promise.all([0, 1, 2].map(() => freePort()));
    const promPort = await freePort();
    const seeds = ports.map((p, i) => `m${i}@127.0.0.1:${p}`);
    const spec = (i) => ({
      port: ports[i],
      httpPort: httpPorts[i],
      // A small snapshotThreshold so that snapshots are built (and the snapshot panel has
      // more than zeros); a restarted member may also be sent one.
      cluster: { nodeName: `m${i}`, seeds, dataDir: path.join(dir, `m${i}`), heartbeatInterval: 50, electionTimeout: 150, snapshotThreshold: 20 },
    });
    const start = (i) => {
      if (ended) throw new Error('the test has ended');
      const k = child('metrics-server.mjs', [JSON.stringify(spec(i))]);
      k.spec = spec(i);
      servers[i] = k;
      return k;
    };
    for (const i of [0, 1, 2]) start(i);

    // ---- Prometheus, started meanwhile: 1 s scrapes and evaluations, the rules, one job
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [ALERTS_FILE],
      scrape_configs: [{ job_name: 'redux-cluster', static_configs: [{ targets: httpPorts.map((p) => `127.0.0.1:${p}`) }] }],
    };
    const configFile = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
    prom = spawn(
      PROM.prometheus,
      [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    );
    prom.stderr.on('data', (d) => (promErr = (promErr + d).slice(-4000)));
    promExited = new Promise((resolve) => prom.on('exit', (code, signal) => resolve((promExit = { code, signal }))));
    const promDead = () => (promExit ? `prometheus exited (${JSON.stringify(promExit)}): ${promErr.slice(-1500)}` : null);
    const promUrl = `http://127.0.0.1:${promPort}`;
    const api = async (p) => {
      const r = await fetch(`${promUrl}${p}`, { signal: AbortSignal.timeout(10000) });
      const body = await r.json();
      if (body.status !== 'success') throw new Error(`${p}: ${JSON.stringify(body).slice(0, 500)}`);
      return body.data;
    };
    const query = (expr) => api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    let targets = [];
    // Every target up, by a scrape after `since` (a target's health is its last scrape's).
    const allUp = async (since = 0) => {
      targets = (await api('/api/v1/targets?state=active')).activeTargets.map((x) => ({
        instance: x.labels.instance,
        job: x.labels.job,
        health: x.health,
        lastScrape: x.lastScrape,
        error: x.lastError,
      }));
      return targets.length === 3 && targets.every((x) => x.health === 'up' && x.job === 'redux-cluster' && Date.parse(x.lastScrape) > since);
    };
    const within = { fatal: promDead };

    await Promise.all(servers.map((k) => k.next((m) => m.listening, 30000)));
    const leader = await oneLeader(servers);
    await poll(async () => (await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(5000) })).ok, { ...within, timeoutMs: 60000, what: 'Prometheus /-/ready' });
    await poll(allUp, { ...within, timeoutMs: 30000, what: 'the 3 targets up', show: () => targets });

    // ---- traffic: a client on a follower dispatches, paced, until the kill below
    const li = Number(leader.slice(1));
    const [fi, gi] = [0, 1, 2].filter((i) => i !== li);
    const replica = createStore(counter, { stderr: () => {} });
    client = replica.createClient({ servers: [fi, gi].map((i) => ({ host: '127.0.0.1', port: ports[i] })) });
    pump.running = true;
    pump.done = (async () => {
      while (pump.running) {
        try {
          await replica.dispatchAsync({ type: 'INC' }, { timeout: 15000 });
          pump.ok++;
        } catch {
          pump.failed++;
        }
        await delay(20); // pacing: a steady rate, not a flood
      }
    })();
    await poll(() => pump.ok >= 20, { timeoutMs: 20000, what: 'the client to dispatch through a follower', show: () => pump, everyMs: 50 });

    // ---- a client move: kill -9 of the follower the client uses; it goes on through the
    // other, which counts it as a move. Then the follower restarts from its dataDir.
    const tMoveKill = Date.now();
    await servers[fi].kill('SIGKILL');
    const okAtKill = pump.ok;
    let moves;
    await poll(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${httpPorts[gi]}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        moves = sampleOf(text, 'redux_cluster_client_moves_total');
        return pump.ok >= okAtKill + 10 && moves >= 1;
      },
      { timeoutMs: 30000, what: `the client to move to m${gi} and dispatch there`, show: () => ({ pump, moves }) }
    );
    const tMoved = Date.now();
    start(fi);
    await servers[fi].next((m) => m.listening, 30000);
    const tBack = Date.now();
    await oneLeader(servers);
    await poll(() => allUp(tBack), { ...within, timeoutMs: 30000, what: 'the 3 targets up after the restart', show: () => targets });

    // ---- every dashboard expression returns data, once the rates have some
    // Data means: every server's ordering rate over the dashboard's window is non-zero,
    // and so is its rate now (over the last 5 s: the traffic still flows, the restarted
    // follower included); Prometheus saw the move; snapshots were built in the window
    // (snapshotThreshold: 20), so the snapshot panel shows durations, not only NaN.
    let seenData;
    await poll(
      async () => {
        const n = async (expr) => (await query(expr)).result.length;
        seenData = {
          rates: await n('rate(redux_cluster_actions_ordered_total[1m]) > 0'),
          now: await n('increase(redux_cluster_actions_ordered_total[5s]) > 0'),
          moved: await n('increase(redux_cluster_client_moves_total[1m]) > 0'),
          snapshots: await n('increase(redux_cluster_raft_snapshot_duration_seconds_count[1m]) > 0'),
        };
        return seenData.rates === 3 && seenData.now === 3 && seenData.moved >= 1 && seenData.snapshots >= 1;
      },
      { ...within, timeoutMs: 60000, what: 'ordering rates on the 3 servers, the move and snapshots in Prometheus', show: () => ({ seenData, pump }) }
    );
    const targetsOfDashboard = dashboardTargets(readDashboard());
    assert.ok(targetsOfDashboard.length > 0, 'the dashboard has expressions');
    const empty = [];
    const nanOnly = [];
    for (const x of targetsOfDashboard) {
      const { result } = await query(x.expr);
      if (result.length === 0) empty.push(`${x.panel} [${x.refId}]: ${x.expr}`);
      else if (result.every((r) => Number.isNaN(Number(r.value[1])))) nanOnly.push(`${x.panel} [${x.refId}]`);
    }
    assert.deepEqual(empty, [], `dashboard expressions with no data from a running group:\n${empty.join('\n')}`);

    // ---- the rules loaded, every one healthy; none fires for the healthy group
    const groups = (await api('/api/v1/rules')).groups;
    const rules = groups.flatMap((g) => g.rules);
    assert.deepEqual(
      rules.filter((r) => r.type === 'alerting').map((r) => r.name).sort(),
      alertNames().sort(),
      'every alert of alerts.yml is loaded'
    );
    const unhealthy = rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
    assert.deepEqual(unhealthy, [], 'every rule evaluates without error');
    // Every rule has a `for` of 30 s or more, so "none firing" alone says little this soon
    // after Prometheus started: none may be active (pending) either, once the member
    // killed for the move is back (ReduxClusterMembersDown goes pending while it is down,
    // as it should, and inactive when it is up). The latency alerts are the exception,
    // allowed to be pending (reported, never firing): they measure the machine (fsync,
    // commit and peer p99 against fixed thresholds), and a busy test machine may be slow.
    const active = (a) => `${a.labels.alertname}(${a.state}${a.labels.instance ? ` ${a.labels.instance}` : ''})`;
    let healthy = [];
    await poll(
      async () => {
        healthy = (await api('/api/v1/alerts')).alerts;
        return healthy.every((a) => a.state !== 'firing' && MACHINE_BOUND.has(a.labels.alertname));
      },
      { ...within, timeoutMs: 30000, what: 'no alert active for the healthy group', show: () => healthy.map(active) }
    );
    const pendingHealthy = healthy.map(active);

    // ---- kill -9 of two of the three (the leader and the client's server): no quorum
    pump.running = false;
    await Promise.race([pump.done, delay(20000)]);
    const now = (await ask(servers[fi], { cmd: 'status' })).status.leaderId;
    const leaderNow = now ? Number(now.slice(1)) : li;
    const killed = [leaderNow, [0, 1, 2].find((i) => i !== leaderNow && i !== fi) ?? gi];
    const survivor = [0, 1, 2].find((i) => !killed.includes(i));
    const tKill = Date.now();
    await Promise.all(killed.map((i) => servers[i].kill('SIGKILL')));
    let seen = [];
    let tPending = null;
    let activeAt = null;
    const tFiring = await poll(
      async () => {
        seen = (await api('/api/v1/alerts')).alerts.filter((a) => a.labels.alertname === NO_QUORUM);
        const a = seen.find((x) => x.labels.job === 'redux-cluster');
        if (a && tPending === null) tPending = Date.now();
        if (a) activeAt = Date.parse(a.activeAt);
        return a?.state === 'firing' ? Date.now() : null;
      },
      { ...within, timeoutMs: 120000, everyMs: 200, what: `${NO_QUORUM} firing after kill -9 of m${killed[0]} and m${killed[1]}`, show: () => seen }
    );
    const firingAlert = seen.find((a) => a.state === 'firing');
    const othersDuring = (await api('/api/v1/alerts')).alerts.map((a) => `${a.labels.alertname}(${a.state})`);

    // ---- restart both from their dataDirs, on the same ports: the alert resolves
    const tRestart = Date.now();
    for (const i of killed) start(i);
    await Promise.all(killed.map((i) => servers[i].next((m) => m.listening, 30000)));
    const tBackAll = Date.now();
    let still = [];
    const tResolved = await poll(
      async () => {
        still = (await api('/api/v1/alerts')).alerts.filter((a) => a.labels.alertname === NO_QUORUM && a.state === 'firing');
        return still.length === 0 && (await allUp(tBackAll)) ? Date.now() : null;
      },
      { ...within, timeoutMs: 60000, everyMs: 200, what: `${NO_QUORUM} no longer firing and the 3 targets up`, show: () => ({ still, targets }) }
    );
    await oneLeader(servers);

    // ---- the timeline, from Prometheus's own ALERTS series: its raw samples, one per
    // rule evaluation (1 s) while an alert is pending or firing
    await poll(async () => (await api('/api/v1/alerts')).alerts.every((a) => a.labels.alertname !== NO_QUORUM), {
      ...within,
      timeoutMs: 10000,
      what: `${NO_QUORUM} gone from /api/v1/alerts`,
    });
    const range = await query(`ALERTS{alertname=~"ReduxCluster.*"}[${Math.ceil((Date.now() - T0) / 1000) + 10}s]`);
    const rel = (ms) => {
      if (ms === null || Number.isNaN(ms)) return '(not seen)';
      const d = (ms - tKill) / 1000;
      return `${d >= 0 ? '+' : ''}${d.toFixed(1)} s`;
    };
    const fromAlerts = range.result
      .map((s) => ({ s, times: s.values.map(([ts]) => ts * 1000) }))
      .sort((a, b) => a.times[0] - b.times[0])
      .map(({ s, times }) => {
        const what = `${s.metric.alertname}{${s.metric.alertstate}${s.metric.instance ? `, ${s.metric.instance}` : ''}}`;
        // Runs of consecutive evaluations (1 s apart), so that a gap shows.
        const runs = [];
        for (const x of times) {
          const r = runs.at(-1);
          if (r && x - r[1] <= 1500) r[1] = x;
          else runs.push([x, x]);
        }
        return `${what} ${runs.map(([a, b]) => `${rel(a)} .. ${rel(b)}`).join(', ')}`;
      });
    t.diagnostic(`times relative to kill -9 of m${killed[0]} and m${killed[1]} (m${survivor} left), after ${((tKill - T0) / 1000).toFixed(1)} s of test`);
    t.diagnostic(`earlier: client move (kill -9 of follower m${fi}) at ${rel(tMoveKill)}, the client dispatched through m${gi} at ${rel(tMoved)}`);
    t.diagnostic(`dashboard: ${targetsOfDashboard.length} expressions, all with data${nanOnly.length ? `; NaN only (no observations in the window): ${nanOnly.join(', ')}` : ''}`);
    t.diagnostic(`healthy group: no alert firing, none active${pendingHealthy.length ? ` but (latency) ${pendingHealthy.join(', ')}` : ''}`);
    t.diagnostic(`${NO_QUORUM}: seen pending at ${rel(tPending)} (Prometheus activeAt ${rel(activeAt)}), firing at ${rel(tFiring)} (value ${firingAlert?.value}); alerts then: ${othersDuring.join(', ')}`);
    t.diagnostic(`restart of both at ${rel(tRestart)}; ${NO_QUORUM} gone and all targets up at ${rel(tResolved)}`);
    for (const line of fromAlerts) t.diagnostic(`ALERTS (Prometheus's evaluations): ${line}`);
    t.diagnostic(`test took ${((Date.now() - T0) / 1000).toFixed(1)} s; the client acknowledged ${pump.ok} dispatches (${pump.failed} failed)`);

    assert.ok(tFiring - tKill <= 120000);
    assert.ok(fromAlerts.some((l) => l.startsWith(`${NO_QUORUM}{firing`)), `Prometheus's ALERTS series shows ${NO_QUORUM} firing`);
  }
);
