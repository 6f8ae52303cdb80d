// The chaos run (chaos.mjs), short: 3 servers and 2 clients for 15 s of kill -9,
// SIGSTOP, cut links and client restarts, with a fixed seed. `npm run chaos` runs the
// long one (5 servers, 3 clients, 2 minutes, a new seed each time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChaos } from './chaos.mjs';

test('chaos (short): after kill -9, SIGSTOP, cut links and client restarts, every server and client holds one sequence with every acknowledged action once', { timeout: 180000 }, async () => {
  const r = await runChaos({ servers: 3, clients: 2, seconds: 15, seed: Number(process.env.CHAOS_SEED ?? 20261202), log: (m) => console.log(m) });
  assert.ok(r.acknowledged > 100, `too little got through to mean anything: ${r.acknowledged}`);
  assert.equal(r.lost, 0, 'acknowledged actions missing');
  assert.equal(r.duplicated, 0, 'actions applied twice');
  assert.equal(r.invented, 0, 'actions nobody dispatched');
  assert.ok(r.faults.kill + r.faults.stop + r.faults.cut > 3, `the scheduler hardly did anything: ${JSON.stringify(r.faults)}`);
});
