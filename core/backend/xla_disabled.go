//go:build !cgo || noxla

package backend

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
)

// XLAAvailable reports whether this binary can create "xla:…" backends: it
// needs cgo and no `noxla` build tag.
const XLAAvailable = false

func newXLA(spec, _ string) (backends.Backend, error) {
	return nil, fmt.Errorf("backend %q: this prism binary was built without XLA support (it needs cgo and no noxla tag: build with CGO_ENABLED=1); the pure-Go backend \"go\" is available", spec)
}
