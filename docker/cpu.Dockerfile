# prism on the CPU: the prism binary, the datasets, Jupyter's notebook server
# and the prism Go kernel. Thin on purpose: everything is installed by the
# repository's own scripts/setup.sh and Makefile (what the README and CI run),
# so the image cannot drift from them. See docker/README.md.
#
#   docker build -f docker/cpu.Dockerfile -t prism-cpu .
#   docker run --rm -p 8888:8888 prism-cpu          # then open the printed URL
#   docker run --rm prism-cpu prism doctor
#
# Go 1.26.8 on Debian 12 (bookworm): the toolchain and distribution prism is
# developed and tested on.
FROM golang:1.26.8-bookworm

ENV PRISM_DATA_DIR=/opt/prism/data \
    PRISM_CACHE_DIR=/opt/prism/cache \
    PRISM_TOOLS_DIR=/opt/prism/tools
WORKDIR /opt/prism/src
COPY . .
# build: OpenBLAS + LAPACKE for cgo; data: MNIST, Fashion-MNIST and the text
# corpora; jupyter + notebook: Debian's Jupyter and its notebook server.
RUN scripts/setup.sh build data jupyter notebook \
 && make build \
 && install -m 0755 bin/prism /usr/local/bin/prism \
 && make kernel \
 && prism doctor
EXPOSE 8888
CMD ["jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "--notebook-dir=/opt/prism/src/notebooks"]
