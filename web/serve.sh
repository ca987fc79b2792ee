#!/usr/bin/env bash
# Serves web/dist on http://localhost:PORT (default 8080). WebGPU needs https or localhost.
set -euo pipefail
cd "$(dirname "$0")/dist"
port=${1:-8080}
echo "http://localhost:$port/"
exec python3 -m http.server "$port" --bind 127.0.0.1
