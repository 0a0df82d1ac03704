#!/usr/bin/env python3
"""Writes tests/fixtures/dvt_*/: tiny DVT cascades ("Not All Images are Worth 16x16 Words: Dynamic
Transformers for Efficient Image Recognition", NeurIPS 2021) built with the OFFICIAL model code
vendored under scripts/dvt_official/ (blackfeather-wang/Dynamic-Vision-Transformer @
22cc8951af0db59acdd414ba35dd87d6d793c868: models/{t2t_vit,transformer_block,token_performer,
token_transformer}.py verbatim for the T2T variant; deit/models_deit.py and the repository's
bundled timm 0.3.2 files deit/vision_transformer.py, deit/registry.py, deit/layers/{helpers,drop,
weight_init}.py for the DeiT variant, verbatim but for import lines (see dvt_official/README.md);
dynamic_threshold.py holding inference.py's dynamic_find_threshold / dynamic_evaluate verbatim,
cpu_shim.py the one CPU shim), and the official module's outputs for them. Run by hand, never in CI:

    pip install --target /tmp/pyref torch timm safetensors pillow numpy
    PYTHONPATH=/tmp/pyref python3 scripts/make_dvt_fixtures.py [--only dvt_t2t_tiny,dvt_deit_tiny]

(written with torch 2.15.0 and timm 1.0.31 on one CPU thread; tests/fixtures/images/*.png must
exist, see scripts/make_fixtures.py. The spec is /work/shared/kin/dvt.md.)

The model is the official wrapper class DVT_T2t_vit_12_model (its forward unchanged: exit 1 =
less_less_token, exit 2 = less_token reusing exit 1's features and relations, exit 3 =
normal_token reusing exit 2's). Its __init__ builds the stages through factories that hard-code
the T2T-ViT-12 widths (embed_dim 256, depth 12, ...), so the fixture instead runs nn.Module.__init__
and sets the same three attributes (and feature_reuse = relation_reuse = True, as the registered
DVT_T2t_vit_12 does) to official T2T_ViT stages built from the tiny keyword arguments in config.json;
state_dict names are therefore exactly the official ones.

dvt_deit_tiny is the same for the official DeiT variant: the wrapper DVT_Deit_small_model
(models_deit.py, forward unchanged) whose three attributes are set to the bundled timm 0.3.2's DVT-
modified VisionTransformer, built with the keywords models_deit.py's factories deit_small_less_less_
token / deit_small_less_token / deit_small pass (patch_size 32 / 23 / 16, qkv_bias=True,
norm_layer=partial(nn.LayerNorm, eps=1e-6)) but tiny widths (the factories hard-code DeiT-S's 384 /
12 / 6 / 4). Its stage objects in config.json carry "backbone": "deit" (the T2T objects have no
"backbone" key; they have "tokens_type"). The bundled timm 0.3.2 is imported as the package `deit`
(scripts/dvt_official/deit/), so that it does not shadow pip timm. What differs from the T2T stages:
the tokenizer is one Conv2d (PatchEmbed: k = s = patch_size for 16 and 32; for ANY other patch_size
the hard-coded Conv2d(k23, s23, p3), num_patches 100), pos_embed is learned (trainable, trunc-normal
init) instead of a frozen sinusoid, qkv has a bias, every LayerNorm (norm1, norm2, norm,
feature_resuse_mlp.0) has eps 1e-6; the reuse code is the same math (the relation resampling cuts
the B*HD batch into 4 and then 8 chunks instead of 2 and 2; chunks may be empty at B = 1, which
torch handles; proved irrelevant by the fp64 checks).

IMAGE SIZE: only 224 x 224 works (225 and 226 too), not a small image. The official code hard-codes
the grids: T2T_module sets num_patches = (img_size // 32)^2, 100 and (img_size // 16)^2 for the
three tokenizers (pos_embed lengths 50 / 101 / 197 at 224), and the reuse resampling is
nearest-to-14x14-then-pool-to-10x10 when a stage has exactly 100 tokens, else nearest-to-20x20-then-
pool-to-14x14 (Block.forward, T2T_ViT.__init__), so the token grids must be 7x7 -> 10x10 -> 14x14:
  stage 0 'performer_less_less_token': 224 -Unfold(14, s8, p3)-> 28x28 (588-dim) -> 14x14 -> 7x7
  stage 1 'performer_less_token':      224 -Unfold(11, s6, p5)-> 38x38 (363-dim) -> 19x19 -> 10x10
  stage 2 'performer':                 224 -Unfold(7, s4, p2)->  56x56 (147-dim) -> 28x28 -> 14x14
and for DeiT (PatchEmbed hard-codes num_patches = 100 for the k23 conv):
  stage 0 patch_size 32: 224 -Conv2d(k32, s32)->     7x7
  stage 1 patch_size 23: 224 -Conv2d(k23, s23, p3)-> 10x10 (230 = 10 * 23: the padding is covered)
  stage 2 patch_size 16: 224 -Conv2d(k16, s16)->     14x14
Everything else is tiny. Because of the 224 inputs the folder is ~6.4 MB (dvt_t2t_tiny) / ~7.5 MB
(dvt_deit_tiny: its patch convs, 3 * (32^2 + 23^2 + 16^2) * C weights, are 60% of its 216k params
and appear three times: model, grad, adamw.step3), not ~1.5 MB (the four tensor.<name> alone are
2.4 MB); to halve the two `input` tensors they are stored as F16: every
value was rounded to f16 first and the references were computed from exactly those values (the f32
upcast), so a loader converting F16 -> f32 (vitrine::weights::Weights does) gets the exact input.

Notation: B = 4 (the mixed batch), K = num_classes, C = embed_dim, E = 3 exits (e = 0, 1, 2 is the
0-based exit index = stage index), H = W = 224. Every tensor is float32 unless said otherwise
(integers such as exit indices are stored as exact f32); safetensors metadata is {"format": "pt"}
(a second key would make reruns differ byte-wise: safetensors writes the map in hash order).

Each fixture folder gets
  config.json              {"architecture": "dvt", "num_classes": K, "model_args": {"stages": [three
                           objects, one per exit, each the official T2T_ViT constructor keywords:
                           img_size, tokens_type ("performer_less_less_token", "performer_less_token",
                           "performer"), in_chans, num_classes, embed_dim, depth, num_heads,
                           mlp_ratio, qkv_bias, qk_scale, token_dim, feature_reuse (false, true, true),
                           relation_reuse (false, true, true); for dvt_deit_tiny the DeiT
                           VisionTransformer keywords instead: "backbone": "deit", img_size,
                           patch_size (32, 23, 16), patch_padding (0, 3, 0: not a constructor keyword,
                           the padding PatchEmbed derives from patch_size; the conv kernel and stride
                           are patch_size), in_chans, num_classes, embed_dim, depth, num_heads,
                           mlp_ratio, qkv_bias (true), qk_scale (null), eps (1e-6: stands for
                           norm_layer=partial(nn.LayerNorm, eps=1e-6)), feature_reuse, relation_reuse
                           (false, true, true)]}, "exit_thresholds": [T0, T1] (exit e
                           < 2 is taken when max softmax(logits_e) >= T_e; the last exit always
                           answers), "pretrained_cfg": eval preprocessing as the official
                           inference.py does it (Resize(256, bicubic), CenterCrop(224), ImageNet
                           mean / std = timm's bicubic, crop_pct 0.875, crop_mode center)}
  model.safetensors        the official wrapper's state_dict (official names: less_less_token.*,
                           less_token.*, normal_token.*; F32), including the tensors the official
                           code keeps frozen (requires_grad False), which are NOT regenerable by a
                           consumer: {s}.pos_embed [1, 50|101|197, C] (the sinusoid table) and
                           {s}.tokens_to_token.attention{1,2}.w [m, token_dim] (the Performer's
                           random features, m = int(token_dim * 0.5)). No buffers: the official
                           modules register none. dvt_deit_tiny: {s}.cls_token, {s}.pos_embed
                           [1, 50|101|197, C] (learned), {s}.patch_embed.proj.weight [C, 3, 32|23|16,
                           32|23|16] / .bias [C], blocks.{i}.attn.qkv.bias [3C], otherwise the names of
                           the T2T stages without tokens_to_token.*; nothing is frozen.
  reference.safetensors    eval mode (all three exits computed for every image, as the official
                           inference.py does; the exit rule applied afterwards):
      input                    [B, 3, H, W]  F16 (see above), the mixed batch: seeded randn * 0.5 plus
                                             a per-image smooth colour field (bilinear from 4x4), rows
                                             reordered so that the exits are `exit` below
      exit_logits.<e>          [B, K]        the official logits of exit e (the wrapper's e-th output)
      conf                     [B, E]        max_c softmax(exit_logits.<e>)[b, c] (inference.py:
                                             F.softmax(o, 1) then .max(dim=2)), column e = exit e
      exit                     [B]           the exit taken: the first e < 2 with conf[b, e] >= T_e,
                                             else 2 (inference.py dynamic_evaluate's rule)
      logits                   [B, K]        exit_logits.<exit[b]>[b]: the answer of the exit taken
      exit_thresholds          [2]           T0, T1 as in config.json (f32)
      feature.0                [B, 50, C]    exit 0's last block output before its final norm: the
                                             tensor exit 1 reuses (debugging aid)
      feature.1                [B, 101, C]   the same for exit 1, reused by exit 2
      image.<name>             [K]           logits of the exit taken for tests/fixtures/images/
                                             <name>.png, run alone (batch 1)
      tensor.<name>            [3, H, W]     its preprocessed input (timm's eval transform from
                                             pretrained_cfg: bicubic resize of the shorter side to
                                             floor(224 / 0.875) = 256, center crop 224, ToTensor,
                                             Normalize)
      image.<name>.exit_logits.<e>  [K]      logits of exit e for that image
      image.<name>.conf        [E]           as conf, for that image
      image.<name>.exit        [1]           as exit, for that image
                           <name> in photo, small_odd, gray, rgba. Every |conf - T_e| that decides
                           an exit (conf[., 0] vs T0 for every image, conf[., 1] vs T1 for those
                           that do not exit at 0) is >= 1e-3, batch and PNGs alike (asserted), so
                           the decisions are unambiguous in f32. The thresholds are chosen by the
                           script (midpoints rounded to 4 decimals, maximizing that gap; the weight
                           seed counts up until it is >= 5e-3) and the rows reordered so that the
                           first three exit at 1, 0, 2: for dvt_t2t_tiny T = [0.4017, 0.5155],
                           exit = [1, 0, 2, 0] (after exit 0 rows 0 and 2 go on, after exit 1 row
                           2 alone), PNG exits photo 0, small_odd 1, gray 0, rgba 0, min gap 0.026;
                           for dvt_deit_tiny T = [0.4596, 0.5663], exit = [1, 0, 2, 0] (same
                           pattern), PNG exits photo 1, small_odd 2, gray 0, rgba 0, min gap 0.0136.
  train_reference.safetensors
                           train mode, every dropout / drop path 0 (the Performer's hard-coded
                           Dropout(0.1) `dp` and `mlp.3` set to p = 0; drop_rate = attn_drop_rate =
                           drop_path_rate = 0; DeiT has no hard-coded dropout), hard targets, no
                           mixup:
      input                    [B, 3, H, W]  F16, the same batch as in reference.safetensors
      target                   [B]           class indices (f32)
      loss                     [1]           the official main.py loss: loss.exit0 + loss.exit1 +
                                             loss.exit2, equal weights, nothing detached between the
                                             stages (exit 2's loss reaches stage 0 through the reuse
                                             paths)
      loss.exit<e>             [1]           timm LabelSmoothingCrossEntropy(0.1)(exit_logits.<e>,
                                             target): main.py's criterion is SoftTargetCrossEntropy
                                             on Mixup targets smoothed by 0.1; without mixup that is
                                             the same function of the logits
      grad.<param>             like param    d loss / d param for every parameter with requires_grad
                                             (every state_dict name except {s}.pos_embed and
                                             {s}.tokens_to_token.attention{1,2}.w; dvt_deit_tiny:
                                             every state_dict name, pos_embed included)
      adamw.losses             [3]           the loss before each of three torch.optim.AdamW steps
                                             (lr 2e-3, wd 0.05, betas (0.9, 0.999), eps 1e-8) on the
                                             same batch
      adamw.step3.<param>      like param    the trainable params after the three steps
                           Weight-decay groups as the official main.py builds them (timm
                           create_optimizer = param_groups_weight_decay): no decay for 1-d params
                           and names ending in ".bias"; everything else decays, INCLUDING the three
                           {s}.cls_token [1, 1, C]: create_optimizer asks the model passed to it
                           (the DVT wrapper) for no_weight_decay(), and the wrapper has none (only
                           the inner T2T_ViT stages do), so nothing is skipped by name. Frozen
                           params are not in the optimizer (timm skips requires_grad False).
                           dvt_deit_tiny: the same rule, so {s}.cls_token AND the learned
                           {s}.pos_embed decay although the inner DeiT VisionTransformer's
                           no_weight_decay() names both (the wrapper, DVT_Deit_small_model, has no
                           no_weight_decay; the bundled timm 0.3.2 create_optimizer / add_weight_decay
                           is the same rule as pip timm's param_groups_weight_decay used here):
                           80 no-decay (LN weights, biases) / 48 decay tensors.
  calibration.safetensors  the official threshold rule (inference.py dynamic_find_threshold, vendored
                           verbatim) on n = 20 synthetic samples: per-exit logits 1.0 / 1.6 / 2.2 x
                           seeded randn [n, K] (later exits more confident), softmax; no ties:
      calib.conf               [n, E]        max softmax per sample and exit, the only thing the
                                             rule reads (the official function gets the full
                                             softmax [E, n, K] and takes .max(dim=2))
      calib.pred               [n, E]        argmax per sample and exit (for the accuracy only)
      calib.target             [n]           seeded labels (for the accuracy only)
      calib.p                  [59]          the official budget rows p = 1..59 (inference.py main)
      calib.exit_fractions     [59, E]       inference.py L117-119: q = (p / 20)^[1, 2, 3] in f32
                                             (torch.exp(torch.log(p / 20) * [1, 2, 3])), divided by
                                             its sum; the `p` argument of dynamic_find_threshold
      calib.out_n              [59, 2]       floor(n * q[e]) (f32 product) for e = 0, 1: the rank the
                                             official loop looks for among the not-yet-exited
                                             samples; 0 means "never reached", T_e stays 1e8
      calib.thresholds         [59, E]       dynamic_find_threshold(softmax, target, q) for every row:
                                             T_e for e < 2 (1e8 where out_n = 0), T_2 = -1e8
      calib.flops              [E]           GFLOPs to exit at e (cumulative over stages 0..e, batch 1)
                                             for THIS fixture's model: torch.utils.flop_counter's
                                             count / 2 (multiply-adds, the paper's "FLOPs") over the
                                             official forward: every linear, matmul, einsum and 1x1
                                             conv including the reuse MLPs / convs (dvt_deit_tiny:
                                             and the k x k patch conv); not softmax,
                                             LayerNorm, GELU, exp, unfold, interpolate or pooling.
                                             The official code never counts: it reads
                                             checkpoint['flops'], so this is only a fixed input.
      calib.expected_flops     [59]          inference.py dynamic_evaluate(softmax, target, flops,
                                             thresholds[row]) expected GFLOPs per sample on the same n
      calib.accuracy           [59]          its accuracy (%) on the same n
      calib.budget             [1]           a budget in GFLOPs between two rows' expected_flops
      calib.row                [1]           the p (1..59) the budget selects: the largest p whose
                                             expected_flops <= budget. NOT official code (inference.py
                                             has no budget search: it reports the whole 59-row curve);
                                             a proposed rule for `vitrine calibrate --budget`
      calib.budget_thresholds  [E]           calib.thresholds[row - 1]
Weights are spread (make_fixtures.py's spread_ applied per stage and again to each tokens_to_token,
because every wrapper name contains "token", which spread_ treats like cls_token; the reuse
LayerNorms feature_resuse_mlp.0.weight get 1 + 0.2 randn; the Performer kqv weights are scaled by
0.25 so that its denominator stays O(1), as in make_t2t_fixtures.py), not the official init. The
frozen pos_embed / Performer w keep exactly the official constructor's values. dvt_deit_tiny:
spread_ per stage (cls_token and the learned pos_embed 0.5 randn, the patch conv randn * 1.5 /
sqrt(3 k^2)) and the reuse LayerNorms 1 + 0.2 randn; no frozen tensors. The calibration samples
depend only on the weight seed (700 + seed), so with seed 1 both fixtures share calib.conf / pred
/ target / thresholds and differ in the flops-dependent entries.

Each fixture is cross-checked against an independent fp64 re-derivation from the spec (/work/
shared/kin/dvt.md sections 2-4: the resampling written as kron(R1, R1) matrices; the DeiT patch
conv as zero-pad + unfold + matmul) from the state_dict alone, on all three exits (vs the f32
references: < 1e-4). The DeiT stages also run in fp64 (T2T's Performer casts to f32), and there the
official modules and the re-derivation agree to < 1e-12 (5e-15 measured).
"""
import argparse
import json
import math
import pathlib
import sys
import warnings
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_fixtures import reference_with_cfg, spread_, quiet  # noqa: E402  (shared with the timm fixtures)

