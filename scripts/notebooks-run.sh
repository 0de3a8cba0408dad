#!/usr/bin/env bash
# notebooks-run.sh executes notebooks headless with the prism kernel and fails
# when any cell's output holds an error, a Go panic, a non-zero exit status or a
# compile error (nbconvert alone exits 0 when a GoNB cell panics).
#
#   scripts/notebooks-run.sh [--in-place] [NOTEBOOK.ipynb...]     (default: notebooks/*.ipynb)
#
# PRISM_NOTEBOOK_SMALL=1 runs the notebooks in their small mode (what CI does).
# --in-place refreshes the committed outputs of each notebook that passes.
# Each notebook runs through
#   jupyter nbconvert --to notebook --execute --allow-errors \
#     --ExecutePreprocessor.kernel_name=prism --ExecutePreprocessor.timeout=…
# into a temporary copy (the exact command is printed), which `prism kernel check`
# then inspects. The kernel must be installed: `prism kernel install` (make kernel).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

go build -o bin/prism ./cmd/prism

args=()
notebooks=()
for a in "$@"; do
	case "$a" in
	-*) args+=("$a") ;;
	*) notebooks+=("$a") ;;
	esac
done
if [ ${#notebooks[@]} -eq 0 ]; then
	notebooks=(notebooks/*.ipynb)
fi
small=()
if [ -n "${PRISM_NOTEBOOK_SMALL:-}" ] && [ "${PRISM_NOTEBOOK_SMALL}" != 0 ]; then
	small=(--small)
fi
exec bin/prism kernel run "${small[@]}" "${args[@]}" "${notebooks[@]}"
