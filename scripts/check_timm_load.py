#!/usr/bin/env python3
"""Checks that timm loads a checkpoint vitrine wrote and agrees with vitrine
(run by hand; needs torch + timm, e.g. PYTHONPATH=/tmp/pyref):

  python3 scripts/check_timm_load.py OUT_DIR IMAGE...

Loads OUT_DIR with timm.create_model('local-dir:OUT_DIR', pretrained=True)
(strict load_state_dict of model.safetensors), runs timm's eval transform
from the saved pretrained_cfg, runs `vitrine classify --json` on the same
images, and prints the largest logit difference.
"""
import json, subprocess, sys
import timm, torch
from PIL import Image

out, images = sys.argv[1], sys.argv[2:]
model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
cfg = timm.data.resolve_data_config({}, model=model)
tf = timm.data.create_transform(**cfg)
mode = "L" if cfg["input_size"][0] == 1 else "RGB"
x = torch.stack([tf(Image.open(p).convert(mode)) for p in images])
with torch.no_grad():
    ref = model(x)
res = subprocess.run(["target/release/vitrine", "classify", "--model", out, "--json", *images], capture_output=True, text=True, check=True)
ours = torch.tensor([json.loads(l)["logits"] for l in res.stdout.splitlines()])
d = (ours - ref).abs().max().item()
tol = 1e-4 * max(1.0, ref.abs().max().item())
print(f"timm loaded {out} ({sum(p.numel() for p in model.parameters())} parameters); max |vitrine - timm| = {d:.3g} (tolerance {tol:.3g})")
sys.exit(0 if d <= tol else 1)
