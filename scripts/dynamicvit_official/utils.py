# NOT the official utils.py: a shim holding only `batch_index_select`, copied verbatim from the
# official DynamicViT repository:
#   https://github.com/raoyongming/DynamicViT
#   file: utils.py (lines 524-540)   commit: 1322e626d1e9eca18cc150569908fb4af29e15f7 (2023-07-11)
#   license: MIT, see LICENSE (copied from the same commit).
# The full upstream utils.py is not vendored: it does `from torch._six import inf` (removed in
# torch 2.x) and `from tensorboardX import SummaryWriter` at import time, and models/dyvit.py
# needs nothing from it but this function. The function body below is byte-identical to upstream.
import torch


def batch_index_select(x, idx):
    if len(x.size()) == 3:
        B, N, C = x.size()
        N_new = idx.size(1)
        offset = torch.arange(B, dtype=torch.long, device=x.device).view(B, 1) * N
        idx = idx + offset
        out = x.reshape(B*N, C)[idx.reshape(-1)].reshape(B, N_new, C)
        return out
    elif len(x.size()) == 2:
        B, N = x.size()
        N_new = idx.size(1)
        offset = torch.arange(B, dtype=torch.long, device=x.device).view(B, 1) * N
        idx = idx + offset
        out = x.reshape(B*N)[idx.reshape(-1)].reshape(B, N_new)
        return out
    else:
        raise NotImplementedError
