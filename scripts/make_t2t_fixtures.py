#!/usr/bin/env python3
"""Writes tests/fixtures/t2t_*/: tiny T2T-ViT models ("Tokens-to-Token ViT: Training Vision
Transformers from Scratch on ImageNet", ICCV 2021) built with the OFFICIAL model code vendored
under scripts/t2t_official/ (yitu-opensource/T2T-ViT @ 0f63dc9558f4d192de926504dbddfa1b3f5db6ca),
and the official module's outputs for them. Run by hand, never in CI:

    pip install --target /tmp/pyref torch timm safetensors pillow numpy
    PYTHONPATH=/tmp/pyref python3 scripts/make_t2t_fixtures.py [--only t2t_performer,t2t_transformer]

(written with torch 2.15.0 and timm 1.0.31; tests/fixtures/images/*.png must exist, see
scripts/make_fixtures.py.)

Each fixture folder gets
  config.json              {"architecture": "t2t_vit", "num_classes", "model_args": the official
                           T2T_ViT constructor keywords (img_size, tokens_type, in_chans,
                           num_classes, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
                           qk_scale, token_dim), "pretrained_cfg": eval preprocessing (the
                           official _cfg: bicubic, crop_pct 0.9, ImageNet mean / std)}
  model.safetensors        the official module's state_dict (official names, F32, metadata
                           {"format": "pt"}), including the frozen tensors pos_embed (sinusoid
                           table) and, for the performer, tokens_to_token.attention{1,2}.w
  reference.safetensors    input [2, 3, H, W] (seeded randn), logits [2, K],
                           image.<name> [K] and tensor.<name> [3, H, W] for the PNGs in
                           tests/fixtures/images/ (timm's eval transform: bicubic resize of the
                           shorter side to floor(H / crop_pct), center crop, ToTensor, Normalize)
  train_reference.safetensors
                           input, target [2] (f32), loss [1] (timm LabelSmoothingCrossEntropy 0.1,
                           train mode, every dropout 0: the performer's hard-coded Dropout(0.1)
                           `dp` and `mlp.3` are set to p = 0, drop_rate / drop_path_rate 0),
                           grad.<param> for every parameter that requires grad, adamw.losses [3]
                           and adamw.step3.<param> (same params) after three AdamW steps
                           (lr 2e-3, wd 0.05, betas (0.9, 0.999), eps 1e-8) with the official
                           weight-decay groups: main.py uses timm's create_optimizer, i.e. no
                           decay for 1-d params, biases and T2T_ViT.no_weight_decay() = {cls_token};
                           params with requires_grad False (pos_embed, attention{1,2}.w) are not
                           in the optimizer at all (timm skips them), so they stay as saved.
Weights are spread (as in make_fixtures.py's spread_), not the official init, so logits are
not ~0; the frozen pos_embed and Performer w are kept exactly as the official constructor made
them (a consumer must load them from the checkpoint, never regenerate them).

The vendored files are verbatim (plus a header); models/__init__.py is not vendored (it imports
t2t_vit_se / _dense / _ghost as well), so scripts/t2t_official/models is a namespace package.
"""
import argparse
import math
import pathlib
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_fixtures import official_pretrained_cfg, quiet, reference_with_cfg, spread_, train_reference, write_hub_config  # noqa: E402  (shared with the timm fixtures)

ROOT = HERE.parent / "tests" / "fixtures"
OFFICIAL = HERE / "t2t_official"

CROP_PCT = 0.9  # t2t_vit.py _cfg: crop_pct .9 (eval: Resize(floor(H / 0.9)), CenterCrop(H))
KQV_SCALE = 0.25
IMAGES = ["photo", "small_odd", "gray", "rgba"]

# name -> (official T2T_ViT keyword arguments, train targets, seed, expected token grids)
# img_size must be a multiple of 16: the official num_patches = (img_size // 16)^2 must equal the
# token count after the three soft splits (k7 s4 p2, k3 s2 p1, k3 s2 p1).
FIXTURES = {
    # 48 -> 12x12 (147-dim unfold) -> 6x6 (72-dim) -> 3x3 = 9 tokens + cls; performer emb 8,
    # m = int(8 * 0.5) = 4 random features; 2 heads x 8 (scale 8^-0.5).
    "t2t_performer": (dict(img_size=48, tokens_type="performer", in_chans=3, num_classes=5, embed_dim=16,
                           depth=2, num_heads=2, mlp_ratio=2.0, qkv_bias=False, qk_scale=None, token_dim=8),
                      [1, 3], 1, [12, 6, 3]),
    # 48 -> 12x12 -> 6x6 (54-dim) -> 3x3 = 9 tokens + cls; token transformer in_dim 6, scales
    # 147^-0.5 and 54^-0.5; 3 heads x 6 (scale 6^-0.5).
    "t2t_transformer": (dict(img_size=48, tokens_type="transformer", in_chans=3, num_classes=4, embed_dim=18,
                             depth=2, num_heads=3, mlp_ratio=2.0, qkv_bias=False, qk_scale=None, token_dim=6),
                        [0, 3], 2, [12, 6, 3]),
}


