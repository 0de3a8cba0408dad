package models

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/backend/fastgrad"
)

// LayerNorm normalises the last axis of x and applies a learned gain and offset:
//
//	y = n·γ + β,   n = (x − μ)·r,   r = 1/√(σ² + ε),   μ, σ² over the last axis (biased variance)
//
// x: [..., d]; γ ("weight", init 1) and β ("bias", init 0): d, in ctx.In(name).
//
// The gradient with respect to x is written out instead of differentiating
// the statistics op by op: with u = ∂L/∂n (d values per row),
//
//	∂L/∂x = r·(u − mean(u) − n·mean(u⊙n))
//
// The statistics μ and r are held constant (StopGradient) so that the only
// path from n back to x is n = (x − μ)·r, whose VJP yields g = u·r; a custom
// gradient on x − μ then turns g into g − mean(g) − n·mean(g⊙n), the line
// above (r is constant along the row). That is 4 full-size ops and 2
// row reductions instead of about 12 and 4 from autodiff through the mean
// and the variance (no broadcasts materialised). The forward values are
// unchanged.
func LayerNorm(ctx *context.Context, name string, x *Node, epsilon float64) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	scope := ctx.In(name)
	gain := Param(scope, WeightName, x.DType(), []int{d}, ConstInit(1)).ValueGraph(x.Graph())
	offset := Param(scope, BiasName, x.DType(), []int{d}, ConstInit(0)).ValueGraph(x.Graph())
	last := x.Rank() - 1
	var normed *Node
	// centred has a single consumer (the identity), so simplego hands the
	// identity its buffer instead of copying it.
	centred := IdentityWithCustomGradient(Sub(x, StopGradient(ReduceAndKeep(x, ReduceMean, last))),
		func(_, g *Node) *Node {
			meanG := ReduceAndKeep(g, ReduceMean, last)
			meanGN := ReduceAndKeep(Mul(g, normed), ReduceMean, last)
			return Sub(Sub(g, meanG), Mul(normed, meanGN))
		})
	variance := ReduceAndKeep(Square(centred), ReduceMean, last)
	normed = Mul(centred, StopGradient(Rsqrt(AddScalar(variance, epsilon))))
	return Add(Mul(normed, ExpandLeftToRank(gain, x.Rank())), ExpandLeftToRank(offset, x.Rank()))
}

// SoftmaxLastAxis is the softmax over the last axis,
//
//	s = exp(x − max(x)) / Σ exp(x − max(x))
//
// (the values of graph.Softmax(x, -1)), with its gradient written out:
// ∂L/∂x = s⊙(v − Σ v⊙s) for v = ∂L/∂s. The normaliser is held constant
// (StopGradient), so the VJPs of the division and of exp give g = v⊙s at
// x − max(x), where a custom gradient makes it g − s·Σg: 4 full-size ops and
// one row reduction, against about 8 and a materialised broadcast from
// autodiff through the sum.
func SoftmaxLastAxis(x *Node) *Node {
	last := x.Rank() - 1
	var s *Node
	shifted := IdentityWithCustomGradient(Sub(x, StopGradient(ReduceAndKeep(x, ReduceMax, last))),
		func(_, g *Node) *Node { return Sub(g, Mul(s, ReduceAndKeep(g, ReduceSum, last))) })
	e := Exp(shifted)
	s = Div(e, StopGradient(ReduceAndKeep(e, ReduceSum, last)))
	return s
}

// GELU is the exact Gaussian error linear unit x·Φ(x) = x·½(1 + erf(x/√2)),
// as PyTorch's nn.GELU() default.
// Its gradient is written out (fastgrad.GELU): v⊙(Φ(x) + x·φ(x)).
func GELU(x *Node) *Node { return fastgrad.GELU(x) }

// GELUTanh is the tanh approximation of the GELU,
// ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (PyTorch's gelu(approximate="tanh"),
// HuggingFace's "gelu_new", "gelu_pytorch_tanh" and "gelu_fast").
func GELUTanh(x *Node) *Node {
	inner := MulScalar(Add(x, MulScalar(Mul(x, Square(x)), 0.044715)), math.Sqrt(2/math.Pi))
	return Mul(MulScalar(x, 0.5), OnePlus(Tanh(inner)))
}

// QuickGELU is x·σ(1.702·x) (HuggingFace's "quick_gelu").
func QuickGELU(x *Node) *Node { return Mul(x, Logistic(MulScalar(x, 1.702))) }

