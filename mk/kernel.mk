# kernel.mk — the Go Jupyter kernel and the notebooks (included by the Makefile).
#
#   make kernel           build GoNB + tools from kernel/tools and register the "prism" kernel
#   make kernel-doctor    check every piece of the kernel and say how to fix what is missing
#   make notebooks        re-execute every notebook at full size and refresh its committed outputs
#                         (cells may take 30 minutes: full-size fine-tuning on a busy machine)
#   make test-notebooks   execute every notebook in small mode (CI) and fail on any cell error
#   make test-kernel      the kernel's Go tests (install, doctor, protocol test, checker, notebooks)

.PHONY: kernel kernel-doctor notebooks test-notebooks test-kernel setup-jupyter

# `make setup` (and so `make test`) also installs Debian's Jupyter pieces: the
# kernel tests execute notebooks with real Jupyter.
setup: setup-jupyter

setup-jupyter:
	scripts/setup.sh jupyter

kernel: build setup-jupyter
	$(PRISM) kernel install

kernel-doctor: build
	$(PRISM) kernel doctor

notebooks: kernel
	scripts/notebooks-run.sh --in-place --cell-timeout=30m

test-notebooks: kernel
	PRISM_NOTEBOOK_SMALL=1 scripts/notebooks-run.sh

test-kernel: setup-jupyter
	$(GO) test -count=1 -timeout 30m ./kernel/...
