#!/usr/bin/env python3
"""PyTorch/timm reference figures for docs/PERFORMANCE.md, on the same machine
and shapes as `vitrine bench` (run by hand, never in CI):

    PYTHONPATH=/tmp/pyref python3 scripts/bench_torch.py [--device cpu|cuda] [--iters 10]

Prints matmul GFLOP/s (x @ w.T, nn.Linear's layout, fp32) and timm forward
throughput (eval, no_grad, fp32, eager) at batch 1 and 8.

With --official hvt_ti_1,t2t_vit_7,t2t_vit_14,dynamicvit_deit_s,dvt_t2t_vit_12: the official
code of families timm lacks (HVT, T2T-ViT, DynamicViT and DVT, vendored in scripts/*_official/),
forward at 224 (eval: DynamicViT prunes; DVT computes all three exits, as its code always does),
batch --batches.

With --train: training-step throughput (forward, label-smoothed cross-entropy,
backward, AdamW step; fp32 eager), the counterpart of `vitrine bench --train`:
    --train default:128,vit_tiny_patch16_224:8
where `default` is the built-in Fashion-MNIST model's config (1x28x28).
"""
import json
import argparse
import statistics
import time

import torch
import timm


def timed(fn, iters, device):
    fn()
    fn()
    ts = []
    for _ in range(iters):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--models", default="vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--train", help="model:batch,... (training steps only)")
    ap.add_argument("--half", action="store_true", help="forward and matmuls in fp16 (model.half(), fp16 inputs; CUDA)")
    ap.add_argument("--mm-batch", type=int, default=1, help="ViT-B matmul shapes at this batch (M = 197 x batch)")
    ap.add_argument("--official", help="official-code presets to time (hvt_ti_1, hvt_s_1 .. hvt_s_4, t2t_vit_7 .. "
                                       "t2t_vit_24, t2t_vit_t_14 .. t2t_vit_t_24, dynamicvit_deit_256/_s/_b)")
    a = ap.parse_args()
    dev = a.device
    if a.train:
        return train(a)
    if a.official:
        return official(a)
    print(f"torch {torch.__version__} timm {timm.__version__} device {dev} threads {torch.get_num_threads()}")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    mb = 197 * a.mm_batch
    for m, n, k in [(1024, 1024, 1024), (mb, 2304, 768), (mb, 3072, 768), (mb, 768, 3072)]:
        x = torch.randn(m, k, device=dev, dtype=torch.float16 if a.half else torch.float32)
        w = torch.randn(n, k, device=dev, dtype=x.dtype)
        ms = timed(lambda: x @ w.T, a.iters, dev)
        print(f"matmul{' fp16' if a.half else ''} {m:>5} {n:>5} {k:>5}  {ms:8.2f} ms  {2 * m * n * k / ms / 1e6:8.2f} GFLOP/s")
    for name in a.models.split(","):
        model = timm.create_model(name, pretrained=False).eval().to(dev)
        dtype = torch.float16 if a.half else torch.float32
        model = model.to(dtype)
        tag = " fp16" if a.half else ""
        for b in [int(x) for x in a.batches.split(",")]:
            x = torch.randn(b, 3, 224, 224, device=dev, dtype=dtype)
            with torch.no_grad():
                ms = timed(lambda: model(x), a.iters, dev)
            print(f"forward{tag} {name:<24} batch {b}  {ms:9.2f} ms/batch  {b * 1e3 / ms:8.2f} images/s")


# The official config/*.json of each HVT preset (MonashAI/HVT).
HVT = {name: dict(input_size=224, patch_size=16, num_heads=heads, head_dim=64, num_blocks=12, pool_kernel_size=3,
                  pool_stride=2, pool_block_width=width)
       for name, heads, width in [("hvt_ti_1", 3, 12), ("hvt_s_1", 6, 12), ("hvt_s_2", 6, 6), ("hvt_s_3", 6, 4),
                                  ("hvt_s_4", 6, 3)]}