ROOT = HERE.parent / "tests" / "fixtures"
OFFICIAL = HERE / "dvt_official"

IMAGENET_MEAN = [0.485, 0.456, 0.406]  # inference.py transforms.Normalize
IMAGENET_STD = [0.229, 0.224, 0.225]
CROP_PCT = 0.875  # inference.py: Resize(256, interpolation=3), CenterCrop(224)
IMG = 224  # the only size the official grids allow (see the docstring)
KQV_SCALE = 0.25
IMAGES = ["photo", "small_odd", "gray", "rgba"]
STAGE_TYPES = ["performer_less_less_token", "performer_less_token", "performer"]
STAGE_ATTRS = ["less_less_token", "less_token", "normal_token"]
GRIDS = [[28, 14, 7], [38, 19, 10], [56, 28, 14]]
# DeiT stages (models_deit.py deit_small_less_less_token / deit_small_less_token / deit_small): the
# patch_size each factory passes to VisionTransformer, and the Conv2d padding PatchEmbed then uses
# (patch_size 16 or 32: Conv2d(k = s = patch_size); any other: hard-coded Conv2d(k23, s23, p3)).
DEIT_PATCH = [32, 23, 16]
DEIT_PADDING = [0, 3, 0]
DEIT_GRIDS = [7, 10, 14]
DEIT_EPS = 1e-6  # the factories' norm_layer=partial(nn.LayerNorm, eps=1e-6)
MIN_GAP = 1e-3
B = 4
N_CALIB = 20


