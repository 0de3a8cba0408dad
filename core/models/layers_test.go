package models_test

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
)

// autodiffLayerNorm is LayerNorm written op by op, differentiated by GoMLX.
func autodiffLayerNorm(x, gain, offset *Node, eps float64) *Node {
	last := x.Rank() - 1
	centred := Sub(x, ReduceAndKeep(x, ReduceMean, last))
	variance := ReduceAndKeep(Square(centred), ReduceMean, last)
	normed := Mul(centred, Rsqrt(AddScalar(variance, eps)))
	return Add(Mul(normed, ExpandLeftToRank(gain, x.Rank())), ExpandLeftToRank(offset, x.Rank()))
}

// TestWrittenOutGradients checks the values and the gradients (with respect
// to the input and, for LayerNorm, the gain and offset) of LayerNorm and
// SoftmaxLastAxis against GoMLX's autodiff of the same maths written op by op
// (graph.Softmax for the softmax), in float64 and float32, for a loss
// Σ w⊙f(x) with random weights w.
func TestWrittenOutGradients(t *testing.T) {
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		tol := 1e-12
		if dtype == dtypes.Float32 {
			tol = 2e-5
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for _, dims := range [][]int{{3, 5, 7}, {2, 4, 17, 17}, {6, 64}} {
			x, w := randomTensor(rng, dtype, dims...), randomTensor(rng, dtype, dims...)
			d := dims[len(dims)-1]
			for name, pair := range map[string][2]func(ctx *context.Context, x *Node) *Node{
				"layernorm": {
					func(ctx *context.Context, x *Node) *Node { return models.LayerNorm(ctx, "ln", x, 1e-5) },
					func(ctx *context.Context, x *Node) *Node {
						g := ctx.In("ln")
						gain := g.GetVariable(models.WeightName).ValueGraph(x.Graph())
						offset := g.GetVariable(models.BiasName).ValueGraph(x.Graph())
						return autodiffLayerNorm(x, gain, offset, 1e-5)
					},
				},
				"softmax": {
					func(_ *context.Context, x *Node) *Node { return models.SoftmaxLastAxis(x) },
					func(_ *context.Context, x *Node) *Node { return Softmax(x, -1) },
				},
			} {
				ctx := context.New()
				if name == "layernorm" { // non-trivial gain and offset
					ctx.In("ln").VariableWithValue(models.WeightName, randomTensor(rng, dtype, d))
					ctx.In("ln").VariableWithValue(models.BiasName, randomTensor(rng, dtype, d))
				}
				run := func(f func(ctx *context.Context, x *Node) *Node) [][]float64 {
					exec := context.MustNewExec(testBackend, ctx, func(ctx *context.Context, x, w *Node) []*Node {
						y := f(ctx, x)
						loss := ReduceAllSum(Mul(y, w))
						wrt := []*Node{x}
						for v := range ctx.IterVariables() {
							wrt = append(wrt, v.ValueGraph(x.Graph()))
						}
						return append([]*Node{y}, Gradient(loss, wrt...)...)
					})
					out, err := exec.Exec(x, w)
					if err != nil {
						t.Fatal(err)
					}
					res := make([][]float64, len(out))
					for i, o := range out {
						res[i] = flat64(o)
					}
					return res
				}
				got, want := run(pair[0]), run(pair[1])
				if len(got) != len(want) {
					t.Fatalf("%s %s %v: %d outputs, want %d", name, dtype, dims, len(got), len(want))
				}
				for i := range want {
					scale := 0.0
					for _, v := range want[i] {
						scale = math.Max(scale, math.Abs(v))
					}
					for j := range want[i] {
						if diff := math.Abs(got[i][j] - want[i][j]); diff > tol*math.Max(1, scale) {
							t.Fatalf("%s %s %v: output %d element %d = %g, autodiff %g", name, dtype, dims, i, j, got[i][j], want[i][j])
						}
					}
				}
			}
		}
	}
}

func flat64(t *tensors.Tensor) []float64 {
	if t.DType() == dtypes.Float32 {
		f := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	}
	return tensors.MustCopyFlatData[float64](t)
}
