// Where the browser tests find Chromium, and how `npm test` gets one on a machine that has
// none: `node __test__/chromium.mjs` (run by `pretest`) installs Debian's `chromium` with
// apt-get when it can (as root, or through sudo without a password), saying so. Where it
// cannot, it says what to run and `npm test` goes on: only the two browser tests fail,
// with the same instructions. (The apt-get part is apt.mjs's, shared with prometheus.mjs.)
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt.mjs';

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

/** Installs Debian's chromium if it can; returns the binary, or null with the reason printed. */
export function ensureChromium(env = process.env, log = console.log) {
  const found = findChromium(env);
  if (found) return found;
  const now = aptInstall('chromium', { find: () => findChromium(env), what: 'the browser tests', env, log });
  if (now) {
    log(`setup: chromium installed (${now})`);
    return now;
  }
  log(`setup: ${HOWTO}`);
  return null;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureChromium();
