#!/usr/bin/env python3
"""Generates tests/testdata/adadelta_expected.json: torch.optim.Adadelta updates on a fixed
sequence of gradients, for det's Adadelta test. Run with Debian's python3-torch:
    /usr/bin/python3 scripts/testdata/make_adadelta_expected.py > tests/testdata/adadelta_expected.json
"""
import json
import torch

torch.manual_seed(0)
cases = []
for lr, rho, eps, wd in [(1.0, 0.9, 1e-6, 0.0), (0.5, 0.95, 1e-5, 0.01)]:
    p0 = torch.randn(3, 4, dtype=torch.float32)
    grads = [torch.randn(3, 4, dtype=torch.float32) for _ in range(6)]
    p = p0.clone().requires_grad_(True)
    opt = torch.optim.Adadelta([p], lr=lr, rho=rho, eps=eps, weight_decay=wd)
    after = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        after.append(p.detach().flatten().tolist())
    cases.append({"lr": lr, "rho": rho, "eps": eps, "weight_decay": wd, "shape": [3, 4],
                  "param": p0.flatten().tolist(), "grads": [g.flatten().tolist() for g in grads],
                  "params_after_each_step": after})
print(json.dumps({"torch_version": torch.__version__, "cases": cases}))
