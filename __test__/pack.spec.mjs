// `npm pack` gives packages that install and run in a fresh project with no Rust
// toolchain on the PATH: the main package (JS + typings) and the per-platform binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers.mjs';
import { packMain, packPlatform } from '../.ci/pack.mjs';

const npm = (args, cwd, env = process.env) =>
  execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180000 });

test('packed packages install and run without cargo', { timeout: 240000 }, async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-pack-'));
  try {
    const binary = path.join(ROOT, 'redux-cluster-rs.linux-x64-gnu.node');
    assert.ok(fs.existsSync(binary), 'build first (npm run build)');
    // The platform package, and the main package as `napi prepublish` publishes it:
    // pointing at the platform package through optionalDependencies.
    const { name: platName, tarball: platTgz } = packPlatform('linux-x64-gnu', binary, work);
    const mainTgz = packMain([platName], work);

    const listing = execFileSync('tar', ['tzf', mainTgz], { encoding: 'utf8' });
    assert.ok(!/\.node$/m.test(listing), 'the main package carries no binary');
    assert.ok(!/\.rs$/m.test(listing), 'the main package carries no Rust sources');
    assert.match(listing, /package\/index\.d\.ts/);

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', mainTgz, platTgz], app);
    fs.writeFileSync(
      path.join(app, 'main.js'),
      `const { createStore } = require('redux-cluster-rs');
       const path = require('path');
       function counter(s = { n: 0 }, a) { return a.type === 'INC' ? { n: s.n + 1 } : s; }
       const sock = path.join(require('os').tmpdir(), 'rcrs-pack-' + process.pid + '.sock');
       const server = createStore(counter);
       const srv = server.createServer({ path: sock });
       const client = createStore(counter);
       const cl = client.createClient({ path: sock });
       for (let i = 0; i < 10; i++) client.dispatch({ type: 'INC' });
       const iv = setInterval(async () => {
         if (server.getState().n === 10 && client.getState().n === 10) {
           clearInterval(iv);
           await cl.disconnect(); await srv.close();
           console.log('synced', require('redux-cluster-rs/package.json').version);
         }
       }, 5);`
    );
    // No cargo, no rustc: only the system directories.
    const env = { ...process.env, PATH: '/usr/bin:/bin' };
    assert.throws(() => execFileSync('cargo', ['--version'], { env, stdio: 'ignore' }));
    const out = execFileSync(process.execPath, ['main.js'], { cwd: app, env, encoding: 'utf8', timeout: 20000 });
    assert.match(out, /synced 0\.1\.0/);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
