#!/usr/bin/env bash
# The prepared GPU benchmark: vitrine beside PyTorch on the same machine, in one
# run, for a session that is lent a GPU for a few minutes (docs/PERFORMANCE.md).
#
#   scripts/gpu_bench.sh [--quick] [VITRINE_BIN]      (from the repository root)
#
# VITRINE_BIN defaults to target/release/vitrine, built here when cargo is
# present (else carry it: the device machine need not have Rust). Where no
# Vulkan loader is installed and .gl/*.deb are carried (the device README's
# loaders), they are unpacked first, and the NVIDIA ICD is named when the
# loader finds no driver. PyTorch runs when python3 imports
# torch and timm (--device cuda when torch sees a GPU, else cpu); its part is
# skipped with the reason otherwise. --quick: small models at batch 1 only (a
# dry run of the script on any machine, e.g. lavapipe).
#
# On a lent device (see /work/.library/device/README.md), with .gl and
# target/release/vitrine carried:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
#   scripts/gpu_bench.sh
# Output: the adapter, matmul GFLOP/s per variant on ViT-B shapes (batch 64), one
# "vitrine <model> b<B> [f16] <ms> ms" line per figure with its share of the GPU's
# fp32 / fp16 peak where nvidia-smi names a GPU the table below knows, the PyTorch
# lines (fp32 and fp16), and the same in $OUT/gpu_bench.txt when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
bin=${1:-target/release/vitrine}
if [ $# -eq 0 ] && command -v cargo >/dev/null; then
  cargo build --release --quiet || exit 1
fi
# The Vulkan loader and driver on a bare device machine (see the comment above).
if ! ldconfig -p 2>/dev/null | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f $nv_icd ] && [ -z "${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nv_icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
if [ ! -x "$bin" ]; then
  echo "gpu_bench: $bin is not an executable (cargo build --release first)" >&2
  exit 1
fi
log=${OUT:+$OUT/gpu_bench.txt}
say() { echo "$@"; if [ -n "$log" ]; then echo "$@" >>"$log"; fi; }
[ -n "$log" ] && : >"$log"

say "gpu_bench $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
gpu=$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
[ -n "$gpu" ] && say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
# Dense peak TFLOP/s (fp32 CUDA cores, fp16 tensor cores) from NVIDIA's data sheets.
case "$gpu" in
  *H200*|*H100*SXM*|*"H100 80GB HBM3"*) peak32=67 peak16=989 ;;
  *H100*PCIe*|*"H100 PCIe"*) peak32=51 peak16=756 ;;
  *H100*) peak32=67 peak16=989 ;;
  *A100*) peak32=19.5 peak16=312 ;;
  *L40S*) peak32=91.6 peak16=362 ;;
  *) peak32="" peak16="" ;;
esac
[ -n "$peak32" ] && say "peak: $peak32 TFLOP/s fp32, $peak16 TFLOP/s fp16 (tensor cores, dense)"
# "x TFLOP/s, y% of fp32 peak, z% of fp16 peak" for a GFLOP count and milliseconds.
share() {
  awk -v g="$1" -v ms="$2" -v p32="$peak32" -v p16="$peak16" 'BEGIN {
    if (ms == "" || ms + 0 <= 0) exit; t = g / ms;  # GFLOP per ms = TFLOP/s
    s = sprintf("%.2f TFLOP/s", t);
    if (p32 != "") s = s sprintf(", %.1f%% of fp32 peak, %.2f%% of fp16 peak", 100 * t / p32, 100 * t / p16);
    print s }'
}

# (model, batches) for inference; (model, batch) for training.
if [ $quick = 1 ]; then
  infer=("vit_tiny_patch16_224 1" "deit_small_patch16_224 1" "dynamicvit_deit_s 1")
  half=("vit_tiny_patch16_224 1")
  train=("vit_tiny_patch16_224 2")
  torch_models=vit_tiny_patch16_224,deit_small_patch16_224 torch_batches=1
  official=dynamicvit_deit_s official_batches=1 torch_train=vit_tiny_patch16_224:2
