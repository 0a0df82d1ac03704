#!/usr/bin/env bash
# The browser end-to-end test: builds the site (web/build.sh), installs
# playwright-core, computes the native engine's logits for the same models
# and images, and drives headless Chromium through the demo page.
# Needs target/release/vitrine (cargo build --release) and /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/../.."
web/build.sh
(cd web && npm install --no-audit --no-fund --loglevel=error)
out=artifacts
mkdir -p "$out"
native() { target/release/vitrine classify --json "$@"; }
sample=models/samples/ankle-boot-0.png
# "Load your own model": a ViT, a Swin (shifted, padded windows, patch merging), an HVT (1-D token pooling),
# T2T-ViTs (soft splits; Performer and token-transformer token layers), a DynamicViT (per-image token pruning),
# a DVT (early exit per image; last, so that the mixed-batch check below runs on it).
customs="tests/fixtures/vit_plain tests/fixtures/swin_3stage_pad tests/fixtures/hvt_2pool tests/fixtures/t2t_performer tests/fixtures/t2t_transformer tests/fixtures/dynvit_small tests/fixtures/dvt_t2t_tiny"
photo=tests/fixtures/images/photo.png
# Browser training parity: `vitrine train` fine-tunes the built-in model on two classes of the
# sample images, without augmentation, stopped after 3 steps; the page's trainer must match it.
teach="$out/teach-data"
rm -rf "$teach"
mkdir -p "$teach/train/a" "$teach/train/b" "$teach/val/a" "$teach/val/b"
cp models/samples/{ankle-boot-0,bag-18,coat-6,dress-13}.png "$teach/train/a/"
cp models/samples/{pullover-1,sandal-8,shirt-4,sneaker-9}.png "$teach/train/b/"
cp models/samples/t-shirt-19.png "$teach/val/a/"
cp models/samples/trouser-2.png "$teach/val/b/"
for opt in sgd adamw; do
  rm -rf "$out/teach-native-$opt"
  target/release/vitrine train --data "$teach" --model models/default --out "$out/teach-native-$opt" --epochs 3 --warmup-epochs 0 \
    -b 4 --opt $opt --no-aug --seed 1 --stop-after 3 --quiet >/dev/null
done
{
  echo '{"teach_native": "'$out/teach-native'", "teach_train": "'$teach/train'",'
  native_attention="$out/native-attention.png"
  target/release/vitrine explain --model models/default "$sample" --out "$native_attention" >/dev/null
  echo '"default": {"image": "'$sample'", "attention_png": "'$native_attention'", "logits": '
  native "$sample" | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.readline())["logits"]))'
  echo '}, "customs": ['
  sep=""
  for custom in $customs; do
    echo "$sep"'{"config": "'$custom/config.json'", "weights": "'$custom/model.safetensors'", "images": ['
    native --model "$custom" "$sample" "$photo" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print(",".join(json.dumps({k: r[k] for k in ("image", "logits", "kept_tokens", "exit") if k in r}) for r in rows))'
    echo ']}'
    sep=","
  done
  # DVT: the four fixture PNGs as one batch, native, under thresholds that send them to
  # exits 3, 2, 1, 1 (every deciding confidence at least 0.03 from its threshold).
  dvt_images="tests/fixtures/images/photo.png tests/fixtures/images/small_odd.png tests/fixtures/images/gray.png tests/fixtures/images/rgba.png"
  echo '], "dvt_thresholds": [0.47, 0.58], "dvt_batch": ['
  native --model tests/fixtures/dvt_t2t_tiny --batch 4 --exit-thresholds 0.47,0.58 $dvt_images | python3 -c '
import json, sys
print(",".join(json.dumps({k: r[k] for k in ("image", "logits", "exit")}) for r in map(json.loads, sys.stdin)))'
  echo ']}'
} > "$out/web-expected.json"
node web/test/e2e.mjs "$out/web-expected.json" "$out"
