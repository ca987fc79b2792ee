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
# A network trained natively (the app's default shape; 2000 steps, under a second), for the page
# to load through its "Load weights…" picker: its reverse run then starts at once.
weights=$(mktemp -d)/roll.safetensors
(cd .. && cargo run --release --quiet -- train --width 64 --depth 3 --activation gelu \
  --batch 512 --lr 0.004 --steps 2000 --out "$weights" >/dev/null)
port=8765
./serve.sh "$port" >/dev/null 2>&1 & server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 1
cp test.mjs .node/test.mjs
WEIGHTS="$weights" node .node/test.mjs "http://localhost:$port/" "${1:-30}" "${2:-webgl}"
