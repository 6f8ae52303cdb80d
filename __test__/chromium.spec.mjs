// The browser bundle in a real browser: headless Chromium (Debian's `chromium`, driven
// by puppeteer-core) loads a page with the single-file build from a local HTTP server,
// logs in over WebSocket (the page's Origin on the server's allow-list), dispatches,
// sees another client's actions, keeps what it dispatched while the server was
// restarted and delivers it once after. A screenshot is kept as an artifact. With
// `optimistic`, behind a slow link: its own action shows at once, then is confirmed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { createStore } from 'redux-cluster-rs';
import { ROOT, freePort, sink, slowLink, waitFor } from './helpers.mjs';
import { HOWTO, findChromium } from './chromium.mjs';

const CHROMIUM = findChromium();
const BUNDLE = path.join(ROOT, 'src', 'js', 'browser', 'redux-cluster-rs.browser.js');
export const ARTIFACTS = path.join(os.tmpdir(), 'redux-cluster-rs-artifacts');

function counter(state = { counter: 0 }, action) {
  return action.type === 'INCREMENT' ? { counter: state.counter + 1 } : state;
}

const PAGE = (wsPort) => `<!doctype html>
<html><head><meta charset="utf-8"><title>redux-cluster-rs in a browser</title></head>
<body><h1>counter: <span id="n">0</span></h1><p id="status">connecting</p>
<script src="/redux-cluster-rs.browser.js"></script>
<script>
  function counter(state = { counter: 0 }, action) {
    return action.type === 'INCREMENT' ? { counter: state.counter + 1 } : state;
  }
  const store = ReduxClusterRS.createStore(counter);
  const client = store.createWSClient({ host: 'ws://127.0.0.1', port: ${wsPort}, login: 'ann', password: 'secret' });
  store.subscribe(() => { document.getElementById('n').textContent = store.getState().counter; });
  setInterval(() => { document.getElementById('status').textContent = client.connected ? 'connected' : 'offline'; }, 20);
  window.app = {
    state: () => ({ counter: store.getState().counter, connected: client.connected, pending: client.pending, error: client.error && client.error.code }),
    dispatchAsync: (n) => Promise.all(Array.from({ length: n }, () => store.dispatchAsync({ type: 'INCREMENT' }))).then((r) => r.map((x) => x.seq)),
    queue: (n) => { for (let i = 0; i < n; i++) store.dispatch({ type: 'INCREMENT' }); return client.pending; },
  };
</script></body></html>`;

test('headless Chromium: the bundle logs in, dispatches, sees others and delivers what it queued while the server was down, once', { timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, HOWTO);
  assert.ok(fs.existsSync(BUNDLE), 'the bundle is built (npm run build:browser)');
  const wsPort = await freePort();
  const web = http.createServer((req, res) => {
    if (req.url === '/redux-cluster-rs.browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(BUNDLE));
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(PAGE(wsPort));
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${web.address().port}`;
  const server = createStore(counter, { stderr: sink() });
  const settings = { host: '127.0.0.1', port: wsPort, logins: { ann: 'secret' }, origin: [origin] };
  let ws = server.createWSServer(settings);
  const other = createStore(counter, { stderr: sink() });
  const otherConn = other.createWSClient({ host: 'ws://127.0.0.1', port: wsPort, login: 'ann', password: 'secret' });
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(origin, { waitUntil: 'load' });
    const state = () => page.evaluate(() => window.app.state());
    await waitFor(async () => (await state()).connected, { what: 'the page connected', timeoutMs: 20000, show: () => logs });
    const seqs = await page.evaluate(() => window.app.dispatchAsync(5));
    assert.equal(new Set(seqs).size, 5);
    await other.dispatchAsync({ type: 'INCREMENT' });
    await waitFor(async () => (await state()).counter === 6, { what: "the page sees the other client's action" });
    assert.equal(await page.$eval('#n', (e) => e.textContent), '6');

    // The server goes away; the page keeps dispatching; the server comes back.
    await ws.close();
    await waitFor(async () => !(await state()).connected, { what: 'the page saw the server go' });
    assert.equal(await page.evaluate(() => window.app.queue(3)), 3);
    ws = server.createWSServer(settings);
    await waitFor(() => server.getState().counter === 9, { what: 'the queued actions delivered', timeoutMs: 20000 });
    await waitFor(async () => (await state()).counter === 9 && (await state()).pending === 0, { what: 'the page applied them' });
    await waitFor(() => other.getState().counter === 9, { what: 'the other client too' });
    server.dispatch({ type: 'INCREMENT' });
    await waitFor(async () => (await state()).counter === 10, { what: 'exactly once: 10 after one more' });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-client.png') });

    // A page of another origin is refused at the upgrade.
    const stranger = await browser.newPage();
    await stranger.goto('about:blank');
    const refused = await stranger.evaluate(
      (port) =>
        new Promise((resolve) => {
          const s = new WebSocket(`ws://127.0.0.1:${port}`);
          s.onopen = () => resolve('open');
          s.onerror = () => resolve('refused');
        }),
      wsPort
    );
    assert.equal(refused, 'refused');
  } finally {
    await browser.close();
    await otherConn.disconnect();
    await ws.close();
    web.close();
  }
});

