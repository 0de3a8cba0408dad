package lowrank

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/blas"
	gonumblas "gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack"
	gonumlapack "gonum.org/v1/gonum/lapack/gonum"
)

// The gonum back-end works in float64 (gonum's LAPACK is float64 and
// row-major, like Matrix); float32 input is converted on the way in and out.

func toFloat64[T Float](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

func fromFloat64[T Float](s []float64) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

// gonumThinSVD: Dgesvd (JOBU = JOBVT = 'S') on a float64 copy of W.
func gonumThinSVD[T Float](w Matrix[T]) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := toFloat64(w.Data)
	s := make([]float64, k)
	u := make([]float64, m*k)
	vt := make([]float64, k*n)
	impl := gonumlapack.Implementation{}
	query := make([]float64, 1)
	impl.Dgesvd(lapack.SVDStore, lapack.SVDStore, m, n, a, n, s, u, k, vt, n, query, -1)
	work := make([]float64, int(query[0]))
	if ok := impl.Dgesvd(lapack.SVDStore, lapack.SVDStore, m, n, a, n, s, u, k, vt, n, work, len(work)); !ok {
		return Factors[T]{}, errors.New("gonum Dgesvd did not converge")
	}
	v := make([]float64, n*k)
	transposeInto(v, vt, k, n)
	return Factors[T]{
		U: Matrix[T]{Rows: m, Cols: k, Data: fromFloat64[T](u)},
		S: fromFloat64[T](s),
		V: Matrix[T]{Rows: n, Cols: k, Data: fromFloat64[T](v)},
	}, nil
}

// gonumMul returns op(A)·op(B) (Dgemm in float64).
func gonumMul[T Float](transA, transB bool, a, b Matrix[T]) Matrix[T] {
	m, ka := a.Rows, a.Cols
	if transA {
		m, ka = ka, m
	}
	kb, n := b.Rows, b.Cols
	if transB {
		kb, n = n, kb
	}
	if ka != kb {
		panic(fmt.Sprintf("lowrank: internal: gemm inner dimensions %d and %d differ", ka, kb))
	}
	c := make([]float64, m*n)
	if m > 0 && n > 0 && ka > 0 {
		ta, tb := blas.NoTrans, blas.NoTrans
		if transA {
			ta = blas.Trans
		}
		if transB {
			tb = blas.Trans
		}
		gonumblas.Implementation{}.Dgemm(ta, tb, m, n, ka, 1, toFloat64(a.Data), max(a.Cols, 1),
			toFloat64(b.Data), max(b.Cols, 1), 0, c, n)
	}
	return Matrix[T]{Rows: m, Cols: n, Data: fromFloat64[T](c)}
}

// gonumResidual returns W − scale·B·A accumulated in float64.
func gonumResidual[T Float](w, b, a Matrix[T], scale float64) Matrix[T] {
	m, n, r := w.Rows, w.Cols, b.Cols
	c := toFloat64(w.Data)
	if r > 0 {
		gonumblas.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, r, -scale, toFloat64(b.Data), r,
			toFloat64(a.Data), n, 1, c, n)
	}
	return Matrix[T]{Rows: m, Cols: n, Data: fromFloat64[T](c)}
}

// gonumQR factors the row-major m×n float64 a in place (Dgeqrf) and returns
// the Householder scalars.
func gonumQR(m, n int, a []float64) []float64 {
	impl := gonumlapack.Implementation{}
	tau := make([]float64, min(m, n))
	query := make([]float64, 1)
	impl.Dgeqrf(m, n, a, n, tau, query, -1)
	work := make([]float64, max(int(query[0]), 1))
	impl.Dgeqrf(m, n, a, n, tau, work, len(work))
	return tau
}

