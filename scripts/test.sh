#!/usr/bin/env bash
# The test suite: installs missing system dependencies, then runs every test
# (kernels vs CPU reference, timm parity, shader translation, CLI, training)
# on the available Vulkan adapter (lavapipe where there is no GPU), then the
# browser end-to-end test (wasm build, headless Chromium on WebGPU), then 60 s of
# fuzzing per input reader (scripts/fuzz.sh; VITRINE_FUZZ_SECONDS changes it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
vitrine_deps dataset-fashion-mnist "the real data the training tests read" chromium "the browser test"
export RUST_BACKTRACE=1
cargo test --release "$@"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "vitrine: the browser test needs node and npm (apt-get install nodejs npm)" >&2
  exit 1
fi
web/test/run.sh
# A short fuzz run of every input reader (libFuzzer; the long run is in docs/RELIABILITY.md).
scripts/fuzz.sh "${VITRINE_FUZZ_SECONDS:-60}"
