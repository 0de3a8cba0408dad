# prism — the README's two commands are `make demo` and `make test`.
# Every target installs what it needs itself (scripts/setup.sh is idempotent).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := bin
PRISM := $(BIN)/prism
OUT ?= results/fig1-quick

.PHONY: demo test check build setup bench-lowrank clean

## demo: install what is needed, then run the main job end to end: the quick
## Figure-1 analogue (pretrain, window sweep, figures, table, database in $(OUT)).
demo: build
	scripts/setup.sh data
	$(PRISM) reproduce fig1 --quick --out $(OUT)

## test: the whole test suite (what CI runs).
test: setup
	$(MAKE) check
	PRISM_REQUIRE_DATA=1 PRISM_REQUIRE_PROTO=1 PRISM_REQUIRE_SLURM=1 $(GO) test -count=1 -timeout 40m ./...

setup:
	scripts/setup.sh build data proto slurm

## check: go vet and gofmt must be clean.
check:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^.*\.pb\.go$$'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi

build:
	scripts/setup.sh build
	$(GO) build -o $(PRISM) ./cmd/prism

## bench-lowrank: window-init speed against numpy (OpenBLAS), one table.
bench-lowrank: build
	scripts/setup.sh bench
	scripts/bench-lowrank.sh

clean:
	rm -rf $(BIN)

# Area fragments (plugins, kernel, benchmarks); included last so `demo` stays the default goal.
-include mk/*.mk
