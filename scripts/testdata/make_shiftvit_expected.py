#!/usr/bin/env python3
"""Generates det's ShiftViT test data with an independent plain-PyTorch ShiftViT written from
spec/models.md §2 (no timm, no SPACH code):
  tests/testdata/nn/shiftvit_tiny.safetensors  weights of a tiny ShiftViT (SPACH key names),
      a fixed input "x" and the eval-mode logits "logits";
  tests/testdata/nn/shiftvit_params.json        exact parameter counts of every SPACH registry
      variant (224 px, 1000 classes) and of the Determined MNIST / CIFAR-10 models.
Run with Debian's python3-torch:  /usr/bin/python3 scripts/testdata/make_shiftvit_expected.py
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "testdata", "nn")


def shift(x, n_div):
    g = x.shape[1] // n_div
    y = torch.zeros_like(x)
    y[:, :g, :, :-1] = x[:, :g, :, 1:]
    y[:, g:2 * g, :, 1:] = x[:, g:2 * g, :, :-1]
    y[:, 2 * g:3 * g, :-1, :] = x[:, 2 * g:3 * g, 1:, :]
    y[:, 3 * g:4 * g, 1:, :] = x[:, 3 * g:4 * g, :-1, :]
    y[:, 4 * g:] = x[:, 4 * g:]
    return y


class ConvMlp(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, c, n_div, ratio):
        super().__init__()
        self.n_div = n_div
        self.norm2 = nn.GroupNorm(1, c)
        self.mlp = ConvMlp(c, int(c * ratio))

    def forward(self, x):
        x = shift(x, self.n_div)
        return x + self.mlp(self.norm2(x))


class Merge(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(1, c)
        self.reduction = nn.Conv2d(c, 2 * c, 2, 2, bias=False)

    def forward(self, x):
        return self.reduction(self.norm(x))


class Stage(nn.Module):
    def __init__(self, c, depth, n_div, ratio, last):
        super().__init__()
        self.blocks = nn.ModuleList([Block(c, n_div, ratio) for _ in range(depth)])
        self.downsample = None if last else Merge(c)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, cin, c, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, c, p, p)
        self.norm = nn.GroupNorm(1, c)

    def forward(self, x):
        return self.norm(self.proj(x))


class ShiftViT(nn.Module):
    def __init__(self, n_div=12, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96, depths=(2, 2, 6, 2),
                 mlp_ratio=4.0):
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.layers = nn.ModuleList([Stage(embed_dim * 2 ** i, d, n_div, mlp_ratio, i == len(depths) - 1)
                                     for i, d in enumerate(depths)])
        c = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.GroupNorm(1, c)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean((2, 3)))


VARIANTS = {
    "shiftvit_light_tiny": (96, (2, 2, 6, 2), 4, 12), "shiftvit_r4_tiny": (96, (2, 2, 12, 3), 4, 12),
    "shiftvit_r2_tiny": (96, (6, 8, 18, 6), 2, 12), "shiftvit_light_small": (96, (2, 2, 18, 2), 4, 12),
    "shiftvit_r4_small": (96, (2, 6, 24, 4), 4, 12), "shiftvit_r2_small": (96, (10, 18, 36, 10), 2, 12),
    "shiftvit_light_base": (128, (2, 2, 18, 2), 4, 16), "shiftvit_r4_base": (128, (4, 6, 22, 4), 4, 16),
    "shiftvit_r2_base": (128, (10, 18, 36, 10), 2, 16),
}


def count(m):
    return sum(p.numel() for p in m.parameters())


def main():
    os.makedirs(OUT, exist_ok=True)
    counts = {}
    for name, (c, depths, ratio, n_div) in VARIANTS.items():
        counts[name] = count(ShiftViT(n_div, 4, 3, 1000, c, depths, ratio))
    counts["determined_mnist"] = count(ShiftViT(8, 2, 1, 10, 96, (2, 2, 6, 2), 4.0))
    counts["determined_cifar10"] = count(ShiftViT(12, 2, 3, 10, 96, (2, 2, 6, 2), 4.0))
    with open(os.path.join(OUT, "shiftvit_params.json"), "w") as f:
        json.dump(counts, f, indent=1)

    torch.manual_seed(0)
    # Tiny: odd sizes on purpose (46 px, patch 2 -> 23 -> 11 -> 5 -> 2), n_div 5 with C0=8 (g=1:
    # 4 of 8 channels shift). With n_div 4 every channel shifts and a 1x1 last stage sees zeros.
    m = ShiftViT(n_div=5, patch_size=2, in_chans=3, num_classes=5, embed_dim=8, depths=(1, 2, 1, 1), mlp_ratio=2.5)
    with torch.no_grad():
        for p in m.parameters():  # non-trivial norms and biases too
            p.copy_(torch.randn_like(p) * 0.3)
    m.eval()
    x = torch.randn(3, 3, 46, 46)
    with torch.no_grad():
        logits = m(x)
    tensors = dict(m.state_dict())
    tensors["x"] = x
    tensors["logits"] = logits
    safetensors_io.save(os.path.join(OUT, "shiftvit_tiny.safetensors"), tensors,
                        {"torch_version": torch.__version__, "config": "n_div 5, patch 2, in 3, classes 5, C0 8, depths 1,2,1,1, mlp 2.5"})
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()
