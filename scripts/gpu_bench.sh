#!/usr/bin/env bash
# The prepared GPU benchmark: vitrine beside PyTorch on the same machine, in one
# run, for a session that is lent a GPU for a few minutes (docs/PERFORMANCE.md).
#
#   scripts/gpu_bench.sh [--quick] [VITRINE_BIN]      (from the repository root)
#
# VITRINE_BIN defaults to target/release/vitrine (build it here and carry it:
# the device machine need not have Rust). PyTorch runs when python3 imports
# torch and timm (--device cuda when torch sees a GPU, else cpu); its part is
# skipped with the reason otherwise. --quick: small models at batch 1 only (a
# dry run of the script on any machine, e.g. lavapipe).
#
# On a lent device (see /work/.library/device/README.md), with .gl and
# target/release/vitrine carried:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
#   scripts/gpu_bench.sh
# Output: the adapter, one "vitrine <model> b<B> <ms> ms" line per figure, the
# PyTorch lines, and the same in $OUT/gpu_bench.txt when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
bin=${1:-target/release/vitrine}
if [ ! -x "$bin" ]; then
  echo "gpu_bench: $bin is not an executable (cargo build --release first)" >&2
  exit 1
fi
log=${OUT:+$OUT/gpu_bench.txt}
say() { echo "$@"; if [ -n "$log" ]; then echo "$@" >>"$log"; fi; }
[ -n "$log" ] && : >"$log"

say "gpu_bench $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
command -v nvidia-smi >/dev/null && say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"

# (model, batches) for inference; (model, batch) for training.
if [ $quick = 1 ]; then
  infer=("vit_tiny_patch16_224 1" "deit_small_patch16_224 1" "dynamicvit_deit_s 1")
  train=("vit_tiny_patch16_224 2")
  torch_models=vit_tiny_patch16_224,deit_small_patch16_224 torch_batches=1
  official=dynamicvit_deit_s official_batches=1 torch_train=vit_tiny_patch16_224:2
else
  infer=("vit_tiny_patch16_224 1 8" "vit_small_patch16_224 1 8" "vit_base_patch16_224 1 8" "swin_tiny_patch4_window7_224 1 8"
         "deit_small_patch16_224 1 64" "dynamicvit_deit_s 1 64" "hvt_ti_1 1 8" "t2t_vit_7 1 8" "t2t_vit_14 1 8")
  train=("vit_tiny_patch16_224 8" "vit_small_patch16_224 32")
  torch_models=vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224,swin_tiny_patch4_window7_224,deit_small_patch16_224
  torch_batches=1,8,64 official=hvt_ti_1,t2t_vit_7,t2t_vit_14,dynamicvit_deit_s official_batches=1,8,64
  torch_train=vit_tiny_patch16_224:8,vit_small_patch16_224:32
fi

first=1
for entry in "${infer[@]}"; do
  set -- $entry
  model=$1
  shift
  for b in "$@"; do
    out=$("$bin" bench --arch "$model" --batch "$b" --iters 10 2>&1)
    if [ $first = 1 ]; then
      say "$(echo "$out" | sed -n 's/^adapter: /adapter: /p')"
      first=0
    fi
    ms=$(echo "$out" | sed -n 's/^latency per batch: median \([0-9.]*\) ms.*/\1/p')
    say "vitrine $model b$b ${ms:-failed: $(echo "$out" | tail -1)} ms"
  done
done
if [ $quick = 0 ]; then
  # DVT-T2T-12: the cascade at two calibrated budgets, every exit, and plain T2T-ViT-12 beside it.
  "$bin" bench --arch dvt_t2t_vit_12 --batch 8 --iters 5 --compare t2t_vit_12 2>&1 |
    sed -n '/^exits:/,$p' | while read -r line; do say "vitrine dvt_t2t_vit_12 b8 | $line"; done
fi
for entry in "${train[@]}"; do
  set -- $entry
  out=$("$bin" bench --train --arch "$1" --batch "$2" --iters 5 2>&1)
  ms=$(echo "$out" | sed -n 's/^training step .*: median \([0-9.]*\) ms.*/\1/p')
  say "vitrine train $1 b$2 ${ms:-failed: $(echo "$out" | tail -1)} ms"
done

if python3 -c 'import torch, timm' 2>/dev/null; then
  dev=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
  dvt_args="--official dvt_t2t_vit_12 --batches 8"  # its own process: DVT's vendored models/ package shadows T2T-ViT's
  [ $quick = 1 ] && dvt_args="--official dvt_t2t_vit_12 --batches 1"
  for args in "--models $torch_models --batches $torch_batches" "--official $official --batches $official_batches" \
              "$dvt_args" "--train $torch_train"; do
    # shellcheck disable=SC2086
    python3 scripts/bench_torch.py --device "$dev" --iters 10 $args 2>&1 | grep -E '^(torch|forward|train)' | while read -r line; do say "torch $line"; done
  done
else
  say "torch: skipped ($(python3 -c 'import torch, timm' 2>&1 | tail -1))"
fi
