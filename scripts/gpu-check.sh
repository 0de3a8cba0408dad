#!/usr/bin/env bash
# gpu-check.sh is the prepared check of prism's XLA (GPU) path, one script
# for the GPU machine (≤ 8 minutes), whose binaries are built beforehand on a
# machine with Go (the GPU machine has neither Go nor network):
#
#   scripts/gpu-check.sh --prepare     here: build .gpu/prism.gz and .gpu/gpu-check.gz
#                                      (cgo, linux/amd64, -tags nolapack: they need only
#                                      libc) and the data subsets .gpu/data (3.7 MB)
#   scripts/gpu-check.sh               on the GPU machine, with .gpu carried along
#   scripts/gpu-check.sh --cpu-only    the same checks as a rehearsal on a CPU machine
#
# On the GPU machine it
#   0. arranges a PJRT plugin folder from JAX's jax-cuda13-pjrt and the pip nvidia-*
#      libraries (scripts/gpu-check-plugin.sh) and runs `prism doctor` on it, which
#      prints the PJRT C API version the plugin reports (gopjrt v0.10 was built
#      against 0.81) and fails clearly if the plugin does not load or compute;
#   1. pretrains the default ViT briefly on the CPU (8,192 MNIST images), then
#      fine-tunes it (PiSSA, rank 8, 2 epochs of 4,096 Fashion-MNIST images, 128 steps)
#      from that same checkpoint on the GPU and on the CPU and compares the loss
#      curves: every step's loss within 0.02, each epoch's mean loss within 0.005,
#      accuracies within 1 point, mean KL within 0.01 nats (gpu-check compare;
#      docs/gpu.md says how these were chosen);
#   2. times a LoRA fine-tuning step of a ViT-B-sized model (224×224×3, patch 16,
#      width 768, depth 12, 12 heads, MLP 3072, batch 64, rank 8, float32) in prism
#      (XLA) and in PyTorch eager (scripts/gpu-check-torch.py, several variants) on
#      the same GPU, and prints a table with prism's ratio to each (target ≤ 1.0×).
# --cpu-only runs 1 with prism's CPU kernels against simplego's own (two
# float32 implementations) on smaller subsets, and 2 on a tiny ViT against
# Debian's PyTorch on the CPU; it needs no plugin.
#
# Environment: PYTHON (PyTorch's interpreter; default /opt/torch/.venv/bin/python3,
# else /usr/bin/python3, else python3), GPU_CHECK_DIR (default .gpu), OUT (a
# folder for the logs and JSON; default a temporary one), GPU_CHECK_BUDGET
# (seconds, default 480: phases that would not fit are skipped, and said so).
# Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
gdir="${GPU_CHECK_DIR:-$root/.gpu}"
mode=gpu
case "${1:-}" in
--prepare) mode=prepare ;;
--cpu-only) mode=cpu ;;
"") ;;
-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "gpu-check: unknown argument '$1' (want --prepare, --cpu-only or nothing)" >&2; exit 2 ;;
esac

say() { echo "gpu-check: $*" >&2; }
hr() { echo; echo "== $* =="; }

prepare() {
	command -v go >/dev/null 2>&1 || { say "--prepare needs Go (run it on a machine with the repository's toolchain)"; return 1; }
	mkdir -p "$gdir"
	local b
	for b in prism:./cmd/prism gpu-check:./scripts/gpu-check; do
		say "building ${b%%:*} (cgo, linux/amd64, -tags nolapack)"
		(cd "$root" && CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -tags nolapack -ldflags='-s -w' \
			-o "$gdir/${b%%:*}" "${b#*:}") || return 1
		gzip -9 -f "$gdir/${b%%:*}" || return 1
	done
	if [ ! -f "$gdir/data/fashion-mnist/manifest.json" ]; then
		say "writing the data subsets (needs MNIST and Fashion-MNIST: scripts/setup.sh data)"
		gunzip -c "$gdir/gpu-check.gz" >"$gdir/gpu-check.tmp" && chmod +x "$gdir/gpu-check.tmp" &&
			"$gdir/gpu-check.tmp" data -out "$gdir/data" || { rm -f "$gdir/gpu-check.tmp"; return 1; }
		rm -f "$gdir/gpu-check.tmp"
	fi
	du -sh "$gdir"/prism.gz "$gdir"/gpu-check.gz "$gdir"/data
	say "prepared $gdir; carry it to the GPU machine and run scripts/gpu-check.sh there (see docs/gpu.md)"
}

