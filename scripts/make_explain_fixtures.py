#!/usr/bin/env python3
"""Attention-map references for `vitrine explain` (tests/explain.rs): for the vit_plain and
deit_distilled fixtures, the timm model's attention probabilities on the fixture's preprocessed
photo (`tensor.photo` in reference.safetensors), and from them in NumPy:
  - the attention rollout (Abnar & Zuidema 2020): per block the head-mean attention plus the
    identity (the residual), rows renormalised, multiplied from the first block to the last;
    the class token's row over the patch tokens;
  - the last block's class-token attention over the patch tokens, head mean.
Writes tests/fixtures/<name>/explain_reference.safetensors (rollout, last_cls: [grid_h * grid_w]).
Run with torch + timm + safetensors on PYTHONPATH (see scripts/make_fixtures.py)."""
import pathlib

import numpy as np
import timm
import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def attention_maps(model, x):
    probs = []
    for blk in model.blocks:
        blk.attn.fused_attn = False
        blk.attn.attn_drop.register_forward_hook(lambda m, i, o: probs.append(o[0].detach().numpy().astype(np.float64)))
    with torch.no_grad():
        model(x)
    return probs


def rollout(probs, prefix):
    n = probs[0].shape[-1]
    result = np.eye(n)
    for p in probs:
        a = p.mean(axis=0) + np.eye(n)
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result[0, prefix:], probs[-1].mean(axis=0)[0, prefix:]


def main():
    for name in ["vit_plain", "deit_distilled"]:
        d = ROOT / name
        model = timm.create_model(f"local-dir:{d}", pretrained=True).float().eval()
        x = load_file(str(d / "reference.safetensors"))["tensor.photo"].unsqueeze(0)
        probs = attention_maps(model, x)
        roll, last = rollout(probs, model.num_prefix_tokens)
        save_file({"rollout": torch.tensor(roll, dtype=torch.float32), "last_cls": torch.tensor(last, dtype=torch.float32)},
                  str(d / "explain_reference.safetensors"))
        print(f"{name}: {len(probs)} blocks, {probs[0].shape[0]} heads, {probs[0].shape[-1]} tokens, "
              f"{model.num_prefix_tokens} prefix; rollout max {roll.max():.4f}, last-block cls max {last.max():.4f}")


if __name__ == "__main__":
    main()
