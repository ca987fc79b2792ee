#!/usr/bin/env bash
# Checks web/dist in headless Chromium (Debian's `chromium`, driven by npm's playwright-core):
#   web/test.sh [SECONDS] [webgl|webgpu]
# Needs web/build.sh first. Installs playwright-core into web/.node (not committed).
set -euo pipefail
cd "$(dirname "$0")"
[ -d dist ] || { echo "web/dist is missing: run web/build.sh" >&2; exit 2; }
if [ ! -d .node/node_modules/playwright-core ]; then
  mkdir -p .node && (cd .node && echo '{"name": "web-test", "private": true}' > package.json && npm install -q playwright-core@1 >/dev/null)
fi
port=8765
./serve.sh "$port" >/dev/null 2>&1 & server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 1
cp test.mjs .node/test.mjs
node .node/test.mjs "http://localhost:$port/" "${1:-30}" "${2:-webgl}"