def official_t2t():
    if str(OFFICIAL) not in sys.path:
        sys.path.insert(0, str(OFFICIAL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm.models.layers / helpers / registry deprecation
        import models.t2t_vit as t2t_vit
    return t2t_vit


def build(t2t_vit, margs):
    with quiet():
        return t2t_vit.T2T_ViT(**margs)


def frozen(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


def spread_t2t_(model, seed):
    """make_fixtures.spread_, except that (a) the frozen pos_embed / Performer w keep their
    official values, (b) the tokens_to_token.* matrices get the fan-in spread (spread_ treats
    every name containing "token" like cls_token, i.e. 0.5 * randn, far too large for a matrix)
    and (c) the performer kqv weights are scaled by KQV_SCALE: with the full spread |k|^2 / 2 is
    ~13, phi(k) = exp(w k - |k|^2 / 2) / sqrt(m) ~ 1e-7 and the denominator D ~ 1e-15 drowns in
    the official 1e-8 epsilon; scaled, D is O(1) as for trained weights."""
    keep = frozen(model)
    spread_(model, seed)
    spread_(model.tokens_to_token, seed + 1000)  # names relative to the T2T module: no "token"
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in keep:
                p.copy_(keep[n])
            elif n.endswith(".kqv.weight"):
                p.mul_(KQV_SCALE)


def sinusoid_f32(n_position, d_hid):
    """The sinusoid table from the spec (float64, then float32), written independently."""
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    j = np.arange(d_hid)
    ang = pos / np.power(10000.0, 2 * (j // 2) / d_hid)
    tab = np.where(j % 2 == 0, np.sin(ang), np.cos(ang))
    return torch.from_numpy(tab).float().unsqueeze(0)


def soft_split(x, k, s, p):
    """nn.Unfold re-derived: tokens in raster order over output positions, features C x kh x kw."""
    B, C = x.shape[:2]
    xp = F.pad(x, (p, p, p, p))
    t = xp.unfold(2, k, s).unfold(3, k, s)  # (B, C, OH, OW, k, k)
    oh, ow = t.shape[2], t.shape[3]
    return t.permute(0, 2, 3, 1, 4, 5).reshape(B, oh * ow, C * k * k), oh


def independent_forward(sd, margs, x):
    """fp64 re-derivation of the forward pass from the spec (/work/shared/kin/t2t.md §2), from
    the state_dict alone: a cross-check of the official module, not the reference."""
    sd = {k: v.double() for k, v in sd.items()}
    td, dim, heads = margs["token_dim"], margs["embed_dim"], margs["num_heads"]
    ln = lambda t, p: F.layer_norm(t, (t.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps=1e-5)
    lin = lambda t, p, bias=True: F.linear(t, sd[p + ".weight"], sd[p + ".bias"] if bias else None)

    def performer(t, p):
        k, q, v = lin(ln(t, p + ".norm1"), p + ".kqv").split(td, -1)  # order k, q, v
        w = sd[p + ".w"]
        m = w.shape[0]
        phi = lambda z: torch.exp(z @ w.T - 0.5 * (z * z).sum(-1, keepdim=True)) / math.sqrt(m)
        kp, qp = phi(k), phi(q)
        d = (qp * kp.sum(1, keepdim=True)).sum(-1, keepdim=True)
        kptv = torch.einsum("btn,bti->bni", v, kp)
        y = torch.einsum("bti,bni->btn", qp, kptv) / (d + 1e-8)
        y = v + lin(y, p + ".proj")
        return y + lin(F.gelu(lin(ln(y, p + ".norm2"), p + ".mlp.0")), p + ".mlp.2")

    def token_transformer(t, p):
        q, k, v = lin(ln(t, p + ".norm1"), p + ".attn.qkv", bias=False).split(td, -1)  # order q, k, v
        a = ((q * t.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1)  # scale: input dim^-0.5
        y = v + lin(a @ v, p + ".attn.proj")
        return y + lin(F.gelu(lin(ln(y, p + ".norm2"), p + ".mlp.fc1")), p + ".mlp.fc2")

    tok = performer if margs["tokens_type"] == "performer" else token_transformer
    B = x.shape[0]
    grids = []
    t, g = soft_split(x.double(), 7, 4, 2)
    grids.append(g)
    for i, name in ((1, "attention1"), (2, "attention2")):
        t = tok(t, "tokens_to_token." + name)
        img = t.transpose(1, 2).reshape(B, td, g, g)
        t, g = soft_split(img, 3, 2, 1)
        grids.append(g)
    t = lin(t, "tokens_to_token.project")
    t = torch.cat([sd["cls_token"].expand(B, 1, dim), t], 1) + sd["pos_embed"]
    hd = dim // heads
    for i in range(margs["depth"]):
        p = f"blocks.{i}"
        _, N, _ = t.shape
        qkv = lin(ln(t, p + ".norm1"), p + ".attn.qkv", bias=False)
        q, k, v = qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(-1)
        t = t + lin((a @ v).transpose(1, 2).reshape(B, N, dim), p + ".attn.proj")
        t = t + lin(F.gelu(lin(ln(t, p + ".norm2"), p + ".mlp.fc1")), p + ".mlp.fc2")
    return lin(ln(t, "norm")[:, 0], "head"), grids


def performer_denominators(model, x):
    """min over tokens of the Performer denominator D (must be >> the 1e-8 epsilon)."""
    out = []
    hooks = []
    for att in (model.tokens_to_token.attention1, model.tokens_to_token.attention2):
        def hook(mod, inp, _o):
            k, q, v = torch.split(mod.kqv(mod.norm1(inp[0])), mod.emb, dim=-1)
            kp, qp = mod.prm_exp(k), mod.prm_exp(q)
            out.append(torch.einsum("bti,bi->bt", qp, kp.sum(dim=1)).min().item())
        hooks.append(att.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return out


def make_fixture(t2t_vit, name, margs, target, seed, expect_grids):
    num_classes = margs["num_classes"]
    torch.manual_seed(seed)
    model = build(t2t_vit, margs).eval()
    official_frozen = frozen(model)
    spread_t2t_(model, seed)
    for n, v in frozen(model).items():
        assert torch.equal(v, official_frozen[n]), n
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    s = margs["img_size"]
    assert torch.equal(sd["pos_embed"], sinusoid_f32((s // 16) ** 2 + 1, margs["embed_dim"])), name
    save_file(sd, out / "model.safetensors", metadata={"format": "pt"})

    c = margs["in_chans"]
    pcfg = official_pretrained_cfg(c, s, CROP_PCT, num_classes)
    write_hub_config(out, "t2t_vit", num_classes, margs, pcfg)

    # The reference is the official module with the saved weights loaded back (strict): a fresh
    # build draws a different w, so this also proves that w / pos_embed come from the file.
    torch.manual_seed(1234)
    model = build(t2t_vit, margs)
    model.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    model.eval()

    x = torch.randn(2, c, s, s, generator=torch.Generator().manual_seed(100 + seed))
    ref = reference_with_cfg(model, pcfg, x, out)
    indep, grids = independent_forward(sd, margs, x)
    assert grids == expect_grids, (name, grids, expect_grids)
    err = (indep - ref["logits"].double()).abs().max().item()
    assert err < 1e-4, (name, err)
    dmin = performer_denominators(model, x) if margs["tokens_type"] == "performer" else []
    assert all(d > 1e-2 for d in dmin), (name, dmin)

    # Training reference: same weights, train mode, every dropout off (the performer's two
    # Dropout(0.1) are hard-coded in Token_performer.__init__, so they are zeroed here).
    model.train()
    if margs["tokens_type"] == "performer":
        for att in (model.tokens_to_token.attention1, model.tokens_to_token.attention2):
            att.dp.p = 0.0
            att.mlp[3].p = 0.0
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    tref, loss = train_reference(model, x, torch.tensor(target))
    nwd = model.no_weight_decay()
    assert sum(1 for k in tref if k.startswith("grad.")) == len(trainable)
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p.detach(), sd[n]), n  # frozen tensors never move
    save_file({k: v.contiguous() for k, v in tref.items()}, out / "train_reference.safetensors")

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
    no_decay = [n for n in trainable if sd[n].ndim <= 1 or n.endswith(".bias") or n in nwd]
    print(f"{name}: {n_params} params ({n_train} trainable) in {len(sd)} tensors, grids "
          f"{' -> '.join(map(str, grids))} ({grids[-1] ** 2} tokens + cls), max |logit| "
          f"{ref['logits'].abs().max():.3f} (images {max(ref[f'image.{i}'].abs().max() for i in IMAGES):.3f}), "
          f"independent fp64 forward max err {err:.2e}"
          + (f", min performer D {', '.join(f'{d:.3g}' for d in dmin)}" if dmin else ""))
    print(f"  frozen: {sorted(n for n in sd if n not in trainable)}")
    print(f"  loss {loss.item():.6f}, adamw losses {[round(v, 6) for v in tref['adamw.losses'].tolist()]}, "
          f"no_weight_decay {nwd}, {len(no_decay)} no-decay / {len(trainable) - len(no_decay)} decay params")
    print(f"  files {sizes}, total {sum(sizes.values())} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    t2t_vit = official_t2t()
    for name, spec in FIXTURES.items():
        if only is None or name in only:
            make_fixture(t2t_vit, name, *spec)


if __name__ == "__main__":
    main()
