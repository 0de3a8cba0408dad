package backend_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
)

func TestDefaultIsPureGo(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "SimpleGo (go)" {
		t.Errorf("default backend %q, want the pure-Go one", b.Name())
	}
	if got := backend.Resolve(""); got != "go" {
		t.Errorf("Resolve(\"\") = %q, want go", got)
	}
	t.Setenv(backend.EnvVar, "go:ops_sequential")
	if got := backend.Resolve(""); got != "go:ops_sequential" {
		t.Errorf("Resolve with $%s set = %q", backend.EnvVar, got)
	}
	if got := backend.Resolve("xla:cuda"); got != "xla:cuda" {
		t.Errorf("an explicit spec must win over the environment, got %q", got)
	}
	if !strings.HasPrefix(backend.Kernels(), "prism gemm") {
		t.Errorf("Kernels() = %q, want prism's kernels installed", backend.Kernels())
	}
}

func TestBadSpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"tpu":                     `unknown backend "tpu"`,
		"xla":                     "say which PJRT plugin",
		"go:no_such_option":       "no_such_option",
		"xla:/no/such/plugin.so":  "/no/such/plugin.so",
		"xla:surely_not_a_plugin": "surely_not_a_plugin",
	} {
		_, err := backend.New(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q) error = %v, want one mentioning %q", spec, err, want)
		}
	}
}

// TestMissingPluginSaysWhereItLooked: a plugin asked for by name that is not
// installed gives an error listing the directories searched (cgo builds), or
// says the binary has no XLA support (CGO_ENABLED=0 / noxla builds).
func TestMissingPluginSaysWhereItLooked(t *testing.T) {
	_, err := backend.New("xla:cuda")
	if err == nil {
		t.Skip("a CUDA PJRT plugin is installed here")
	}
	msg := err.Error()
	if backend.XLAAvailable {
		if !strings.Contains(msg, "not found in paths") || !strings.Contains(msg, "PJRT_PLUGIN_LIBRARY_PATH") {
			t.Errorf("error does not say where it looked: %v", err)
		}
	} else if !strings.Contains(msg, "without XLA support") {
		t.Errorf("error = %v", err)
	}
}

// TestTrainingLoopDoesNotHang runs training steps of a ViT on the default
// backend with a deadline. simplego's default (parallel) op scheduling with
// GoMLX v0.25.0 deadlocks here within a few steps: every pool slot is taken
// by a node whose DotGeneral (or Erf) then waits for a free slot for its own
// sub-tasks. float64 exercises simplego's own executors, float32 prism's.
func TestTrainingLoopDoesNotHang(t *testing.T) {
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		t.Run(dtype.String(), func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- trainSteps(b, dtype, 8) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(4 * time.Minute):
				t.Fatal("training loop hung (deadlock in the backend's worker pool?)")
			}
		})
	}
}

func trainSteps(b backends.Backend, dtype dtypes.DType, steps int) error {
	c := models.DefaultViT()
	c.DType = dtype
	ctx := context.New()
	opt := optimizers.Adam().Done()
	step, err := context.NewExec(b, ctx, func(ctx *context.Context, x, y *Node) *Node {
		loss := models.SoftmaxCrossEntropy(models.ViT(ctx, c, models.Run{}, x), y)
		opt.UpdateGraph(ctx, x.Graph(), loss)
		return loss
	})
	if err != nil {
		return err
	}
	const batch = 32
	x := tensors.FromShape(shapesOf(dtype, batch, 28, 28, 1))
	y := tensors.FromFlatDataAndDimensions(make([]int32, batch), batch)
	for range steps {
		if _, err := step.Exec(x, y); err != nil {
			return err
		}
	}
	return nil
}
