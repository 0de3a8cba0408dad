//go:build tools

// Package tools pins the notebook tools prism's kernel runs: GoNB (the Go Jupyter
// kernel) and goimports, built together from this module so their versions are
// exactly those in go.mod/go.sum. It is never compiled: `prism kernel install`
// runs `go install` on the packages named here.
package tools

import (
	_ "github.com/janpfeifer/gonb"
	_ "golang.org/x/tools/cmd/goimports"
)