// The optimistic page: a log whose order shows where the server put each action.
const OPTIMISTIC_PAGE = (wsPort) => `<!doctype html>
<html><head><meta charset="utf-8"><title>redux-cluster-rs, optimistic</title></head>
<body><h1>log: <span id="log"></span></h1>
<script src="/redux-cluster-rs.browser.js"></script>
<script>
  function pushLog(state = { log: [] }, action) {
    return action.type === 'PUSH' ? { log: [...state.log, action.by] } : state;
  }
  const store = ReduxClusterRS.createStore(pushLog);
  const client = store.createWSClient({ host: 'ws://127.0.0.1', port: ${wsPort}, optimistic: true });
  const views = [];
  store.subscribe(() => {
    views.push(store.getState().log);
    document.getElementById('log').textContent = store.getState().log.join(' ');
  });
  let confirmed = null;
  window.app = {
    state: () => ({ log: store.getState().log, connected: client.connected, pending: client.pending }),
    // Dispatched, and read in the same task: nothing from the server can have come yet.
    push: (by) => {
      views.length = 0;
      const t0 = performance.now();
      confirmed = store.dispatchAsync({ type: 'PUSH', by }).then((r) => ({ seq: r.seq, ms: performance.now() - t0, log: store.getState().log }));
      return { log: store.getState().log, pending: client.pending };
    },
    confirmed: () => confirmed,
    views: () => views,
  };
</script></body></html>`;


