#!/usr/bin/env bash
# Builds the browser version into web/dist/: index.html, the JS glue and the .wasm. Offline
# after the first run: everything comes from rustup and crates.io, nothing from a CDN.
#   web/build.sh            then   web/serve.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null
# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  # --locked first; a registry mirror may lack a locked dependency, then the newest that fits.
  cargo install wasm-bindgen-cli --version "$version" --locked \
    || cargo install wasm-bindgen-cli --version "$version"
fi

cargo build --release --target wasm32-unknown-unknown --bin diffusion-playground
rm -rf web/dist
mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist --out-name diffusion_playground \
  target/wasm32-unknown-unknown/release/diffusion-playground.wasm
# Smaller, if binaryen's wasm-opt is there (it is optional).
if command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals -o web/dist/diffusion_playground_bg.wasm \
    web/dist/diffusion_playground_bg.wasm || echo "wasm-opt failed; keeping the unoptimised .wasm"
fi
cp web/index.html web/dist/
size=$(stat -c %s web/dist/diffusion_playground_bg.wasm)
gz=$(gzip -9 -c web/dist/diffusion_playground_bg.wasm | wc -c)
echo "web/dist: .wasm $((size / 1024)) KiB ($((gz / 1024)) KiB gzipped)"
