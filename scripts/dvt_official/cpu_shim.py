# NOT upstream code: the one shim the vendored DVT model needs to run on a CPU-only machine.
#
# models/transformer_block.py (Block.forward, upstream line 125) builds the zero feature-reuse row
# of the class token with `torch.zeros(B, 1, 48).cuda()`, which raises without CUDA. Instead of
# editing the vendored file (the spec, /work/shared/kin/dvt.md section 9, patches it to
# `x.new_zeros(B, 1, 48)`), callers run the model inside `cpu_cuda_noop()`, which makes
# `Tensor.cuda()` return the tensor itself while the context is active. The zeros stay float32
# zeros on the CPU, exactly what `x.new_zeros(B, 1, 48)` gives for a float32 CPU `x`, so the
# numerics are those of the official code. The DeiT variant's deit/vision_transformer.py has the same
# line (Block.forward, upstream timm/models/vision_transformer.py line 214) and is run the same way.
# Nothing else in the vendored models calls .cuda().
# Under the vendored files' imports, pip timm 1.x works unchanged (timm.models.helpers /
# .registry / .layers still export load_pretrained / register_model / trunc_normal_ / DropPath,
# with deprecation warnings); torch 2.x needs nothing else.
import contextlib

import torch


@contextlib.contextmanager
def cpu_cuda_noop():
    # Always a no-op, even where CUDA exists: the fixture script keeps the model on the CPU.
    orig = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = orig