else
  infer=("vit_tiny_patch16_224 1 8" "vit_small_patch16_224 1 8 64" "vit_base_patch16_224 1 8 64" "swin_tiny_patch4_window7_224 1 8"
         "deit_small_patch16_224 1 64" "dynamicvit_deit_s 1 64" "hvt_ti_1 1 8" "t2t_vit_7 1 8" "t2t_vit_14 1 8")
  train=("vit_tiny_patch16_224 8" "vit_small_patch16_224 32")
  torch_models=vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224,swin_tiny_patch4_window7_224,deit_small_patch16_224
  torch_batches=1,8,64 official=hvt_ti_1,t2t_vit_7,t2t_vit_14,dynamicvit_deit_s official_batches=1,8,64
  torch_train=vit_tiny_patch16_224:8,vit_small_patch16_224:32
  half=("vit_small_patch16_224 1 64" "vit_base_patch16_224 1 64")
fi

# Matmul kernels on ViT-B's shapes at batch 64 (M = 197 x 64), every variant the adapter has.
mm_batch=64
[ $quick = 1 ] && mm_batch=1
"$bin" bench --matmul --batch $mm_batch --iters 10 2>&1 | sed -n '/^variant/,$p' | while read -r line; do
  set -- $line
  if [ "$1" != variant ] && [ -n "${5:-}" ]; then line="$line  ($(share "$(awk -v m="$2" -v n="$3" -v k="$4" 'BEGIN { print 2 * m * n * k / 1e9 }')" "$5"))"; fi
  say "vitrine matmul $line"
done

# Forward latency of every (model, batch) of an entry list; PRECISION f32 or f16
# (f16: matmul weights in half the memory and, with SHADER_F16, the MLP hidden activations; f32 arithmetic).
first=1
forward() {
  local precision=$1 entry model b out ms gf extra tag=""
  shift
  [ "$precision" = f16 ] && tag=" f16"
  for entry in "$@"; do
    set -- $entry
    model=$1
    shift
    for b in "$@"; do
      out=$("$bin" bench --arch "$model" --batch "$b" --iters 10 --precision "$precision" 2>&1)
      if [ $first = 1 ]; then
        say "$(echo "$out" | sed -n 's/^adapter: /adapter: /p')"
        first=0
      fi
      ms=$(echo "$out" | sed -n 's/^latency per batch: median \([0-9.]*\) ms.*/\1/p')
      gf=$(echo "$out" | sed -n 's/^work: \([0-9.]*\) GFLOP per image.*/\1/p')
      extra=$([ -n "$ms" ] && [ -n "$gf" ] && echo " ($(share "$(awk -v g="$gf" -v b="$b" 'BEGIN { print g * b }')" "$ms"))")
      say "vitrine $model b$b$tag ${ms:-failed: $(echo "$out" | tail -1)} ms$extra"
    done
  done
}
forward f32 "${infer[@]}"
forward f16 "${half[@]}"
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
  half_args="--half --mm-batch $mm_batch --models vit_small_patch16_224,vit_base_patch16_224 --batches 1,64"
  [ $quick = 1 ] && half_args="--half --models vit_tiny_patch16_224 --batches 1"
  [ "$dev" = cpu ] && half_args=""  # fp16 is for the GPU
  for args in "--mm-batch $mm_batch --models $torch_models --batches $torch_batches" "--official $official --batches $official_batches" \
              "$dvt_args" "--train $torch_train" "$half_args"; do
    [ -z "$args" ] && continue
    # shellcheck disable=SC2086
    python3 scripts/bench_torch.py --device "$dev" --iters 10 $args 2>&1 | grep -E '^(torch|forward|train|matmul)' | while read -r line; do say "torch $line"; done
  done
else
  say "torch: skipped ($(python3 -c 'import torch, timm' 2>&1 | tail -1))"
fi
