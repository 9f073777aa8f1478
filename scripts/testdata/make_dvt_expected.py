#!/usr/bin/env python3
"""Generates det's DVT test data with an independent plain-PyTorch DVT written from
spec/models.md §4 (no timm, no DVT / T2T-ViT code):
  tests/testdata/nn/dvt_tiny.safetensors  weights of a tiny DVT (reference state-dict key names:
      less_less_token / less_token / normal_token, tokens_to_token.attention1.kqv, ...,
      feature_resuse_mlp, relation_reuse_conv), the fixed inputs "x_small" and the eval-mode
      logits of the three exits "logits0", "logits1", "logits2".
The cascade keeps the real 224 px geometry (7x7, 10x10 and 14x14 token grids, so the nearest
upsample to 14x14 / 20x20 before the adaptive average pool is exercised), but is narrow and
shallow: embed 16, depth 2, 2 heads, mlp ratio 2, token_dim 8 (m = 4 random features), 5 classes.
To keep the file small the 224 px inputs are stored at 56 px: x = x_small repeated 4x along
height and width (nearest upsample, exact in both implementations), and the weights and inputs
are float16-exact values stored as F16 (the fixed sinusoid pos_embed tables stay F32).
The forward runs in float64 on the float32 weights; the logits are stored as float32.
Run with Debian's python3-torch:  /usr/bin/python3 scripts/testdata/make_dvt_expected.py
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "testdata", "nn")

REUSE_CHANNELS = 48   # feature_resuse_mlp: D -> 128 -> 48
REUSE_HIDDEN = 128
LN_EPS = 1e-5
# tokens_type -> soft_split0 (kernel, stride, padding), spec §4.1
SPLITS = {"less_less_token": (14, 8, 3), "less_token": (11, 6, 5), "normal_token": (7, 4, 2)}


class TokenPerformer(nn.Module):
    """Token_performer(dim, in_dim, kernel_ratio=0.5), spec §4.2."""

    def __init__(self, dim, in_dim):
        super().__init__()
        self.emb = in_dim
        self.m = int(in_dim * 0.5)
        self.kqv = nn.Linear(dim, 3 * in_dim)
        self.dp = nn.Dropout(0.1)
        self.proj = nn.Linear(in_dim, in_dim)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(in_dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, in_dim), nn.Dropout(0.1))
        self.w = nn.Parameter(torch.randn(self.m, in_dim), requires_grad=False)

    def phi(self, z):
        # exp(z w^T - |z|^2 / 2) / sqrt(m)
        zz = (z * z).sum(dim=-1, keepdim=True).repeat(1, 1, self.m) / 2
        wz = torch.einsum("bti,mi->btm", z, self.w)
        return torch.exp(wz - zz) / math.sqrt(self.m)

    def forward(self, x):
        k, q, v = torch.split(self.kqv(self.norm1(x)), self.emb, dim=-1)   # k, q, v order
        kp, qp = self.phi(k), self.phi(q)
        D = torch.einsum("bti,bi->bt", qp, kp.sum(dim=1)).unsqueeze(dim=2)
        kptv = torch.einsum("bin,bim->bnm", v, kp)
        y = torch.einsum("bti,bni->btn", qp, kptv) / (D.repeat(1, 1, self.emb) + 1e-8)
        y = v + self.dp(self.proj(y))
        return y + self.mlp(self.norm2(y))


class T2TModule(nn.Module):
    def __init__(self, kernel, stride, padding, embed_dim, token_dim):
        super().__init__()
        self.token_dim = token_dim
        self.soft_split0 = nn.Unfold(kernel_size=(kernel, kernel), stride=(stride, stride), padding=(padding, padding))
        self.soft_split1 = nn.Unfold(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
        self.soft_split2 = nn.Unfold(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
        self.attention1 = TokenPerformer(3 * kernel * kernel, token_dim)
        self.attention2 = TokenPerformer(token_dim * 9, token_dim)
        self.project = nn.Linear(token_dim * 9, embed_dim)

    def forward(self, x):
        x = self.soft_split0(x).transpose(1, 2)
        x = self.attention1(x)
        B, L, C = x.shape
        x = x.transpose(1, 2).reshape(B, C, int(math.isqrt(L)), int(math.isqrt(L)))
        x = self.soft_split1(x).transpose(1, 2)
        x = self.attention2(x)
        B, L, C = x.shape
        x = x.transpose(1, 2).reshape(B, C, int(math.isqrt(L)), int(math.isqrt(L)))
        x = self.soft_split2(x).transpose(1, 2)
        return self.project(x)


class Mlp(nn.Module):
    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d_out)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, reused=None):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = torch.einsum("bhqd,bhkd->bhqk", q, k) * self.scale
        if reused is not None:
            logits = logits + reused
        out = torch.einsum("bhqk,bhkd->bhqd", logits.softmax(dim=-1), v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C)), logits


def resize_grid(t, g0, g1):
    """[M, C, g0*g0] -> [M, C, g1*g1]: nearest upsample to 14x14 (target 10) or 20x20
    (target 14), then adaptive average pool to g1 x g1 (spec §4.3 steps 2-3)."""
    M, C, _ = t.shape
    t = t.reshape(M, C, g0, g0)
    up = {10: 14, 14: 20}[g1]
    t = F.interpolate(t, size=(up, up), mode="nearest")
    t = F.adaptive_avg_pool2d(t, (g1, g1))
    return t.reshape(M, C, g1 * g1)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, feature_reuse):
        super().__init__()
        self.feature_reuse = feature_reuse
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        d_in = dim + REUSE_CHANNELS if feature_reuse else dim
        self.norm2 = nn.LayerNorm(d_in, eps=LN_EPS)
        self.mlp = Mlp(d_in, int(dim * mlp_ratio), dim)
        if feature_reuse:
            self.feature_resuse_mlp = nn.Sequential(nn.LayerNorm(dim, eps=LN_EPS),
                                                    Mlp(dim, REUSE_HIDDEN, REUSE_CHANNELS))

    def forward(self, x, upstream_features=None, g0=None, g1=None, reused=None):
        a, logits = self.attn(self.norm1(x), reused)
        x = x + a
        if self.feature_reuse:
            f = self.feature_resuse_mlp(upstream_features)                     # [B, n0, 48]
            patches = resize_grid(f[:, 1:, :].transpose(1, 2), g0, g1)         # [B, 48, g1*g1]
            cls = torch.zeros(f.shape[0], 1, REUSE_CHANNELS, dtype=f.dtype)
            f = torch.cat([cls, patches.transpose(1, 2)], dim=1)
            x = x + self.mlp(self.norm2(torch.cat([x, f], dim=2)))
        else:
            x = x + self.mlp(self.norm2(x))
        return x, logits


def sinusoid(n_position, d):
    table = torch.zeros(n_position, d, dtype=torch.float64)
    for pos in range(n_position):
        for j in range(d):
            angle = pos / math.pow(10000, 2 * (j // 2) / d)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table.unsqueeze(0)


class T2TViT(nn.Module):
    def __init__(self, split, embed_dim, depth, heads, mlp_ratio, classes, token_dim, upstream=None):
        super().__init__()
        k, s, p = split
        g = (224 + 2 * p - k) // s + 1        # after soft_split0
        for _ in range(2):                     # soft_split1, soft_split2: k3 s2 p1
            g = (g + 2 - 3) // 2 + 1
        self.grid = g
        self.upstream = upstream   # (grid, depth) of the model reused from
        self.tokens_to_token = T2TModule(k, s, p, embed_dim, token_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(sinusoid(self.grid ** 2 + 1, embed_dim).float(), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, heads, mlp_ratio, upstream is not None) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, classes)
        self.depth = depth
        if upstream is not None:
            hd = heads * upstream[1]
            self.relation_reuse_conv = nn.Sequential(nn.Conv2d(hd, 3 * hd, 1), nn.GELU(), nn.Conv2d(3 * hd, hd, 1))

    def forward(self, x, up_features=None, up_relations=None):
        B = x.shape[0]
        x = self.tokens_to_token(x)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1) + self.pos_embed
        reused = [None] * self.depth
        if self.upstream is not None:
            g0, g1 = self.upstream[0], self.grid
            r = self.relation_reuse_conv(torch.cat(up_relations, dim=1))      # [B, Hd, n0, n0]
            Hd, n0, n1 = r.shape[1], g0 * g0 + 1, g1 * g1 + 1
            # key axis (columns), cls column kept
            keys = resize_grid(r[:, :, :, 1:].reshape(B * Hd * n0, 1, g0 * g0), g0, g1).reshape(B, Hd, n0, g1 * g1)
            r = torch.cat([r[:, :, :, :1], keys], dim=3)                      # [B, Hd, n0, n1]
            # query axis (rows), cls row kept
            rows = r[:, :, 1:, :].permute(0, 1, 3, 2).reshape(B * Hd * n1, 1, g0 * g0)
            rows = resize_grid(rows, g0, g1).reshape(B, Hd, n1, g1 * g1).permute(0, 1, 3, 2)
            r = torch.cat([r[:, :, :1, :], rows], dim=2)                      # [B, Hd, n1, n1]
            reused = list(torch.chunk(r, self.depth, dim=1))
        relations = []
        for blk, rel in zip(self.blocks, reused):
            x, logits = blk(x, up_features, self.upstream[0] if self.upstream else None, self.grid, rel)
            relations.append(logits)
        features = x
        return self.head(self.norm(x)[:, 0]), features, relations


class DVT(nn.Module):
    def __init__(self, embed_dim, depth, heads, mlp_ratio, classes, token_dim):
        super().__init__()
        args = (embed_dim, depth, heads, mlp_ratio, classes, token_dim)
        self.less_less_token = T2TViT(SPLITS["less_less_token"], *args)
        self.less_token = T2TViT(SPLITS["less_token"], *args, upstream=(self.less_less_token.grid, depth))
        self.normal_token = T2TViT(SPLITS["normal_token"], *args, upstream=(self.less_token.grid, depth))

    def forward(self, x):
        y0, f0, r0 = self.less_less_token(x)
        y1, f1, r1 = self.less_token(x, f0, r0)
        y2, _, _ = self.normal_token(x, f1, r1)
        return y0, y1, y2


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    cfg = dict(embed_dim=16, depth=2, heads=2, mlp_ratio=2.0, classes=5, token_dim=8)
    m = DVT(**cfg)
    assert [m.less_less_token.grid, m.less_token.grid, m.normal_token.grid] == [7, 10, 14]
    with torch.no_grad():
        layer_norm_weights = {f"{n}.weight" for n, mod in m.named_modules() if isinstance(mod, nn.LayerNorm)}
        for name, p in m.named_parameters():
            if name.endswith("pos_embed"):
                continue   # the fixed sinusoid table (checked against the C++ one)
            if name.endswith(".w"):
                p.copy_(torch.randn_like(p) * 0.5)       # random features (any matrix loads)
            elif name in layer_norm_weights:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif p.dim() == 1 or name.endswith("cls_token"):
                p.copy_(0.3 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
            p.copy_(p.half().float())   # exactly representable in float16: stored as F16
    m.eval()
    x_small = (torch.rand(3, 3, 56, 56) * 4 - 2).half().float()
    x = x_small.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    md = DVT(**cfg).double()
    md.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    md.eval()
    with torch.no_grad():
        logits = md(x.double())
        logits32 = m(x)
        # The reuse paths matter: the later exits change when the reused tensors are removed.
        saved = {k: v.clone() for k, v in md.state_dict().items()}
        for mem in (md.less_token, md.normal_token):
            for blk in mem.blocks:
                blk.feature_resuse_mlp[1].fc2.weight.zero_()
                blk.feature_resuse_mlp[1].fc2.bias.zero_()
        no_feat = md(x.double())
        md.load_state_dict(saved)
        for mem in (md.less_token, md.normal_token):
            mem.relation_reuse_conv[2].weight.zero_()
            mem.relation_reuse_conv[2].bias.zero_()
        no_rel = md(x.double())
    for i in range(3):
        print(f"exit {i}: logits {logits[i][0].tolist()}")
        print(f"  float32 vs float64 max abs diff {(logits32[i].double() - logits[i]).abs().max().item():.3g}")
        print(f"  input 0 vs 1 max abs diff {(logits[i][0] - logits[i][1]).abs().max().item():.3g}")
        if i > 0:
            print(f"  without feature reuse: max change {(no_feat[i] - logits[i]).abs().max().item():.3g}; "
                  f"without relation reuse: {(no_rel[i] - logits[i]).abs().max().item():.3g}")
    # Every weight but the sinusoid table and the inputs are float16-exact: stored as F16 to halve
    # the file (the C++ test converts to float32, losslessly).
    tensors = {k: (v if k.endswith("pos_embed") else v.half()) for k, v in m.state_dict().items()}
    tensors["x_small"] = x_small.half()
    for i in range(3):
        tensors[f"logits{i}"] = logits[i].float()
    path = os.path.join(OUT, "dvt_tiny.safetensors")
    safetensors_io.save(path, tensors, {
        "torch_version": torch.__version__,
        "config": "DVT, 224 px, embed 16, depth 2, heads 2, mlp 2, token_dim 8, classes 5; "
                  "x = x_small repeat_interleave 4 on H and W"})
    print(path, os.path.getsize(path), "bytes,", sum(p.numel() for p in m.parameters()), "parameters")


if __name__ == "__main__":
    main()
