#!/usr/bin/env python3
"""Writes tests/fixtures/hvt_*/: tiny HVT models ("Scalable Vision Transformers with
Hierarchical Pooling", ICCV 2021) built with the OFFICIAL model code vendored under
scripts/hvt_official/ (MonashAI/HVT @ f32cc1c0a31275188995f7550619ed213c87675b), and the
official module's outputs for them. Run by hand, never in CI:

    pip install --target /tmp/pyref torch timm safetensors pillow numpy
    PYTHONPATH=/tmp/pyref python3 scripts/make_hvt_fixtures.py [--only hvt_2pool,hvt_3pool]

(written with torch 2.15.0 and timm 1.0.31; tests/fixtures/images/*.png must exist, see
scripts/make_fixtures.py.)

Each fixture folder gets
  config.json              {"architecture": "hvt", "num_classes", "model_args": the official
                           config/*.json model keys, "pretrained_cfg": eval preprocessing}
  model.safetensors        the official module's state_dict (official names, F32,
                           metadata {"format": "pt"})
  reference.safetensors    input [2, 3, H, W] (seeded randn), logits [2, K],
                           image.<name> [K] and tensor.<name> [3, H, W] for the PNGs in
                           tests/fixtures/images/ (timm's eval transform: bicubic resize of the
                           shorter side to floor(H / crop_pct), center crop, ToTensor, Normalize)
  train_reference.safetensors
                           input, target [2] (f32), loss [1] (timm LabelSmoothingCrossEntropy 0.1,
                           train mode, dropout / drop-path 0), grad.<param> for every parameter,
                           adamw.losses [3] and adamw.step3.<param> after three AdamW steps
                           (lr 2e-3, wd 0.05, betas (0.9, 0.999), eps 1e-8) with the official
                           weight-decay groups: no decay for 1-d params, biases and every name
                           containing "pos_embed" (HVT.no_weight_decay), as timm's
                           create_optimizer / param_groups_weight_decay build them.
Weights are spread (as in make_fixtures.py), not the official init, so logits are not ~0.

The official params.py parses sys.argv at import time (and reads --config relative to the
working directory); this script sets sys.argv = [prog, "--config", <absolute json>] and
(re)imports params + models for each fixture, so the vendored files stay verbatim.
"""
import argparse
import importlib
import json
import math
import pathlib
import sys
import tempfile
import warnings

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_fixtures import official_pretrained_cfg, reference_with_cfg, spread_, train_reference, write_hub_config  # noqa: E402  (shared with the timm fixtures)

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent / "tests" / "fixtures"
OFFICIAL = HERE / "hvt_official"

IMAGES = ["photo", "small_odd", "gray", "rgba"]

# name -> (official config keys, num_classes, train targets, seed, expected token counts)
FIXTURES = {
    # 24x24, patch 4: 6x6 = 36 tokens; 2 heads x 6 (embed 12, scale 6^-0.5); kernel 3, pools after blocks 0 and 2:
    # 36 -> 17 (token 35 uncovered) -> 8 (token 16 uncovered); block 3 does not pool.
    "hvt_2pool": (dict(input_size=24, patch_size=4, num_heads=2, head_dim=6, num_blocks=4,
                       pool_kernel_size=3, pool_stride=2, pool_block_width=2), 5, [1, 3], 1, [36, 17, 8]),
    # 21x21, patch 3: 7x7 = 49 tokens; 3 heads x 4 (embed 12, scale 0.5); kernel 2, pools after
    # blocks 0, 2 and 4 (the last block: pooling right before the final norm):
    # 49 -> 24 (token 48 uncovered) -> 12 -> 6.
    "hvt_3pool": (dict(input_size=21, patch_size=3, num_heads=3, head_dim=4, num_blocks=5,
                       pool_kernel_size=2, pool_stride=2, pool_block_width=2), 4, [0, 3], 2, [49, 24, 12, 6]),
}


