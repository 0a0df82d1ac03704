#!/usr/bin/env bash
# Builds the browser demo into web/: the crate for wasm32 (feature `web`),
# wasm-bindgen at the version Cargo.lock pins (installed if missing),
# wasm-opt when present, and the sample images. Serve web/ with any static
# file server, e.g. `python3 -m http.server -d web 8000`.
set -euo pipefail
cd "$(dirname "$0")/.."
ver=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $ver\$"; then
    echo "installing wasm-bindgen-cli $ver (Cargo.lock's version; about 2 minutes)"
    # --locked pins its own dependencies; fall back when a registry lacks one of them.
    # --force: the version on PATH is missing or wrong, whatever cargo's install records say.
    cargo install --force wasm-bindgen-cli --version "$ver" --locked || cargo install --force wasm-bindgen-cli --version "$ver"
fi
cargo build --lib --release --target wasm32-unknown-unknown --no-default-features --features web
rm -rf web/pkg
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/release/vitrine.wasm
if command -v wasm-opt >/dev/null; then
    wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int web/pkg/vitrine_bg.wasm -o web/pkg/vitrine_bg.wasm
fi
rm -rf web/samples && mkdir -p web/samples && cp models/samples/*.png web/samples/
(cd web/samples && ls -1 *.png > ../samples.txt) && mv web/samples.txt web/samples/index.txt
echo "built web/pkg/vitrine_bg.wasm: $(du -k web/pkg/vitrine_bg.wasm | cut -f1) KiB"
