#!/usr/bin/env python3
"""One timm model, three ways, for the browser benchmark (web/bench/run.sh; run by hand).

Writes into OUT:
  config.json + model.safetensors   the hub folder vitrine loads (timm's save_for_hf)
  model.onnx                        the same weights exported by torch.onnx (opset 17)
  input.bin                         IMAGE through timm's eval transform, float32 [1, 3, H, W]
  reference.json                    timm's logits for it, and the image's path

The weights are timm's random init with a fixed seed: no hub here, and speed does not depend
on the values. Parity is checked by the benchmark itself (vitrine's and ONNX Runtime's
logits against reference.json).

  pip install --target /tmp/pyref torch timm safetensors onnx
  PYTHONPATH=/tmp/pyref python3 scripts/export_onnx.py --arch vit_tiny_patch16_224 --out /tmp/bench-vit-ti
"""
import argparse, json, pathlib, warnings
import torch, timm
from PIL import Image
from timm.models._hub import save_for_hf

ROOT = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="vit_tiny_patch16_224")
ap.add_argument("--out", required=True)
ap.add_argument("--image", default=str(ROOT / "tests/fixtures/images/photo.png"))
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(a.seed)
model = timm.create_model(a.arch, pretrained=False).eval()
save_for_hf(model, out, safe_serialization=True)
# What a user gets: the model as timm's hub-folder loader reads it back.
model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
cfg = timm.data.resolve_data_config({}, model=model)
x = timm.data.create_transform(**cfg)(Image.open(a.image).convert("RGB")).unsqueeze(0)
with torch.no_grad():
    logits = model(x)
x.numpy().astype("float32").tofile(out / "input.bin")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(model, (x,), str(out / "model.onnx"), input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamo=False)
(out / "reference.json").write_text(json.dumps({
    "arch": a.arch, "image": str(pathlib.Path(a.image).resolve()), "input_shape": list(x.shape),
    "logits": logits[0].tolist()}))
print(f"{out}: config.json, model.safetensors, model.onnx ({(out / 'model.onnx').stat().st_size / 2**20:.1f} MiB), "
      f"input.bin {list(x.shape)}, reference.json")
