#!/usr/bin/env bash
# bench-train.sh times one training step of prism's models on the pure-Go
# backend against the same step in PyTorch 1.13 (Debian's python3-torch on
# OpenBLAS), in one run, and prints a table with the ratios.
#
#   scripts/bench-train.sh [ROUNDS]
#
# Cases: vit-lora (default ViT, batch 128, 28×28, rank-8 LoRA on every
# attention/MLP linear, backbone frozen, new head, AdamW), vit-full (all
# trainable, AdamW), mlp (784-256-10, Adam). PyTorch runs with 1 and 2
# threads; the faster is the baseline. prism and PyTorch alternate, ROUNDS
# times (default 3), so both see the same machine load; each number is the
# median over rounds of the per-round median step time, with the best round
# in parentheses (the least disturbed by other load on the machine).
#
# Environment: ITERS (timed steps per case and round, default 20),
# STOCK=1 also times prism with GoMLX's own simplego kernels
# (PRISM_GO_KERNELS=stock, slow), PRISM_BACKEND picks the backend.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds="${1:-3}"
iters="${ITERS:-20}"
py=/usr/bin/python3

if ! "$py" -c 'import torch' 2>/dev/null; then
	echo "bench-train: PyTorch for $py is missing; install it with: scripts/setup.sh bench" >&2
	exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bin="$out/bench-train"
(cd "$root" && go build -o "$bin" ./scripts/bench-train)

load0="$(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
	echo "bench-train: round $r/$rounds" >&2
	if [ $((r % 2)) = 1 ]; then
		"$bin" -iters "$iters" >>"$out/prism.jsonl"
		"$py" "$here/bench-train-torch.py" --threads 1 2 --iters "$iters" >>"$out/torch.jsonl"
	else
		"$py" "$here/bench-train-torch.py" --threads 1 2 --iters "$iters" >>"$out/torch.jsonl"
		"$bin" -iters "$iters" >>"$out/prism.jsonl"
	fi
done
if [ "${STOCK:-0}" = 1 ]; then
	echo "bench-train: prism with simplego's own kernels (STOCK=1)" >&2
	PRISM_GO_KERNELS=stock "$bin" -iters 3 -warmup 1 >>"$out/stock.jsonl"
fi
load1="$(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$out" "$load0" "$load1" <<'EOF'
import json, os, platform, statistics, subprocess, sys

out, load0, load1 = sys.argv[1:4]

def read(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]

prism, torch, stock = read("prism.jsonl"), read("torch.jsonl"), read("stock.jsonl")

def med(rows, case, **kw):
    v = [r["ms"] for r in rows if r["case"] == case and all(r.get(k) == w for k, w in kw.items())]
    return statistics.median(v) if v else None

def best(rows, case, **kw):
    v = [r["ms"] for r in rows if r["case"] == case and all(r.get(k) == w for k, w in kw.items())]
    return min(v) if v else None

def fmt(m, b):
    return f"{m:.1f} ({b:.1f})" if m is not None else "-"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
try:
    import torch as T
    tver = T.__version__
except Exception:
    tver = "?"
goversion = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
print(f"prism training step vs PyTorch — {cpu}, {os.cpu_count()} cores, load {load0} → {load1}")
print(f"{goversion}; PyTorch {tver}; backend {prism[0]['backend'] if prism else '?'}; {len(prism) // 3 if prism else 0} rounds;")
print("ms/step: median of rounds (best round); ratio of medians (ratio of bests)")
print()
cols = ["case", "prism", "torch 1 thr", "torch 2 thr", "baseline", "prism/baseline"]
if stock:
    cols.insert(2, "prism stock simplego")
print("| " + " | ".join(cols) + " |")
print("|" + "|".join("---" for _ in cols) + "|")
for case in ["vit-lora", "vit-full", "mlp"]:
    p, pb = med(prism, case), best(prism, case)
    t1, t2 = med(torch, case, threads=1), med(torch, case, threads=2)
    t1b, t2b = best(torch, case, threads=1), best(torch, case, threads=2)
    if p is None or t1 is None:
        continue
    base = min(x for x in (t1, t2) if x is not None)
    baseb = min(x for x in (t1b, t2b) if x is not None)
    row = [case, fmt(p, pb), fmt(t1, t1b), fmt(t2, t2b), fmt(base, baseb), f"{p / base:.2f}× ({pb / baseb:.2f}×)"]
    if stock:
        s = med(stock, case)
        row.insert(2, f"{s:.0f}" if s else "-")
    print("| " + " | ".join(row) + " |")
EOF
