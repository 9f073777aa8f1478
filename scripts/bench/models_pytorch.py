#!/usr/bin/env python3
"""The Python PyTorch side of scripts/bench/models.sh: the same models (plain-PyTorch reference
implementations from scripts/testdata/) and the same synthetic loop as bench_models.
    models_pytorch.py MODEL BATCH ITERS WARMUP"""
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
    torch.manual_seed(0)
    size, chans = 32, 3
    if name == "shiftvit_mnist":
        model, size, chans = sv.ShiftViT(8, 2, 1, 10, 96, (2, 2, 6, 2), 4.0), 28, 1
    elif name == "shiftvit_cifar10":
        model = sv.ShiftViT(12, 2, 3, 10, 96, (2, 2, 6, 2), 4.0)
    else:
        model = vt.ViT(img=32, patch=4, d=192, depth=6, heads=3, mlp=768, classes=10)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.05}], lr=1e-3)
    x, y = torch.randn(batch, chans, size, size), torch.randint(0, 10, (batch,))
    model.train()
    for i in range(warmup + iters):
        if i == warmup:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train = batch * iters / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        for i in range(warmup + iters):
            if i == warmup:
                t0 = time.perf_counter()
            model(x)
    infer = batch * iters / (time.perf_counter() - t0)
    print(json.dumps({"impl": "pytorch", "model": name, "train_images_per_second": train, "infer_images_per_second": infer}))


if __name__ == "__main__":
    main()
