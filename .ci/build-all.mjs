// `npm run build:all`: builds the addon for every target in package.json's napi.targets
// from this (x86_64 Linux) machine and packs every npm tarball as `napi prepublish`
// would publish them, into artifacts/packages/.
//
// Cross-linking is napi-rs's `--cross-compile` (cargo-zigbuild with zig), for every
// target: glibc targets are pinned to glibc 2.17 (the `.2.17` suffix is zig's libc
// version), so the binaries load on any distribution since RHEL/CentOS 7; musl targets
// link musl's libc dynamically (Node addons cannot use a static C runtime).
// Needs: `rustup target add <each target>`, cargo-zigbuild and zig (`pip install
// cargo-zigbuild ziglang` gives both; zig from `python3 -m ziglang` is found too).
//
//   npm run build:all [-- --targets x86_64-unknown-linux-musl,...] [--pack-only]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GLIBC_FLOOR, ROOT, has, packMain, packPlatform, platformOf } from './pack.mjs';

const args = process.argv.slice(2);
const arg = (name) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
// The Linux targets; macOS and Windows build on their own runners (the release workflow).
const targets = arg('targets') ? arg('targets').split(',') : manifest.napi.targets.filter((t) => t.includes('-linux-'));


// zig on the PATH, or the one pip's ziglang package carries behind a small wrapper.
function zigPath() {
  if (has('zig', ['version'])) return process.env.PATH;
  if (!has('python3', ['-m', 'ziglang', 'version'])) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcrs-zig-'));
  fs.writeFileSync(path.join(dir, 'zig'), '#!/bin/sh\nexec python3 -m ziglang "$@"\n', { mode: 0o755 });
  return `${dir}${path.delimiter}${process.env.PATH}`;
}

const out = path.join(ROOT, 'artifacts');
const bin = path.join(out, 'bin');
const packages = path.join(out, 'packages');
fs.mkdirSync(bin, { recursive: true });

if (!args.includes('--pack-only')) {
  const PATH = zigPath();
  const missing = [];
  if (!PATH) missing.push('zig (pip install ziglang)');
  if (!has('cargo-zigbuild')) missing.push('cargo-zigbuild (pip install cargo-zigbuild)');
  const installed = has('rustup') ? execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }) : '';
  for (const t of targets) if (!installed.includes(t)) missing.push(`the Rust target ${t} (rustup target add ${t})`);
  if (missing.length) {
    console.error(`build:all needs ${missing.join(', ')}`);
    process.exit(2);
  }
  for (const [i, target] of targets.entries()) {
    const musl = target.endsWith('musl');
    const request = musl ? target : `${target}.${GLIBC_FLOOR}`;
    console.log(`== [${i + 1}/${targets.length}] ${target}${musl ? '' : ` (glibc ${GLIBC_FLOOR})`} → artifacts/bin/redux-cluster-rs.${platformOf(target)}.node`);
    const started = Date.now();
    const env = { ...process.env, PATH };
    if (musl) env[`CARGO_TARGET_${target.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`] = '-C target-feature=-crt-static';
    const r = spawnSync('npx', ['napi', 'build', '--platform', '--release', '--features', 'napi', '--no-js', '--strip', '--target', request, '--cross-compile', '--output-dir', bin], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    if (r.status !== 0) {
      console.error(`build:all: ${target} failed`);
      process.exit(1);
    }
    console.log(`   built in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  // napi build writes typings beside the binaries; the committed ones are binding.d.ts.
  fs.rmSync(path.join(bin, 'index.d.ts'), { force: true });
}

fs.rmSync(packages, { recursive: true, force: true });
fs.mkdirSync(packages, { recursive: true });
const names = [];
for (const target of targets) {
  const platform = platformOf(target);
  const binary = path.join(bin, `redux-cluster-rs.${platform}.node`);
  if (!fs.existsSync(binary)) {
    console.error(`build:all: ${binary} is missing (build it first)`);
    process.exit(1);
  }
  const { name, tarball } = packPlatform(platform, binary, packages);
  names.push(name);
  console.log(`packed ${path.relative(ROOT, tarball)} (${(fs.statSync(tarball).size / 1048576).toFixed(1)} MiB)`);
}
const main = packMain(names, packages);
console.log(`packed ${path.relative(ROOT, main)} (optionalDependencies: ${names.join(', ')})`);
