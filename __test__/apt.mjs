// Installing a Debian package a test needs (chromium for the browser tests, prometheus for
// the monitoring tests), shared by chromium.mjs and prometheus.mjs: apt-get when it can
// (as root, or through sudo without a password, so it never waits for a password), and
// otherwise nothing, so the caller can say what to run. It never throws: a machine that
// cannot install still runs every other test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

// 15 minutes: the longest an install (with the package lists' update) may take before
// we give up on it, so `npm test` never hangs on a stuck apt-get.
const APT_TIMEOUT_MS = 15 * 60 * 1000;

/** The last lines of a failed command's stderr, or null when it succeeded. */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: APT_TIMEOUT_MS });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join('\n');
}

/** How apt-get can be run here: `{ apt(...args) }`, or null (no apt-get, not root and no
 *  password-less sudo, or REDUX_CLUSTER_RS_NO_INSTALL set, for the tests of the scripts). */
export function aptRunner(env = process.env) {
  if (!fs.existsSync('/usr/bin/apt-get') || env.REDUX_CLUSTER_RS_NO_INSTALL) return null;
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!root && !sudo) return null;
  return { apt: (...a) => (root ? run('apt-get', a) : run('sudo', ['-n', 'apt-get', ...a])) };
}

/**
 * Installs Debian's `pkg` with apt-get if it can, then answers `find()`: what was
 * installed, or null (the reason printed through `log`). `options` are apt-get's
 * (e.g. --no-install-recommends). `what` says in the messages what it is for.
 */
export function aptInstall(pkg, { find, what, options = [], env = process.env, log = console.log }) {
  const runner = aptRunner(env);
  if (!runner) return null;
  log(`setup: installing Debian's ${pkg} for ${what} (apt-get install -y ${[...options, pkg].join(' ')})...`);
  const install = () => runner.apt('install', '-y', '-q', '-o', 'Dpkg::Use-Pty=0', ...options, pkg);
  // A machine that never ran apt-get update has no package lists yet.
  const err = install() && (runner.apt('update', '-q') ?? install());
  const now = find();
  if (now) return now;
  log(`setup: apt-get could not install ${pkg}: ${err}`);
  return null;
}
