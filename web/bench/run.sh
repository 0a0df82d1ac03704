#!/usr/bin/env bash
# vitrine in headless Chromium beside ONNX Runtime Web (wasm and WebGPU backends), the same
# timm weights, batch 1 (web/bench/bench.mjs says what is timed). Run by hand, not in CI
# (ORT's WebGPU backend takes about 10 s a run on SwiftShader).
#
#   PYTHONPATH=/tmp/pyref python3 scripts/export_onnx.py --arch vit_tiny_patch16_224 --out /tmp/bench-vit-ti
#   web/bench/run.sh /tmp/bench-vit-ti [RUNS]
#
# export_onnx.py needs torch, timm and onnx (pip install --target /tmp/pyref torch timm onnx).
# Writes artifacts/web-bench.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
web/build.sh
(cd web/bench && npm install --no-audit --no-fund --loglevel=error)
mkdir -p artifacts
lscpu | sed -n 's/^Model name: *//p' | sed 's/^/CPU: /'
chromium --version 2>/dev/null || true
node web/bench/bench.mjs "$1" "${2:-10}" artifacts/web-bench.json
