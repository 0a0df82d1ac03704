#!/usr/bin/env python3
"""Writes a hub folder (config.json + model.safetensors, zero weights) of a ViT whose
weights are small (17 MB) but whose activations at batch 1 are not: 725 x 725 patches of
one pixel, 8 wide, MLP ratio 64, so the MLP's hidden tensor [1, 525626, 512] needs
1026 MiB, over SwiftShader's 1024 MiB storage binding limit. The browser test loads it
and expects the planner's refusal.  Usage: too_large.py OUT_DIR"""
import json
import pathlib
import struct
import sys

out = pathlib.Path(sys.argv[1])
side, d, ratio, classes = 725, 8, 64, 2
n, hid = side * side + 1, d * ratio
shapes = {
    "cls_token": [1, 1, d],
    "pos_embed": [1, n, d],
    "patch_embed.proj.weight": [d, 3, 1, 1],
    "patch_embed.proj.bias": [d],
    "blocks.0.norm1.weight": [d],
    "blocks.0.norm1.bias": [d],
    "blocks.0.attn.qkv.weight": [3 * d, d],
    "blocks.0.attn.qkv.bias": [3 * d],
    "blocks.0.attn.proj.weight": [d, d],
    "blocks.0.attn.proj.bias": [d],
    "blocks.0.norm2.weight": [d],
    "blocks.0.norm2.bias": [d],
    "blocks.0.mlp.fc1.weight": [hid, d],
    "blocks.0.mlp.fc1.bias": [hid],
    "blocks.0.mlp.fc2.weight": [d, hid],
    "blocks.0.mlp.fc2.bias": [d],
    "norm.weight": [d],
    "norm.bias": [d],
    "head.weight": [classes, d],
    "head.bias": [classes],
}
header, offset = {}, 0
for name, shape in shapes.items():
    size = 4
    for s in shape:
        size *= s
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
    offset += size
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
out.mkdir(parents=True, exist_ok=True)
(out / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + bytes(offset))
config = {
    "architecture": "vit_tiny_patch16_224",
    "num_classes": classes,
    "model_args": {"img_size": side, "patch_size": 1, "embed_dim": d, "depth": 1, "num_heads": 1, "mlp_ratio": ratio},
    "pretrained_cfg": {"input_size": [3, side, side], "crop_pct": 1.0, "interpolation": "bilinear"},
}
(out / "config.json").write_text(json.dumps(config, indent=1))
