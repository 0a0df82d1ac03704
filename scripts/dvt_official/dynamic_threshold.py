# NOT the official inference.py: a shim holding only `dynamic_find_threshold` and
# `dynamic_evaluate`, copied verbatim (lines 178-226) from the official DVT repository:
#   https://github.com/blackfeather-wang/Dynamic-Vision-Transformer
#   file: inference.py (lines 178-226)   commit: 22cc8951af0db59acdd414ba35dd87d6d793c868 (2021-11-25)
#   license: the DVT repository ships NO license file (see README.md).
# The full upstream inference.py is not vendored: at import time it imports torchvision,
# `utils`, `models` and `models_deit`, parses argv and needs CUDA. The two functions only use
# `math` and `torch` (inference.py gets both through `from utils import *`), imported here.
# `official_exit_fractions` below is NOT upstream code: it wraps lines 117-119 of the same file
# (the body of main()'s `for p in range(1, 60)` loop), copied verbatim, to compute the target
# exit fractions `probs` that main() passes as `p` to dynamic_find_threshold.
import math

import torch


def official_exit_fractions(p):
    """inference.py L117-119 verbatim (p = 1..59, the budget row; float32 throughout)."""
    _p = torch.FloatTensor(1).fill_(p * 1.0 / 20)
    probs = torch.exp(torch.log(_p) * torch.range(1, 3))
    probs /= probs.sum()
    return probs


# ---- upstream lines 178-226 follow (byte-identical) ----
def dynamic_find_threshold(logits, targets, p):

    n_stage, n_sample, c = logits.size()
    max_preds, argmax_preds = logits.max(dim=2, keepdim=False)
    _, sorted_idx = max_preds.sort(dim=1, descending=True)

    filtered = torch.zeros(n_sample)
    T = torch.Tensor(n_stage).fill_(1e8)

    for k in range(n_stage - 1):
        acc, count = 0.0, 0
        out_n = math.floor(n_sample * p[k])
        for i in range(n_sample):
            ori_idx = sorted_idx[k][i]
            if filtered[ori_idx] == 0:
                count += 1
                if count == out_n:
                    T[k] = max_preds[k][ori_idx]
                    break
        filtered.add_(max_preds[k].ge(T[k]).type_as(filtered))

    T[n_stage - 1] = -1e8
    return T
   

def dynamic_evaluate(logits, targets, flops, T):

    n_stage, n_sample, c = logits.size()
    max_preds, argmax_preds = logits.max(dim=2, keepdim=False)
    _, sorted_idx = max_preds.sort(dim=1, descending=True)

    acc_rec, exp = torch.zeros(n_stage), torch.zeros(n_stage)
    acc, expected_flops = 0, 0
    for i in range(n_sample):
        gold_label = targets[i]
        for k in range(n_stage):
            if max_preds[k][i].item() >= T[k]:  # force the sample to exit at k
                if int(gold_label.item()) == int(argmax_preds[k][i].item()):
                    acc += 1
                    acc_rec[k] += 1
                exp[k] += 1
                break
    acc_all = 0
    for k in range(n_stage):
        _t = 1.0 * exp[k] / n_sample
        expected_flops += _t * flops[k]
        acc_all += acc_rec[k]

    return acc * 100.0 / n_sample, expected_flops.item()
