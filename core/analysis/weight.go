package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"
)

// DefaultBlockRows is the number of weight rows converted to float64 and
// multiplied at a time; it bounds the analysis's working memory.
const DefaultBlockRows = 256

// Basis is a layer's pretrained singular basis, the SVD computed when the
// adapter was initialised (reused, never recomputed here):
//
//	W₀ ≈ U·diag(S)·Vᵀ,  U m×q, S length q (descending), V n×q, q ≤ min(m, n).
//
// A truncated (e.g. randomized top-q) SVD is fine: the analysis then covers
// the q leading components.
type Basis struct {
	U mat.Matrix
	S []float64
	V mat.Matrix
}

// WeightOptions configure WeightSpace.
type WeightOptions struct {
	// W0 is the pretrained weight (m×n). Optional but recommended: with it,
	// ΔM = Uᵀ·(W₁ − W₀)·V (accurate relative to the change) and ‖W₁ − W₀‖_F
	// are computed; without it, ΔM = Uᵀ·W₁·V − diag(S).
	W0 mat.Matrix
	// VerifyBasis also computes ‖UᵀW₀V − diag(S)‖_F and the orthonormality
	// residuals of U and V, to catch a stored SVD that does not belong to W₀
	// (needs W0; costs one more pass over the weights).
	VerifyBasis bool
	// Split configures the band summaries, window, heatmap bins and whether
	// the full ΔM is kept.
	Split SplitOptions
	// BlockRows is the number of rows processed at a time; 0 means
	// DefaultBlockRows.
	BlockRows int
}

// WeightChange is the weight-space decomposition of one layer's fine-tuning.
type WeightChange struct {
	// Split is the diagonal/off-diagonal decomposition of ΔM (q×q).
	Split
	// Rows, Cols are the layer's m and n.
	Rows, Cols int
	// S holds the pretrained singular values (length q).
	S []float64
	// DeltaWNorm is ‖W₁ − W₀‖_F (NaN when W₀ was not given).
	DeltaWNorm float64
	// BasisResidual is ‖UᵀW₀V − diag(S)‖_F and OrthoResidual is
	// max(‖UᵀU − I‖_F, ‖VᵀV − I‖_F); NaN unless VerifyBasis was set.
	BasisResidual, OrthoResidual float64
}

// CapturedFraction returns ‖ΔM‖_F²/‖W₁ − W₀‖_F², the share of the weight
// change that lies in span(U)⊗span(V); below 1 when the change leaves the
// pretrained basis (e.g. U does not span the output space, m > q). NaN when
// W₀ was not given or nothing changed.
func (c WeightChange) CapturedFraction() float64 {
	if math.IsNaN(c.DeltaWNorm) || c.DeltaWNorm == 0 {
		return math.NaN()
	}
	n := c.Norm()
	return n * n / (c.DeltaWNorm * c.DeltaWNorm)
}

// RelativeDiag returns ΔM_ii / S_i, the relative change of each component's
// strength (NaN where S_i = 0).
func (c WeightChange) RelativeDiag() []float64 {
	r := make([]float64, len(c.Diag))
	for i, d := range c.Diag {
		if c.S[i] == 0 {
			r[i] = math.NaN()
			continue
		}
		r[i] = d / c.S[i]
	}
	return r
}

