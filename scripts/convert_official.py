#!/usr/bin/env python3
"""Turns a released checkpoint of a family timm does not ship into the hub folder
vitrine loads (config.json + model.safetensors with the official state_dict names).
Run by hand (needs torch + safetensors), never in CI:

    pip install --target /tmp/pyref torch safetensors
    PYTHONPATH=/tmp/pyref python3 scripts/convert_official.py hvt CHECKPOINT.pth OUT_DIR \\
        (--preset hvt_ti_1 | --config config/hvt-ti-1.json)
    PYTHONPATH=/tmp/pyref python3 scripts/convert_official.py t2t 81.5_T2T_ViT_14.pth.tar OUT_DIR \\
        --preset t2t_vit_14
    PYTHONPATH=/tmp/pyref python3 scripts/convert_official.py dynamicvit CHECKPOINT.pth OUT_DIR \\
        --preset dynamicvit_deit_s [--keep-ratio 0.7]

Families:
- hvt (MonashAI/HVT; preset hvt_ti_1, hvt_s_1, hvt_s_2, hvt_s_3, hvt_s_4 = scale-hvt-ti-4,
  or the official config/*.json whose model keys become model_args).
- t2t (yitu-opensource/T2T-ViT; preset t2t_vit_7 .. t2t_vit_24, t2t_vit_t_14 .. t2t_vit_t_24).
  The token layer type, widths and depth are checked against the checkpoint; the input
  size comes from pos_embed ((img_size / 16)^2 + 1 rows), so the 384 release converts
  with --preset t2t_vit_14 and gets model_args {"img_size": 384}. The frozen sinusoid
  pos_embed and Performer w are copied from the checkpoint, as the official code loads them.
- dynamicvit (raoyongming/DynamicViT; preset dynamicvit_deit_s, dynamicvit_deit_256,
  dynamicvit_deit_b; --keep-ratio R, default 0.7, gives token_ratio [R, R^2, R^3] as the
  official main.py / infer.py --base_rate does). Width and depth are checked against the
  preset; the released files keep their weights under "model".

The checkpoint may be a .pth / .pth.tar holding the state dict under "model",
"state_dict_ema" (the T2T-ViT releases' EMA weights, what the official eval loads) or "state_dict" (or be the state dict itself); a "module." prefix
(DataParallel) is removed. Optimizer, scheduler and args entries are ignored. The class
count comes from head.weight. Preprocessing is the official eval transform (bicubic, crop
0.875 for HVT and 0.9 for T2T-ViT, ImageNet mean / std).
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


# The official factories: (embed_dim, depth, num_heads, mlp_ratio); t2t_vit_t_* use token transformers.
T2T_PRESETS = {"t2t_vit_7": (256, 7, 4, 2.0), "t2t_vit_10": (256, 10, 4, 2.0), "t2t_vit_12": (256, 12, 4, 2.0),
               "t2t_vit_14": (384, 14, 6, 3.0), "t2t_vit_19": (448, 19, 7, 3.0), "t2t_vit_24": (512, 24, 8, 3.0),
               "t2t_vit_t_14": (384, 14, 6, 3.0), "t2t_vit_t_19": (448, 19, 7, 3.0), "t2t_vit_t_24": (512, 24, 8, 3.0)}


def t2t(args, sd):
    if args.preset not in T2T_PRESETS:
        sys.exit(f"t2t needs --preset, one of {', '.join(T2T_PRESETS)}")
    embed, depth, _, _ = T2T_PRESETS[args.preset]
    want = "transformer" if args.preset.startswith("t2t_vit_t_") else "performer"
    got = "performer" if "tokens_to_token.attention1.kqv.weight" in sd else "transformer"
    have_depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    have_embed = sd["tokens_to_token.project.weight"].shape[0]
    if (got, have_embed, have_depth) != (want, embed, depth):
        sys.exit(f"{args.checkpoint}: a {got} T2T-ViT with embed_dim {have_embed} and depth {have_depth}, "
                 f"not {args.preset} ({want}, {embed}, {depth})")
    rows = sd["pos_embed"].shape[1] - 1
    side = int(round(rows ** 0.5)) * 16
    margs = {} if side == 224 else {"img_size": side}
    return args.preset, margs, [sd["tokens_to_token.attention1.norm1.weight"].shape[0] // 49, side, side]


# The released DynamicViT backbones (infer.py --model deit-256 / deit-s / deit-b): embed_dim.
DYNVIT_PRESETS = {"dynamicvit_deit_256": 256, "dynamicvit_deit_s": 384, "dynamicvit_deit_b": 768}


def dynamicvit(args, sd):
    if args.preset not in DYNVIT_PRESETS:
        sys.exit(f"dynamicvit needs --preset, one of {', '.join(DYNVIT_PRESETS)}")
    embed = DYNVIT_PRESETS[args.preset]
    have_embed = sd["patch_embed.proj.weight"].shape[0]
    have_depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    stages = len({k.split(".")[1] for k in sd if k.startswith("score_predictor.")})
    if (have_embed, have_depth, stages) != (embed, 12, 3):
        sys.exit(f"{args.checkpoint}: embed_dim {have_embed}, depth {have_depth}, {stages} predictors; "
                 f"{args.preset} has {embed}, 12, 3")
    rho = args.keep_ratio
    margs = {} if rho == 0.7 else {"token_ratio": [rho, rho ** 2, rho ** 3]}
    return args.preset, margs, [sd["patch_embed.proj.weight"].shape[1], 224, 224]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=["hvt", "t2t", "dynamicvit"])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--preset")
    ap.add_argument("--config")
    ap.add_argument("--keep-ratio", type=float, default=0.7, help="dynamicvit: the base keep ratio rho")
    args = ap.parse_args()
    sd = state_dict(args.checkpoint)
    arch, margs, input_size = {"hvt": hvt, "t2t": t2t, "dynamicvit": dynamicvit}[args.family](args, sd)
    crop = {"hvt": 0.875, "t2t": 0.9, "dynamicvit": 0.875}[args.family]
    num_classes = sd["head.weight"].shape[0] if "head.weight" in sd else 0
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in sd.items()}, out / "model.safetensors", metadata={"format": "pt"})
    config = {
        "architecture": arch,
        "num_classes": num_classes,
        "model_args": margs,
        "pretrained_cfg": {"input_size": input_size, "interpolation": "bicubic", "crop_pct": crop,
                           "crop_mode": "center", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                           "num_classes": num_classes},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"{out}: {arch}, {num_classes} classes, {len(sd)} tensors, "
          f"{sum(v.numel() for v in sd.values())} parameters")


if __name__ == "__main__":
    main()
