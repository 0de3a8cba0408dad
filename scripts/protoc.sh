#!/usr/bin/env bash
# protoc.sh regenerates the Go code of prism's plugin protocol from
# plugins/proto/*.proto with pinned generators:
#
#   protoc              Debian's protobuf-compiler (scripts/setup.sh proto)
#   protoc-gen-go       google.golang.org/protobuf v1.36.10 (the version go.mod pins)
#   protoc-gen-go-grpc  v1.3.0, the last release whose output builds against grpc v1.61.0
#                       (v1.4 needs grpc.SupportPackageIsVersion8, grpc ≥ 1.62)
#
#   scripts/protoc.sh [OUTROOT]
#
# OUTROOT defaults to the repository root; the code lands in
# OUTROOT/plugins/proto/prismpb. The generators are installed once into
# .cache/tools/bin (ignored by git).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.10
PROTOC_GEN_GO_GRPC_VERSION=v1.3.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root}"
tools="$root/.cache/tools/bin"

if ! command -v protoc >/dev/null; then
	echo "protoc.sh: protoc not found; run scripts/setup.sh proto" >&2
	exit 1
fi

# install_tool NAME MODULE VERSION installs a generator at an exact version,
# reinstalling when the recorded version differs.
install_tool() {
	local name=$1 module=$2 version=$3
	local stamp="$tools/$name.version"
	if [ -x "$tools/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
		return 0
	fi
	mkdir -p "$tools"
	echo "protoc.sh: installing $module@$version" >&2
	(cd "$root" && GOBIN="$tools" GOFLAGS=-mod=mod go install "$module@$version")
	echo "$version" >"$stamp"
}
install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

mkdir -p "$out"
cd "$root/plugins/proto"
PATH="$tools:$PATH" protoc \
	--proto_path=. \
	--go_out="$out" --go_opt=module=github.com/prism-lora/prism \
	--go-grpc_out="$out" --go-grpc_opt=module=github.com/prism-lora/prism \
	./*.proto
