"""PyTorch's autocast + GradScaler on CUDA, step by step, for tests/gpu/gpu_test.cpp: a small MLP
with fixed weights and data, AdamW, one injected inf gradient. Writes JSON to argv[2].
    amp_reference.py {fp16|bf16} OUT.json"""
import json
import sys

import torch


def main():
    precision, out = sys.argv[1], sys.argv[2]
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    dev = "cuda"
    g = torch.Generator().manual_seed(5)
    w1, b1 = torch.randn(64, 32, generator=g) * 0.2, torch.randn(64, generator=g) * 0.1
    w2, b2 = torch.randn(8, 64, generator=g) * 0.2, torch.randn(8, generator=g) * 0.1
    x, y = torch.randn(16, 32, generator=g), torch.randn(16, 8, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8)).to(dev)
    with torch.no_grad():
        for p, v in zip(model.parameters(), (w1, b1, w2, b2)):
            p.copy_(v)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**12, growth_interval=4, enabled=precision == "fp16")
    x, y = x.to(dev), y.to(dev)
    steps = []
    for i in range(12):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=dtype):
            out_ = model(x)
            loss = torch.nn.functional.mse_loss(out_.float(), y)
        scaler.scale(loss).backward()
        if i == 5:
            with torch.no_grad():
                model[0].weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
        steps.append({"loss": loss.item(), "scale": scaler.get_scale() if scaler.is_enabled() else 1.0,
                      "out_dtype": str(out_.dtype)})
    result = {"torch": torch.__version__, "precision": precision,
              "init": {"w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(), "b2": b2.tolist(),
                       "x": x.cpu().tolist(), "y": y.cpu().tolist()},
              "steps": steps,
              "final": [p.detach().cpu().float().flatten().tolist() for p in model.parameters()]}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
