// Package backend is the only place in prism that creates a GoMLX backend.
//
// A backend spec is one of
//
//	"go"                  the pure-Go backend (GoMLX simplego), the default
//	"go:OPTIONS"          the pure-Go backend with simplego options (see GoOptions)
//	"xla:cuda"            XLA through a PJRT plugin found by name (gopjrt's search path)
//	"xla:/abs/plugin.so"  XLA through the PJRT plugin at that absolute path
//
// New("") reads $PRISM_BACKEND and falls back to "go". Nothing here ever
// downloads a plugin; the pure-Go backend needs none.
//
// Importing the package also installs fast Dot/DotGeneral gradients (package
// fastgrad) and, unless $PRISM_GO_KERNELS is "stock", the fast float32 matrix
// product for the pure-Go backend (package gokernels).
package backend

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	_ "github.com/prism-lora/prism/core/backend/fastgrad" // installs the fast Dot/DotGeneral VJPs
	"github.com/prism-lora/prism/core/backend/gokernels"
)

// KernelsEnvVar names the environment variable that, set to "stock", keeps
// simplego's own DotGeneral executor instead of prism's (for comparisons).
const KernelsEnvVar = "PRISM_GO_KERNELS"

// kernelsErr is why the fast kernels are not installed (nil when they are).
var kernelsErr = installKernels()

func installKernels() error {
	if os.Getenv(KernelsEnvVar) == "stock" {
		return fmt.Errorf("$%s=stock", KernelsEnvVar)
	}
	return gokernels.Install()
}

// Kernels describes the matrix-product kernels the pure-Go backend uses.
func Kernels() string {
	if kernelsErr != nil || !gokernels.Installed() {
		reason := "uninstalled"
		if kernelsErr != nil {
			reason = kernelsErr.Error()
		}
		return "simplego stock DotGeneral (" + reason + ")"
	}
	return "prism gemm, " + gokernels.KernelName() + " micro-kernel"
}

// EnvVar names the environment variable New("") reads.
const EnvVar = "PRISM_BACKEND"

// DefaultSpec is the spec used when neither the caller nor $PRISM_BACKEND give one.
const DefaultSpec = "go"

// GoOptions are the simplego options prism uses for "go" when the spec gives
// none. ops_sequential runs the graph's ops one at a time while each op may
// still use all cores; it is the configuration in which simplego's worker pool
// cannot deadlock (see the package README / deadlock_test.go).
const GoOptions = "ops_sequential"

// Resolve returns the spec New would use for spec: spec itself, else
// $PRISM_BACKEND, else DefaultSpec.
func Resolve(spec string) string {
	if spec = strings.TrimSpace(spec); spec != "" {
		return spec
	}
	if env := strings.TrimSpace(os.Getenv(EnvVar)); env != "" {
		return env
	}
	return DefaultSpec
}

// New creates the backend named by spec (see the package documentation).
func New(spec string) (backends.Backend, error) {
	spec = Resolve(spec)
	name, config, _ := strings.Cut(spec, ":")
	switch name {
	case "go":
		if config == "" {
			config = GoOptions
		}
		b, err := simplego.New(config)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", spec, err)
		}
		return b, nil
	case "xla":
		if config == "" {
			return nil, fmt.Errorf("backend %q: say which PJRT plugin, e.g. \"xla:cuda\" or \"xla:/abs/path/pjrt_c_api_cuda_plugin.so\"", spec)
		}
		return newXLA(spec, config)
	default:
		return nil, fmt.Errorf("backend %q: unknown backend %q (want \"go\", \"go:OPTIONS\", \"xla:cuda\" or \"xla:/abs/path/plugin.so\")", spec, name)
	}
}
