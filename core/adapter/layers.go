package adapter

import (
	. "github.com/gomlx/gomlx/pkg/core/graph"
)

// linearMap computes x·Mᵀ for x: [..., in] and M: out×in → [..., out]: one
// DotGeneral contracting x's last axis with M's second.
func linearMap(x, m *Node) *Node {
	return DotGeneral(x, []int{x.Rank() - 1}, nil, m, []int{1}, nil)
}

// addBias adds b: out to y: [..., out]; b may be nil.
func addBias(y, b *Node) *Node {
	if b == nil {
		return y
	}
	return Add(y, ExpandLeftToRank(b, y.Rank()))
}

// Dense is the plain linear layer y = x·Wᵀ + b.
// x: [..., n], W: m×n, b: m (or nil) → y: [..., m].
func Dense(x, w, b *Node) *Node {
	return addBias(linearMap(x, w), b)
}

// LoRA is the low-rank adapted linear layer
//
//	y = x·Wresᵀ + scale·(x·Aᵀ)·Bᵀ + b
//
// x: [..., n], Wres: m×n, A: r×n, B: m×r, b: m (or nil) → y: [..., m].
// The adapter path never forms B·A: it costs r·(m+n) per row of x.
func LoRA(x, wres, b, a, bMat *Node, scale float64) *Node {
	base := linearMap(x, wres)
	low := linearMap(linearMap(x, a), bMat) // [..., r] → [..., m]
	return addBias(Add(base, MulScalar(low, scale)), b)
}

// LoRAWeight is the merged weight W₁ = Wres + scale·B·A (m×n) of LoRA's
// factors, as a graph: Wres m×n, A r×n, B m×r.
func LoRAWeight(wres, a, bMat *Node, scale float64) *Node {
	return Add(wres, MulScalar(DotGeneral(bMat, []int{1}, nil, a, []int{0}, nil), scale))
}

// RowNorms returns the L2 norm of every row of w (m×n) → m, i.e. ‖W[i, :]‖₂
// over the input dimension (PEFT's DoRA weight norm for a Linear layer).
func RowNorms(w *Node) *Node {
	return Sqrt(ReduceSum(Square(w), 1))
}

// DoRAOptions tune DoRA's graph.
type DoRAOptions struct {
	// NormGradient lets the gradient flow through ‖W′‖_row. By default the
	// norm is a constant in the backward pass (DoRA paper §4.3; PEFT detaches
	// it), which changes the gradient of A and B but not the forward value.
	NormGradient bool
}

// DoRA is the weight-decomposed low-rank adapted layer (PEFT's DoRA for a
// Linear layer):
//
//	W′ = W + scale·B·A,    y = (mag ⊘ ‖W′‖_row) ⊙ (x·W′ᵀ) + b
//
// x: [..., n], W: m×n, A: r×n, B: m×r, mag: m, b: m (or nil) → y: [..., m].
// With mag = ‖W‖_row and B = 0 (the initialisation) y = x·Wᵀ + b.
// x·W′ᵀ is computed as x·Wᵀ + scale·(x·Aᵀ)·Bᵀ; only the norm forms W′.
func DoRA(x, w, b, a, bMat, mag *Node, scale float64, o DoRAOptions) *Node {
	norm := RowNorms(LoRAWeight(w, a, bMat, scale))
	if !o.NormGradient {
		norm = StopGradient(norm)
	}
	factor := Div(mag, norm) // m
	y := Add(linearMap(x, w), MulScalar(linearMap(linearMap(x, a), bMat), scale))
	return addBias(Mul(y, ExpandLeftToRank(factor, y.Rank())), b)
}

// DoRAWeight is DoRA's merged weight W₁ = diag(mag ⊘ ‖W′‖_row)·W′ with
// W′ = W + scale·B·A, as a graph (m×n), so that DoRA's y = x·W₁ᵀ + b.
func DoRAWeight(w, a, bMat, mag *Node, scale float64) *Node {
	wp := LoRAWeight(w, a, bMat, scale)
	factor := Div(mag, RowNorms(wp))
	return Mul(wp, ExpandAxes(factor, -1)) // factor as m×1
}
