#!/usr/bin/env bash
# bench-lowrank.sh times window initialisation (core/lowrank) of a ViT-B-shaped
# layer set against numpy.linalg.svd and torch.linalg.svd on the same matrices,
# and randomized PiSSA against full-SVD PiSSA, and prints one table.
# `make bench-lowrank` runs `scripts/setup.sh bench` first (numpy, torch and
# OpenBLAS from Debian). Extra arguments go to the benchmark program, e.g.
#
#   scripts/bench-lowrank.sh -rounds 5 -exponent 0.7
#   scripts/bench-lowrank.sh -blocks 2 -rounds 1 -variants=false   # quick look
#
# Go micro-benchmarks of single layers: go test -run '^$' -bench . ./core/lowrank/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

alt="$(update-alternatives --query liblapack.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')"
case "$alt" in
*openblas*) ;;
*)
	echo "bench-lowrank: the system LAPACK is '${alt:-unknown}', not OpenBLAS: numpy and torch would run" >&2
	echo "the slow reference LAPACK. Run scripts/setup.sh bench (installs libopenblas0-pthread)." >&2
	exit 1
	;;
esac
if [ "${CGO_ENABLED:-1}" = 0 ]; then
	echo "bench-lowrank: needs cgo (the LAPACK back-end is what it measures)" >&2
	exit 1
fi

go run ./core/lowrank/internal/cmd/benchlowrank "$@"
