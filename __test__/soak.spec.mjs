// The soak bench (benches/soak.mjs, `npm run bench:soak`, 30 minutes) in a short run, so
// it keeps working: a steady load on a replicated store while clients come and go ends
// with every acknowledged action applied once on every server, no errors, and no
// descriptor leaked by the clients that left. (Memory flatness needs the long run.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from '../benches/soak.mjs';

test('a short soak: steady load, clients replaced every second, nothing lost, no error, no descriptor leaked', { timeout: 90000 }, async () => {
  const lines = [];
  const r = await runSoak({ seconds: 12, rate: 500, clients: 3, every: 2, reconnect: 1, log: (l) => lines.push(l) });
  assert.ok(r.consistent, lines.join('\n'));
  assert.ok(r.acknowledged > 0.8 * r.rate * r.seconds, `${r.acknowledged} acknowledged in ${r.seconds} s at ${r.rate}/s\n${lines.join('\n')}`);
  assert.deepEqual(r.errors, {}, lines.join('\n'));
  assert.ok(r.fdsEnd <= r.fdsStart + 8, `descriptors ${r.fdsStart} -> ${r.fdsEnd}\n${lines.join('\n')}`);
});
