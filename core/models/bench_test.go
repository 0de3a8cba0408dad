package models_test

import (
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
)

// benchLoRA is a minimal LoRA layer for the benchmarks (the real adapters live
// in core/adapter): y = x·Wᵀ + b + (x·Aᵀ)·(s·B)ᵀ with W, b frozen.
func benchLoRA(target *regexp.Regexp, rank int, scale float64) models.Linear {
	return func(ctx *context.Context, name string, x *Node, outDim int) *Node {
		y := models.Dense(ctx, name, x, outDim)
		if !target.MatchString(name) {
			return y
		}
		in := x.Shape().Dimensions[x.Rank()-1]
		scope := ctx.In(name).In("lora")
		a := models.Param(scope, "A", x.DType(), []int{rank, in}, models.UniformInit(1/math.Sqrt(float64(in))))
		b := models.Param(scope, "B", x.DType(), []int{outDim, rank}, models.NormalInit(0.01))
		g := x.Graph()
		return Add(y, models.DenseWith(models.DenseWith(x, a.ValueGraph(g), nil), MulScalar(b.ValueGraph(g), scale), nil))
	}
}

// benchStep times one optimizer step of forward on batch inputs of the given
// dims; trainable selects the trainable variables by scope (nil: all).
func benchStep(b *testing.B, forward models.Forward, run models.Run, dims []int, opt optimizers.Interface, trainable func(scope string) bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randomTensor(rng, dtypes.Float32, dims...)
	labels := make([]int32, dims[0])
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
	}
	y := tensors.FromFlatDataAndDimensions(labels, dims[0])
	ctx := context.New()
	step := context.MustNewExec(testBackend, ctx, func(ctx *context.Context, x, y *Node) *Node {
		loss := models.SoftmaxCrossEntropy(forward(ctx, run, x), y)
		if trainable != nil {
			for v := range ctx.IterVariables() {
				v.SetTrainable(trainable(v.Scope()))
			}
		}
		opt.UpdateGraph(ctx, x.Graph(), loss)
		return loss
	})
	for range 2 { // compile and warm up
		if _, err := step.Exec(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := step.Exec(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/step")
}

// BenchmarkViTLoRAStep: default ViT, batch 128, rank-8 LoRA on every
// attention/MLP linear, backbone frozen, new trainable head, AdamW.
func BenchmarkViTLoRAStep(b *testing.B) {
	c := models.DefaultViT()
	run := models.Run{Linear: benchLoRA(regexp.MustCompile(`^blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])$`), 8, 2)}
	forward := func(ctx *context.Context, run models.Run, x *Node) *Node {
		return models.Head(ctx, run, "head_taskB", models.ViTFeatures(ctx, c, run, x), 10)
	}
	benchStep(b, forward, run, []int{128, 28, 28, 1}, optimizers.Adam().WeightDecay(0.01).Done(), func(scope string) bool {
		return strings.HasSuffix(scope, "/lora") || strings.HasPrefix(scope, "/head_taskB")
	})
}

// BenchmarkViTFullStep: default ViT, batch 128, every variable trainable, AdamW.
func BenchmarkViTFullStep(b *testing.B) {
	benchStep(b, vitForward(models.DefaultViT()), models.Run{}, []int{128, 28, 28, 1}, optimizers.Adam().WeightDecay(0.01).Done(), nil)
}

// BenchmarkMLPStep: 784-256-10 MLP, batch 128, Adam.
func BenchmarkMLPStep(b *testing.B) {
	benchStep(b, mlpForward(models.DefaultMLP()), models.Run{}, []int{128, 784}, optimizers.Adam().Done(), nil)
}

// BenchmarkMLPStepSGD is BenchmarkMLPStep with plain SGD: the difference is
// the cost of Adam's update graph.
func BenchmarkMLPStepSGD(b *testing.B) {
	benchStep(b, mlpForward(models.DefaultMLP()), models.Run{}, []int{128, 784}, optimizers.StochasticGradientDescent(), nil)
}
