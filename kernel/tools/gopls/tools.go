//go:build tools

// Package tools pins gopls, the language server GoNB uses for completion and
// inspection. It lives apart from the GoNB tools module because gopls needs its
// own golang.org/x/tools version (forcing the one goimports uses breaks its build).
// It is never compiled: `prism kernel install` runs `go install` on it.
package tools

import (
	_ "golang.org/x/tools/gopls"
)
