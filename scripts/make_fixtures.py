#!/usr/bin/env python3
"""Writes tests/fixtures/: small timm models in the Hugging Face hub layout,
sample images, and timm's outputs for them. Run by hand, never in CI:

    pip install --target /tmp/pyref torch timm safetensors pillow numpy
    PYTHONPATH=/tmp/pyref python3 scripts/make_fixtures.py [--photo grace_hopper.jpg]

Each model gets its own folder with config.json + model.safetensors written by
timm's own `save_for_hf`, and reference.safetensors holding
  input  [2, C, H, W]  a seeded random input tensor
  logits [2, K]        timm's logits for it
  image.<name>  [K]    timm's logits for tests/fixtures/images/<name>.png,
                       preprocessed by timm's eval transform resolved from the
                       saved folder (timm.create_model('local-dir:...')).
Weights are spread (not timm's init, which gives near-zero logits).
"""
import argparse
import contextlib
import io
import warnings
import json
import pathlib

import numpy as np
import torch
import timm
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config
from timm.models import save_for_hf

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"

# name -> (timm architecture, model_args, store dtype)
MODELS = {
    # plain ViT, class token, token pooling, 2 heads of 64
    "vit_plain": ("vit_tiny_patch16_224", dict(img_size=32, patch_size=8, embed_dim=128, depth=2, num_heads=2,
                                               mlp_ratio=2.0, num_classes=10), torch.float32),
    # DeiT distilled: cls + dist tokens, two heads averaged, non-224 input
    "deit_distilled": ("deit_tiny_distilled_patch16_224", dict(img_size=48, patch_size=16, embed_dim=48, depth=2,
                                                               num_heads=3, num_classes=7), torch.float32),
    # no class token, avg pool, fc_norm, registers, layer scale, no qkv bias
    "vit_avg_reg_ls": ("vit_small_patch16_224", dict(img_size=40, patch_size=8, embed_dim=40, depth=2, num_heads=2,
                                                     class_token=False, global_pool="avg", fc_norm=True,
                                                     reg_tokens=4, no_embed_class=True, init_values=0.1,
                                                     qkv_bias=False, num_classes=5), torch.float32),
    # odd head dim 15, 7x7 patches (K = 147), pre-norm, avgmax pooling, mlp width int(45 * 2.5) = 112
    "vit_odd": ("vit_base_patch16_224", dict(img_size=35, patch_size=7, embed_dim=45, depth=2, num_heads=3,
                                             mlp_ratio=2.5, pre_norm=True, global_pool="avgmax", num_classes=6),
                torch.float32),
    # 1000 ImageNet classes, stored in F16, bilinear 0.875 preprocessing (the bundled sample model)
    "vit_f16_in1k": ("vit_tiny_patch16_224", dict(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                                                  num_classes=1000), torch.float16),
    # Swin, 2 stages: 8x8 map with shifted 4x4 windows (mask), then 4x4 = one window, no shift
    "swin_2stage": ("swin_tiny_patch4_window7_224", dict(img_size=32, patch_size=4, embed_dim=16, depths=(2, 2),
                                                         num_heads=(2, 4), window_size=4, num_classes=5),
                    torch.float32),
    # Swin, 3 stages on a 40x40 input: 10x10 and 5x5 maps padded to whole 3x3 windows (shift 1),
    # odd-sized patch merging, last stage 3x3 = its window; no qkv bias, mlp_ratio 2
    "swin_3stage_pad": ("swin_tiny_patch4_window7_224", dict(img_size=40, patch_size=4, embed_dim=12,
                                                             depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=3,
                                                             mlp_ratio=2.0, qkv_bias=False, num_classes=6),
                        torch.float32),
    # Swin, 4 stages, window 6 larger than the last two stages (4x4 -> window 4, 2x2 -> 2, no shift),
    # head_dim 8 fixed (attention width != stage width), avgmax pooling
    "swin_4stage_bigwin": ("swin_tiny_patch4_window7_224", dict(img_size=64, patch_size=4, embed_dim=8,
                                                                depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                                                                head_dim=8, window_size=6, global_pool="avgmax",
                                                                num_classes=4), torch.float32),
    # Swin on a 48x32 (non-square) input: 12x8 map in 5x5 windows shifted (2, 2), then 6x4 in 5x4
    # windows shifted along h only, then 3x2; non-square center crop in preprocessing
    "swin_rect": ("swin_tiny_patch4_window7_224", dict(img_size=(48, 32), patch_size=4, embed_dim=8, depths=(2, 2, 2),
                                                       num_heads=(2, 2, 4), window_size=5, num_classes=5),
                  torch.float32),
    # always_partition: full 3x3 windows and shifts even on the 4x4 and 2x2 maps (padded), max pooling
    "swin_always": ("swin_tiny_patch4_window7_224", dict(img_size=16, patch_size=4, embed_dim=8, depths=(2, 2),
                                                         num_heads=(1, 2), window_size=3, always_partition=True,
                                                         global_pool="max", num_classes=5), torch.float32),
}

