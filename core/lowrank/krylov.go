package lowrank

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Randomized block Krylov SVD (Musco & Musco 2015, "Randomized Block Krylov
// Methods for Stronger and Faster Approximate Singular Value Decomposition";
// a block Lanczos iteration with full re-orthogonalisation).
//
// With k = min(m, n) the short side, let M be the operator on the short side
// (M = WᵀW when n ≤ m, M = W·Wᵀ when m < n) and let W̃ map it to the long side
// (W̃ = W, resp. Wᵀ). From a Gaussian k×l block Ω:
//
//	Q₁ = qr(Ω);  for j = 1 … J−1:  Q_{j+1} = qr((I − Qⱼ·Qⱼᵀ)·M·Q_j),
//	Q = [Q₁ … Q_J] (k × J·l, orthonormal: a basis of the block Krylov space
//	    span{Ω, MΩ, …, M^{J−1}Ω}),
//	Y = W̃·Q (long × J·l, gathered on the way: each step computes W̃·Qⱼ),
//
// then the Rayleigh–Ritz step on that space: YᵀY = Qᵀ·M·Q = Ṽ·diag(σ²)·Ṽᵀ
// (a J·l × J·l symmetric eigenproblem, in float64), so that
//
//	short-side vectors Q·Ṽ, long-side vectors Y·Ṽ·diag(1/σ) (orthonormalised),
//	values σ,
//
// the top q of which are returned. Each step costs one product with W and one
// with Wᵀ (2J−1 in all, the last Wᵀ is not needed), like a power iteration,
// but the Ritz values come from the whole Krylov space (polynomials of degree
// J−1 in M) instead of its last block: on slowly decaying spectra the same
// accuracy needs several times fewer products with W than subspace iteration
// (Halko–Martinsson–Tropp), and a block of only q plus a few columns.

// krylovSVDOf returns the top q singular triplets of the checked m×n W from a
// block Krylov space of `blocks` blocks of width l.
func krylovSVDOf[T Float](backend SVDBackend, w Matrix[T], q, l, blocks int, seed uint64) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	wide := m < n // Krylov vectors live on the short side
	k, long := n, m
	if wide {
		k, long = m, n
	}
	l = min(l, k)

	rng := rand.New(rand.NewPCG(seed, seedStreamRandomized))
	block, err := orthonormalize(backend, gaussianFrom[T](rng, k, l))
	if err != nil {
		return Factors[T]{}, err
	}
	basis := block      // k × c, orthonormal columns
	ys := []Matrix[T]{} // W̃·Qⱼ, long × width(Qⱼ)
	for j := 0; ; j++ {
		width := min(l, k-basis.Cols)
		if j+1 >= blocks || width == 0 {
			ys = append(ys, matMul(backend, wide, false, w, block)) // W̃·Q_J
			break
		}
		y, next := krylovStep(backend, w, wide, block) // W̃·Qⱼ, M·Qⱼ
		ys = append(ys, y)
		if width < next.Cols {
			next = columns(next, 0, width)
		}
		if block, err = orthonormalizeAgainst(backend, basis, next, rng); err != nil {
			return Factors[T]{}, err
		}
		basis = appendColumns(basis, block)
	}
	y := concatColumns(long, ys) // long × c = W̃·basis
	return ritzFactors(backend, wide, basis, y, q)
}

// orthonormalizeAgainst returns an orthonormal basis of the part of the
// columns of x orthogonal to the orthonormal columns of basis: two passes of
// block Gram–Schmidt (x ← x − basis·(basisᵀ·x), twice), a QR, and one more
// projection and QR so that the result is orthogonal to basis to rounding
// even where x had (numerically) nothing left outside it. Columns that
// vanished are replaced by Gaussian ones from rng (the Krylov space had become
// invariant: any direction orthogonal to it continues the basis).
func orthonormalizeAgainst[T Float](backend SVDBackend, basis, x Matrix[T], rng *rand.Rand) (Matrix[T], error) {
	project := func(x Matrix[T]) Matrix[T] { // x − basis·(basisᵀ·x)
		return subtract(x, matMul(backend, false, false, basis, matMul(backend, true, false, basis, x)))
	}
	before := columnNorms(x)
	x = project(project(x))
	vanished := false
	for c, norm := range columnNorms(x) {
		if norm <= 1e3*epsilonOf[T]()*before[c] || before[c] == 0 {
			for i := 0; i < x.Rows; i++ {
				x.Data[i*x.Cols+c] = T(rng.NormFloat64())
			}
			vanished = true
		}
	}
	if vanished {
		x = project(project(x))
	}
	q, err := orthonormalize(backend, x)
	if err != nil {
		return Matrix[T]{}, err
	}
	return orthonormalize(backend, project(q))
}

