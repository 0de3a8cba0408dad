#!/bin/sh
# Entry point of the CUDA image: load the PJRT plugin environment written by
# `scripts/setup.sh cuda` (scripts/gpu-check-plugin.sh), then run the command.
set -e
. "${PRISM_CUDA_DIR:-/opt/prism/cuda}/env.sh"
exec "$@"
