//go:build pins

// Package pins holds blank imports of every direct dependency so that
// `go mod tidy` keeps each one at the exact version pinned in go.mod, even
// before (or after) the code that uses it exists. It is never built: the
// "pins" build tag is set nowhere.
package pins

import (
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/backends/xla"
	_ "github.com/gomlx/gomlx/pkg/core/graph"
	_ "github.com/gomlx/gopjrt/dtypes"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/janpfeifer/gonb/gonbui"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/plot"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite"
)
