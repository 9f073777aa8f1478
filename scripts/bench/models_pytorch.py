#!/usr/bin/env python3
"""The Python PyTorch side of scripts/bench/models.sh: the same models (plain-PyTorch reference
implementations from scripts/testdata/) and the same synthetic loop as bench_models.
    models_pytorch.py MODEL BATCH ITERS WARMUP [DEVICE=cpu] [PRECISION=fp32] [COMPILE=eager]
PRECISION: fp32 | bf16 | fp16 (torch.autocast, GradScaler for fp16); COMPILE: eager | compile
(torch.compile of the model, default mode; its warmup iterations include the compilation)."""
import contextlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testdata"))
import make_shiftvit_expected as sv  # noqa: E402
import make_vit_expected as vt  # noqa: E402


def main():
    name, batch, iters, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    device = sys.argv[5] if len(sys.argv) > 5 else "cpu"
    precision = sys.argv[6] if len(sys.argv) > 6 else "fp32"
    compiled = len(sys.argv) > 7 and sys.argv[7] == "compile"
    torch.manual_seed(0)
    size, chans, classes = 32, 3, 10
    if name == "shiftvit_mnist":
        model, size, chans = sv.ShiftViT(8, 2, 1, 10, 96, (2, 2, 6, 2), 4.0), 28, 1
    elif name == "shiftvit_cifar10":
        model = sv.ShiftViT(12, 2, 3, 10, 96, (2, 2, 6, 2), 4.0)
    elif name == "vit_b16":
        model, size, classes = vt.ViT(img=224, patch=16, d=768, depth=12, heads=12, mlp=3072, classes=1000), 224, 1000
    else:
        model = vt.ViT(img=32, patch=4, d=192, depth=6, heads=3, mlp=768, classes=10)
    model = model.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.05}], lr=1e-3)
    x = torch.randn(batch, chans, size, size).to(device)
    y = torch.randint(0, classes, (batch,)).to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(device_type=device.split(":")[0], dtype=dtype)) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=precision == "fp16") if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler") else None
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    run = torch.compile(model) if compiled else model
    model.train()
    for i in range(warmup + iters):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with autocast():
            loss = torch.nn.functional.cross_entropy(run(x), y)
        opt.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
    sync()
    train = batch * iters / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad(), autocast():
        for i in range(warmup + iters):
            if i == warmup:
                sync()
                t0 = time.perf_counter()
            run(x)
    sync()
    infer = batch * iters / (time.perf_counter() - t0)
    print(json.dumps({"impl": "pytorch_compile" if compiled else "pytorch", "model": name, "batch": batch,
                      "device": device, "precision": precision, "torch": torch.__version__,
                      "train_images_per_second": train, "infer_images_per_second": infer,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
