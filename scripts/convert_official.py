#!/usr/bin/env python3
"""Turns a released checkpoint of a family timm does not ship into the hub folder
vitrine loads (config.json + model.safetensors with the official state_dict names).
Run by hand (needs torch + safetensors), never in CI:

    pip install --target /tmp/pyref torch safetensors
    PYTHONPATH=/tmp/pyref python3 scripts/convert_official.py hvt CHECKPOINT.pth OUT_DIR \\
        (--preset hvt_ti_1 | --config config/hvt-ti-1.json)

Families: hvt (MonashAI/HVT; preset hvt_ti_1, hvt_s_1, hvt_s_2, hvt_s_3, hvt_s_4 =
scale-hvt-ti-4, or the official config/*.json whose model keys become model_args).

The checkpoint may be a .pth / .pth.tar holding the state dict under "model",
"state_dict_ema" or "state_dict" (or be the state dict itself); a "module." prefix
(DataParallel) is removed. Optimizer, scheduler and args entries are ignored. The class
count comes from head.weight. Preprocessing is the official eval transform.
"""
import argparse
import json
import pathlib
import sys

import torch
from safetensors.torch import save_file

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# The official config/*.json keys that shape an HVT (datasets / optimizer keys are left out).
HVT_KEYS = ["input_size", "patch_size", "num_heads", "head_dim", "num_blocks", "pool_kernel_size", "pool_stride",
            "pool_block_width"]
HVT_PRESETS = ["hvt_ti_1", "hvt_s_1", "hvt_s_2", "hvt_s_3", "hvt_s_4"]


def state_dict(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "state_dict_ema", "state_dict"):
        if isinstance(ck, dict) and isinstance(ck.get(key), dict):
            ck = ck[key]
            break
    if not isinstance(ck, dict) or not all(torch.is_tensor(v) for v in ck.values()):
        sys.exit(f"{path}: no state dict (looked under model, state_dict_ema, state_dict)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in ck.items()}


def hvt(args, sd):
    if args.preset:
        if args.preset not in HVT_PRESETS:
            sys.exit(f"--preset {args.preset}: not an HVT preset ({', '.join(HVT_PRESETS)})")
        arch, margs, size = args.preset, {}, 224
    elif args.config:
        cfg = json.loads(pathlib.Path(args.config).read_text())
        missing = [k for k in HVT_KEYS if k not in cfg]
        if missing:
            sys.exit(f"{args.config}: missing {', '.join(missing)}")
        arch, margs, size = "hvt", {k: cfg[k] for k in HVT_KEYS}, cfg["input_size"]
    else:
        sys.exit("hvt needs --preset or --config (the official config/*.json the model was trained with)")
    chans = sd["patch_embed.proj.weight"].shape[1]
    return arch, margs, [chans, size, size]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=["hvt"])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--preset")
    ap.add_argument("--config")
    args = ap.parse_args()
    sd = state_dict(args.checkpoint)
    arch, margs, input_size = {"hvt": hvt}[args.family](args, sd)
    num_classes = sd["head.weight"].shape[0] if "head.weight" in sd else 0
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in sd.items()}, out / "model.safetensors", metadata={"format": "pt"})
    config = {
        "architecture": arch,
        "num_classes": num_classes,
        "model_args": margs,
        "pretrained_cfg": {"input_size": input_size, "interpolation": "bicubic", "crop_pct": 0.875,
                           "crop_mode": "center", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                           "num_classes": num_classes},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"{out}: {arch}, {num_classes} classes, {len(sd)} tensors, "
          f"{sum(v.numel() for v in sd.values())} parameters")


if __name__ == "__main__":
    main()
