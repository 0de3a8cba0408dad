package analysis

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// DefaultRelTol is the default FeatureOptions.RelTol.
const DefaultRelTol = 1e-10

// FeatureOptions configure the feature-space decomposition.
type FeatureOptions struct {
	// Rank keeps at most this many leading eigen-directions of Σ_Y₀;
	// 0 keeps every direction with λ_i > RelTol·λ_max.
	Rank int
	// RelTol drops directions whose variance λ_i ≤ RelTol·λ_max (they carry no
	// old-task signal and their direction is numerically undefined);
	// 0 means DefaultRelTol.
	RelTol float64
	// Split configures band summaries, heatmap bins and whether ΔΣ_Y is kept.
	// Its Window indexes feature directions and is usually left empty.
	Split SplitOptions
	// BlockRows is the number of weight/probe rows processed at a time;
	// 0 means DefaultBlockRows.
	BlockRows int
}

// FeatureChange is the feature-space decomposition of one layer's
// fine-tuning on the old task's probe inputs:
//
//	Σ_Y₀ = Q·Λ·Qᵀ,  ΔΣ_Y = Qᵀ·Σ_Y₁·Q − Λ   (q×q over the kept directions)
//
// Eigenvectors are sorted by decreasing λ, and each column of Q is signed so
// that its entry of largest magnitude is positive (first such entry on ties);
// the off-diagonal signs of ΔΣ_Y follow that convention. Within a repeated
// eigenvalue the directions are not unique, and neither is the split there.
type FeatureChange struct {
	// Split is the diagonal/off-diagonal decomposition of ΔΣ_Y (q×q).
	Split
	// Outputs is the layer's output width m; Samples the number of probe rows
	// N (0 when built from covariances).
	Outputs, Samples int
	// Lambda holds the kept eigenvalues of Σ_Y₀, descending (length q).
	Lambda []float64
	// Variance0 = tr Σ_Y₀ and Variance1 = tr Σ_Y₁: total output variance.
	Variance0, Variance1 float64
	// OutsideVariance = tr Σ_Y₁ − tr(Qᵀ·Σ_Y₁·Q) ≥ 0: variance of Y₁ in
	// directions where Y₀ had none (or that were dropped).
	OutsideVariance float64
}

// RelativeDiag returns ΔΣ_ii / λ_i, the relative variance change along each
// original feature direction.
func (f FeatureChange) RelativeDiag() []float64 {
	r := make([]float64, len(f.Diag))
	for i, d := range f.Diag {
		r[i] = d / f.Lambda[i]
	}
	return r
}

func (o FeatureOptions) relTol() (float64, error) {
	switch {
	case o.RelTol < 0 || math.IsNaN(o.RelTol):
		return 0, fmt.Errorf("RelTol %v: want ≥ 0", o.RelTol)
	case o.RelTol == 0:
		return DefaultRelTol, nil
	}
	return o.RelTol, nil
}

func (o FeatureOptions) blockRows() int {
	if o.BlockRows <= 0 {
		return DefaultBlockRows
	}
	return o.BlockRows
}