test("headless Chromium, optimistic: behind a slow link (100 ms each way) the page's own action shows at once, then is confirmed in the server's order beside another client's", { timeout: 90000 }, async (t) => {
  assert.ok(CHROMIUM, HOWTO);
  assert.ok(fs.existsSync(BUNDLE), 'the bundle is built (npm run build:browser)');
  // The page's reducer, by name too (the store's identity).
  function pushLog(state = { log: [] }, action) {
    return action.type === 'PUSH' ? { log: [...state.log, action.by] } : state;
  }
  const wsPort = await freePort();
  const server = createStore(pushLog, { stderr: sink() });
  const ws = server.createWSServer({ host: '127.0.0.1', port: wsPort });
  const proxy = await slowLink(wsPort, 100);
  const web = http.createServer((req, res) => {
    if (req.url === '/redux-cluster-rs.browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(BUNDLE));
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(OPTIMISTIC_PAGE(proxy.port));
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  const other = createStore(pushLog, { stderr: sink() });
  const otherConn = other.createWSClient({ host: 'ws://127.0.0.1', port: wsPort });
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(`http://127.0.0.1:${web.address().port}`, { waitUntil: 'load' });
    const state = () => page.evaluate(() => window.app.state());
    await waitFor(async () => (await state()).connected, { what: 'the page connected through the proxy', timeoutMs: 20000, show: () => logs });
    await waitFor(() => other.connected, { what: 'the other client connected' });

    const [now, { seq: otherSeq }] = await Promise.all([page.evaluate(() => window.app.push('page')), other.dispatchAsync({ type: 'PUSH', by: 'other' }, { timeout: 20000 })]);
    assert.deepEqual(now, { log: ['page'], pending: 1 }, 'shown at once, before the server acknowledged it');
    const confirmed = await page.evaluate(() => window.app.confirmed());
    assert.ok(confirmed.ms >= 180, `confirmed after the round trip (${confirmed.ms.toFixed(1)} ms)`);
    await waitFor(() => server.getState().log.length === 2, { what: 'the server ordered both' });
    const order = server.getState().log;
    assert.equal(confirmed.seq > otherSeq, order[0] === 'other', 'confirmed where the server put it');
    await waitFor(async () => JSON.stringify((await state()).log) === JSON.stringify(order), { what: "the page on the server's order" });
    assert.deepEqual(other.getState().log, order);
    assert.equal(await page.$eval('#log', (e) => e.textContent), order.join(' '));
    const views = await page.evaluate(() => window.app.views());
    assert.ok(views.length <= 2 && views.every((v) => v.includes('page')), `its own action shown all along, one call per change: ${JSON.stringify(views)}`);
    assert.deepEqual(views.at(-1), order);
    t.diagnostic(`server order ${JSON.stringify(order)}; the page saw ${JSON.stringify(views)}; confirmed after ${confirmed.ms.toFixed(1)} ms`);
  } finally {
    await browser.close();
    await otherConn.disconnect();
    await proxy.close();
    await ws.close();
    web.close();
  }
});

test('the dashboard in headless Chromium shows the leader and the clients of a replicated server; /metrics speaks Prometheus', { timeout: 90000 }, async () => {
  assert.ok(CHROMIUM, HOWTO);
  const [port, httpPort] = await Promise.all([freePort(), freePort()]);
  const server = createStore(counter, { stderr: sink() });
  const srv = server.createServer({ host: '127.0.0.1', port, cluster: { nodeName: 'dash-1', bootstrap: true }, http: { port: httpPort } });
  const clients = [0, 1].map(() => createStore(counter, { stderr: sink() }));
  const conns = clients.map((c) => c.createClient({ host: '127.0.0.1', port }));
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    await Promise.all(clients.map((c) => c.dispatchAsync({ type: 'INCREMENT' }, { timeout: 20000 })));
    await waitFor(() => srv.metrics().clients.length === 2 && srv.metrics().raft.leaderId === 'dash-1', { what: 'two clients of the leader' });
    const m = srv.metrics();
    assert.equal(m.ordered, 2);
    assert.ok(m.clients.every((c) => c.transport === 'tcp' && c.lag === 0 && c.bytesIn > 0 && c.bytesOut > 0));

    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(text, /^# TYPE redux_cluster_actions_ordered_total counter$/m);
    assert.match(text, /^redux_cluster_actions_ordered_total 2$/m);
    assert.match(text, /^redux_cluster_clients 2$/m);
    assert.match(text, /^redux_cluster_raft_leader\{node="dash-1",leader="dash-1"\} 1$/m);
    // The leader's view of each member's log.
    const r = m.raft;
    assert.equal(r.members[0].matchIndex, r.commitIndex);
    assert.match(text, new RegExp(`^redux_cluster_raft_member_match_index\\{node="dash-1",member="dash-1"\\} ${r.commitIndex}$`, 'm'));

    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${httpPort}/`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live', { timeout: 10000 });
    assert.equal(await page.$eval('#leader', (e) => e.textContent), 'dash-1');
    assert.equal(await page.$eval('#clients', (e) => e.textContent), '2');
    assert.equal(await page.$$eval('g.client-node', (g) => g.length), 2);
    assert.equal(await page.$eval('g[data-node="dash-1"]', (g) => g.getAttribute('data-role')), 'leader');
    assert.equal(await page.$eval('g[data-node="dash-1"] [data-behind]', (t) => t.getAttribute('data-behind')), '0');
    // Live: one more client shows up within a couple of updates.
    const third = createStore(counter, { stderr: sink() });
    const thirdConn = third.createClient({ host: '127.0.0.1', port });
    await third.dispatchAsync({ type: 'INCREMENT' }, { timeout: 20000 });
    await page.waitForFunction(() => document.getElementById('clients').textContent === '3', { timeout: 10000 });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png') });
    await thirdConn.disconnect();
  } finally {
    await browser.close();
    await Promise.all(conns.map((c) => c.disconnect()));
    await srv.close();
  }
});
