// Package models holds prism's networks — a Vision Transformer and a
// multi-layer perceptron — written as plain GoMLX graph functions.
//
// Every linear layer has a stable dotted name (`patch_embed.proj`,
// `blocks.3.attn.qkv`, `blocks.3.mlp.fc1`, `head`, …) and is computed by one
// injectable function of type Linear, so adapters (LoRA and friends) replace
// layers by name without touching the models. A layer's variables live in the
// context scope named like the layer: `/blocks.3.attn.qkv/weight` (out×in, the
// PEFT/PyTorch layout of y = x·Wᵀ + b) and `/blocks.3.attn.qkv/bias` (out).
package models

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"
)

// Linear computes the linear layer called name on x: x: [..., in] → [..., outDim].
// ctx is the model's root scope; the layer keeps its variables in ctx.In(name).
type Linear func(ctx *context.Context, name string, x *Node, outDim int) *Node

// Run carries what a forward pass may vary without changing the model.
// The zero value runs the plain model.
type Run struct {
	// Linear computes every linear layer; nil means Dense.
	Linear Linear
	// Probe, when set, is called with each linear layer's name and input
	// (before the layer is applied), e.g. to capture activations for analysis.
	Probe func(name string, x *Node)
}

// linear applies the run's linear function to the named layer, probing its input.
func (r Run) linear(ctx *context.Context, name string, x *Node, outDim int) *Node {
	if r.Probe != nil {
		r.Probe(name, x)
	}
	fn := r.Linear
	if fn == nil {
		fn = Dense
	}
	return fn(ctx, name, x, outDim)
}

// Variable names used by Dense (PEFT/PyTorch names).
const (
	WeightName = "weight"
	BiasName   = "bias"
)

// Dense is the plain linear layer y = x·Wᵀ + b.
// W: outDim×in (variable "weight"), b: outDim ("bias"), both in ctx.In(name),
// initialised like PyTorch's nn.Linear: U(−1/√in, 1/√in).
func Dense(ctx *context.Context, name string, x *Node, outDim int) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	scope := ctx.In(name)
	bound := 1 / math.Sqrt(float64(in))
	w := Param(scope, WeightName, x.DType(), []int{outDim, in}, UniformInit(bound))
	b := Param(scope, BiasName, x.DType(), []int{outDim}, UniformInit(bound))
	return DenseWith(x, w.ValueGraph(x.Graph()), b.ValueGraph(x.Graph()))
}

// DenseWith computes y = x·Wᵀ + b for given W: out×in and b: out (b may be nil).
// x: [..., in] → y: [..., out]; the product is one DotGeneral on the last axis.
func DenseWith(x, w, b *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// ParamSeed is the context parameter (int64) that seeds the initial values of
// the variables prism's models create. Each variable draws from its own stream,
// keyed by the seed and the variable's full scope and name, so a variable's
// initial value does not depend on the order in which variables are created.
const ParamSeed = "prism_init_seed"

// SetSeed sets the initialisation seed (ParamSeed) for ctx.
func SetSeed(ctx *context.Context, seed int64) { ctx.SetParam(ParamSeed, seed) }

// Init draws the initial value of element i of a variable from rng.
type Init func(rng *rand.Rand, i int) float64

// UniformInit draws from U(−bound, bound).
func UniformInit(bound float64) Init {
	return func(rng *rand.Rand, _ int) float64 { return (2*rng.Float64() - 1) * bound }
}

// NormalInit draws from N(0, std²).
func NormalInit(std float64) Init {
	return func(rng *rand.Rand, _ int) float64 { return rng.NormFloat64() * std }
}

// ConstInit sets every element to c.
func ConstInit(c float64) Init { return func(*rand.Rand, int) float64 { return c } }

// Param returns the variable name in ctx's scope, creating it with the given
// shape and initial values when it does not exist yet. An existing variable of
// another shape panics (a graph-building error, as in GoMLX).
func Param(ctx *context.Context, name string, dtype dtypes.DType, dims []int, init Init) *context.Variable {
	if v := ctx.GetVariableByScopeAndName(ctx.Scope(), name); v != nil {
		if want := shapes.Make(dtype, dims...); !v.Shape().Equal(want) {
			panic(fmt.Sprintf("models: variable %s/%s has shape %s, the model needs %s", ctx.Scope(), name, v.Shape(), want))
		}
		return v
	}
	seed := context.GetParamOr(ctx, ParamSeed, int64(0))
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s/%s", ctx.Scope(), name)
	rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
	size := 1
	for _, d := range dims {
		size *= d
	}
	var value *tensors.Tensor
	switch dtype {
	case dtypes.Float32:
		flat := make([]float32, size)
		for i := range flat {
			flat[i] = float32(init(rng, i))
		}
		value = tensors.FromFlatDataAndDimensions(flat, dims...)
	case dtypes.Float64:
		flat := make([]float64, size)
		for i := range flat {
			flat[i] = init(rng, i)
		}
		value = tensors.FromFlatDataAndDimensions(flat, dims...)
	default:
		panic(fmt.Sprintf("models: variable %s/%s: dtype %s not supported (want Float32 or Float64)", ctx.Scope(), name, dtype))
	}
	return ctx.Checked(false).VariableWithValue(name, value)
}

// LayerShape describes one linear layer: W is Out×In.
type LayerShape struct {
	Name    string
	Out, In int
}
