# Plugins: the reference plugins and the protocol's generated code.
# Included by the Makefile (include mk/*.mk).

PLUGIN_DIR := $(BIN)/plugins
REFERENCE_PLUGINS := prism-method-randwindow prism-method-energy prism-dataset-sklearn-digits

.PHONY: plugins proto bench-plugins

## plugins: build the reference plugins and the third-party example into
## bin/plugins and pin their SHA-256 in bin/plugins/prism-plugins.json.
plugins: build
	mkdir -p $(PLUGIN_DIR)
	for p in $(REFERENCE_PLUGINS); do $(GO) build -o $(PLUGIN_DIR)/$$p ./plugins/ref/$$p; done
	cd plugins/examples/stride && $(GO) build -o $(CURDIR)/$(PLUGIN_DIR)/prism-method-stride .
	$(PRISM) plugins pin $(PLUGIN_DIR)/prism-method-* $(PLUGIN_DIR)/prism-dataset-*

## proto: regenerate plugins/proto/prismpb from the .proto (pinned generators).
proto:
	scripts/setup.sh proto
	scripts/protoc.sh

## bench-plugins: ViT-B-sized weights through a method plugin vs in-process.
bench-plugins: build
	scripts/setup.sh build
	$(GO) test -run '^$$' -bench BenchmarkViTB -benchtime 1x -timeout 30m ./plugins/host/
