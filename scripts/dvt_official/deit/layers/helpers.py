# Vendored from the official DVT repository (NeurIPS 2021, "Not All Images are Worth 16x16 Words:
# Dynamic Transformers for Efficient Image Recognition", arXiv 2105.15075):
#   https://github.com/blackfeather-wang/Dynamic-Vision-Transformer
#   file: timm/models/layers/helpers.py   commit: 22cc8951af0db59acdd414ba35dd87d6d793c868 (2021-11-25)
#   license: see ../../README.md (DVT ships no license file; the file's own origin: timm 0.3.2, Apache-2.0).
# (bundled timm 0.3.2). Byte-identical below this header EXCEPT one line, the patch of the spec
# (/work/shared/kin/dvt.md section 9): torch 2.x has no torch._six:
#   from torch._six import container_abcs -> import collections.abc as container_abcs
# ---- upstream file follows ----
""" Layer/Module Helpers

Hacked together by / Copyright 2020 Ross Wightman
"""
from itertools import repeat
import collections.abc as container_abcs


# From PyTorch internals
def _ntuple(n):
    def parse(x):
        if isinstance(x, container_abcs.Iterable):
            return x
        return tuple(repeat(x, n))
    return parse


to_1tuple = _ntuple(1)
to_2tuple = _ntuple(2)
to_3tuple = _ntuple(3)
to_4tuple = _ntuple(4)
to_ntuple = _ntuple





