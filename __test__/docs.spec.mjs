// The repository names only files it has: every repository-relative path in a comment
// (src/**/*.rs, src/js/**, Cargo.toml files, benches/, examples/, __test__/) and in the
// Markdown at the root points at something that exists, and ARCHITECTURE.md, the map of
// src/, names every directory there. Reads files only: no native build needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Built, not committed (see .gitignore): named in comments before a build made them.
const GENERATED = new Set(['src/js/browser/redux-cluster-rs.browser.js']);
// Other projects' files, cited as what our code follows.
const FOREIGN = new Set([
  'src/distribution/node-id.ts', // noex's (src/js/cluster.js)
]);
// Outside the repository, so missing from every user's clone: known, and to be removed
// (issue 24: `npm run bench` needs the shared harness beside the clone).
const OUTSIDE = new Set(['benches/e2e.mjs -> ../shared/bench/harness.mjs']);
const SELF = '__test__/docs.spec.mjs'; // its own examples of dangling paths
const SKIP_DIRS = new Set(['node_modules', 'target', '.git', 'artifacts', '.bench']);

function walk(dir, out = []) {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP_DIRS.has(e.name)) continue;
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) walk(rel, out);
    else out.push(rel);
  }
  return out;
}

// The comments of a file, line by line (with their line numbers); Markdown is all text.
function commentLines(file, text) {
  const lines = text.split('\n');
  if (file.endsWith('.md')) return lines.map((l, i) => [i + 1, l]);
  if (file.endsWith('.toml')) {
    return lines.flatMap((l, i) => (l.includes('#') ? [[i + 1, l.slice(l.indexOf('#'))]] : []));
  }
  const out = [];
  for (const m of text.matchAll(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g)) {
    const first = text.slice(0, m.index).split('\n').length;
    m[0].split('\n').forEach((l, k) => out.push([first + k, l]));
  }
  return out;
}

// Repository-relative paths: under a top-level folder, or a Markdown file at the root;
// and paths relative to the citing file (`../x`). Not preceded by a word, `/`, `.` or
// `@`, so a URL or another package's path (`node_modules/x/src/...`) is not taken for ours.
const PATH =
  /(?<![\w./@:-])((?:src|__test__|benches|examples|npm|\.ci|\.github)\/[\w./-]*|[\w-]+\.md(?![\w])|(?:\.\.\/)+[\w./-]+)/g;

function citedPaths(file, text) {
  const found = [];
  for (const [line, comment] of commentLines(file, text)) {
    for (const m of comment.matchAll(PATH)) {
      const cited = m[1].replace(/[./]+$/, '');
      if (cited) found.push({ file, line, cited });
    }
  }
  return found;
}

function exists(file, cited) {
  if (GENERATED.has(cited) || FOREIGN.has(cited) || OUTSIDE.has(`${file} -> ${cited}`)) return true;
  if (cited.startsWith('../')) {
    const target = path.resolve(ROOT, path.dirname(file), cited);
    return !path.relative(ROOT, target).startsWith('..') && fs.existsSync(target);
  }
  if (fs.existsSync(path.join(ROOT, cited))) return true;
  // A bare `README.md` in a platform package's README means its own.
  return !cited.includes('/') && fs.existsSync(path.join(ROOT, path.dirname(file), cited));
}

const sources = () => [
  ...walk('src').filter((f) => /\.(rs|js|mjs|cjs|ts)$/.test(f) && !GENERATED.has(f)),
  ...walk('benches').filter((f) => /\.(rs|mjs|js)$/.test(f)),
  ...walk('examples').filter((f) => /\.(rs|mjs|js|toml)$/.test(f)),
  ...walk('__test__').filter((f) => /\.(mjs|cjs|js|ts)$/.test(f) && f !== SELF),
  ...walk('src').filter((f) => f.endsWith('Cargo.toml')),
  'Cargo.toml',
  'build.rs',
  ...fs.readdirSync(ROOT).filter((f) => f.endsWith('.md')),
];

test('every file path cited in comments and docs exists', () => {
  const files = sources();
  assert.ok(files.includes('src/lib.rs') && files.includes('Cargo.toml'), 'the scan sees the sources');
  const dangling = [];
  let checked = 0;
  for (const file of files) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const c of citedPaths(file, text)) {
      checked++;
      if (!exists(file, c.cited)) dangling.push(`${c.file}:${c.line}: ${c.cited}`);
    }
  }
  assert.ok(checked > 20, `only ${checked} paths found: the scan is broken`);
  const list = dangling.join('\n  ');
  assert.deepEqual(dangling, [], `paths that name nothing in the repository:\n  ${list}`);
});

test('the scan finds a dangling path', () => {
  const text = '//! used by `src/js/nope.js` (see NOPE.md, ../../up.js)\nlet s = "src/in/code.rs";';
  const cited = citedPaths('src/x.rs', text).map((c) => c.cited);
  assert.deepEqual(cited, ['src/js/nope.js', 'NOPE.md', '../../up.js']);
  assert.ok(cited.every((c) => !exists('src/x.rs', c)));
  assert.ok(exists('src/js/index.js', '../lib.rs') && exists('src/lib.rs', 'README.md'));
  const foreign = '// https://github.com/o/r/src/a.rs node_modules/p/src/b.js';
  assert.deepEqual(citedPaths('a.js', foreign), []);
});

test('no comment promises what already exists', () => {
  const stale = [];
  for (const file of sources().filter((f) => !f.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const [line, comment] of commentLines(file, text)) {
      if (/\bcomes next\b/i.test(comment)) stale.push(`${file}:${line}: ${comment.trim()}`);
    }
  }
  assert.deepEqual(stale, []);
});

test('ARCHITECTURE.md exists and names every directory under src/', () => {
  const doc = path.join(ROOT, 'ARCHITECTURE.md');
  assert.ok(fs.existsSync(doc), 'ARCHITECTURE.md is missing at the repository root');
  const text = fs.readFileSync(doc, 'utf8');
  const dirs = [...new Set(walk('src').map((f) => path.posix.dirname(f)))].filter(
    (d) => d !== 'src'
  );
  const unnamed = dirs.filter((d) => !text.includes(`${d}/`));
  assert.deepEqual(unnamed, [], `directories ARCHITECTURE.md does not name: ${unnamed.join(', ')}`);
  assert.match(
    fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'),
    /\]\(ARCHITECTURE\.md(#[\w-]+)?\)/,
    'the README links ARCHITECTURE.md'
  );
});
