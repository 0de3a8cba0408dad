#!/usr/bin/env bash
# bench-analysis.sh times the stability–plasticity analysis of one layer
# (core/analysis, pure Go + gonum) against the same algorithm in numpy on
# OpenBLAS, on ViT-B shapes, and prints one markdown table.
#
#   scripts/bench-analysis.sh [-count N]
#
# Needs scripts/setup.sh bench (numpy linked to OpenBLAS).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
count=3
[ "${1:-}" = "-count" ] && count="$2"

lapack="$(update-alternatives --display liblapack.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/.*link currently points to //p')"
case "$lapack" in
*openblas*) ;;
*) echo "bench-analysis: numpy would use the reference LAPACK ($lapack); run scripts/setup.sh bench" >&2; exit 1 ;;
esac

gobench="$(go test -run '^$' -bench 'WeightSpace|FeatureSpace' -benchtime "${count}x" ./core/analysis/)"

/usr/bin/python3 - "$count" "$gobench" <<'PY'
import sys, time, re
import numpy as np

count = int(sys.argv[1])
go = {}
for line in sys.argv[2].splitlines():
    m = re.match(r"Benchmark(\S+?)-\d+\s+\d+\s+(\d+) ns/op", line)
    if m:
        go[m.group(1)] = int(m.group(2)) / 1e9

rng = np.random.default_rng(99)
def f32(r, c, scale=1.0):
    return (scale * rng.standard_normal((r, c))).astype(np.float32)

def weight_space(w0, w1, u, s, v):
    # ΔM = Uᵀ(W₁ − W₀)V in float64 from float32 storage, then the split.
    d = w1.astype(np.float64) - w0.astype(np.float64)
    dm = u.astype(np.float64).T @ (d @ v.astype(np.float64))
    diag = np.diag(dm).copy()
    e = dm * dm
    off_row = e.sum(1) - diag**2
    off_col = e.sum(0) - diag**2
    return diag, off_row, off_col, np.linalg.norm(d)

def feature_space(x, w0, w1):
    # Same algorithm as core/analysis: Σ_X, pivoted-free Cholesky (X has
    # full rank here), G = W₀L, one eigh of size min(m, n), ΔΣ = AFᵀ + FAᵀ + FFᵀ.
    x = x.astype(np.float64)
    w0 = w0.astype(np.float64); w1 = w1.astype(np.float64)
    sx = np.cov(x, rowvar=False)
    l = np.linalg.cholesky(sx)
    g = w0 @ l
    m, p = g.shape
    if m <= p:
        lam, q = np.linalg.eigh(g @ g.T)
        lam, q = lam[::-1], q[:, ::-1]
        a = q.T @ g
    else:
        lam, r = np.linalg.eigh(g.T @ g)
        lam, r = lam[::-1], r[:, ::-1]
        q = g @ (r / np.sqrt(lam))
        a = np.sqrt(lam)[:, None] * r.T
    f = q.T @ ((w1 - w0) @ l)
    return a @ f.T + f @ a.T + f @ f.T

def timeit(fn):
    fn()
    best = []
    for _ in range(count):
        t = time.perf_counter(); fn(); best.append(time.perf_counter() - t)
    return sum(best) / len(best)

rows = []
for m, n in [(768, 768), (3072, 768), (768, 3072)]:
    k = min(m, n)
    w0, w1, u, v = f32(m, n), f32(m, n), f32(m, k, 1 / np.sqrt(m)), f32(n, k, 1 / np.sqrt(n))
    s = np.arange(k, 0, -1, dtype=np.float64)
    t = timeit(lambda: weight_space(w0, w1, u, s, v))
    rows.append((f"weight space {m}×{n}", go.get(f"WeightSpace/{m}x{n}"), t))
for nn, m, n in [(2048, 768, 768), (2048, 3072, 768)]:
    x, w0, w1 = f32(nn, n), f32(m, n), f32(m, n)
    t = timeit(lambda: feature_space(x, w0, w1))
    rows.append((f"feature space N={nn} {m}×{n}", go.get(f"FeatureSpace/N{nn}_{m}x{n}"), t))

import os, platform
print(f"| one layer | prism (pure Go, gonum) s | numpy (OpenBLAS) s | ratio |")
print("|---|---|---|---|")
for name, g, p in rows:
    gs = f"{g:.2f}" if g is not None else "–"
    ratio = f"{g / p:.1f}×" if g is not None else "–"
    print(f"| {name} | {gs} | {p:.2f} | {ratio} |")
print(f"\n{os.cpu_count()} cores, {platform.processor() or platform.machine()}, numpy {np.__version__}, mean of {count} runs")
PY
