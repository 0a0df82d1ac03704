#!/usr/bin/env bash
# Builds (release) and runs the vitrine CLI, installing missing system
# dependencies first. Example: scripts/vitrine.sh classify models/samples/ankle-boot-0.png
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --quiet --bin vitrine
exec ./target/release/vitrine "$@"
