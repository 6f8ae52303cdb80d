// Where the monitoring tests find Prometheus (the server, for the end-to-end test of the
// alerts) and promtool (to check and unit-test the rules), and how a machine that has none
// gets them: `node __test__/prometheus.mjs` installs Debian's `prometheus` package (both
// binaries) with apt-get when it can (as root, or through sudo without a password; the
// apt-get part is apt.mjs's, shared with chromium.mjs). Where it cannot, it says what to
// run and exits 0, so `npm test` goes on: only the monitoring tests skip, saying the same.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt.mjs';

/** Debian's package installs both here; a release tarball's binaries may be on PATH. */
function onPath(name, env) {
  const dirs = [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/bin'];
  for (const dir of dirs) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * `{ prometheus, promtool }`, the two binaries, or null when either is missing.
 * PROMETHEUS_PATH and PROMTOOL_PATH name others (e.g. an unpacked release from
 * https://prometheus.io/download/); with PROMETHEUS_PATH alone, promtool is looked for
 * beside it, where a release keeps it.
 */
export function findPrometheus(env = process.env) {
  if (env.REDUX_CLUSTER_RS_NO_PROMETHEUS) return null; // for the test of this script
  const exists = (p) => (p && fs.existsSync(p) ? p : null);
  const prometheus = env.PROMETHEUS_PATH ? exists(env.PROMETHEUS_PATH) : onPath('prometheus', env);
  const promtool = env.PROMTOOL_PATH
    ? exists(env.PROMTOOL_PATH)
    : (env.PROMETHEUS_PATH && exists(path.join(path.dirname(env.PROMETHEUS_PATH), 'promtool'))) || onPath('promtool', env);
  return prometheus && promtool ? { prometheus, promtool } : null;
}

export const HOWTO =
  'Prometheus (prometheus and promtool) is needed for the monitoring tests and none was found. ' +
  'Run `sudo apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu; `npm test` does it ' +
  'itself when run as root or with password-less sudo), or set PROMETHEUS_PATH and PROMTOOL_PATH to the ' +
  'binaries of a release from https://prometheus.io/download/; then `npm test` again.';

/** Installs Debian's prometheus if it can; returns `{ prometheus, promtool }`, or null
 *  with the reason printed. */
export function ensurePrometheus(env = process.env, log = console.log) {
  const found = findPrometheus(env);
  if (found) return found;
  // --no-install-recommends: the package recommends prometheus-node-exporter, a daemon
  // the tests have no use for.
  const now = aptInstall('prometheus', {
    find: () => findPrometheus(env),
    what: 'the monitoring tests',
    options: ['--no-install-recommends'],
    env,
    log,
  });
  if (now) {
    log(`setup: prometheus installed (${now.prometheus}, ${now.promtool})`);
    // Debian's package also enables its own service (port 9090) where systemd runs; the
    // tests start their own Prometheus on a free port and do not use it.
    log('setup: (on a systemd machine Debian also started a `prometheus` service on port 9090, which the tests do not use; `sudo systemctl disable --now prometheus` stops it)');
    return now;
  }
  log(`setup: ${HOWTO}`);
  return null;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensurePrometheus();