// ritzFactors is the Rayleigh–Ritz step: y = W̃·basis, yᵀy = Ṽ·diag(σ²)·Ṽᵀ
// (float64). It returns the top q triplets as U, S, V of W: the short side
// basis·Ṽ, the values σᵢ = ‖y·ṽᵢ‖ (not √λᵢ, which would lose the small values
// to rounding: a zero σ would come out as √ε·σ₁), and the long side y·ṽᵢ/σᵢ,
// orthonormalised (the signs of y·ṽᵢ kept; an arbitrary orthonormal
// completion where σᵢ = 0), sorted by σ descending.
func ritzFactors[T Float](backend SVDBackend, wide bool, basis, y Matrix[T], q int) (Factors[T], error) {
	y64 := Matrix[float64]{Rows: y.Rows, Cols: y.Cols, Data: toFloat64(y.Data)}
	eig, err := gramEigen(backend, y64)
	if err != nil {
		return Factors[T]{}, err
	}
	q = min(q, len(eig.S))
	top := columns(eig.U, 0, q)                        // Ṽ's first q columns (yᵀy is symmetric PSD: U = V)
	longRaw := matMul(backend, false, false, y64, top) // columns σᵢ·uᵢ
	norms := columnNorms(longRaw)
	order := make([]int, q)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(norms[b], norms[a]) })
	top, longRaw = permuteColumns(top, order), permuteColumns(longRaw, order)
	s := make([]T, q)
	for i, c := range order {
		s[i] = T(norms[c])
	}
	tilde := Matrix[T]{Rows: top.Rows, Cols: top.Cols, Data: fromFloat64[T](top.Data)}
	short := matMul(backend, false, false, basis, tilde)
	long, err := orthonormalizeSigned(backend, Matrix[T]{Rows: longRaw.Rows, Cols: longRaw.Cols, Data: fromFloat64[T](longRaw.Data)})
	if err != nil {
		return Factors[T]{}, err
	}
	if wide {
		return Factors[T]{U: short, S: s, V: long}, nil
	}
	return Factors[T]{U: long, S: s, V: short}, nil
}

// permuteColumns returns the columns of x in the given order.
func permuteColumns[T Float](x Matrix[T], order []int) Matrix[T] {
	out := NewMatrix[T](x.Rows, len(order))
	for i := 0; i < x.Rows; i++ {
		row, dst := x.Data[i*x.Cols:(i+1)*x.Cols], out.Data[i*out.Cols:(i+1)*out.Cols]
		for j, c := range order {
			dst[j] = row[c]
		}
	}
	return out
}

// orthonormalizeSigned is orthonormalize with each column's sign chosen to
// agree with the input column (Householder QR may flip it).
func orthonormalizeSigned[T Float](backend SVDBackend, x Matrix[T]) (Matrix[T], error) {
	q, err := orthonormalize(backend, x)
	if err != nil {
		return Matrix[T]{}, err
	}
	for c := 0; c < x.Cols; c++ {
		var dot float64
		for i := 0; i < x.Rows; i++ {
			dot += float64(x.Data[i*x.Cols+c]) * float64(q.Data[i*q.Cols+c])
		}
		if dot < 0 {
			for i := 0; i < q.Rows; i++ {
				q.Data[i*q.Cols+c] = -q.Data[i*q.Cols+c]
			}
		}
	}
	return q, nil
}

func gaussianFrom[T Float](rng *rand.Rand, rows, cols int) Matrix[T] {
	g := NewMatrix[T](rows, cols)
	for i := range g.Data {
		g.Data[i] = T(rng.NormFloat64())
	}
	return g
}

func columnNorms[T Float](x Matrix[T]) []float64 {
	out := make([]float64, x.Cols)
	for i := 0; i < x.Rows; i++ {
		for c, v := range x.Data[i*x.Cols : (i+1)*x.Cols] {
			out[c] += float64(v) * float64(v)
		}
	}
	for c := range out {
		out[c] = math.Sqrt(out[c])
	}
	return out
}

// subtract returns a − b (same shapes), reusing a.
func subtract[T Float](a, b Matrix[T]) Matrix[T] {
	if a.Rows != b.Rows || a.Cols != b.Cols {
		panic(fmt.Sprintf("lowrank: internal: subtract %d×%d and %d×%d", a.Rows, a.Cols, b.Rows, b.Cols))
	}
	for i := range a.Data {
		a.Data[i] -= b.Data[i]
	}
	return a
}

// appendColumns returns [a | b] (same number of rows).
func appendColumns[T Float](a, b Matrix[T]) Matrix[T] {
	return concatColumns(a.Rows, []Matrix[T]{a, b})
}

// concatColumns returns [x₁ | x₂ | …], each with the given number of rows.
func concatColumns[T Float](rows int, xs []Matrix[T]) Matrix[T] {
	cols := 0
	for _, x := range xs {
		cols += x.Cols
	}
	out := NewMatrix[T](rows, cols)
	for i := 0; i < rows; i++ {
		at := i * cols
		for _, x := range xs {
			at += copy(out.Data[at:], x.Data[i*x.Cols:(i+1)*x.Cols])
		}
	}
	return out
}

// epsilonOf is the unit roundoff of T.
func epsilonOf[T Float]() float64 {
	if isFloat32[T]() {
		return 0x1p-24
	}
	return 0x1p-53
}
