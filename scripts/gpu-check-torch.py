#!/usr/bin/env python3
"""PyTorch eager baseline for scripts/gpu-check.sh: the LoRA fine-tuning step
that `gpu-check step` times in prism, on the same device, same sizes.

Architecture (core/models' ViT): images [B, S, S, C] cut into p×p patches
(row, column, channel order) → linear patch_embed.proj → class token and
learned positions → `depth` pre-LayerNorm blocks (ε 1e-5; softmax attention
with a fused qkv linear split as (3, heads, d/heads); MLP with exact GELU) →
final LayerNorm → class token → a new linear head. LoRA (rank r, scale α/r,
A random, B zero, base weight and bias frozen) on every block's attn.qkv,
attn.proj, mlp.fc1 and mlp.fc2; everything else frozen but the new head.
Step: cross-entropy, backward, global gradient-norm clipping at 1, AdamW
(lr 1e-3, weight decay 0.01, ε 1e-8); the loss is read back every step
(`.item()`), as prism reads it.

Variants (--variants, comma-separated):
  explicit       attention as matmul → softmax → matmul (the ops prism runs)
  sdpa           torch.nn.functional.scaled_dot_product_attention (PyTorch ≥ 2.0)
  +tf32          float32 matmuls on TF32 tensor cores (set_float32_matmul_precision("high"));
                 without it, full float32 ("highest", PyTorch's default)
  +host          the batch is copied from host memory every step
e.g. explicit,explicit+tf32,sdpa+tf32,explicit+host.

Prints one JSON object per variant and line, with the keys of `gpu-check step`.
A baseline only: prism never imports or runs PyTorch.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """y = x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ; W, b frozen; A: r×in, B: out×r trainable."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + self.scale * F.linear(F.linear(x, self.A), self.B)


class Block(nn.Module):
    def __init__(self, width, heads, mlp, sdpa):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.norm1 = nn.LayerNorm(width, eps=1e-5)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-5)
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
            y = att.softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, image, patch, channels, width, depth, heads, mlp, classes, sdpa):
        super().__init__()
        self.patch = patch
        n = (image // patch) ** 2
        self.proj = nn.Linear(channels * patch * patch, width)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, width) * 0.02)
        self.blocks = nn.ModuleList([Block(width, heads, mlp, sdpa) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-5)
        self.head = nn.Linear(width, classes)

    def forward(self, img):  # [B, H, W, C]
        b, hh, ww, c = img.shape
        p = self.patch
        x = img.reshape(b, hh // p, p, ww // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)
        x = torch.cat([self.cls.expand(b, -1, -1), self.proj(x)], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def lora_vit(a, sdpa):
    """The ViT with LoRA on every block linear, the backbone frozen, a new trainable head."""
    torch.manual_seed(1)
    m = ViT(a.image, a.patch, a.channels, a.width, a.depth, a.heads, a.mlp, a.classes, sdpa)
    for p in m.parameters():
        p.requires_grad_(False)
    for blk in m.blocks:
        blk.qkv = LoRALinear(blk.qkv, a.rank, a.alpha)
        blk.proj = LoRALinear(blk.proj, a.rank, a.alpha)
        blk.fc1 = LoRALinear(blk.fc1, a.rank, a.alpha)
        blk.fc2 = LoRALinear(blk.fc2, a.rank, a.alpha)
    m.head = nn.Linear(a.width, a.classes)  # new head, trainable
    return m


def time_variant(a, variant, device):
    parts = variant.split("+")
    attention, flags = parts[0], set(parts[1:])
    if attention not in ("explicit", "sdpa") or not flags <= {"tf32", "host"}:
        raise SystemExit(f"gpu-check-torch: unknown variant {variant!r} (want explicit|sdpa with +tf32, +host)")
    sdpa = attention == "sdpa"
    if sdpa and not hasattr(F, "scaled_dot_product_attention"):
        print(f"gpu-check-torch: skipping {variant}: PyTorch {torch.__version__} has no scaled_dot_product_attention", file=sys.stderr)
        return None
    torch.set_float32_matmul_precision("high" if "tf32" in flags else "highest")
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = "tf32" in flags
    setup = time.perf_counter()
    model = lora_vit(a, sdpa).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.01, eps=1e-8)
    g = torch.Generator().manual_seed(2)
    host_x = torch.rand(a.batch, a.image, a.image, a.channels, generator=g)
    host_y = torch.randint(0, a.classes, (a.batch,), generator=g)
    x, y = host_x.to(device), host_y.to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    losses = []

    def step():
        nonlocal x, y
        if "host" in flags:
            x, y = host_x.to(device), host_y.to(device)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        v = loss.item()  # waits for the step
        if not math.isfinite(v):
            raise SystemExit(f"gpu-check-torch: {variant}: loss {v}")
        losses.append(v)

    sync()
    setup_s = time.perf_counter() - setup
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(a.warmup - 1):
        step()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    precision = "tf32 matmuls" if "tf32" in flags else "float32"
    name = f"{attention} attention, {precision}, batch {'from host' if 'host' in flags else 'on device'}"
    desc = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    return {
        "impl": "torch", "variant": name, "backend": f"{device.type} (PyTorch {torch.__version__})",
        "image": a.image, "channels": a.channels, "patch": a.patch, "width": a.width, "depth": a.depth,
        "heads": a.heads, "mlp": a.mlp, "batch": a.batch, "rank": a.rank, "dtype": "float32",
        "trainable": sum(p.numel() for p in trainable), "params": sum(p.numel() for p in model.parameters()),
        "first_step_s": first, "ms": statistics.median(times), "min_ms": min(times), "mean_ms": statistics.fmean(times),
        "iters": a.iters, "loss_first": losses[0], "loss_last": losses[-1], "setup_s": setup_s, "description": desc,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--variants", default="explicit,explicit+tf32,sdpa+tf32,explicit+host")
    ap.add_argument("--image", type=int, default=224)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--mlp", type=int, default=3072)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu-check-torch: --device cuda, but PyTorch sees no CUDA device")
    for v in a.variants.split(","):
        r = time_variant(a, v.strip(), device)
        if r is not None:
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
