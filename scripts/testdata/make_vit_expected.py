#!/usr/bin/env python3
"""Generates det's ViT test data with an independent plain-PyTorch ViT in the layout of HF's
ViTForImageClassification (separate query/key/value, layernorm_before/after; spec/models.md
§3.1 and §3.5), written here without transformers or timm:
  tests/testdata/nn/vit_tiny_hf.safetensors  HF-layout weights ("vit." prefix, a pooler that
      must be ignored, a classifier);
  tests/testdata/nn/vit_tiny_io.safetensors  an input "x" [2,3,32,32] with its logits "logits",
      and "x48" with "logits48": the same model at 48 px with the position embeddings resized
      bicubically (timm's resize_pos_embed);
  tests/testdata/nn/vit_params.json  exact parameter counts of ViT-Ti/S/B/L at 224 px, 1000 classes.
Run with Debian's python3-torch:  /usr/bin/python3 scripts/testdata/make_vit_expected.py
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


class Layer(nn.Module):
    def __init__(self, d, heads, mlp, eps):
        super().__init__()
        self.heads = heads
        self.layernorm_before = nn.LayerNorm(d, eps=eps)
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.layernorm_after = nn.LayerNorm(d, eps=eps)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        h = self.layernorm_before(x)
        split = lambda t: t.view(b, n, self.heads, hd).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5, dim=-1)
        x = x + self.o((a @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.layernorm_after(x))))


class ViT(nn.Module):
    def __init__(self, img=224, patch=16, d=768, depth=12, heads=12, mlp=3072, classes=1000, eps=1e-6):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch)
        g = img // patch
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, g * g + 1, d))
        self.layers = nn.ModuleList([Layer(d, heads, mlp, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=eps)
        self.head = nn.Linear(d, classes)

    def forward(self, x, pos=None):
        pos = self.pos if pos is None else pos
        h = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], 1) + pos
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h)[:, 0])

    def hf_state(self):
        s = {"vit.embeddings.cls_token": self.cls, "vit.embeddings.position_embeddings": self.pos,
             "vit.embeddings.patch_embeddings.projection.weight": self.patch.weight,
             "vit.embeddings.patch_embeddings.projection.bias": self.patch.bias,
             "vit.layernorm.weight": self.norm.weight, "vit.layernorm.bias": self.norm.bias,
             "classifier.weight": self.head.weight, "classifier.bias": self.head.bias}
        for i, l in enumerate(self.layers):
            p = f"vit.encoder.layer.{i}."
            for mod, name in [(l.layernorm_before, "layernorm_before"), (l.q, "attention.attention.query"),
                              (l.k, "attention.attention.key"), (l.v, "attention.attention.value"),
                              (l.o, "attention.output.dense"), (l.layernorm_after, "layernorm_after"),
                              (l.fc1, "intermediate.dense"), (l.fc2, "output.dense")]:
                s[p + name + ".weight"] = mod.weight
                s[p + name + ".bias"] = mod.bias
        return {k: v.detach().clone() for k, v in s.items()}


def resize_pos(pos, g):
    n = pos.shape[1] - 1
    g0 = int(round(n ** 0.5))
    grid = pos[:, 1:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(g, g), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, g * g, -1)], 1)


def main():
    counts = {}
    for name, (d, depth, heads, mlp) in {"ti": (192, 12, 3, 768), "s": (384, 12, 6, 1536), "b": (768, 12, 12, 3072),
                                         "l": (1024, 24, 16, 4096)}.items():
        counts[name] = sum(p.numel() for p in ViT(224, 16, d, depth, heads, mlp, 1000).parameters())
    with open(os.path.join(OUT, "vit_params.json"), "w") as f:
        json.dump(counts, f, indent=1)

    torch.manual_seed(0)
    m = ViT(img=32, patch=8, d=24, depth=2, heads=3, mlp=48, classes=7, eps=1e-6)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    m.eval()
    x, x48 = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        logits = m(x)
        logits48 = m(x48, resize_pos(m.pos, 6))
    t = m.hf_state()
    t["vit.pooler.dense.weight"] = torch.randn(24, 24)
    t["vit.pooler.dense.bias"] = torch.randn(24)
    safetensors_io.save(os.path.join(OUT, "vit_tiny_hf.safetensors"), t,
                        {"format": "pt", "config": "img 32, patch 8, hidden 24, layers 2, heads 3, mlp 48, classes 7, eps 1e-6"})
    safetensors_io.save(os.path.join(OUT, "vit_tiny_io.safetensors"),
                        {"x": x, "logits": logits, "x48": x48, "logits48": logits48})
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