def stages(K, C, depth, heads, mlp_ratio, token_dims):
    return [dict(img_size=IMG, tokens_type=tt, in_chans=3, num_classes=K, embed_dim=C, depth=depth,
                 num_heads=heads, mlp_ratio=mlp_ratio, qkv_bias=False, qk_scale=None, token_dim=td,
                 feature_reuse=e > 0, relation_reuse=e > 0)
            for e, (tt, td) in enumerate(zip(STAGE_TYPES, token_dims))]


def deit_stages(K, C, depth, heads, mlp_ratio):
    """The keyword arguments models_deit.py's three factories pass to VisionTransformer, tiny widths;
    "eps" stands for norm_layer=partial(nn.LayerNorm, eps), "patch_padding" states the padding that
    PatchEmbed derives from patch_size, "backbone": "deit" tells these stages from the T2T ones."""
    return [dict(backbone="deit", img_size=IMG, patch_size=ps, patch_padding=pad, in_chans=3, num_classes=K,
                 embed_dim=C, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio, qkv_bias=True, qk_scale=None,
                 eps=DEIT_EPS, feature_reuse=e > 0, relation_reuse=e > 0)
            for e, (ps, pad) in enumerate(zip(DEIT_PATCH, DEIT_PADDING))]


def is_deit(stage_args):
    return stage_args[0].get("backbone") == "deit"