if [ "$mode" = prepare ]; then
	prepare
	exit $?
fi

budget="${GPU_CHECK_BUDGET:-480}"
deadline=$((SECONDS + budget))
out="${OUT:-}"
if [ -z "$out" ]; then out="$(mktemp -d)"; fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
skipped=()

# run_phase NAME CAP CMD...: runs CMD with a limit of CAP seconds or what is
# left of the budget (keeping RESERVE seconds for later phases); a phase
# that cannot get MIN seconds is skipped.
reserve=0
run_phase() {
	local name="$1" cap="$2" min="${3:-20}"
	shift 3
	local left=$((deadline - SECONDS - reserve))
	if [ "$left" -lt "$min" ]; then
		say "SKIPPED $name: $left s left of the ${budget} s budget"
		skipped+=("$name")
		return 3
	fi
	[ "$left" -lt "$cap" ] && cap="$left"
	local t0=$SECONDS
	timeout --kill-after=10 "$cap" "$@"
	local rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		say "$name: stopped after ${cap} s (its time limit)"
	fi
	say "$name: exit $rc after $((SECONDS - t0)) s"
	return $rc
}

hr "gpu-check ($mode mode), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "host $(uname -n), $(nproc) CPUs, $(uname -r)"
if [ "$mode" = gpu ]; then
	if command -v nvidia-smi >/dev/null 2>&1; then
		nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || say "nvidia-smi failed"
	else
		say "no nvidia-smi on PATH"
	fi
fi

# The binaries: carried (GPU machine) or built now (--cpu-only on a machine with Go).
if [ ! -f "$gdir/prism.gz" ] || [ ! -f "$gdir/gpu-check.gz" ] || [ ! -f "$gdir/data/fashion-mnist/manifest.json" ]; then
	if [ "$mode" = cpu ] && command -v go >/dev/null 2>&1; then
		prepare || exit 1
	else
		say "missing $gdir/prism.gz, $gdir/gpu-check.gz or $gdir/data: run 'scripts/gpu-check.sh --prepare' on a machine with Go and carry $gdir"
		exit 1
	fi
fi
for b in prism gpu-check; do
	gunzip -c "$gdir/$b.gz" >"$work/$b" && chmod +x "$work/$b" || exit 1
done
prism="$work/prism"
gc="$work/gpu-check"
if ! "$prism" --help >/dev/null 2>"$work/start.err"; then
	say "the carried prism binary does not start here:"; cat "$work/start.err"
	exit 1
fi
data="$gdir/data"

if [ -z "${PYTHON:-}" ]; then
	for p in /opt/torch/.venv/bin/python3 /usr/bin/python3 python3; do
		if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' 2>/dev/null; then PYTHON="$p"; break; fi
	done
fi
have_torch=0
if [ -n "${PYTHON:-}" ] && "$PYTHON" -c 'import torch' 2>/dev/null; then
	have_torch=1
	say "PyTorch: $("$PYTHON" -c 'import torch, sys; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu only", sys.executable)')"
else
	say "no PyTorch for ${PYTHON:-python3}: the step is timed in prism only (install it with scripts/setup.sh bench)"
fi

# 0. The XLA backend (GPU mode): plugin folder, doctor.
if [ "$mode" = gpu ]; then
	hr "0. PJRT plugin and prism doctor"
	if ! "$here/gpu-check-plugin.sh" ${PYTHON:+--python "$PYTHON"} "$work/cuda" >"$out/plugin.log" 2>&1; then
		cat "$out/plugin.log"
		say "FAILED: no PJRT plugin folder (see above)"
		exit 1
	fi
	cat "$out/plugin.log"
	# shellcheck disable=SC1091
	. "$work/cuda/env.sh"
	xla="xla:$PRISM_CUDA_PLUGIN"
	reserve=60
	run_phase "prism doctor" 150 20 "$prism" doctor --backend-only --backend "$xla" >"$out/doctor.log" 2>&1
	rc=$?
	cat "$out/doctor.log"
	if [ $rc != 0 ]; then
		failed+=("prism doctor --backend $xla")
		say "the XLA backend does not work: see the [FAIL] lines above; timing PyTorch alone for the record"
		if [ $have_torch = 1 ]; then
			run_phase "PyTorch step" 120 30 "$PYTHON" "$here/gpu-check-torch.py" --device cuda >"$out/steps.jsonl"
			[ -s "$out/steps.jsonl" ] && "$gc" table "$out/steps.jsonl" | tee "$out/table.md"
		fi
		hr "result"; say "FAILED: ${failed[*]}"; say "logs in $out"
		exit 1
	fi
	accel="$xla"
	accel_label="gpu ($xla)"
	ref="go"
	ref_label="cpu (go)"
	ft_sizes=()
	step_sizes=()
	torch_device=cuda
	torch_variants="explicit,explicit+tf32,sdpa+tf32,explicit+host"