// FeatureSpaceFromCovariances decomposes the change between two output
// covariances Σ_Y₀ and Σ_Y₁ (m×m) directly: it eigendecomposes Σ_Y₀ (O(m³)),
// so it suits small m and synthetic covariances; FeatureSpace avoids both the
// m×m matrices and the m×m eigendecomposition.
func FeatureSpaceFromCovariances(sigma0, sigma1 mat.Symmetric, o FeatureOptions) (FeatureChange, error) {
	m := sigma0.SymmetricDim()
	if sigma1.SymmetricDim() != m {
		return FeatureChange{}, fmt.Errorf("Σ_Y₁ is %d×%d, want %d×%d like Σ_Y₀", sigma1.SymmetricDim(), sigma1.SymmetricDim(), m, m)
	}
	tol, err := o.relTol()
	if err != nil {
		return FeatureChange{}, err
	}
	var eig mat.EigenSym
	if !eig.Factorize(sigma0, true) {
		return FeatureChange{}, fmt.Errorf("eigendecomposition of Σ_Y₀ (%d×%d) did not converge", m, m)
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := descending(vals)
	q := keptCount(vals, order, tol, o.Rank)
	if q == 0 {
		return FeatureChange{}, fmt.Errorf("Σ_Y₀ has no direction with positive variance")
	}
	qm := mat.NewDense(m, q, nil)
	lambda := make([]float64, q)
	for c := 0; c < q; c++ {
		lambda[c] = vals[order[c]]
		col := mat.Col(nil, order[c], &vecs)
		if signOfLargest(col) < 0 {
			for i := range col {
				col[i] = -col[i]
			}
		}
		qm.SetCol(c, col)
	}
	var s1q, inner mat.Dense
	s1q.Mul(sigma1, qm)
	inner.Mul(qm.T(), &s1q)
	var inside float64
	for i := 0; i < q; i++ {
		inside += inner.At(i, i)
		inner.Set(i, i, inner.At(i, i)-lambda[i])
	}
	f := FeatureChange{
		Outputs:   m,
		Lambda:    lambda,
		Variance0: mat.Trace(sigma0),
		Variance1: mat.Trace(sigma1),
	}
	f.OutsideVariance = math.Max(0, f.Variance1-inside)
	split, err := SplitChange(&inner, o.Split)
	if err != nil {
		return FeatureChange{}, err
	}
	f.Split = split
	return f, nil
}

// FeatureSpace decomposes the change of the layer's output covariance on
// probe inputs x (N×n) between weights w0 and w1 (m×n): Y = X·Wᵀ is never
// formed, since Σ_Y = W·Σ_X·Wᵀ. With a factor Σ_X = L·Lᵀ (L = X_cᵀ/√(N−1)
// when N ≤ n, else the pivoted Cholesky factor of the streamed Σ_X) and
// G = W₀·L, the eigenpairs of Σ_Y₀ = G·Gᵀ come from the small Gram matrix
// GᵀG = R·Λ·Rᵀ (p×p, Q = G·R·Λ^{-1/2}) or, when m ≤ p, from Σ_Y₀ = G·Gᵀ
// itself, and
//
//	ΔΣ_Y = A·Fᵀ + F·Aᵀ + F·Fᵀ,  A = Qᵀ·W₀·L,  F = Qᵀ·(W₁ − W₀)·L,
//
// accurate relative to the change rather than to Σ_Y₀. Memory is
// O(n² + B·n) for B = BlockRows plus m·p when m ≤ p: never N×m, and m×m only
// when m ≤ n. The work is one symmetric eigendecomposition of size
// min(m, n, N) (gonum: about 6 s at 768), a pivoted Cholesky of Σ_X when
// N > n, and a few passes of products over the weights.
func FeatureSpace(x, w0, w1 mat.Matrix, o FeatureOptions) (FeatureChange, error) {
	if err := checkFloat32Matrix("probe inputs X", x); err != nil {
		return FeatureChange{}, err
	}
	nSamples, n := x.Dims()
	if _, wn := w0.Dims(); wn != n {
		return FeatureChange{}, fmt.Errorf("probe inputs have %d features, want %d (the layer's input width)", n, wn)
	}
	if nSamples < 2 {
		return FeatureChange{}, fmt.Errorf("%d probe rows: need at least 2 for a covariance", nSamples)
	}
	var l *mat.Dense
	if nSamples <= n {
		// L = X_cᵀ/√(N−1), n×N.
		xc := denseCopy(x)
		raw := xc.RawMatrix()
		scale := 1 / math.Sqrt(float64(nSamples-1))
		for j := 0; j < n; j++ {
			var mean float64
			for i := 0; i < nSamples; i++ {
				mean += raw.Data[i*raw.Stride+j]
			}
			mean /= float64(nSamples)
			for i := 0; i < nSamples; i++ {
				raw.Data[i*raw.Stride+j] = (raw.Data[i*raw.Stride+j] - mean) * scale
			}
		}
		l = mat.DenseCopyOf(xc.T())
	} else {
		var cov Covariance
		if err := cov.Add(x); err != nil {
			return FeatureChange{}, err
		}
		sigmaX, err := cov.Matrix()
		if err != nil {
			return FeatureChange{}, err
		}
		if l, err = covarianceFactor(sigmaX); err != nil {
			return FeatureChange{}, err
		}
	}
	f, err := featureFromFactor(l, w0, w1, o)
	f.Samples = nSamples
	return f, err
}

// FeatureSpaceFromInputCovariance is FeatureSpace for a layer-input
// covariance Σ_X (n×n) accumulated elsewhere (e.g. streamed with Covariance
// over more probe rows than fit in memory).
func FeatureSpaceFromInputCovariance(sigmaX mat.Symmetric, w0, w1 mat.Matrix, o FeatureOptions) (FeatureChange, error) {
	if _, wn := w0.Dims(); wn != sigmaX.SymmetricDim() {
		return FeatureChange{}, fmt.Errorf("Σ_X is %d×%d, want the layer's input width %d", sigmaX.SymmetricDim(), sigmaX.SymmetricDim(), wn)
	}
	l, err := covarianceFactor(sigmaX)
	if err != nil {
		return FeatureChange{}, err
	}
	return featureFromFactor(l, w0, w1, o)
}

// covarianceFactor returns L (n×p) with Σ = L·Lᵀ from the Cholesky
// factorisation with complete pivoting, Pᵀ·Σ·P = L_p·L_pᵀ, stopped at the
// numerical rank p (pivots ≤ n·ε·max Σ_ii): L = P·L_p[:, :p]. It costs
// about n³/3 flops, a fraction of an eigendecomposition.
func covarianceFactor(sigma mat.Symmetric) (*mat.Dense, error) {
	n := sigma.SymmetricDim()
	a := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			a[i*n+j] = sigma.At(i, j)
		}
	}
	piv := make([]int, n)
	t, rank, _ := lapack64.Pstrf(blas64.Symmetric{Uplo: blas.Lower, N: n, Stride: n, Data: a}, piv, -1, make([]float64, 2*n))
	if rank == 0 {
		return nil, fmt.Errorf("probe inputs have no variance")
	}
	l := mat.NewDense(n, rank, nil)
	for k := 0; k < n; k++ {
		for j := 0; j < rank && j <= k; j++ {
			l.Set(piv[k], j, t.Data[k*n+j])
		}
	}
	return l, nil
}

