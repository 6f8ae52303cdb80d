// After close() / disconnect() nothing keeps the process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { child } from './helpers.mjs';

for (const transport of ['tcp', 'unix']) {
  test(`a process that serves, syncs and closes (${transport}) exits by itself within 5 s`, async () => {
    const k = child('lifecycle.mjs', [transport]);
    const timer = setTimeout(() => k.kill(), 5000);
    const { code, signal } = await k.exited;
    clearTimeout(timer);
    assert.equal(signal, null, `killed after 5 s: it did not exit by itself; stderr: ${k.stderr}`);
    assert.equal(code, 0, k.stderr);
    assert.ok(k.messages.some((m) => m.closed && m.counter === 3), JSON.stringify(k.messages));
  });
}

test('a client that never reached its server does not keep the process alive after disconnect()', async () => {
  const k = child('lifecycle.mjs', ['unreachable']);
  const timer = setTimeout(() => k.kill(), 5000);
  const { code, signal } = await k.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `did not exit by itself; stderr: ${k.stderr}`);
  assert.equal(code, 0, k.stderr);
});

test('a process that starts and stops a Raft coordinator, a Cluster node, a replicated WebSocket server with its dashboard and a client exits by itself; stopped handles answer, not hang', { timeout: 30000 }, async () => {
  const k = child('lifecycle-all.mjs');
  const timer = setTimeout(() => k.kill(), 20000);
  const { code, signal } = await k.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `killed after 20 s: it did not exit by itself; stderr: ${k.stderr}`);
  assert.equal(code, 0, k.stderr);
  const done = k.messages.find((m) => m.stopped);
  assert.ok(done, JSON.stringify(k.messages));
  assert.equal(done.n, 1);
  assert.deepEqual(done.after, { removeMember: 'ERR_CLOSED', replicate: 'ERR_CLOSED' });
});
