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
    PYTHONPATH=/tmp/pyref python3 scripts/convert_official.py dvt DVT_T2T_12.pth.tar OUT_DIR \\
        [--row P | --budget GFLOPS]

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
- dvt (blackfeather-wang/Dynamic-Vision-Transformer; DVT_T2t_vit_12, DVT_T2t_vit_14 and
  DVT_Deit_small, recognised from the tensors: presets dvt_t2t_vit_12, dvt_t2t_vit_14,
  dvt_deit_small). The releases keep the weights under "model_state_dict" (no prefix) beside
  "flops", "dynamic_threshold" (one row of thresholds per official budget p = 1..59) and
  "budgeted_batch_classification". The 59 rows are kept in config.json
  ("exit_threshold_rows", with "exit_costs_official"); --row P writes row P's thresholds as
  "exit_thresholds" (what classify uses), --budget GFLOPS the row whose expected GFLOPs
  (from budgeted_batch_classification) is the largest within the budget. Without either,
  no thresholds: every image runs all three exits until `vitrine calibrate` sets them.

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
    for key in ("model", "state_dict_ema", "state_dict", "model_state_dict"):
        if isinstance(ck, dict) and isinstance(ck.get(key), dict):
            ck = ck[key]
            break
    if not isinstance(ck, dict) or not all(torch.is_tensor(v) for v in ck.values()):
        sys.exit(f"{path}: no state dict (looked under model, state_dict_ema, state_dict, model_state_dict)")
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


def dvt(args, sd):
    if "less_less_token.tokens_to_token.project.weight" in sd:
        embed = sd["less_less_token.tokens_to_token.project.weight"].shape[0]
        preset = {256: "dvt_t2t_vit_12", 384: "dvt_t2t_vit_14"}.get(embed)
    elif "less_less_token.patch_embed.proj.weight" in sd:
        embed = sd["less_less_token.patch_embed.proj.weight"].shape[0]
        preset = {384: "dvt_deit_small"}.get(embed)
    else:
        sys.exit(f"{args.checkpoint}: no less_less_token.* tensors: not a DVT checkpoint")
    depth = {"dvt_t2t_vit_12": 12, "dvt_t2t_vit_14": 14, "dvt_deit_small": 12}.get(preset)
    have_depth = len({k.split(".")[2] for k in sd if k.startswith("normal_token.blocks.")})
    if preset is None or have_depth != depth:
        sys.exit(f"{args.checkpoint}: a DVT with embed_dim {embed} and depth {have_depth}: not one of the released "
                 "models (dvt_t2t_vit_12, dvt_t2t_vit_14, dvt_deit_small)")
    if args.preset and args.preset != preset:
        sys.exit(f"{args.checkpoint} is a {preset}, not {args.preset}")
    return preset, {}, [3, 224, 224]


def dvt_thresholds(args, ck, config):
    """The released budget rows (and --row / --budget's choice) into config.json."""
    rows = ck.get("dynamic_threshold") if isinstance(ck, dict) else None
    if rows is None:
        if args.row or args.budget:
            sys.exit(f"{args.checkpoint}: no dynamic_threshold rows to choose from; use vitrine calibrate")
        return
    rows = torch.as_tensor(rows).float()
    if rows.ndim != 2 or rows.shape[1] != 3:
        sys.exit(f"{args.checkpoint}: dynamic_threshold has shape {list(rows.shape)}, expected [59, 3]")
    config["exit_threshold_rows"] = rows[:, :2].tolist()
    if "flops" in ck:
        config["exit_costs_official"] = [float(f) for f in torch.as_tensor(ck["flops"]).flatten()]
    p = args.row
    if args.budget is not None:
        b = ck.get("budgeted_batch_classification")
        b = torch.as_tensor(b, dtype=torch.float64) if b is not None else None
        # Expected GFLOPs per row: the axis of length len(rows) whose values lie within the exit costs.
        flops = None
        if b is not None and b.ndim == 2:
            for cand in (b, b.T):
                if cand.shape[0] == rows.shape[0]:
                    lo, hi = min(config.get("exit_costs_official", [0])), max(config.get("exit_costs_official", [1e9]))
                    for col in range(cand.shape[1]):
                        if all(lo - 1e-6 <= v <= hi + 1e-6 for v in cand[:, col].tolist()):
                            flops = cand[:, col].tolist()
        if flops is None:
            sys.exit(f"{args.checkpoint}: budgeted_batch_classification has no per-row GFLOPs; use --row P or vitrine calibrate")
        ok = [i + 1 for i, f in enumerate(flops) if f <= args.budget]
        if not ok:
            sys.exit(f"--budget {args.budget}: below the cheapest row ({min(flops):.4f} GFLOPs)")
        p = max(ok)
    if p:
        if not 1 <= p <= rows.shape[0]:
            sys.exit(f"--row {p}: the checkpoint has rows 1..{rows.shape[0]}")
        config["exit_thresholds"] = rows[p - 1, :2].tolist()
        print(f"exit thresholds of budget row p = {p}: {config['exit_thresholds']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=["hvt", "t2t", "dynamicvit", "dvt"])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--preset")
    ap.add_argument("--config")
    ap.add_argument("--keep-ratio", type=float, default=0.7, help="dynamicvit: the base keep ratio rho")
    ap.add_argument("--row", type=int, help="dvt: the budget row p (1..59) whose thresholds to use")
    ap.add_argument("--budget", type=float, help="dvt: the row with the largest expected GFLOPs within this")
    args = ap.parse_args()
    sd = state_dict(args.checkpoint)
    arch, margs, input_size = {"hvt": hvt, "t2t": t2t, "dynamicvit": dynamicvit, "dvt": dvt}[args.family](args, sd)
    crop = {"hvt": 0.875, "t2t": 0.9, "dynamicvit": 0.875, "dvt": 0.875}[args.family]
    head = "normal_token.head.weight" if args.family == "dvt" else "head.weight"
    num_classes = sd[head].shape[0] if head in sd else 0
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
    if args.family == "dvt":
        dvt_thresholds(args, torch.load(args.checkpoint, map_location="cpu", weights_only=False), config)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"{out}: {arch}, {num_classes} classes, {len(sd)} tensors, "
          f"{sum(v.numel() for v in sd.values())} parameters")


if __name__ == "__main__":
    main()
