# prism with its XLA backend on NVIDIA GPUs. Thin on purpose: everything is
# installed by the repository's own scripts/setup.sh and Makefile (what the
# README and CI run), so the image cannot drift from them. See docker/README.md.
#
#   docker build -f docker/cuda.Dockerfile -t prism-cuda .
#   docker run --rm --gpus all prism-cuda prism doctor
#   docker run --rm --gpus all prism-cuda prism finetune --quick
#
# The base is the same Go 1.26.8 / Debian 12 image as the CPU one, not an
# nvidia/cuda image: the user-space CUDA libraries (cuBLAS, cuDNN, NVRTC,
# nvJitLink, ptxas, libdevice) come from NVIDIA's pip wheels that JAX's CUDA
# PJRT plugin depends on, installed by `scripts/setup.sh cuda` at pinned
# versions (jax-cuda13-pjrt 0.11.2, the plugin prism's GPU check was prepared
# for), and the driver comes from the host through the NVIDIA container
# toolkit (--gpus all). One CUDA, chosen by the plugin's own dependencies, so
# no second copy of CUDA can disagree with it.
FROM golang:1.26.8-bookworm

ENV PRISM_DATA_DIR=/opt/prism/data \
    PRISM_CACHE_DIR=/opt/prism/cache \
    PRISM_CUDA_VENV=/opt/prism/cuda-venv \
    PRISM_CUDA_DIR=/opt/prism/cuda \
    PRISM_BACKEND=xla:cuda
WORKDIR /opt/prism/src
COPY . .
# build: OpenBLAS + LAPACKE for cgo (XLA needs cgo too); data: the datasets;
# cuda: the PJRT plugin folder /opt/prism/cuda and its env.sh.
RUN scripts/setup.sh build data cuda \
 && make build \
 && install -m 0755 bin/prism /usr/local/bin/prism \
 && PRISM_BACKEND=go prism doctor
# Every command runs with /opt/prism/cuda/env.sh sourced (plugin path,
# LD_LIBRARY_PATH of the pip CUDA libraries, XLA_FLAGS).
ENTRYPOINT ["/opt/prism/src/docker/entrypoint.sh"]
CMD ["prism", "doctor"]