else
	accel="go"
	accel_label="cpu (go, prism kernels)"
	ref="go"
	ref_label="cpu (go, simplego's own kernels)"
	# Smaller runs: simplego's own kernels are ~10× slower.
	ft_sizes=(-pretrain-train-subset "${GPU_CHECK_PRETRAIN_SUBSET:-2048}" -train-subset "${GPU_CHECK_TRAIN_SUBSET:-1024}"
		-test-subset "${GPU_CHECK_TEST_SUBSET:-500}")
	step_sizes=(-image 32 -channels 3 -patch 8 -width 64 -depth 2 -heads 4 -mlp 128 -batch 8)
	torch_device=cpu
	torch_variants="explicit,explicit+host"
fi

# 1. Loss curves: accelerator vs CPU from one pretrained checkpoint.
hr "1. fine-tuning loss curves: $accel_label vs $ref_label"
reserve=$([ "$mode" = gpu ] && echo 150 || echo 0)
phase1=ok
run_phase "pretrain (cpu)" 120 20 "$gc" pretrain -data "$data" -cache "$work/cache" -backend go "${ft_sizes[@]}" || phase1=failed
if [ $phase1 = ok ]; then
	cp -r "$work/cache" "$work/cache-accel" && cp -r "$work/cache" "$work/cache-ref"
	run_phase "finetune $accel_label" 180 30 "$gc" finetune -data "$data" -cache "$work/cache-accel" -backend "$accel" \
		-label "$accel_label" -out "$out/curve-accel.json" "${ft_sizes[@]}" || phase1=failed
fi
if [ $phase1 = ok ]; then
	if [ "$mode" = cpu ]; then
		PRISM_GO_KERNELS=stock run_phase "finetune $ref_label" 180 30 "$gc" finetune -data "$data" -cache "$work/cache-ref" \
			-backend "$ref" -label "$ref_label" -out "$out/curve-ref.json" "${ft_sizes[@]}" || phase1=failed
	else
		run_phase "finetune $ref_label" 120 30 "$gc" finetune -data "$data" -cache "$work/cache-ref" \
			-backend "$ref" -label "$ref_label" -out "$out/curve-ref.json" "${ft_sizes[@]}" || phase1=failed
	fi
fi
if [ $phase1 = ok ]; then
	"$gc" compare "$out/curve-accel.json" "$out/curve-ref.json" | tee "$out/curves.txt" || phase1=failed
fi
[ $phase1 = ok ] || failed+=("loss curves")

# 2. Step timing: prism vs PyTorch eager on the same device.
hr "2. LoRA fine-tuning step: prism ($accel) vs PyTorch eager ($torch_device)"
reserve=$([ "$mode" = gpu ] && echo 40 || echo 0)
phase2=ok
: >"$out/steps.jsonl"
run_phase "prism step" 240 40 "$gc" step -backend "$accel" -variants device,host "${step_sizes[@]}" >>"$out/steps.jsonl" || phase2=failed
reserve=0
if [ $have_torch = 1 ]; then
	torch_args=(--device "$torch_device" --variants "$torch_variants")
	if [ "$mode" = cpu ]; then
		torch_args+=(--threads 1 --image 32 --patch 8 --width 64 --depth 2 --heads 4 --mlp 128 --batch 8)
	fi
	run_phase "PyTorch step" 150 30 "$PYTHON" "$here/gpu-check-torch.py" "${torch_args[@]}" >>"$out/steps.jsonl" || phase2=failed
fi
if [ -s "$out/steps.jsonl" ]; then
	"$gc" table "$out/steps.jsonl" | tee "$out/table.md" || phase2=failed
fi
[ $phase2 = ok ] || failed+=("step timing")

hr "result"
[ ${#skipped[@]} -gt 0 ] && say "skipped for time: ${skipped[*]}"
say "logs and JSON in $out"
if [ ${#failed[@]} -gt 0 ] || [ ${#skipped[@]} -gt 0 ]; then
	say "FAILED: ${failed[*]} ${skipped[*]}"
	exit 1
fi
say "all checks passed ($mode mode, $SECONDS s)"
