#!/usr/bin/python3
"""PyTorch 1.13 baseline for `make bench-train`: the same ViT / MLP steps prism times.

Prints one JSON object per line: {"case": ..., "threads": N, "ms": median ms/step}.
Baseline only; never a runtime dependency of prism.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """y = x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ with W, b frozen; A: r×in, B: out×r trainable."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        # Non-zero B so that the step does the same work as a window-initialised adapter.
        self.B = nn.Parameter(torch.randn(base.out_features, rank) * 0.01)

    def forward(self, x):
        return self.base(x) + self.scale * F.linear(F.linear(x, self.A), self.B)


class Block(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
        att = att.softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class ViT(nn.Module):
    def __init__(self, image=28, patch=7, channels=1, width=64, depth=4, heads=4, mlp=128, classes=10):
        super().__init__()
        self.patch = patch
        n = (image // patch) ** 2
        self.proj = nn.Linear(channels * patch * patch, width)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, width) * 0.02)
        self.blocks = nn.ModuleList([Block(width, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def forward(self, img):  # img: [B, H, W, C]
        b, hh, ww, c = img.shape
        p = self.patch
        x = img.reshape(b, hh // p, p, ww // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)
        x = self.proj(x)
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def mlp_model(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def time_steps(model, params, opt, x, y, warmup, iters):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1000.0 * times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=128)
    ap.add_argument("--patch", type=int, default=7)
    ap.add_argument("--cases", nargs="+", default=["vit-lora", "vit-full", "mlp"])
    args = ap.parse_args()

    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        b = args.batch
        img = torch.rand(b, 28, 28, 1)
        lab = torch.randint(0, 10, (b,))
        for case in args.cases:
            if case in ("vit-lora", "vit-full"):
                model = ViT(patch=args.patch, width=args.width, depth=args.depth, heads=args.heads, mlp=args.mlp)
                if case == "vit-lora":
                    for p in model.parameters():
                        p.requires_grad_(False)
                    for blk in model.blocks:
                        for name in ("qkv", "proj", "fc1", "fc2"):
                            setattr(blk, name, LoRALinear(getattr(blk, name), args.rank, args.alpha))
                    model.head = nn.Linear(args.width, 10)  # new task-B head, trainable
                params = [p for p in model.parameters() if p.requires_grad]
                opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
                ms = time_steps(model, params, opt, img, lab, args.warmup, args.iters)
            elif case == "mlp":
                model = mlp_model([784, 256, 10])
                params = list(model.parameters())
                opt = torch.optim.Adam(params, lr=1e-3)
                ms = time_steps(model, params, opt, img.reshape(b, 784), lab, args.warmup, args.iters)
            else:
                raise SystemExit(f"unknown case {case!r}")
            n_train = sum(p.numel() for p in params)
            print(json.dumps({"case": case, "threads": threads, "ms": round(ms, 3), "trainable": n_train}), flush=True)


if __name__ == "__main__":
    main()
