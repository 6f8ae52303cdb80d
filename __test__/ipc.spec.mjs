// node:cluster: workers' stores sync with the primary's with no set-up, exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { child } from './helpers.mjs';

for (const [workers, perWorker, late] of [
  [2, 10000, ''],
  [4, 2500, 'late'],
]) {
  test(`${workers} workers dispatching ${perWorker} each${late ? ', plus one forked late' : ''}: every process converges`, async () => {
    const k = child('cluster.mjs', [String(workers), String(perWorker), late]);
    const r = await k.next((m) => 'converged' in m, 40000);
    assert.ok(r.converged, `${r.error}; stderr: ${k.stderr.slice(-500)}`);
    const total = 1000 + (workers + (late ? 1 : 0)) * perWorker;
    assert.equal(r.primary, total);
    assert.deepEqual(r.workers, Array(workers + (late ? 1 : 0)).fill(total));
    assert.deepEqual(r.role, ['master']);
    const { code } = await k.exited;
    assert.equal(code, 0, `the primary exits by itself once its workers are gone; stderr: ${k.stderr.slice(-300)}`);
  });
}
