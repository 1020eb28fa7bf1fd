#!/usr/bin/env bash
# Builds the web console (web/) into OUT_DIR: type-checks with tsc, bundles with Vite.
# Installs web/'s npm packages first when they are missing or older than package-lock.json.
# Usage: scripts/build-console.sh OUT_DIR   (CMake's console target runs it)
set -euo pipefail
out=${1:?usage: build-console.sh OUT_DIR}
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/../web" && pwd)"
if ! command -v npm >/dev/null; then
  echo "build-console: npm is missing; scripts/install-deps.sh installs Node.js and npm" >&2
  exit 1
fi
if [[ ! $web/node_modules/.package-lock.json -nt $web/package-lock.json ]]; then
  echo "build-console: npm install in web/ (see scripts/install-deps.sh)"
  npm install --prefix "$web" --no-audit --no-fund --loglevel=error >/dev/null
fi
cd "$web"
node_modules/.bin/tsc --noEmit -p tsconfig.json
DLAB_CONSOLE_OUT="$out" node_modules/.bin/vite build --logLevel warn