// SiLU is x·σ(x) (also called swish).
func SiLU(x *Node) *Node { return Mul(x, Logistic(x)) }

// Activation returns the activation function called name, with
// HuggingFace's names (transformers' ACT2FN) where they mean the same
// function: "" and "gelu" (exact, erf), "gelu_tanh" (also "gelu_new",
// "gelu_pytorch_tanh", "gelu_fast"), "quick_gelu", "relu", "silu" ("swish").
func Activation(name string) (func(*Node) *Node, error) {
	switch name {
	case "", "gelu":
		return GELU, nil
	case "gelu_tanh", "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return GELUTanh, nil
	case "quick_gelu":
		return QuickGELU, nil
	case "relu":
		return ReLU, nil
	case "silu", "swish":
		return SiLU, nil
	}
	return nil, fmt.Errorf("unknown activation %q (expected gelu, gelu_tanh, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu or silu)", name)
}

// MultiHeadAttention is softmax self-attention over the tokens of x with heads
// heads and the layers `<name>.qkv` (d → 3d) and `<name>.proj` (d → d):
//
//	[q | k | v] = qkv(x),  per head h: A_h = softmax(q_h·k_hᵀ/√(d/heads))·v_h,  y = proj([A_1 … A_heads])
//
// x: [batch, tokens, d] → [batch, tokens, d]. The qkv output is split as
// (3, heads, d/heads), the PyTorch/timm layout.
func MultiHeadAttention(ctx *context.Context, run Run, name string, x *Node, heads int) *Node {
	dims := x.Shape().Dimensions
	batch, tokens, d := dims[0], dims[1], dims[2]
	hd := d / heads
	qkv := run.linear(ctx, name+".qkv", x, 3*d)
	// [B, T, 3, H, hd] → [3, B, H, T, hd]: q, k, v become contiguous slices of
	// the leading axis and each is laid out [batch…, tokens, hd] for DotGeneral.
	qkv = TransposeAllAxes(Reshape(qkv, batch, tokens, 3, heads, hd), 2, 0, 3, 1, 4)
	// One concatenated gradient for q, k, v (all three feed the output).
	parts := fastgrad.SplitAxis(qkv, 0, 3)
	part := func(i int) *Node { return Reshape(parts[i], batch, heads, tokens, hd) }
	q, k, v := part(0), part(1), part(2)
	scores := DotGeneral(q, []int{3}, []int{0, 1}, k, []int{3}, []int{0, 1}) // [B, H, T, T]
	scores = MulScalar(scores, 1/math.Sqrt(float64(hd)))
	att := SoftmaxLastAxis(scores)
	out := DotGeneral(att, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [B, H, T, hd]
	out = Reshape(TransposeAllAxes(out, 0, 2, 1, 3), batch, tokens, d)
	return run.linear(ctx, name+".proj", out, d)
}

// MLPBlock is the transformer feed-forward block fc2(GELU(fc1(x))) with layers
// `<name>.fc1` (d → hidden) and `<name>.fc2` (hidden → d).
func MLPBlock(ctx *context.Context, run Run, name string, x *Node, hidden int) *Node {
	return MLPBlockWith(ctx, run, name, x, hidden, GELU)
}

// MLPBlockWith is MLPBlock with the activation act: fc2(act(fc1(x))).
func MLPBlockWith(ctx *context.Context, run Run, name string, x *Node, hidden int, act func(*Node) *Node) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	return run.linear(ctx, name+".fc2", act(run.linear(ctx, name+".fc1", x, hidden)), d)
}

// ReLU is max(x, 0).
func ReLU(x *Node) *Node { return Max(x, ScalarZero(x.Graph(), x.DType())) }

// SoftmaxCrossEntropy is the mean over the batch of −log softmax(logits)[label]:
// logits [B, K] (float), labels [B] or [B, 1] (integer class indices) → scalar.
func SoftmaxCrossEntropy(logits, labels *Node) *Node {
	b, k := logits.Shape().Dimensions[0], logits.Shape().Dimensions[1]
	labels = Reshape(labels, b)
	shift := StopGradient(ReduceAndKeep(logits, ReduceMax, 1))
	shifted := Sub(logits, shift)
	logSumExp := Log(ReduceSum(Exp(shifted), 1))                            // [B]
	picked := ReduceSum(Mul(shifted, OneHot(labels, k, logits.DType())), 1) // [B]
	return ReduceAllMean(Sub(logSumExp, picked))
}
