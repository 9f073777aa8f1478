"""Writes grad_scaler_trace.json: PyTorch's GradScaler, step by step, on a fixed problem with
injected non-finite gradients. tests/core/amp_test.cpp replays it against det::GradScaler.

Run with a PyTorch >= 2.3 (GradScaler on the CPU), e.g. the project's virtual environment:
    .venv/bin/python tests/testdata/amp/make_grad_scaler_trace.py
"""
import json
import os

import torch

W0 = [[0.5, -0.25, 0.125], [1.0, 0.75, -0.5]]
X = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
Y = [[1.0, 0.0], [0.0, 1.0]]
INJECT = {2: "inf", 3: "nan", 9: "-inf"}  # iteration -> value written into weight.grad[0][1]
UNSCALE_FIRST = {1, 5, 9}  # iterations that call unscale_ (and clip) before step
STEPS = 14
OPTIONS = dict(init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)


def main():
    lin = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W0))
    opt = torch.optim.SGD(lin.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", **OPTIONS)
    x, y = torch.tensor(X), torch.tensor(Y)
    trace = []
    for i in range(STEPS):
        opt.zero_grad()
        loss = ((lin(x) - y) ** 2).mean()
        scaler.scale(loss).backward()
        if i in INJECT:
            with torch.no_grad():
                lin.weight.grad[0, 1] = float(INJECT[i])
        if i in UNSCALE_FIRST:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
        before = lin.weight.detach().clone()
        scaler.step(opt)
        stepped = not torch.equal(before, lin.weight.detach())
        scaler.update()
        trace.append({
            "loss": loss.item(),
            "stepped": stepped,
            "scale": scaler.get_scale(),
            "growth_tracker": int(scaler._get_growth_tracker()),
            "weight": lin.weight.detach().tolist(),
        })
    out = {
        "torch": torch.__version__,
        "options": OPTIONS,
        "w0": W0, "x": X, "y": Y, "lr": 0.05, "clip_norm": 1.0,
        "inject": {str(k): v for k, v in INJECT.items()},
        "unscale_first": sorted(UNSCALE_FIRST),
        "steps": trace,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grad_scaler_trace.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path)


if __name__ == "__main__":
    main()
