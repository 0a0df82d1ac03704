#!/usr/bin/env bash
# The training soak (docs/RELIABILITY.md): `vitrine train` on Fashion-MNIST with the built-in
# model's recipe for MINUTES (default 30), resident memory (VmRSS) sampled every 10 s into
# artifacts/train-soak.csv. Fails when memory at the end is more than 10 % above its value
# once the first epoch (training and validation) is done.
#   scripts/train_soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
source scripts/deps.sh
vitrine_deps dataset-fashion-mnist "the data the soak trains on"
cargo build --release --quiet
out=$(mktemp -d /tmp/vitrine-train-soak.XXXXXX)
mkdir -p artifacts
csv=artifacts/train-soak.csv
target/release/vitrine train --data /usr/share/datasets/fashion-mnist --out "$out/run" --arch vit_tiny_patch16_224 \
  --model-kwargs img_size=28 patch_size=7 in_chans=1 embed_dim=64 depth=4 num_heads=4 mlp_ratio=2 \
  --mean 0.5 --std 0.5 --crop-pct 1 --interpolation bilinear --epochs 1000 -b 128 --lr 2e-3 \
  --crop center --quiet >"$out/train.log" 2>&1 &
pid=$!
echo "seconds,epochs_done,rss_kib" >"$csv"
start=$(date +%s) warm="" rss=0
while kill -0 "$pid" 2>/dev/null && [ $(( $(date +%s) - start )) -lt $(( minutes * 60 )) ]; do
  sleep 10
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  epochs=$(grep -c "^epoch " "$out/train.log" || true)
  echo "$(( $(date +%s) - start )),$epochs,$rss" >>"$csv"
  if [ -z "$warm" ] && [ "$epochs" -ge 1 ]; then warm=$rss; echo "train soak: first epoch done at $(( $(date +%s) - start )) s, RSS $warm KiB"; fi
done
if ! kill -0 "$pid" 2>/dev/null; then
  echo "train soak: vitrine train ended early:" >&2; tail -5 "$out/train.log" >&2; exit 1
fi
kill "$pid"; wait "$pid" 2>/dev/null || true
epochs=$(grep -c "^epoch " "$out/train.log" || true)
rm -rf "$out"
[ -n "$warm" ] || { echo "train soak: not one epoch in $minutes minutes" >&2; exit 1; }
growth=$(awk -v a="$warm" -v b="$rss" 'BEGIN { printf "%.1f", (b / a - 1) * 100 }')
echo "train soak: $minutes min, $epochs epochs; RSS after epoch 1 $warm KiB, at the end $rss KiB ($growth %); samples in $csv"
awk -v g="$growth" 'BEGIN { exit !(g <= 10) }' || { echo "train soak: resident memory grew $growth %" >&2; exit 1; }
