#!/usr/bin/env bash
# The test suite: installs missing system dependencies, then runs every test
# (kernels vs CPU reference, timm parity, shader translation, CLI) on the
# available Vulkan adapter (lavapipe where there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
# dataset-fashion-mnist: the real data tests/data.rs reads.
source scripts/deps.sh dataset-fashion-mnist
export RUST_BACKTRACE=1
cargo test --release "$@"
