#!/usr/bin/env python3
"""Generates tests/testdata/nn/optim_expected.json: torch.optim.AdamW updates over two param
groups (timm's no-decay / decay split) on a fixed gradient sequence, and the learning rates of
timm's CosineLRScheduler (v0.5.4 semantics, re-implemented here step by step as timm runs it:
warmup list, then the cycle arithmetic) for det's optimizer tests. Run with Debian's python3-torch:
    /usr/bin/python3 scripts/testdata/make_optim_expected.py > tests/testdata/nn/optim_expected.json
"""
import json
import math

import torch

torch.manual_seed(0)
cases = []
for lr, betas, eps, wd in [(1e-3, (0.9, 0.999), 1e-8, 0.05), (3e-2, (0.8, 0.99), 1e-6, 0.5)]:
    w0, b0 = torch.randn(3, 4), torch.randn(4)
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.AdamW([{"params": [b], "weight_decay": 0.0}, {"params": [w], "weight_decay": wd}],
                            lr=lr, betas=betas, eps=eps, weight_decay=0.0)
    grads, after = [], []
    for _ in range(6):
        gw, gb = torch.randn(3, 4), torch.randn(4)
        grads.append({"weight": gw.flatten().tolist(), "bias": gb.tolist()})
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        after.append({"weight": w.detach().flatten().tolist(), "bias": b.detach().tolist()})
    cases.append({"lr": lr, "betas": list(betas), "eps": eps, "weight_decay": wd,
                  "weight": w0.flatten().tolist(), "bias": b0.tolist(), "grads": grads, "after": after})


def timm_cosine(base_lr, t_initial, lr_min, warmup_t, warmup_lr_init, epochs):
    warmup_steps = [(base_lr - warmup_lr_init) / warmup_t] if warmup_t else [1]
    lrs = []
    for t in range(epochs):
        if t < warmup_t:
            lrs.append(warmup_lr_init + t * warmup_steps[0])
            continue
        i = math.floor(t / t_initial)
        t_i = t_initial
        t_curr = t - t_initial * i
        gamma = 0.1 ** i
        lo, hi = lr_min * gamma, base_lr * gamma
        if i < 1:
            lrs.append(lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * t_curr / t_i)))
        else:
            lrs.append(lr_min)
    return lrs


sched = []
for base_lr, t_initial, lr_min, warmup_t, warmup_lr, n in [(2.123522e-3, 6, 1e-5, 2, 1e-6, 8),
                                                            (3.489019e-4, 32, 1e-5, 2, 1e-6, 34),
                                                            (1e-3, 10, 0.0, 20, 1e-6, 30)]:
    sched.append({"base_lr": base_lr, "epochs": t_initial, "min_lr": lr_min, "warmup_epochs": warmup_t,
                  "warmup_lr": warmup_lr, "lrs": timm_cosine(base_lr, t_initial, lr_min, warmup_t, warmup_lr, n)})
print(json.dumps({"torch_version": torch.__version__, "adamw": cases, "cosine": sched}))