def official_module(margs):
    """Imports the vendored official models.py with params.args set from `margs` the way
    main.py does it (`--config file.json`), and returns the module."""
    cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(dict(margs, model="hvt_model"), cfg)
    cfg.close()
    argv = sys.argv
    sys.argv = ["make_hvt_fixtures", "--config", cfg.name]
    if str(OFFICIAL) not in sys.path:
        sys.path.insert(0, str(OFFICIAL))
    for m in ("params", "models"):
        sys.modules.pop(m, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = importlib.import_module("models")
    finally:
        sys.argv = argv
        pathlib.Path(cfg.name).unlink()
    for k, v in margs.items():
        assert getattr(models.args, k) == v, (k, getattr(models.args, k), v)
    return models


def build(models, num_classes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return models.hvt_model(num_classes=num_classes)


def token_counts(model, x):
    counts = []
    hooks = [model.patch_embed.register_forward_hook(lambda m, i, o: counts.append(o.shape[1]))]
    for blk in model.blocks:
        if blk.downsample is not None:
            hooks.append(blk.register_forward_hook(lambda m, i, o: counts.append(o.shape[1])))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return counts


def independent_forward(sd, margs, x):
    """fp64 re-derivation of the forward pass from the spec (/work/shared/kin/hvt.md §2),
    from the state_dict alone: a cross-check of the official module, not the reference."""
    sd = {k: v.double() for k, v in sd.items()}
    heads, hd, ps, k = margs["num_heads"], margs["head_dim"], margs["patch_size"], margs["pool_kernel_size"]
    dim = heads * hd
    ln = lambda t, p: F.layer_norm(t, (dim,), sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)
    t = F.conv2d(x.double(), sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=ps)
    t = t.flatten(2).transpose(1, 2) + sd["pos_embed"]
    for i in range(margs["num_blocks"]):
        p = f"blocks.{i}"
        B, N, _ = t.shape
        qkv = F.linear(ln(t, p + ".norm1"), sd[p + ".attn.qkv.weight"], sd[p + ".attn.qkv.bias"])
        q, kk, v = qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
        a = ((q @ kk.transpose(-2, -1)) * hd ** -0.5).softmax(-1)
        t = t + F.linear((a @ v).transpose(1, 2).reshape(B, N, dim), sd[p + ".attn.proj.weight"],
                         sd[p + ".attn.proj.bias"])
        h = F.gelu(F.linear(ln(t, p + ".norm2"), sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"]))
        t = t + F.linear(h, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"])
        if i % margs["pool_block_width"] == 0:
            n_out = (N - k) // 2 + 1
            t = torch.stack([t[:, 2 * j:2 * j + k].amax(1) for j in range(n_out)], 1) + sd[p + ".pos_embed"]
    return F.linear(ln(t, "norm").mean(1), sd["head.weight"], sd["head.bias"])


def make_fixture(name, margs, num_classes, target, seed, expect_counts):
    models = official_module(margs)
    torch.manual_seed(seed)
    model = build(models, num_classes).eval()
    spread_(model, seed)
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, out / "model.safetensors", metadata={"format": "pt"})

    c, s = 3, margs["input_size"]
    pcfg = official_pretrained_cfg(c, s, 0.875, num_classes)
    write_hub_config(out, "hvt", num_classes, margs, pcfg)

    # The reference is the official module with the saved weights loaded back (strict).
    torch.manual_seed(1234)
    model = build(models, num_classes)
    model.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    model.eval()

    x = torch.randn(2, c, s, s, generator=torch.Generator().manual_seed(100 + seed))
    counts = token_counts(model, x)
    assert counts == expect_counts, (name, counts, expect_counts)
    ref = reference_with_cfg(model, pcfg, x, out)
    indep = independent_forward(sd, margs, x)
    err = (indep - ref["logits"].double()).abs().max().item()
    assert err < 1e-4, (name, err)

    # Training reference: same weights, train mode (no dropout / drop path configured: rates 0).
    model.train()
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    tref, loss = train_reference(model, x, torch.tensor(target))
    nwd = model.no_weight_decay()
    save_file({k: v.contiguous() for k, v in tref.items()}, out / "train_reference.safetensors")

    n_params = sum(p.numel() for p in model.parameters())
    sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
    no_decay = [n for n, p in model.named_parameters() if p.ndim <= 1 or n.endswith(".bias") or n in nwd]
    print(f"{name}: {n_params} params in {len(sd)} tensors, tokens {' -> '.join(map(str, counts))}, "
          f"max |logit| {ref['logits'].abs().max():.3f} (images {max(ref[f'image.{i}'].abs().max() for i in IMAGES):.3f}), "
          f"independent fp64 forward max err {err:.2e}")
    print(f"  loss {loss.item():.6f}, adamw losses {[round(v, 6) for v in tref['adamw.losses'].tolist()]}, "
          f"no_weight_decay {nwd}, {len(no_decay)} no-decay params")
    print(f"  files {sizes}, total {sum(sizes.values())} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    for name, spec in FIXTURES.items():
        if only is None or name in only:
            make_fixture(name, *spec)


if __name__ == "__main__":
    main()
