// Errors as a user meets them: every failure carries a stable `code`, and a bug in the
// engine surfaces as an `ERR_INTERNAL` error instead of an abort of Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createStore } from 'redux-cluster-rs';
import { counter, waitFor, sink, freePort, ROOT } from './helpers.mjs';


test('a panic in the engine is an ERR_INTERNAL error, sync or async, and Node goes on', () => {
  // In a child: the panic hook's report goes to the process's own stderr.
  const script = `
    const native = require(${JSON.stringify(path.join(ROOT, 'src/js/native.js'))});
    const { createStore } = require(${JSON.stringify(ROOT)});
    const seen = [];
    try { native.__panicForTest('sync bug'); } catch (e) { seen.push(e.code + ' ' + /sync bug/.test(e.message)); }
    native.__panicForTestAsync('async bug').catch((e) => seen.push(e.code)).then(async () => {
      // The engine still serves after it.
      const store = createStore((s = 0, a) => (a.type === 'INC' ? s + 1 : s));
      await store.dispatchAsync({ type: 'INC' });
      console.log(JSON.stringify({ seen, state: store.getState() }));
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000, env: { ...process.env, RUST_BACKTRACE: '0' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { seen: ['ERR_INTERNAL true', 'ERR_INTERNAL'], state: 1 });
  assert.match(r.stderr, /internal error; this is a bug, please report it/);
});

test('without a cluster secret, a server whose host is no member cannot make itself one: its join is refused with ERR_AUTH', async () => {
  // 127.0.0.2 stands for the group's host; the joiner connects from 127.0.0.1.
  const [pa, pb] = [await freePort(), await freePort()];
  const a = createStore(counter, { stderr: sink() });
  const sa = a.createServer({ host: '127.0.0.2', port: pa, cluster: { nodeName: 'a', bootstrap: true, heartbeatInterval: 50, electionTimeout: 150 } });
  await waitFor(() => sa.status().role === 'leader', { what: 'a leads' });
  const said = sink();
  const b = createStore(counter, { stderr: said });
  const sb = b.createServer({ host: '127.0.0.1', port: pb, cluster: { nodeName: 'b', seeds: [`a@127.0.0.2:${pa}`], heartbeatInterval: 50, electionTimeout: 150 } });
  try {
    await waitFor(() => said.lines.some((l) => /seed a refused to add this server: .*clusterSecret/.test(l)), {
      what: 'the refusal on the joiner\'s stderr',
      show: () => said.lines,
    });
    assert.equal(sa.status().members.length, 1, 'b is no member of a\'s group');
  } finally {
    await sb.close();
    await sa.close();
  }
});
