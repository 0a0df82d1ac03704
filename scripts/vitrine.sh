#!/usr/bin/env bash
# Builds (release) and runs the vitrine CLI, installing missing system
# dependencies first. Paths in the arguments are relative to the caller's
# directory. Example: scripts/vitrine.sh classify models/samples/ankle-boot-0.png
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/deps.sh"
vitrine_deps
[ -x "$root/target/release/vitrine" ] || echo "vitrine: building the CLI (release; the first build takes a few minutes)" >&2
cargo build --release --quiet --bin vitrine --manifest-path "$root/Cargo.toml"
exec "$root/target/release/vitrine" "$@"