// featureFromFactor computes the decomposition from Σ_X = L·Lᵀ (L n×p):
// with G = W₀·L, Σ_Y₀ = G·Gᵀ. One symmetric eigendecomposition of size
// min(m, p) gives Q and Λ: of Σ_Y₀ itself (m×m) when m ≤ p, else of the
// Gram matrix GᵀG = R·Λ·Rᵀ with Q = G·R·Λ^{-1/2}. Then A = Qᵀ·G and
// F = Qᵀ·(W₁ − W₀)·L give ΔΣ = A·Fᵀ + F·Aᵀ + F·Fᵀ.
func featureFromFactor(l *mat.Dense, w0, w1 mat.Matrix, o FeatureOptions) (FeatureChange, error) {
	for _, e := range []error{checkFloat32Matrix("W₀", w0), checkFloat32Matrix("W₁", w1)} {
		if e != nil {
			return FeatureChange{}, e
		}
	}
	m, n := w0.Dims()
	if r, c := w1.Dims(); r != m || c != n {
		return FeatureChange{}, fmt.Errorf("W₁ is %d×%d, want %d×%d like W₀", r, c, m, n)
	}
	tol, err := o.relTol()
	if err != nil {
		return FeatureChange{}, err
	}
	_, p := l.Dims()
	lg := general(n, p, l.RawMatrix().Data)
	blockRows := min(o.blockRows(), m)
	w0Buf := make([]float64, blockRows*n)
	w1Buf := make([]float64, blockRows*n)
	gBuf := make([]float64, blockRows*p)
	// g computes rows [r0, r1) of G = W₀·L into gBuf (and leaves W₀'s rows in w0Buf).
	g := func(r0, r1 int) []float64 {
		rows := r1 - r0
		w0b, gb := w0Buf[:rows*n], gBuf[:rows*p]
		copyRows(w0b, w0, r0, r1)
		gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, n, w0b), lg, 0, general(rows, p, gb))
		return gb
	}

	// Pass 1: the small symmetric matrix and its eigendecomposition.
	direct := m <= p   // eigendecompose Σ_Y₀ = G·Gᵀ (m×m), else GᵀG (p×p)
	var full []float64 // G (m×p) when direct
	var small []float64
	var variance0 float64
	if direct {
		full = make([]float64, m*p)
		rowBlocks(m, blockRows, func(r0, r1 int) { copy(full[r0*p:r1*p], g(r0, r1)) })
		small = make([]float64, m*m)
		fg := general(m, p, full)
		gemm(blas.NoTrans, blas.Trans, 1, fg, fg, 0, general(m, m, small))
	} else {
		small = make([]float64, p*p)
		rowBlocks(m, blockRows, func(r0, r1 int) {
			gb := general(r1-r0, p, g(r0, r1))
			gemm(blas.Trans, blas.NoTrans, 1, gb, gb, 1, general(p, p, small))
		})
	}
	size := int(math.Sqrt(float64(len(small))))
	for i := 0; i < size; i++ {
		variance0 += small[i*size+i]
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(size, small), true) {
		return FeatureChange{}, fmt.Errorf("eigendecomposition of a %d×%d covariance did not converge", size, size)
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := descending(vals)
	q := min(keptCount(vals, order, tol, o.Rank), m)
	if q == 0 {
		return FeatureChange{}, fmt.Errorf("Σ_Y₀ has no direction with positive variance")
	}
	lambda := make([]float64, q)
	// qCols holds Q itself (direct, m×q) or R·Λ^{-1/2} (p×q), which maps
	// rows of G to rows of Q.
	qCols := make([]float64, size*q)
	a := make([]float64, q*p) // A = Qᵀ·G (q×p)
	for c := 0; c < q; c++ {
		lambda[c] = vals[order[c]]
		for i := 0; i < size; i++ {
			qCols[i*q+c] = vecs.At(i, order[c])
		}
	}
	if direct {
		gemm(blas.Trans, blas.NoTrans, 1, general(m, q, qCols), general(m, p, full), 0, general(q, p, a))
	} else {
		for c := 0; c < q; c++ {
			sigma := math.Sqrt(lambda[c])
			for i := 0; i < p; i++ {
				a[c*p+i] = qCols[i*q+c] * sigma // Λ^{1/2}·Rᵀ
				qCols[i*q+c] /= sigma           // R·Λ^{-1/2}
			}
		}
	}

	// Pass 2: F = Qᵀ·(W₁ − W₀)·L, tr Σ_Y₁ = ‖W₁L‖², and Q's largest entries.
	fm := make([]float64, q*p)
	eBuf := make([]float64, blockRows*p)
	qBuf := make([]float64, blockRows*q)
	largest := make([]float64, q) // signed entry of largest magnitude per column of Q
	var variance1 float64
	rowBlocks(m, blockRows, func(r0, r1 int) {
		rows := r1 - r0
		gb := g(r0, r1)
		w0b, w1b, eb := w0Buf[:rows*n], w1Buf[:rows*n], eBuf[:rows*p]
		copyRows(w1b, w1, r0, r1)
		for i := range w1b {
			w1b[i] -= w0b[i]
		}
		gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, n, w1b), lg, 0, general(rows, p, eb))
		var qb []float64
		if direct {
			qb = qCols[r0*q : r1*q]
		} else {
			qb = qBuf[:rows*q]
			gemm(blas.NoTrans, blas.NoTrans, 1, general(rows, p, gb), general(p, q, qCols), 0, general(rows, q, qb))
		}
		gemm(blas.Trans, blas.NoTrans, 1, general(rows, q, qb), general(rows, p, eb), 1, general(q, p, fm))
		for i := range gb {
			y := gb[i] + eb[i]
			variance1 += y * y
		}
		for i := 0; i < rows; i++ {
			for c, v := range qb[i*q : (i+1)*q] {
				if math.Abs(v) > math.Abs(largest[c]) {
					largest[c] = v
				}
			}
		}
	})

	// ΔΣ = A·Fᵀ + F·Aᵀ + F·Fᵀ, then the sign convention D·ΔΣ·D.
	ag, fg := general(q, p, a), general(q, p, fm)
	ds := make([]float64, q*q)
	dg := general(q, q, ds)
	gemm(blas.NoTrans, blas.Trans, 1, ag, fg, 0, dg)
	gemm(blas.NoTrans, blas.Trans, 1, fg, ag, 1, dg)
	gemm(blas.NoTrans, blas.Trans, 1, fg, fg, 1, dg)
	for i := 0; i < q; i++ {
		for j := 0; j < q; j++ {
			if (largest[i] < 0) != (largest[j] < 0) {
				ds[i*q+j] = -ds[i*q+j]
			}
		}
	}
	var inside float64 // tr(QᵀΣ₁Q) = ‖A + F‖²
	for i := range a {
		v := a[i] + fm[i]
		inside += v * v
	}
	f := FeatureChange{
		Outputs:         m,
		Lambda:          lambda,
		Variance0:       variance0,
		Variance1:       variance1,
		OutsideVariance: math.Max(0, variance1-inside),
	}
	split, err := SplitChange(mat.NewDense(q, q, ds), o.Split)
	if err != nil {
		return FeatureChange{}, err
	}
	f.Split = split
	return f, nil
}

// descending returns the indices of vals sorted by decreasing value.
func descending(vals []float64) []int {
	order := make([]int, len(vals))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	return order
}

// keptCount returns how many leading values (in order) exceed tol·max, capped
// at rank when rank > 0.
func keptCount(vals []float64, order []int, tol float64, rank int) int {
	if len(order) == 0 || vals[order[0]] <= 0 {
		return 0
	}
	limit := tol * vals[order[0]]
	q := 0
	for _, i := range order {
		if vals[i] <= limit || (rank > 0 && q == rank) {
			break
		}
		q++
	}
	return q
}

// signOfLargest returns the sign (±1) of the entry of largest magnitude.
func signOfLargest(x []float64) float64 {
	var best float64
	for _, v := range x {
		if math.Abs(v) > math.Abs(best) {
			best = v
		}
	}
	if best < 0 {
		return -1
	}
	return 1
}