# name -> (stage keyword arguments, train targets, first weight seed)
# Stages share embed_dim (feature reuse feeds C-wide tokens into the next stage's LN(C)) and
# num_heads * depth (relation reuse concatenates all heads of all blocks as conv channels).
# token_dim differs per stage on purpose (the tokenizers are per stage): m = 4, 3, 4.
FIXTURES = {
    # 24 wide, 3 heads x 8 (scale 8^-0.5), depth 2 (HD = 6 relation channels), mlp 2; 5 classes.
    "dvt_t2t_tiny": (stages(K=5, C=24, depth=2, heads=3, mlp_ratio=2.0, token_dims=[8, 6, 8]), [1, 4, 0, 2], 1),
    # the same widths on the official DeiT stages (qkv bias, LN eps 1e-6, learned pos_embed).
    "dvt_deit_tiny": (deit_stages(K=5, C=24, depth=2, heads=3, mlp_ratio=2.0), [3, 0, 2, 4], 1),
}


def official():
    if str(OFFICIAL) not in sys.path:
        sys.path.insert(0, str(OFFICIAL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm.models.layers / helpers / registry deprecation
        import models.t2t_vit as t2t_vit
        import deit.models_deit as models_deit  # the bundled timm 0.3.2 lives in deit/, not as `timm`
        import dynamic_threshold
        import cpu_shim
    assert pathlib.Path(t2t_vit.__file__).resolve().parent.parent == OFFICIAL, t2t_vit.__file__
    assert pathlib.Path(models_deit.__file__).resolve().parent.parent == OFFICIAL, models_deit.__file__
    import timm
    assert "dvt_official" not in str(pathlib.Path(timm.__file__).resolve()), timm.__file__  # pip timm
    return {"t2t": t2t_vit, "deit": models_deit}, dynamic_threshold, cpu_shim


def build(models, stage_args):
    if is_deit(stage_args):
        return build_deit(models["deit"], stage_args)
    return build_t2t(models["t2t"], stage_args)


def build_deit(models_deit, stage_args):
    """The official DVT_Deit_small_model with the three stages built as its factories build them
    (VisionTransformer(patch_size=32 / 23 / 16, ..., qkv_bias=True, norm_layer=partial(nn.LayerNorm,
    eps=1e-6), **kwargs)) but with the tiny widths of stage_args (the factories hard-code DeiT-S's)."""
    m = models_deit.DVT_Deit_small_model.__new__(models_deit.DVT_Deit_small_model)
    nn.Module.__init__(m)
    m.feature_reuse = True
    m.relation_reuse = True
    with quiet():
        for attr, a in zip(STAGE_ATTRS, stage_args):
            kw = {k: v for k, v in a.items() if k not in ("backbone", "patch_padding", "eps")}
            st = models_deit.VisionTransformer(norm_layer=partial(nn.LayerNorm, eps=a["eps"]), **kw)
            conv = st.patch_embed.proj
            k = a["patch_size"] if a["patch_size"] in (16, 32) else 23
            assert conv.kernel_size == (k, k) and conv.stride == (k, k), conv
            assert conv.padding == (a["patch_padding"],) * 2, conv
            setattr(m, attr, st)
    return m


def build_t2t(t2t_vit, stage_args):
    """The official DVT_T2t_vit_12_model with the three stages built from stage_args (see the
    docstring: its own __init__ would build the full-size T2T-ViT-12 stages)."""
    m = t2t_vit.DVT_T2t_vit_12_model.__new__(t2t_vit.DVT_T2t_vit_12_model)
    nn.Module.__init__(m)
    m.feature_reuse = True
    m.relation_reuse = True
    with quiet():
        for attr, a in zip(STAGE_ATTRS, stage_args):
            setattr(m, attr, t2t_vit.T2T_ViT(**a))
    return m


def frozen(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


def spread_deit_(model, seed):
    """DeiT stages: spread_ per stage (names relative to the stage, so only cls_token counts as a
    token: 0.5 randn, as pos_embed, which is learned here); the reuse LayerNorms 1 + 0.2 randn."""
    for e, attr in enumerate(STAGE_ATTRS):
        spread_(getattr(model, attr), seed + 10 * e)
    g = torch.Generator().manual_seed(seed + 5000)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("feature_resuse_mlp.0.weight"):  # LayerNorm
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))


def spread_dvt_(model, seed):
    keep = frozen(model)
    for e, attr in enumerate(STAGE_ATTRS):
        st = getattr(model, attr)
        spread_(st, seed + 10 * e)
        spread_(st.tokens_to_token, seed + 10 * e + 1000)  # names relative to the T2T module
    g = torch.Generator().manual_seed(seed + 5000)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in keep:
                p.copy_(keep[n])
            elif n.endswith(".kqv.weight"):
                p.mul_(KQV_SCALE)
            elif n.endswith("feature_resuse_mlp.0.weight"):  # LayerNorm
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))


