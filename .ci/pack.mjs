// Packing the npm tarballs as `napi prepublish` publishes them, shared by the pack test
// (one platform) and `npm run build:all` (every platform):
//  - a platform package: npm/<platform>/ with its binary beside its package.json;
//  - the main package: JS and typings only, pointing at the platform packages through
//    optionalDependencies, so npm installs the one that fits the machine.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The oldest glibc the gnu builds run on: zig links them against it, the check holds them to it. */
export const GLIBC_FLOOR = '2.17';

/** Whether `cmd` runs here. */
export const has = (cmd, a = ['--version']) => spawnSync(cmd, a, { stdio: 'ignore' }).status === 0;

const npmPack = (dir, dest) =>
  path.join(dest, execFileSync('npm', ['pack', '--silent', '--pack-destination', dest], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180000 }).trim().split('\n').pop());

/** Packs npm/<platform> with `binary` inside into `dest`; returns { name, tarball }. */
export function packPlatform(platform, binary, dest) {
  const stage = path.join(dest, `stage-${platform}`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.cpSync(path.join(ROOT, 'npm', platform), stage, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
  if (path.basename(binary) !== manifest.main) throw new Error(`${binary} is not ${platform}'s binary (${manifest.main})`);
  fs.copyFileSync(binary, path.join(stage, manifest.main));
  const tarball = npmPack(stage, dest);
  fs.rmSync(stage, { recursive: true, force: true });
  return { name: manifest.name, tarball };
}

/** Packs the main package into `dest` with optionalDependencies on `platformNames`. */
export function packMain(platformNames, dest) {
  const stage = path.join(dest, 'stage-main');
  fs.rmSync(stage, { recursive: true, force: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  fs.mkdirSync(stage, { recursive: true });
  for (const f of [...manifest.files, 'README.md']) fs.cpSync(path.join(ROOT, f), path.join(stage, f), { recursive: true });
  manifest.optionalDependencies = Object.fromEntries(platformNames.map((n) => [n, manifest.version]));
  delete manifest.devDependencies;
  delete manifest.scripts;
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
  const tarball = npmPack(stage, dest);
  fs.rmSync(stage, { recursive: true, force: true });
  return tarball;
}

/** napi-rs's platform name of a target triple: x86_64-unknown-linux-musl → linux-x64-musl. */
export function platformOf(target) {
  const [arch, , os_, abi] = target.split('-');
  const a = { x86_64: 'x64', aarch64: 'arm64' }[arch];
  if (!a || os_ !== 'linux' || !['gnu', 'musl'].includes(abi)) throw new Error(`unsupported target ${target}`);
  return `linux-${a}-${abi}`;
}
