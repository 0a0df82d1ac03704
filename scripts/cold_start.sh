#!/usr/bin/env bash
# Cold and warm start of a vitrine binary: every measurement starts with an
# empty Mesa shader cache and an empty vitrine pipeline cache (fresh temporary
# folders), then runs again warm on the same caches.
#   scripts/cold_start.sh [BINARY]      (default: target/release/vitrine)
# Prints one line per case: cold and warm wall time of the whole process, and
# for the presets the first run (compile + upload + run) that `bench` reports.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/vitrine}
[ -x "$bin" ] || { echo "cold_start: $bin is not built (cargo build --release)" >&2; exit 1; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/vitrine-runtime-$(id -u)}
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
echo "binary: $bin; CPU: $(lscpu | sed -n 's/^Model name: *//p'); backend: ${WGPU_BACKEND:-default}"

# One case: label, then the command. Prints cold / warm wall seconds.
measure() {
  local label=$1; shift
  local caches; caches=$(mktemp -d)
  local line=""
  for run in cold warm; do
    local t0 t1 out
    t0=$(date +%s%N)
    out=$(MESA_SHADER_CACHE_DIR="$caches/mesa" VITRINE_CACHE_DIR="$caches/vitrine" "$@" 2>&1) || { echo "$label: failed: $out" >&2; rm -rf "$caches"; return 1; }
    t1=$(date +%s%N)
    local first; first=$(printf '%s\n' "$out" | sed -n 's/^first run (compile + upload + run): //p')
    local pipes; pipes=$(printf '%s\n' "$out" | sed -n 's/^pipelines: //p')
    local ms=$(( (t1 - t0) / 1000000 ))
    line+=$(printf '  %s %d.%02d s' "$run" $((ms / 1000)) $((ms % 1000 / 10)))
    [ -n "$first" ] && line+=" (first run $first)"
    [ "$run" = cold ] && [ -n "$pipes" ] && line+=" [pipelines: $pipes]"
  done
  echo "$label:$line"
  rm -rf "$caches"
}

measure "built-in classify" "$bin" classify models/samples/ankle-boot-0.png
measure "vit_small_patch16_224 bench --iters 1" "$bin" bench --arch vit_small_patch16_224 --iters 1
measure "swin_tiny_patch4_window7_224 bench --iters 1" "$bin" bench --arch swin_tiny_patch4_window7_224 --iters 1
