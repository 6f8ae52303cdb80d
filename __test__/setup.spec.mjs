// The set-up step a newcomer's `npm test` runs: with no Chromium and no way to install
// one, it says exactly what to run (and does not stop the other tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './helpers.mjs';

test('no Chromium and no way to install it: the set-up says what to run and lets npm test go on', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, '__test__', 'chromium.mjs')], {
    env: { ...process.env, CHROMIUM_PATH: '', REDUX_CLUSTER_RS_NO_CHROMIUM: '1', REDUX_CLUSTER_RS_NO_INSTALL: '1' },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sudo apt-get install -y chromium/);
  assert.match(r.stdout, /CHROMIUM_PATH/);
});