// WeightSpace decomposes the fine-tuned weight w1 (m×n) in the pretrained
// basis b: ΔM = Uᵀ·W₁·V − diag(S), or Uᵀ·(W₁ − W₀)·V when o.W0 is given.
//
// Memory: besides its inputs it holds ΔM and its split (about 2·q² float64),
// V in float64 (n×q) and one block of B = BlockRows rows of the weights and
// of U, about 8·(3q² + nq + 2B(n+q)) bytes in all: 21 MB for a 3072×768 layer
// (q = 768), about twice the layer's float32 size, whatever m is.
// Work: one pass of about 2·m·n·q + 2·m·q² flops (twice that with VerifyBasis).
func WeightSpace(w1 mat.Matrix, b Basis, o WeightOptions) (WeightChange, error) {
	m, n := w1.Dims()
	q := len(b.S)
	if b.U == nil || b.V == nil {
		return WeightChange{}, fmt.Errorf("basis: U and V are required")
	}
	if err := checkFloat32Matrix("W₁", w1); err != nil {
		return WeightChange{}, err
	}
	if err := checkFloat32Matrix("basis U", b.U); err != nil {
		return WeightChange{}, err
	}
	if err := checkFloat32Matrix("basis V", b.V); err != nil {
		return WeightChange{}, err
	}
	if q == 0 || q > min(m, n) {
		return WeightChange{}, fmt.Errorf("basis has %d singular values, want 1 to min(%d, %d)", q, m, n)
	}
	if r, c := b.U.Dims(); r != m || c != q {
		return WeightChange{}, fmt.Errorf("basis U is %d×%d, want %d×%d (W₁ is %d×%d, %d singular values)", r, c, m, q, m, n, q)
	}
	if r, c := b.V.Dims(); r != n || c != q {
		return WeightChange{}, fmt.Errorf("basis V is %d×%d, want %d×%d (W₁ is %d×%d, %d singular values)", r, c, n, q, m, n, q)
	}
	if o.W0 != nil {
		if err := checkFloat32Matrix("W₀", o.W0); err != nil {
			return WeightChange{}, err
		}
		if r, c := o.W0.Dims(); r != m || c != n {
			return WeightChange{}, fmt.Errorf("W₀ is %d×%d, want %d×%d like W₁", r, c, m, n)
		}
	} else if o.VerifyBasis {
		return WeightChange{}, fmt.Errorf("VerifyBasis needs W₀")
	}
	blockRows := o.BlockRows
	if blockRows <= 0 {
		blockRows = DefaultBlockRows
	}
	blockRows = min(blockRows, m)

	v := denseCopy(b.V)
	vg := general(n, q, v.RawMatrix().Data)
	dm := make([]float64, q*q)
	var m0 []float64
	if o.VerifyBasis {
		m0 = make([]float64, q*q)
	}
	wBuf := make([]float64, blockRows*n)
	w0Buf := make([]float64, blockRows*n)
	uBuf := make([]float64, blockRows*q)
	tBuf := make([]float64, blockRows*q)
	var dwSq float64
	rowBlocks(m, blockRows, func(r0, r1 int) {
		rows := r1 - r0
		wb, ub, tb := wBuf[:rows*n], uBuf[:rows*q], tBuf[:rows*q]
		copyRows(wb, w1, r0, r1)
		copyRows(ub, b.U, r0, r1)
		if o.W0 != nil {
			w0b := w0Buf[:rows*n]
			copyRows(w0b, o.W0, r0, r1)
			if o.VerifyBasis {
				// M₀ += U_bᵀ·(W₀_b·V)
				gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, n, w0b), vg, 0, general(rows, q, tb))
				gemm(blas.Trans, blas.NoTrans, 1, general(rows, q, ub), general(rows, q, tb), 1, general(q, q, m0))
			}
			for i := range wb {
				wb[i] -= w0b[i]
			}
			dwSq += sumSquares(wb)
		}
		// ΔM += U_bᵀ·(D_b·V), D_b = rows of W₁ − W₀ (or of W₁).
		gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, n, wb), vg, 0, general(rows, q, tb))
		gemm(blas.Trans, blas.NoTrans, 1, general(rows, q, ub), general(rows, q, tb), 1, general(q, q, dm))
	})
	c := WeightChange{
		Rows: m, Cols: n,
		S:             append([]float64(nil), b.S...),
		DeltaWNorm:    math.NaN(),
		BasisResidual: math.NaN(),
		OrthoResidual: math.NaN(),
	}
	if o.W0 != nil {
		c.DeltaWNorm = math.Sqrt(dwSq)
	} else {
		for i, s := range b.S {
			dm[i*q+i] -= s
		}
	}
	if o.VerifyBasis {
		for i, s := range b.S {
			m0[i*q+i] -= s
		}
		c.BasisResidual = sqrtSum(m0)
		c.OrthoResidual = math.Max(orthoResidual(b.U, blockRows), orthoResidual(b.V, blockRows))
	}
	split, err := SplitChange(mat.NewDense(q, q, dm), o.Split)
	if err != nil {
		return WeightChange{}, err
	}
	c.Split = split
	return c, nil
}