// gonumFormQ overwrites the row-major m×lda a (holding Dgeqrf's reflectors)
// with the first k columns of Q (Dorgqr), returning them as m×k.
func gonumFormQ(m, k, lda int, a, tau []float64) []float64 {
	impl := gonumlapack.Implementation{}
	query := make([]float64, 1)
	impl.Dorgqr(m, k, k, a, lda, tau, query, -1)
	work := make([]float64, max(int(query[0]), 1))
	impl.Dorgqr(m, k, k, a, lda, tau, work, len(work))
	if lda == k {
		return a[:m*k]
	}
	q := make([]float64, m*k)
	for i := 0; i < m; i++ {
		copy(q[i*k:(i+1)*k], a[i*lda:i*lda+k])
	}
	return q
}

// gonumOrthonormalize returns the thin Q (m×l) of the QR factorisation of Y.
func gonumOrthonormalize[T Float](y Matrix[T]) (Matrix[T], error) {
	m, l := y.Rows, y.Cols
	a := toFloat64(y.Data)
	tau := gonumQR(m, l, a)
	return Matrix[T]{Rows: m, Cols: l, Data: fromFloat64[T](gonumFormQ(m, l, l, a, tau))}, nil
}

// gonumReducedQR returns W = Q·R, Q m×k with orthonormal columns, R k×n upper
// trapezoidal (Dgeqrf + Dorgqr).
func gonumReducedQR[T Float](w Matrix[T]) (q, r Matrix[T], err error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := toFloat64(w.Data)
	tau := gonumQR(m, n, a)
	r = NewMatrix[T](k, n)
	for i := 0; i < k; i++ {
		for j := i; j < n; j++ {
			r.Data[i*n+j] = T(a[i*n+j])
		}
	}
	qd := gonumFormQ(m, k, n, a, tau)
	return Matrix[T]{Rows: m, Cols: k, Data: fromFloat64[T](qd)}, r, nil
}

// Back-end dispatch (backend already resolved).

func matMul[T Float](backend SVDBackend, transA, transB bool, a, b Matrix[T]) Matrix[T] {
	if backend == BackendLAPACK {
		return lapackMul(transA, transB, a, b)
	}
	return gonumMul(transA, transB, a, b)
}

func orthonormalize[T Float](backend SVDBackend, y Matrix[T]) (Matrix[T], error) {
	if backend == BackendLAPACK {
		return lapackOrthonormalize(y)
	}
	return gonumOrthonormalize(y)
}

// krylovStep returns y = W̃·x and z = W̃ᵀ·y, W̃ = W or, when wide, Wᵀ: with
// LAPACK in one cache-blocked pass over W, else as two products.
func krylovStep[T Float](backend SVDBackend, w Matrix[T], wide bool, x Matrix[T]) (y, z Matrix[T]) {
	if backend == BackendLAPACK {
		return lapackKrylovStep(w, wide, x)
	}
	y = gonumMul(wide, false, w, x)
	return y, gonumMul(!wide, false, w, y)
}

// gramEigen returns the eigendecomposition of Yᵀ·Y (symmetric PSD) as
// Factors with U = V = the eigenvectors, S = the eigenvalues, descending.
func gramEigen(backend SVDBackend, y Matrix[float64]) (Factors[float64], error) {
	if backend == BackendLAPACK {
		return lapackSymEigen(lapackGram(y))
	}
	return gonumThinSVD(gonumMul(true, false, y, y))
}

func reducedQR[T Float](backend SVDBackend, w Matrix[T]) (q, r Matrix[T], err error) {
	if backend == BackendLAPACK {
		return lapackReducedQR(w)
	}
	return gonumReducedQR(w)
}

// residual returns Wres = W − scale·B·A: in W's precision with LAPACK (a
// rank-r ?gemm update), accumulated in float64 with gonum.
func residual[T Float](backend SVDBackend, w, b, a Matrix[T], scale float64) Matrix[T] {
	if backend == BackendLAPACK {
		return lapackResidual(w, b, a, scale)
	}
	return gonumResidual(w, b, a, scale)
}
