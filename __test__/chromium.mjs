// Where the browser tests find Chromium, and how `npm test` gets one on a machine that has
// none: `node __test__/chromium.mjs` (run by `pretest`) installs Debian's `chromium` with
// apt-get when it can (as root, or through sudo without a password), saying so. Where it
// cannot, it says what to run and `npm test` goes on: only the two browser tests fail,
// with the same instructions.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

// Debian's package puts the binary in /usr/lib/chromium (with /usr/bin/chromium a shell
// wrapper); CHROMIUM_PATH names any other Chromium or Chrome.
const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium binary to drive, or null. */
export function findChromium(env = process.env) {
  if (env.CHROMIUM_PATH) return fs.existsSync(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : null;
  if (env.REDUX_CLUSTER_RS_NO_CHROMIUM) return null; // for the test of this script
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

export const HOWTO =
  'Chromium is needed for the browser tests and none was found. Run `sudo apt-get install -y chromium` ' +
  '(Debian/Ubuntu; `npm test` does it itself when run as root or with password-less sudo), ' +
  'or set CHROMIUM_PATH to a Chromium or Chrome binary; then `npm test` again.';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 15 * 60 * 1000 });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join('\n');
}

/** Installs Debian's chromium if it can; returns the binary, or null with the reason printed. */
export function ensureChromium(env = process.env, log = console.log) {
  const found = findChromium(env);
  if (found) return found;
  const hasApt = fs.existsSync('/usr/bin/apt-get') && !env.REDUX_CLUSTER_RS_NO_INSTALL;
  const root = process.getuid?.() === 0;
  const sudo = !root && hasApt && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (hasApt && (root || sudo)) {
    log("setup: installing Debian's chromium for the browser tests (apt-get install -y chromium)...");
    const apt = (...a) => (root ? run('apt-get', a) : run('sudo', ['-n', 'apt-get', ...a]));
    const install = () => apt('install', '-y', '-q', '-o', 'Dpkg::Use-Pty=0', 'chromium');
    // A machine that never ran apt-get update has no package lists yet.
    const err = install() && (apt('update', '-q') ?? install());
    const now = findChromium(env);
    if (now) {
      log(`setup: chromium installed (${now})`);
      return now;
    }
    log(`setup: apt-get could not install chromium: ${err}`);
  }
  log(`setup: ${HOWTO}`);
  return null;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureChromium();