def official(a):
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import make_hvt_fixtures as hvt
    import make_t2t_fixtures as t2t
    from make_fixtures import quiet
    dev = a.device
    print(f"torch {torch.__version__} device {dev} threads {torch.get_num_threads()}")
    for name in a.official.split(","):
        if name in HVT:
            model = hvt.build(hvt.official_module(HVT[name]), 1000)
        elif name.startswith("dynamicvit_deit_"):
            import make_dynamicvit_fixtures as dvt
            embed, heads = {"dynamicvit_deit_256": (256, 4), "dynamicvit_deit_s": (384, 6), "dynamicvit_deit_b": (768, 12)}[name]
            dyvit, _ = dvt.official()
            with quiet():
                model = dyvit.VisionTransformerDiffPruning(patch_size=16, embed_dim=embed, depth=12, num_heads=heads,
                                                           mlp_ratio=4, qkv_bias=True, pruning_loc=[3, 6, 9],
                                                           token_ratio=[0.7, 0.7 ** 2, 0.7 ** 3], distill=True)
        elif name.startswith("dvt_"):
            # The official DVT wrappers always compute all three exits (inference.py applies the
            # exit rule afterwards): this is the "every exit" figure of `vitrine bench` on a DVT.
            import make_dvt_fixtures as dvtf
            mods, _, shim = dvtf.official()
            factory = {"dvt_t2t_vit_12": (mods["t2t"], "DVT_T2t_vit_12"), "dvt_t2t_vit_14": (mods["t2t"], "DVT_T2t_vit_14"),
                       "dvt_deit_small": (mods["deit"], "DVT_Deit_small")}.get(name)
            if factory is None:
                raise SystemExit(f"--official {name}: not a DVT preset (dvt_t2t_vit_12, dvt_t2t_vit_14, dvt_deit_small)")
            with quiet():
                model = getattr(*factory)()
            inner = model

            class AllExits(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.m = inner

                def forward(self, x):
                    if x.is_cuda:  # the official code's torch.zeros(B, 1, 48).cuda() works as written
                        return self.m(x)
                    with shim.cpu_cuda_noop():
                        return self.m(x)
            model = AllExits()
        elif name.startswith("t2t_vit_"):
            module = t2t.official_t2t()
            factory = getattr(module, name, None)
            if factory is None:
                raise SystemExit(f"--official {name}: the official models/t2t_vit.py has no such factory")
            with quiet():
                model = factory()
        else:
            raise SystemExit(f"--official {name}: not an HVT, T2T-ViT, DynamicViT or DVT preset")
        model = model.eval().to(dev)
        for b in [int(x) for x in a.batches.split(",")]:
            x = torch.randn(b, 3, 224, 224, device=dev)
            with torch.no_grad():
                ms = timed(lambda: model(x), a.iters, dev)
            print(f"forward {name:<24} batch {b}  {ms:9.2f} ms/batch  {b * 1e3 / ms:8.2f} images/s (official code)")


DEFAULT = dict(img_size=28, patch_size=7, in_chans=1, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2, num_classes=10)


def train(a):
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import param_groups_weight_decay
    dev = a.device
    print(f"torch {torch.__version__} timm {timm.__version__} device {dev} threads {torch.get_num_threads()}")
    for spec in a.train.split(","):
        name, b = spec.split(":")
        b = int(b)
        kw = DEFAULT if name == "default" else {}
        model = timm.create_model("vit_tiny_patch16_224" if name == "default" else name, pretrained=False, **kw).train().to(dev)
        c, s = (kw.get("in_chans", 3), kw.get("img_size", 224))
        x = torch.randn(b, c, s, s, device=dev)
        y = torch.randint(0, model.num_classes, (b,), device=dev)
        opt = torch.optim.AdamW(param_groups_weight_decay(model, 0.05), lr=1e-4)
        crit = LabelSmoothingCrossEntropy(0.1)

        def step():
            loss = crit(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        ms = timed(step, a.iters, dev)
        print(f"train {name:<24} batch {b}  {ms:9.2f} ms/step  {b * 1e3 / ms:8.2f} images/s")


if __name__ == "__main__":
    main()