def set_train_no_dropout(model):
    model.train()
    if hasattr(model.less_less_token, "patch_embed"):
        # DeiT: every dropout is built from drop_rate = attn_drop_rate = 0, drop_path_rate = 0
        assert not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
        return
    for st in (getattr(model, a) for a in STAGE_ATTRS):
        for att in (st.tokens_to_token.attention1, st.tokens_to_token.attention2):
            att.dp.p = 0.0
            att.mlp[3].p = 0.0
    assert not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


# ---------------------------------------------------------------- independent fp64 forward

def sinusoid_f32(n_position, d_hid):
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    j = np.arange(d_hid)
    ang = pos / np.power(10000.0, 2 * (j // 2) / d_hid)
    tab = np.where(j % 2 == 0, np.sin(ang), np.cos(ang))
    return torch.from_numpy(tab).float().unsqueeze(0)


def soft_split(x, k, s, p):
    """nn.Unfold re-derived: tokens in raster order over output positions, features C x kh x kw."""
    Bx, C = x.shape[:2]
    xp = F.pad(x, (p, p, p, p))
    t = xp.unfold(2, k, s).unfold(3, k, s)  # (B, C, OH, OW, k, k)
    oh, ow = t.shape[2], t.shape[3]
    return t.permute(0, 2, 3, 1, 4, 5).reshape(Bx, oh * ow, C * k * k), oh


def resample_1d(n_in, up, n_out):
    """Nearest upsample n_in -> up (src = floor(dst * n_in / up)), then adaptive average pooling
    up -> n_out (bins [floor(i * up / n_out), ceil((i + 1) * up / n_out))): an (n_out x n_in) matrix."""
    near = torch.zeros(up, n_in, dtype=torch.float64)
    for d in range(up):
        near[d, (d * n_in) // up] = 1.0
    pool = torch.zeros(n_out, up, dtype=torch.float64)
    for i in range(n_out):
        a, b = (i * up) // n_out, -((-(i + 1) * up) // n_out)
        pool[i, a:b] = 1.0 / (b - a)
    return pool @ near


def independent_forward(sd, stage_args, x):
    """fp64 re-derivation of the cascade (spec sections 2-4) from the state_dict alone. DeiT stages:
    the tokenizer is the patch conv written as zero-pad + unfold(k = s = patch_size) + matmul, LN eps
    1e-6, qkv with bias; everything after the tokenizer is the same code for both backbones."""
    sd = {k: v.double() for k, v in sd.items()}
    x = x.double()
    Bx = x.shape[0]
    deit = is_deit(stage_args)
    eps = DEIT_EPS if deit else 1e-5
    unfold0 = {"performer_less_less_token": (14, 8, 3), "performer_less_token": (11, 6, 5), "performer": (7, 4, 2)}
    resize = {100: (14, 10), 196: (20, 14)}  # new token count -> (nearest size, pooled size)

    def ln(t, p):
        return F.layer_norm(t, (t.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps=eps)

    def lin(t, p, bias=True):
        return F.linear(t, sd[p + ".weight"], sd[p + ".bias"] if bias else None)

    def mlp(t, p):
        return lin(F.gelu(lin(t, p + ".fc1")), p + ".fc2")

    def performer(t, p, td):
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

    outs, feats, grids_seen = [], [], []
    F_prev, R_prev = None, None
    for a, attr in zip(stage_args, STAGE_ATTRS):
        P = attr + "."
        C, H, D = a["embed_dim"], a["num_heads"], a["depth"]
        if deit:
            k = a["patch_size"]  # kernel = stride; 23 with padding 3 for the 10x10 stage
            t, g = soft_split(x, k, k, a["patch_padding"])  # (B, g*g, 3*k*k), features (c, i, j)
            t = t @ sd[P + "patch_embed.proj.weight"].reshape(C, -1).T + sd[P + "patch_embed.proj.bias"]
            grids_seen.append([g])
        else:
            td = a["token_dim"]
            t, g = soft_split(x, *unfold0[a["tokens_type"]])
            grids = [g]
            for name in ("attention1", "attention2"):
                t = performer(t, P + "tokens_to_token." + name, td)
                t, g = soft_split(t.transpose(1, 2).reshape(Bx, td, g, g), 3, 2, 1)
                grids.append(g)
            grids_seen.append(grids)
            t = lin(t, P + "tokens_to_token.project")
        N = t.shape[1]
        t = torch.cat([sd[P + "cls_token"].expand(Bx, 1, C), t], 1) + sd[P + "pos_embed"]
        Rin = [None] * D
        Rm = None
        if F_prev is not None:
            s_prev = math.isqrt(F_prev.shape[1] - 1)
            up, s = resize[N]
            R1 = resample_1d(s_prev, up, s)
            Rm = torch.kron(R1, R1)  # (N, N')
        if R_prev is not None:
            A = torch.cat(R_prev, 1)  # (B, HD, n, n), channel i * H + h
            w0, b0 = sd[P + "relation_reuse_conv.0.weight"][:, :, 0, 0], sd[P + "relation_reuse_conv.0.bias"]
            w2, b2 = sd[P + "relation_reuse_conv.2.weight"][:, :, 0, 0], sd[P + "relation_reuse_conv.2.bias"]
            A = torch.einsum("oc,bcij->boij", w0, A) + b0[:, None, None]
            A = torch.einsum("oc,bcij->boij", w2, F.gelu(A)) + b2[:, None, None]
            new = A.new_zeros(Bx, A.shape[1], N + 1, N + 1)
            new[:, :, 0, 0] = A[:, :, 0, 0]
            new[:, :, 0, 1:] = A[:, :, 0, 1:] @ Rm.T
            new[:, :, 1:, 0] = (Rm @ A[:, :, 1:, 0:1])[..., 0]
            new[:, :, 1:, 1:] = Rm @ A[:, :, 1:, 1:] @ Rm.T
            Rin = list(new.chunk(D, 1))
        rels = []
        hd = C // H
        for i in range(D):
            p = P + f"blocks.{i}"
            qkv = lin(ln(t, p + ".norm1"), p + ".attn.qkv", bias=a["qkv_bias"])
            q, k, v = qkv.reshape(Bx, N + 1, 3, H, hd).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-2, -1)) * hd ** -0.5
            if Rin[i] is not None:
                att = att + Rin[i]
            rels.append(att)
            t = t + lin((att.softmax(-1) @ v).transpose(1, 2).reshape(Bx, N + 1, C), p + ".attn.proj")
            h = t
            if F_prev is not None:
                f = mlp(ln(F_prev, p + ".feature_resuse_mlp.0"), p + ".feature_resuse_mlp.1")[:, 1:]  # (B, N', 48)
                f = Rm @ f  # (B, N, 48)
                h = torch.cat([t, torch.cat([f.new_zeros(Bx, 1, 48), f], 1)], -1)
            t = t + mlp(ln(h, p + ".norm2"), p + ".mlp")
        outs.append(lin(ln(t, P + "norm")[:, 0], P + "head"))
        feats.append(t)
        F_prev, R_prev = t, rels
    return outs, feats, grids_seen


# ---------------------------------------------------------------- official forward helpers

def run_official(cpu_shim, model, x):
    with cpu_shim.cpu_cuda_noop():
        return model(x)


def stage_features(cpu_shim, model, x):
    """feature.0 / feature.1: the official stages called as the wrapper calls them."""
    with torch.no_grad(), cpu_shim.cpu_cuda_noop():
        _, f1, r1 = model.less_less_token(x, features_to_be_reused_list=None, relations_to_be_reused_list=None)
        _, f2, _ = model.less_token(x, features_to_be_reused_list=f1, relations_to_be_reused_list=r1)
    return f1[0], f2[0]


def confidences(outs):
    """inference.py generate_logits + dynamic_evaluate: softmax per exit, max over classes."""
    return torch.stack([F.softmax(o, 1).max(dim=1).values for o in outs], 1)  # [B, E]


def exits_under(conf, T):
    ex = torch.full((conf.shape[0],), 2, dtype=torch.long)
    for b in range(conf.shape[0]):
        for e in range(2):
            if conf[b, e].item() >= T[e]:
                ex[b] = e
                break
    return ex


def decision_gap(conf, T):
    """min over images of |conf - T| over the comparisons that decide its exit."""
    gaps = []
    for b in range(conf.shape[0]):
        gaps.append(abs(conf[b, 0].item() - T[0]))
        if conf[b, 0].item() < T[0]:
            gaps.append(abs(conf[b, 1].item() - T[1]))
    return min(gaps)


class EarlyExit(nn.Module):
    """The answer of the exit taken (what `classify` reports as logits): for reference_with_cfg."""

    def __init__(self, model, cpu_shim, T):
        super().__init__()
        self.model, self.cpu_shim, self.T = model, cpu_shim, T

    def forward(self, x):
        outs = run_official(self.cpu_shim, self.model, x)
        ex = exits_under(confidences(outs), self.T)
        return torch.stack([outs[e][b] for b, e in enumerate(ex.tolist())])


def choose_thresholds(conf_batch, conf_imgs):
    """Thresholds (rounded to 4 decimals) for which the batch takes every exit at least once,
    maximizing the smallest deciding gap over the batch and the PNGs."""
    best = None
    c0 = sorted(conf_batch[:, 0].tolist())
    for i in range(len(c0) - 1):
        t0 = round((c0[i] + c0[i + 1]) / 2, 4)
        surv = conf_batch[conf_batch[:, 0] < t0]
        c1 = sorted(surv[:, 1].tolist())
        for j in range(len(c1) - 1):
            t1 = round((c1[j] + c1[j + 1]) / 2, 4)
            T = [t0, t1]
            ex = exits_under(conf_batch, T)
            if set(ex.tolist()) != {0, 1, 2}:
                continue
            gap = min(decision_gap(conf_batch, T), decision_gap(conf_imgs, T))
            if best is None or gap > best[0]:
                best = (gap, T)
    return best


def mixed_batch(seed):
    g = torch.Generator().manual_seed(100 + seed)
    x = 0.5 * torch.randn(B, 3, IMG, IMG, generator=g)
    field = F.interpolate(torch.randn(B, 3, 4, 4, generator=g), size=(IMG, IMG), mode="bilinear", align_corners=False)
    return (x + field).half().float()  # exactly representable in f16: stored as F16


def png_tensors(pcfg):
    from PIL import Image
    from timm.data import create_transform
    tf = create_transform(input_size=tuple(pcfg["input_size"]), interpolation=pcfg["interpolation"],
                          crop_pct=pcfg["crop_pct"], crop_mode=pcfg["crop_mode"], mean=tuple(pcfg["mean"]),
                          std=tuple(pcfg["std"]))
    return torch.stack([tf(Image.open(ROOT / "images" / f"{i}.png").convert("RGB")) for i in IMAGES])


def performer_denominators(model, cpu_shim, x):
    out, hooks = [], []
    for st in (getattr(model, a) for a in STAGE_ATTRS):
        for att in (st.tokens_to_token.attention1, st.tokens_to_token.attention2):
            def hook(mod, inp, _o):
                k, q, v = torch.split(mod.kqv(mod.norm1(inp[0])), mod.emb, dim=-1)
                kp, qp = mod.prm_exp(k), mod.prm_exp(q)
                out.append(torch.einsum("bti,bi->bt", qp, kp.sum(dim=1)).min().item())
            hooks.append(att.register_forward_hook(hook))
    with torch.no_grad():
        run_official(cpu_shim, model, x)
    for h in hooks:
        h.remove()
    return out


# ---------------------------------------------------------------- train

def train_reference(model, cpu_shim, x, t):
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import param_groups_weight_decay
    crit = LabelSmoothingCrossEntropy(smoothing=0.1)

    def losses():
        outs = run_official(cpu_shim, model, x)
        parts = [crit(o, t) for o in outs]
        return parts[0] + parts[1] + parts[2], parts  # main.py: the three losses summed

    loss, parts = losses()
    loss.backward()
    ref = {"input": x.half(), "target": t.float(), "loss": loss.detach().reshape(1)}
    for e, p in enumerate(parts):
        ref[f"loss.exit{e}"] = p.detach().reshape(1)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, n
            ref[f"grad.{n}"] = p.grad.detach().clone()
        else:
            assert p.grad is None, n
    model.zero_grad()
    assert not hasattr(model, "no_weight_decay")  # the wrapper: create_optimizer skips nothing by name
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=())
    opt = torch.optim.AdamW(groups, lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    step_losses = []
    for _ in range(3):
        opt.zero_grad()
        step_loss, _ = losses()
        step_loss.backward()
        opt.step()
        step_losses.append(step_loss.item())
    ref["adamw.losses"] = torch.tensor(step_losses)
    for n, p in model.named_parameters():
        if p.requires_grad:
            ref[f"adamw.step3.{n}"] = p.detach().clone()
    return ref, loss, groups


# ---------------------------------------------------------------- calibration

def stage_gflops(cpu_shim, model, x1):
    from torch.utils.flop_counter import FlopCounterMode
    per = []
    with torch.no_grad(), cpu_shim.cpu_cuda_noop():
        f, r = None, None
        for attr in STAGE_ATTRS:
            with FlopCounterMode(display=False) as fc:
                _, f, r = getattr(model, attr)(x1, features_to_be_reused_list=f, relations_to_be_reused_list=r)
            per.append(fc.get_total_flops() / 2 / 1e9)
    return per


def calibration(dt, K, seed, flops_cum):
    g = torch.Generator().manual_seed(seed)
    logits = torch.stack([s * torch.randn(N_CALIB, K, generator=g) for s in (1.0, 1.6, 2.2)])  # [E, n, K]
    target = torch.randint(0, K, (N_CALIB,), generator=g)
    probs = F.softmax(logits, 2)
    conf, pred = probs.max(dim=2)
    for e in range(3):
        srt = conf[e].sort().values
        assert (srt[1:] - srt[:-1]).min() > 1e-6, "tie in the calibration confidences"
    flops = torch.tensor(flops_cum, dtype=torch.float32).tolist()  # the stored f32 values, exactly
    rows, fracs, outn, exp_flops, acc = [], [], [], [], []
    for p in range(1, 60):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.range is deprecated (the official code uses it)
            q = dt.official_exit_fractions(p)
        T = dt.dynamic_find_threshold(probs, target, q)
        # the rule reads only the max: the same thresholds from conf alone
        assert torch.equal(T, dt.dynamic_find_threshold(conf.unsqueeze(2), target, q))
        a, fl = dt.dynamic_evaluate(probs, target, flops, T)
        rows.append(T)
        fracs.append(q)
        outn.append([math.floor(N_CALIB * q[k]) for k in range(2)])
        exp_flops.append(fl)
        acc.append(a)
    ef = torch.tensor(exp_flops, dtype=torch.float32)
    # a budget half-way between two distinct expected-flops values in the middle of the curve
    vals = sorted(set(exp_flops))
    mid = len(vals) // 2
    budget = (vals[mid] + vals[mid + 1]) / 2
    row = max(p for p in range(1, 60) if exp_flops[p - 1] <= budget)
    thresholds = torch.stack(rows)
    return {
        "calib.conf": conf.T.contiguous(),
        "calib.pred": pred.T.float().contiguous(),
        "calib.target": target.float(),
        "calib.p": torch.arange(1, 60, dtype=torch.float32),
        "calib.exit_fractions": torch.stack(fracs),
        "calib.out_n": torch.tensor(outn, dtype=torch.float32),
        "calib.thresholds": thresholds,
        "calib.flops": torch.tensor(flops, dtype=torch.float32),
        "calib.expected_flops": ef,
        "calib.accuracy": torch.tensor(acc, dtype=torch.float32),
        "calib.budget": torch.tensor([budget], dtype=torch.float32),
        "calib.row": torch.tensor([float(row)]),
        "calib.budget_thresholds": thresholds[row - 1].clone(),
    }


# ---------------------------------------------------------------- fixture

def make_fixture(mods, name, stage_args, target, seed0):
    models, dt, cpu_shim = mods
    deit = is_deit(stage_args)
    K, C = stage_args[0]["num_classes"], stage_args[0]["embed_dim"]
    out = ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    pcfg = {"input_size": [3, IMG, IMG], "interpolation": "bicubic", "crop_pct": CROP_PCT, "crop_mode": "center",
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "num_classes": K}
    imgs = png_tensors(pcfg)

    for seed in range(seed0, seed0 + 50):  # the first weight seed whose thresholds separate well
        torch.manual_seed(seed)
        model = build(models, stage_args).eval()
        official_frozen = frozen(model)
        if deit:
            assert not official_frozen  # DeiT: pos_embed is learned, nothing is frozen
            spread_deit_(model, seed)
        else:
            spread_dvt_(model, seed)
        for n, v in frozen(model).items():
            assert torch.equal(v, official_frozen[n]), n
        x = mixed_batch(seed)
        with torch.no_grad():
            cb = confidences(run_official(cpu_shim, model, x))
            ci = confidences(run_official(cpu_shim, model, imgs))
        best = choose_thresholds(cb, ci)
        if best is not None and best[0] >= 5 * MIN_GAP:
            break
        print(f"  seed {seed}: best deciding gap {best and best[0]}, next seed")
    else:
        raise SystemExit(f"{name}: no seed gives well separated exits")
    gap, T = best
    # rows reordered so that exit 0 is not first and the survivors are not a prefix
    ex = exits_under(cb, T).tolist()
    first = [next(b for b in range(B) if ex[b] == e) for e in (1, 0, 2)]
    order = first + [b for b in range(B) if b not in first]
    x = x[order].contiguous()

    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    for e, (a, attr) in enumerate(zip(stage_args, STAGE_ATTRS)):
        n = [49, 100, 196][e]
        if deit:
            assert sd[f"{attr}.pos_embed"].shape == (1, n + 1, a["embed_dim"]), attr
        else:
            assert torch.equal(sd[f"{attr}.pos_embed"], sinusoid_f32(n + 1, a["embed_dim"])), attr
    save_file(sd, out / "model.safetensors", metadata={"format": "pt"})
    config = {"architecture": "dvt", "num_classes": K, "model_args": {"stages": stage_args},
              "exit_thresholds": T, "pretrained_cfg": pcfg}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    # The reference is the official module with the saved weights loaded back (strict): a fresh
    # build draws different Performer w, so this also proves that w / pos_embed come from the file.
    torch.manual_seed(1234)
    model = build(models, stage_args)
    model.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    model.eval()

    ref = reference_with_cfg(EarlyExit(model, cpu_shim, T), pcfg, x, out)  # input, logits, image.*, tensor.*
    assert torch.equal(torch.stack([ref[f"tensor.{i}"] for i in IMAGES]), imgs)
    with torch.no_grad():
        outs = run_official(cpu_shim, model, x)
    conf = confidences(outs)
    ex = exits_under(conf, T)
    assert ex.tolist()[:3] == [1, 0, 2], ex
    assert set(ex.tolist()) == {0, 1, 2}
    logits = torch.stack([outs[e][b] for b, e in enumerate(ex.tolist())])
    assert torch.equal(logits, ref["logits"]), "exit-taken logits differ from the wrapper's"
    ref["input"] = x.half()
    assert torch.equal(ref["input"].float(), x)
    for e in range(3):
        ref[f"exit_logits.{e}"] = outs[e]
    ref["conf"] = conf
    ref["exit"] = ex.float()
    ref["exit_thresholds"] = torch.tensor(T, dtype=torch.float32)
    f0, f1 = stage_features(cpu_shim, model, x)
    ref["feature.0"], ref["feature.1"] = f0, f1
    gaps = [decision_gap(conf, T)]
    img_ex = {}
    for i in IMAGES:
        with torch.no_grad():
            o = run_official(cpu_shim, model, ref[f"tensor.{i}"].unsqueeze(0))
        c = confidences(o)
        e_i = exits_under(c, T)
        gaps.append(decision_gap(c, T))
        for e in range(3):
            ref[f"image.{i}.exit_logits.{e}"] = o[e][0]
        ref[f"image.{i}.conf"] = c[0]
        ref[f"image.{i}.exit"] = e_i.float()
        img_ex[i] = int(e_i.item())
        assert torch.equal(ref[f"image.{i}"], o[int(e_i.item())][0]), i
    assert min(gaps) >= MIN_GAP, gaps
    save_file({k: v.contiguous() for k, v in ref.items()}, out / "reference.safetensors", metadata={"format": "pt"})

    indep, ifeats, grids = independent_forward(sd, stage_args, x)
    assert grids == ([[g] for g in DEIT_GRIDS] if deit else GRIDS), grids
    err = max((a - b.double()).abs().max().item() for a, b in zip(indep, outs))
    ferr = max((a - b.double()).abs().max().item() for a, b in zip(ifeats[:2], (f0, f1)))
    assert err < 1e-4 and ferr < 1e-4, (err, ferr)
    err64 = None
    if deit:  # the official DeiT stages also run in fp64 (T2T's Performer casts to f32): exact match
        import copy
        m64 = copy.deepcopy(model).double()
        with torch.no_grad():
            outs64 = run_official(cpu_shim, m64, x.double())
        err64 = max((a - b).abs().max().item() for a, b in zip(indep, outs64))
        assert err64 < 1e-12, err64
    dmin = [] if deit else performer_denominators(model, cpu_shim, x)
    assert all(d > 1e-2 for d in dmin), dmin

    # calibration reference
    flops_stage = stage_gflops(cpu_shim, model, x[:1])
    flops_cum = list(np.cumsum(flops_stage))
    cal = calibration(dt, K, 700 + seed, flops_cum)
    save_file(cal, out / "calibration.safetensors", metadata={"format": "pt"})

    # training reference: same weights, train mode, every dropout off
    set_train_no_dropout(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    tref, loss, groups = train_reference(model, cpu_shim, x, torch.tensor(target))
    assert sum(1 for k in tref if k.startswith("grad.")) == len(trainable)
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p.detach(), sd[n]), n  # frozen tensors never move
    save_file({k: v.contiguous() for k, v in tref.items()}, out / "train_reference.safetensors",
              metadata={"format": "pt"})

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
    no_decay = [n for n in trainable if sd[n].ndim <= 1 or n.endswith(".bias")]
    print(f"{name}: seed {seed}, {n_params} params ({n_train} trainable) in {len(sd)} tensors, grids "
          f"{grids}, independent fp64 max err logits {err:.2e} features {ferr:.2e} "
          f"(vs the official modules in fp64: {err64}), "
          f"min performer D {f'{min(dmin):.3g}' if dmin else None}")
    print(f"  thresholds {T}, batch exits {ex.tolist()}, conf\n{conf}\n  PNG exits {img_ex}, "
          f"min deciding gap {min(gaps):.4f}, max |logit| batch "
          f"{max(o.abs().max().item() for o in outs):.3f}")
    print(f"  loss {loss.item():.6f} (exits {[round(tref[f'loss.exit{e}'].item(), 6) for e in range(3)]}), "
          f"adamw losses {[round(v, 6) for v in tref['adamw.losses'].tolist()]}, "
          f"{len(no_decay)} no-decay / {len(trainable) - len(no_decay)} decay params")
    print(f"  GFLOPs per stage {[round(f, 6) for f in flops_stage]}, calib budget {cal['calib.budget'].item():.6f} "
          f"-> row {int(cal['calib.row'].item())}, thresholds {cal['calib.budget_thresholds'].tolist()}")
    print(f"  frozen: {sorted(n for n in sd if n not in trainable)}")
    print(f"  files {sizes}, total {sum(sizes.values())} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = set(args.only.split(",")) if args.only else None
    mods = official()
    for name, spec in FIXTURES.items():
        if only is None or name in only:
            make_fixture(mods, name, *spec)


if __name__ == "__main__":
    main()