# Swin options timm's SwinTransformer no longer has (the original repo's `ape` absolute position
# embedding and `patch_norm`): a timm subclass that adds them as the original code did is the
# reference; config.json and the weights are written directly (timm cannot load them back).
CUSTOM_SWIN = {
    # grayscale 24x24, 3x3 patches, per-stage windows and mlp ratios; absolute position
    # embedding, no patch norm; stage 1 has 3 blocks (shifted block between two plain ones)
    "swin_ape_nonorm": dict(img_size=24, patch_size=3, in_chans=1, embed_dim=10, depths=(1, 3),
                            num_heads=(2, 5), window_size=[4, 2], mlp_ratio=[2.0, 3.0], num_classes=3),
}

IMAGES = ["photo", "small_odd", "gray", "rgba"]



@contextlib.contextmanager
def quiet():
    """Silences the official constructors' prints ("adopt ... encoder", "## diff vit pruning
    method") and timm's deprecation warnings (shared by the official-code fixture scripts)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield

def spread_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "fc_norm.weight", "norm_pre.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".gamma"):
                p.copy_(0.5 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and "token" not in name and "pos_embed" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))


def make_images(photo):
    d = ROOT / "images"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if photo:
        im = Image.open(photo).convert("RGB")
        im.resize((im.width // 4, im.height // 4), Image.BICUBIC).save(d / "photo.png")
    yy, xx = np.mgrid[0:23, 0:37]
    arr = np.stack([xx * 7, yy * 11, (xx + yy) * 5], -1) % 256
    arr = (arr + rng.integers(0, 40, arr.shape)) % 256
    Image.fromarray(arr.astype(np.uint8)).save(d / "small_odd.png")
    g8 = ((np.add.outer(np.arange(90), np.arange(70)) * 3) % 256).astype(np.uint8)
    Image.fromarray(g8, "L").save(d / "gray.png")
    # The same picture as 16-bit (v * 257): decodes to exactly gray.png.
    Image.fromarray(g8.astype(np.uint16) * 257).save(d / "gray16.png")
    rgba = np.concatenate([rng.integers(0, 256, (50, 64, 3)), rng.integers(0, 256, (50, 64, 1))], -1)
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(d / "rgba.png")
    # A JPEG whose EXIF says "rotate 90 CW to display" (orientation 6): stored 60x40, shown 40x60.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)).save(d / "exif_rot.jpg", exif=exif.tobytes())
    # Corrupt inputs for the CLI error tests.
    (d / "truncated.png").write_bytes((d / "small_odd.png").read_bytes()[:200])
    (d / "not_an_image.png").write_bytes(b"this is text, not a PNG\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", help="a photo to bundle (e.g. matplotlib's grace_hopper.jpg)")
    ap.add_argument("--train-only", action="store_true", help="only (re)write train_reference.safetensors")
    ap.add_argument("--only", help="comma-separated fixture names to (re)write (default: all)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    torch.manual_seed(0)
    if only is None:
        make_images(args.photo)
    for seed, (name, (arch, margs, dtype)) in enumerate(MODELS.items()):
        if only is not None and name not in only:
            continue
        model = timm.create_model(arch, pretrained=False, **margs).eval()
        spread_(model, seed + 1)
        if name == "vit_f16_in1k":
            model.pretrained_cfg = dict(model.pretrained_cfg, interpolation="bilinear", crop_pct=0.875)
        out = ROOT / name
        save_for_hf(model.to(dtype), out, model_args=margs, safe_serialization=True)
        # Reload with timm's own hub-folder loader: the reference is what a user gets.
        model = timm.create_model(f"local-dir:{out}", pretrained=True).float().eval()
        write_reference(model, name, seed, out)
    for k, (name, margs) in enumerate(CUSTOM_SWIN.items()):
        if only is not None and name not in only:
            continue
        make_custom_swin(name, margs, 50 + k)
    make_train_references(only)
    if only is None or "preset_tables" in only:
        make_preset_tables()


SWIN_PRESETS = ["swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224", "swin_base_patch4_window7_224",
                "swin_base_patch4_window12_384", "swin_large_patch4_window7_224", "swin_large_patch4_window12_384",
                "swin_s3_tiny_224", "swin_s3_small_224", "swin_s3_base_224"]


def make_preset_tables():
    """tests/fixtures/preset_tables.json: every checkpoint tensor (name, shape) of each stock Swin
    preset as timm builds it (meta device: no weights), and its pretrained_cfg preprocessing."""
    out = {}
    for name in SWIN_PRESETS:
        m = timm.create_model(name, pretrained=False, device="meta")
        c = m.pretrained_cfg
        out[name] = {"tensors": [[k, list(v.shape)] for k, v in m.state_dict().items()],
                     "input_size": list(c["input_size"]), "crop_pct": c["crop_pct"], "mean": list(c["mean"]),
                     "std": list(c["std"]), "interpolation": c["interpolation"]}
    (ROOT / "preset_tables.json").write_text(json.dumps(out))
    counts = ", ".join(f"{k} ({len(v['tensors'])} tensors)" for k, v in out.items())
    print(f"preset tables: {counts}")


def write_reference(model, name, seed, out):
    dcfg = resolve_data_config({}, model=model)
    tf = create_transform(**dcfg)
    c, h, w = dcfg["input_size"]
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(100 + seed))
    ref = {"input": x}
    with torch.no_grad():
        ref["logits"] = model(x)
        for img in IMAGES:
            p = ROOT / "images" / f"{img}.png"
            if p.exists():
                mode = "L" if c == 1 else "RGB"
                t = tf(Image.open(p).convert(mode)).unsqueeze(0)
                ref[f"image.{img}"] = model(t)[0]
                ref[f"tensor.{img}"] = t[0]
    save_file({k: v.contiguous() for k, v in ref.items()}, out / "reference.safetensors")
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, data config {dcfg}, "
          f"max |logit| {ref['logits'].abs().max():.3f}")


def swin_ape(ape=False, patch_norm=True, **kwargs):
    """timm's SwinTransformer with the original repo's `ape` and `patch_norm` options."""
    from timm.models.swin_transformer import SwinTransformer

    class SwinApe(SwinTransformer):
        def __init__(self):
            super().__init__(**kwargs)
            gh, gw = self.patch_embed.grid_size
            if ape:
                self.absolute_pos_embed = torch.nn.Parameter(torch.zeros(1, gh * gw, self.embed_dim))
            if not patch_norm:
                self.patch_embed.norm = torch.nn.Identity()

        def forward_features(self, x):
            x = self.patch_embed(x)
            if ape:
                x = x + self.absolute_pos_embed.view(1, *x.shape[1:])
            x = self.layers(x)
            return self.norm(x)

    return SwinApe()


def make_custom_swin(name, margs, seed):
    import copy
    model = swin_ape(ape=True, patch_norm=False, **margs).eval()
    spread_(model, seed)
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if "relative_position_index" not in k
               and "attn_mask" not in k}, out / "model.safetensors", metadata={"format": "pt"})
    cfg = copy.deepcopy(model.pretrained_cfg) if getattr(model, "pretrained_cfg", None) else {}
    c = margs.get("in_chans", 3)
    size = margs["img_size"]
    cfg.update(input_size=[c, size, size], interpolation="bicubic", crop_pct=0.9, crop_mode="center",
               mean=[0.5] * c, std=[0.25] * c, num_classes=margs["num_classes"])
    args = {k: (list(v) if isinstance(v, tuple) else v) for k, v in margs.items()}
    args.update(ape=True, patch_norm=False)
    config = {"architecture": "swin_tiny_patch4_window7_224", "num_classes": margs["num_classes"],
              "num_features": model.num_features, "global_pool": "avg", "model_args": args,
              "pretrained_cfg": {k: v for k, v in cfg.items() if k in
                                 ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std",
                                  "num_classes")}}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    model.pretrained_cfg = config["pretrained_cfg"]
    write_reference(model, name, seed, out)


# ---------------------------------------------------------------------------
# Training references: loss and every parameter gradient for a fixed batch.
# For each model below, train_reference.safetensors holds
#   input [2, C, H, W] (the reference input), target [2] (as f32), loss [1],
#   grad.<param name> for every parameter,
# with timm's LabelSmoothingCrossEntropy(smoothing=0.1), model in train mode
# (dropout and drop-path off, so train == eval numerics).
TRAIN_MODELS = {"vit_plain": [3, 7], "deit_distilled": [1, 5], "vit_avg_reg_ls": [0, 4],
                "swin_2stage": [1, 3], "swin_3stage_pad": [0, 5]}


def reference_with_cfg(model, pcfg, x, out):
    """reference.safetensors for a model outside timm: input x, logits, and image.<name> logits and
    tensor.<name> inputs for the PNGs, preprocessed by timm's eval transform built from pcfg (a
    pretrained_cfg dict). Shared by make_hvt_fixtures.py and make_t2t_fixtures.py; returns the dict."""
    c, h, w = pcfg["input_size"]
    tf = create_transform(input_size=tuple(pcfg["input_size"]), interpolation=pcfg["interpolation"],
                          crop_pct=pcfg["crop_pct"], crop_mode=pcfg["crop_mode"], mean=tuple(pcfg["mean"]),
                          std=tuple(pcfg["std"]))
    ref = {"input": x}
    with torch.no_grad():
        ref["logits"] = model(x)
        for img in IMAGES:
            t = tf(Image.open(ROOT / "images" / f"{img}.png").convert("RGB")).unsqueeze(0)
            assert t.shape == (1, c, h, w)
            ref[f"image.{img}"] = model(t)[0]
            ref[f"tensor.{img}"] = t[0]
    save_file({k: v.contiguous() for k, v in ref.items()}, out / "reference.safetensors")
    return ref


def train_reference(model, x, t):
    """The training references of a model in train mode (dropout off) for a batch x, targets t:
    input, target (f32), loss [1], grad.<name> for every parameter that requires grad, and after
    three AdamW steps (lr 2e-3, wd 0.05, betas (0.9, 0.999), eps 1e-8; timm's weight-decay groups
    with the model's no_weight_decay()) adamw.losses [3] and adamw.step3.<name>. Shared by
    make_hvt_fixtures.py and make_t2t_fixtures.py. Returns (references, first loss)."""
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import param_groups_weight_decay
    loss = LabelSmoothingCrossEntropy(smoothing=0.1)(model(x), t)
    loss.backward()
    ref = {"input": x, "target": t.float(), "loss": loss.detach().reshape(1)}
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=model.no_weight_decay())
    ref.update(grads_and_adamw(model, groups, lambda: LabelSmoothingCrossEntropy(smoothing=0.1)(model(x), t)))
    return ref, loss


def official_pretrained_cfg(c, s, crop_pct, num_classes):
    """timm's pretrained_cfg for an official eval transform: bicubic resize of the shorter side to
    floor(s / crop_pct), center crop to s x s, ImageNet mean / std (the official-code families)."""
    return {"input_size": [c, s, s], "interpolation": "bicubic", "crop_pct": crop_pct, "crop_mode": "center",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "num_classes": num_classes}


def write_hub_config(out, architecture, num_classes, margs, pcfg):
    """config.json of a fixture folder in the hub layout vitrine reads."""
    config = {"architecture": architecture, "num_classes": num_classes, "model_args": dict(margs),
              "pretrained_cfg": pcfg}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def grads_and_adamw(model, groups, step_loss):
    """After a backward: grad.<name> of every parameter that requires grad (the others must
    have none), then three torch AdamW steps (lr 2e-3, betas (0.9, 0.999), eps 1e-8, the weight
    decay of `groups`) on the loss `step_loss()` computes: adamw.losses [3] and
    adamw.step3.<name>. Shared by every family's training reference."""
    ref = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            ref[f"grad.{n}"] = p.grad.detach().clone()
        else:
            assert p.grad is None, n
    model.zero_grad()
    opt = torch.optim.AdamW(groups, lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = step_loss()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    ref["adamw.losses"] = torch.tensor(losses)
    for n, p in model.named_parameters():
        if p.requires_grad:
            ref[f"adamw.step3.{n}"] = p.detach().clone()
    return ref


def make_train_references(only=None):
    from safetensors.torch import load_file
    for name, target in TRAIN_MODELS.items():
        if only is not None and name not in only:
            continue
        out = ROOT / name
        # Swin defaults to drop_path_rate 0.1: off, so train mode is deterministic.
        model = timm.create_model(f"local-dir:{out}", pretrained=True, drop_path_rate=0.0).float().train()
        x = load_file(out / "reference.safetensors")["input"]
        t = torch.tensor(target)
        ref, loss = train_reference(model, x, t)
        save_file({k: v.contiguous() for k, v in ref.items()}, out / "train_reference.safetensors")
        print(f"{name}: loss {loss.item():.6f}, {len(ref) - 3} gradients")


if __name__ == "__main__" and __import__("sys").argv[1:2] == ["--train-only"]:
    make_train_references(set(__import__("sys").argv[2].split(",")) if len(__import__("sys").argv) > 2 else None)

if __name__ == "__main__" and __import__("sys").argv[1:2] != ["--train-only"]:
    main()
