//go:build cgo && !nolapack

package lowrank

/*
#cgo LDFLAGS: -llapacke -lopenblas
#include <stdlib.h>
#include <lapacke.h>

// OpenBLAS entry points, declared here so no multiarch cblas.h is needed.
// Enums are ints: CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112,
// CblasUpper 121.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void cblas_dgemm(int order, int transA, int transB, int m, int n, int k, double alpha,
	const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc);
void cblas_dsyrk(int order, int uplo, int trans, int n, int k, double alpha,
	const double *a, int lda, double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

// Workspace sizes returned in floating point can be rounded down in single
// precision; pad them.
static lapack_int prism_lwork(double q) { return (lapack_int)(q * 1.000001) + 64; }

#define PRISM_DEFINE(T, P)                                                              \
static int prism_##P##gesdd(int m, int n, T *a, int lda, T *s, T *u, int ldu, T *vt, int ldvt) { \
	int k = m < n ? m : n;                                                          \
	lapack_int *iwork = malloc(sizeof(lapack_int) * 8 * (size_t)k);                \
	if (!iwork) return -1000;                                                       \
	T q;                                                                            \
	int info = LAPACKE_##P##gesdd_work(LAPACK_COL_MAJOR, 'S', m, n, a, lda, s, u, ldu, vt, ldvt, &q, -1, iwork); \
	if (info == 0) {                                                                \
		lapack_int lwork = prism_lwork(q);                                          \
		T *work = malloc(sizeof(T) * (size_t)lwork);                                \
		if (!work) { free(iwork); return -1000; }                                   \
		info = LAPACKE_##P##gesdd_work(LAPACK_COL_MAJOR, 'S', m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, iwork); \
		free(work);                                                                 \
	}                                                                               \
	free(iwork);                                                                    \
	return info;                                                                    \
}                                                                                   \
static int prism_##P##gesvdx(int m, int n, T *a, int lda, int il, int iu, int *ns, T *s, T *u, int ldu, T *vt, int ldvt) { \
	int k = m < n ? m : n;                                                          \
	lapack_int *iwork = malloc(sizeof(lapack_int) * 12 * (size_t)k);               \
	if (!iwork) return -1000;                                                       \
	T q;                                                                            \
	lapack_int nsl = 0;                                                             \
	int info = LAPACKE_##P##gesvdx_work(LAPACK_COL_MAJOR, 'V', 'V', 'I', m, n, a, lda, 0, 0, il, iu, &nsl, s, u, ldu, vt, ldvt, &q, -1, iwork); \
	if (info == 0) {                                                                \
		lapack_int lwork = prism_lwork(q);                                          \
		T *work = malloc(sizeof(T) * (size_t)lwork);                                \
		if (!work) { free(iwork); return -1000; }                                   \
		info = LAPACKE_##P##gesvdx_work(LAPACK_COL_MAJOR, 'V', 'V', 'I', m, n, a, lda, 0, 0, il, iu, &nsl, s, u, ldu, vt, ldvt, work, lwork, iwork); \
		free(work);                                                                 \
	}                                                                               \
	*ns = (int)nsl;                                                                 \
	free(iwork);                                                                    \
	return info;                                                                    \
}                                                                                   \
static int prism_##P##gelqf(int m, int n, T *a, int lda, T *tau) {                   \
	T q;                                                                            \
	int info = LAPACKE_##P##gelqf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, &q, -1); \
	if (info != 0) return info;                                                     \
	lapack_int lwork = prism_lwork(q);                                              \
	T *work = malloc(sizeof(T) * (size_t)lwork);                                    \
	if (!work) return -1000;                                                        \
	info = LAPACKE_##P##gelqf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, work, lwork); \
	free(work);                                                                     \
	return info;                                                                    \
}                                                                                   \
static int prism_##P##geqrf(int m, int n, T *a, int lda, T *tau) {                   \
	T q;                                                                            \
	int info = LAPACKE_##P##geqrf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, &q, -1); \
	if (info != 0) return info;                                                     \
	lapack_int lwork = prism_lwork(q);                                              \
	T *work = malloc(sizeof(T) * (size_t)lwork);                                    \
	if (!work) return -1000;                                                        \
	info = LAPACKE_##P##geqrf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, work, lwork); \
	free(work);                                                                     \
	return info;                                                                    \
}                                                                                   \
static int prism_##P##orgqr(int m, int n, int k, T *a, int lda, const T *tau) {      \
	T q;                                                                            \
	int info = LAPACKE_##P##orgqr_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, &q, -1); \
	if (info != 0) return info;                                                     \
	lapack_int lwork = prism_lwork(q);                                              \
	T *work = malloc(sizeof(T) * (size_t)lwork);                                    \
	if (!work) return -1000;                                                        \
	info = LAPACKE_##P##orgqr_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, work, lwork); \
	free(work);                                                                     \
	return info;                                                                    \
}                                                                                   \
static int prism_##P##orglq(int m, int n, int k, T *a, int lda, const T *tau) {      \
	T q;                                                                            \
	int info = LAPACKE_##P##orglq_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, &q, -1); \
	if (info != 0) return info;                                                     \
	lapack_int lwork = prism_lwork(q);                                              \
	T *work = malloc(sizeof(T) * (size_t)lwork);                                    \
	if (!work) return -1000;                                                        \
	info = LAPACKE_##P##orglq_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, work, lwork); \
	free(work);                                                                     \
	return info;                                                                    \
}

PRISM_DEFINE(float, s)
PRISM_DEFINE(double, d)

// Symmetric eigendecomposition (divide and conquer), eigenvalues ascending,
// eigenvectors overwrite the column-major n×n a.
static int prism_dsyevd(int n, double *a, int lda, double *w) {
	return LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', n, a, lda, w);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

const lapackAvailable = true

// SetBLASThreads sets the number of threads OpenBLAS uses inside one call
// (process-wide). n < 1 is treated as 1. It is a no-op without cgo.
func SetBLASThreads(n int) {
	C.openblas_set_num_threads(C.int(max(n, 1)))
}

// BLASThreads returns the number of threads OpenBLAS uses inside one call
// (1 without cgo).
func BLASThreads() int { return int(C.openblas_get_num_threads()) }

func lapackError(routine string, info C.int) error {
	switch {
	case info == -1000:
		return fmt.Errorf("%s: out of memory for workspace", routine)
	case info < 0:
		return fmt.Errorf("%s: argument %d had an illegal value", routine, -info)
	case info > 0:
		return fmt.Errorf("%s did not converge (info=%d)", routine, info)
	}
	return nil
}

func ptr32[T Float](s []T) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func ptr64[T Float](s []T) *C.double {
	if len(s) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&s[0]))
}

// The row-major m×n W is, read column-major, the n×m matrix Wᵀ. LAPACK's SVD of
// Wᵀ = U′·S·V′ᵀ gives W = V′·S·U′ᵀ: our U (m×q, row-major) is exactly LAPACK's
// V′ᵀ array (q×m column-major), and our V is U′ (n×q column-major) transposed.

// lapackThinSVD: ?gesdd (JOBZ='S'), on the orientation gesddTransposed picks.
func lapackThinSVD[T Float](w Matrix[T]) (Factors[T], error) {
	if gesddTransposed(w.Rows, w.Cols) {
		return lapackThinSVDColMajor(w)
	}
	return lapackThinSVDRowMajor(w)
}

// gesddTransposed reports whether to hand LAPACK a column-major copy of W
// (m×n) rather than the free column-major view Wᵀ (n×m). Both ?gesdd and
// ?gesvdx measured faster on a tall column-major matrix (QR first) than on a
// wide one (LQ first; CPU time, one thread, OpenBLAS 0.3.21: 3072×768 sgesdd
// 319 vs 336 ms, 2304×768 229 vs 324 ms, dgesvdx r=16 0.78–0.85×), so a tall
// W is copied column-major and a wide W is used through its view Wᵀ, which is
// tall. (numpy always copies W column-major, so it takes the slow path on
// wide matrices.)
func gesddTransposed(m, n int) bool { return m >= n }

// lapackThinSVDRowMajor: ?gesdd of the column-major view Wᵀ (no transpose).
func lapackThinSVDRowMajor[T Float](w Matrix[T]) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := append([]T(nil), w.Data...) // destroyed by ?gesdd
	s := make([]T, k)
	uPrime := make([]T, n*k) // n×k col-major, ldu = n
	u := NewMatrix[T](m, k)  // = V′ᵀ, k×m col-major, ldvt = k
	if err := gesdd(n, m, a, s, uPrime, u.Data); err != nil {
		return Factors[T]{}, err
	}
	v := NewMatrix[T](n, k)
	transposeInto(v.Data, uPrime, k, n)
	return Factors[T]{U: u, S: s, V: v}, nil
}

// lapackThinSVDColMajor: ?gesdd of a column-major copy of W: W = U·S·Vᵀ with
// U m×k column-major (transposed into ours) and Vᵀ k×n column-major, which is
// exactly our row-major V (n×k).
func lapackThinSVDColMajor[T Float](w Matrix[T]) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := make([]T, m*n)
	transposeInto(a, w.Data, m, n) // column-major W
	s := make([]T, k)
	uCol := make([]T, m*k)  // m×k col-major
	v := NewMatrix[T](n, k) // Vᵀ k×n col-major
	if err := gesdd(m, n, a, s, uCol, v.Data); err != nil {
		return Factors[T]{}, err
	}
	u := NewMatrix[T](m, k)
	transposeInto(u.Data, uCol, k, m)
	return Factors[T]{U: u, S: s, V: v}, nil
}

// gesdd runs ?gesdd (JOBZ='S') on the column-major M×N a (lda = M):
// a = u·diag(s)·vt, u M×K (ldu = M), vt K×N (ldvt = K).
func gesdd[T Float](mm, nn int, a, s, u, vt []T) error {
	kk := min(mm, nn)
	var info C.int
	if isFloat32[T]() {
		info = C.prism_sgesdd(C.int(mm), C.int(nn), ptr32(a), C.int(mm), ptr32(s), ptr32(u), C.int(mm), ptr32(vt), C.int(kk))
		return lapackError("sgesdd", info)
	}
	info = C.prism_dgesdd(C.int(mm), C.int(nn), ptr64(a), C.int(mm), ptr64(s), ptr64(u), C.int(mm), ptr64(vt), C.int(kk))
	return lapackError("dgesdd", info)
}

// lapackWindowSVD: dgesvdx (RANGE='I', IL=start+1, IU=start+r), given a
// tall column-major matrix as ?gesdd (see gesddTransposed). Single precision
// is computed in double: sgesvdx (OpenBLAS 0.3.21) returns the wrong index
// range on dense spectra (a 200×200 matrix with σ_i = (1+i)^−1.5, window at
// 184, comes back shifted by one or more indices; lowranktest.CheckWindowSVD
// catches it).
func lapackWindowSVD[T Float](w Matrix[T], start, r int) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	transposed := gesddTransposed(m, n)
	var a []float64
	mm, nn := n, m // column-major view Wᵀ
	if transposed {
		a = make([]float64, m*n)
		transposeInto(a, toFloat64(w.Data), m, n) // column-major W
		mm, nn = m, n
	} else {
		a = toFloat64(w.Data)
	}
	s := make([]float64, k)
	u := make([]float64, mm*r)  // mm×r column-major
	vt := make([]float64, r*nn) // r×nn column-major
	var ns C.int
	il, iu := C.int(start+1), C.int(start+r)
	info := C.prism_dgesvdx(C.int(mm), C.int(nn), ptr64(a), C.int(mm), il, iu, &ns, ptr64(s), ptr64(u), C.int(mm), ptr64(vt), C.int(r))
	if err := lapackError("dgesvdx", info); err != nil {
		return Factors[T]{}, err
	}
	if int(ns) != r {
		return Factors[T]{}, fmt.Errorf("dgesvdx returned %d singular triplets, expected %d", ns, r)
	}
	// Column-major mm×r u transposed is row-major r×mm… we need row-major
	// (rows×r): element (i, j) of u is u[i + j·mm], so transpose the r×mm view.
	uT := make([]float64, mm*r)
	transposeInto(uT, u, r, mm) // row-major mm×r
	// vt (r×nn column-major): element (j, i) at j + i·r is row-major nn×r.
	var left, right []float64 // row-major m×r and n×r
	if transposed {
		left, right = uT, vt // A = W: left vectors are U, vt holds V
	} else {
		left, right = vt, uT // A = Wᵀ: its left vectors are our V
	}
	return Factors[T]{
		U:      Matrix[T]{Rows: m, Cols: r, Data: fromFloat64[T](left)},
		S:      fromFloat64[T](s[:r]),
		V:      Matrix[T]{Rows: n, Cols: r, Data: fromFloat64[T](right)},
		Offset: start,
	}, nil
}

// lapackMul returns op(A)·op(B) with ?gemm on row-major data.
func lapackMul[T Float](transA, transB bool, a, b Matrix[T]) Matrix[T] {
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
	c := NewMatrix[T](m, n)
	gemmAt(transA, transB, m, n, ka, 1, a.Data, max(a.Cols, 1), b.Data, max(b.Cols, 1), 0, c.Data, max(n, 1))
	return c
}

// lapackResidual returns W − scale·B·A in W's precision: a copy of W and one
// rank-r ?gemm update with β = 1 on it. Each entry is within a few ulps of the
// exact residual (the r-term products are accumulated in T and rounded once
// more by the update); measured 2.6× faster than widening W to float64 for
// the update on ViT-B-shaped float32 layers, where that was a fifth of a
// randomized init (updating in cache-sized row blocks was slower still).
func lapackResidual[T Float](w, b, a Matrix[T], scale float64) Matrix[T] {
	out := w.Clone()
	gemmAt(false, false, w.Rows, w.Cols, b.Cols, -scale, b.Data, b.Cols, a.Data, w.Cols, 1, out.Data, w.Cols)
	return out
}

// krylovStepBlock is the number of rows (columns, for a wide W) of W that
// lapackKrylovStep multiplies at a time: 64 rows of a 768-wide float32 W are
// 192 KiB, which stay in the per-core cache between the two products.
// Measured (one thread, OpenBLAS 0.3.21, width l = 16): 3072×768 1.41 ms
// against 2.25 ms for the two whole products; 768×3072 (column blocks)
// 1.48 against 2.35 ms; blocks of 128 or more lose the gain.
const krylovStepBlock = 64

// lapackKrylovStep returns y = W̃·x and z = W̃ᵀ·y with W̃ = W (x: n×l) or,
// when wide, W̃ = Wᵀ (x: m×l), in one pass over W: for each block of
// krylovStepBlock rows of W (columns when wide), its part of y and then its
// contribution to z (?gemm with β = 1), while the block is still in cache.
func lapackKrylovStep[T Float](w Matrix[T], wide bool, x Matrix[T]) (y, z Matrix[T]) {
	m, n, l := w.Rows, w.Cols, x.Cols
	if wide {
		y, z = NewMatrix[T](n, l), NewMatrix[T](m, l)
		for c0 := 0; c0 < n; c0 += krylovStepBlock {
			h := min(krylovStepBlock, n-c0)
			gemmAt(true, false, h, l, m, 1, w.Data[c0:], n, x.Data, l, 0, y.Data[c0*l:], l)
			gemmAt(false, false, m, l, h, 1, w.Data[c0:], n, y.Data[c0*l:], l, 1, z.Data, l)
		}
		return y, z
	}
	y, z = NewMatrix[T](m, l), NewMatrix[T](n, l)
	for i0 := 0; i0 < m; i0 += krylovStepBlock {
		h := min(krylovStepBlock, m-i0)
		gemmAt(false, false, h, l, n, 1, w.Data[i0*n:], n, x.Data, l, 0, y.Data[i0*l:], l)
		gemmAt(true, false, n, l, h, 1, w.Data[i0*n:], n, y.Data[i0*l:], l, 1, z.Data, l)
	}
	return y, z
}

// gemmAt is ?gemm on row-major slices: c = alpha·op(a)·op(b) + beta·c,
// op(a) mm×kk, op(b) kk×nn.
func gemmAt[T Float](transA, transB bool, mm, nn, kk int, alpha float64, a []T, lda int, b []T, ldb int, beta float64, c []T, ldc int) {
	if mm == 0 || nn == 0 || kk == 0 {
		return
	}
	ta, tb := C.int(111), C.int(111)
	if transA {
		ta = 112
	}
	if transB {
		tb = 112
	}
	if isFloat32[T]() {
		C.cblas_sgemm(101, ta, tb, C.int(mm), C.int(nn), C.int(kk), C.float(alpha), ptr32(a), C.int(lda), ptr32(b), C.int(ldb),
			C.float(beta), ptr32(c), C.int(ldc))
		return
	}
	C.cblas_dgemm(101, ta, tb, C.int(mm), C.int(nn), C.int(kk), C.double(alpha), ptr64(a), C.int(lda), ptr64(b), C.int(ldb),
		C.double(beta), ptr64(c), C.int(ldc))
}

// lapackSymEigen returns the eigendecomposition of the symmetric c×c G as
// Factors with U = V = the eigenvectors and S = the eigenvalues, descending
// (dsyevd; G is read, not modified).
func lapackSymEigen(g Matrix[float64]) (Factors[float64], error) {
	c := g.Rows
	a := append([]float64(nil), g.Data...) // symmetric: row- and column-major alike
	w := make([]float64, c)
	if c > 0 {
		if err := lapackError("dsyevd", C.prism_dsyevd(C.int(c), ptr64(a), C.int(c), ptr64(w))); err != nil {
			return Factors[float64]{}, err
		}
	}
	// Column j of the column-major a is eigenvector j (ascending): reverse.
	vecs := NewMatrix[float64](c, c)
	s := make([]float64, c)
	for j := 0; j < c; j++ {
		src := c - 1 - j
		s[j] = w[src]
		for i := 0; i < c; i++ {
			vecs.Data[i*c+j] = a[src*c+i]
		}
	}
	return Factors[float64]{U: vecs, S: s, V: vecs}, nil
}

// lapackGram returns Yᵀ·Y (c×c) of the row-major float64 Y (rows×c) with
// dsyrk (half the work of a general product), mirrored to both triangles.
func lapackGram(y Matrix[float64]) Matrix[float64] {
	c := y.Cols
	g := NewMatrix[float64](c, c)
	if c == 0 || y.Rows == 0 {
		return g
	}
	C.cblas_dsyrk(101, 121, 112, C.int(c), C.int(y.Rows), 1, ptr64(y.Data), C.int(c), 0, ptr64(g.Data), C.int(c))
	for i := 0; i < c; i++ {
		for j := 0; j < i; j++ {
			g.Data[i*c+j] = g.Data[j*c+i]
		}
	}
	return g
}

// lapackOrthonormalize returns an m×l matrix with orthonormal columns spanning
// the columns of the row-major m×l Y (m ≥ l): Householder QR (?geqrf, ?orgqr)
// of a column-major copy (measured several times faster than ?gelqf on the
// free column-major view Yᵀ, whose reflectors run along strided rows).
func lapackOrthonormalize[T Float](y Matrix[T]) (Matrix[T], error) {
	m, l := y.Rows, y.Cols
	a := make([]T, m*l)
	transposeInto(a, y.Data, m, l) // column-major m×l, lda = m
	tau := make([]T, l)
	var info C.int
	if isFloat32[T]() {
		if info = C.prism_sgeqrf(C.int(m), C.int(l), ptr32(a), C.int(m), ptr32(tau)); info == 0 {
			info = C.prism_sorgqr(C.int(m), C.int(l), C.int(l), ptr32(a), C.int(m), ptr32(tau))
		}
	} else {
		if info = C.prism_dgeqrf(C.int(m), C.int(l), ptr64(a), C.int(m), ptr64(tau)); info == 0 {
			info = C.prism_dorgqr(C.int(m), C.int(l), C.int(l), ptr64(a), C.int(m), ptr64(tau))
		}
	}
	if err := lapackError("?geqrf/?orgqr", info); err != nil {
		return Matrix[T]{}, err
	}
	q := NewMatrix[T](m, l)
	transposeInto(q.Data, a, l, m)
	return q, nil
}

// lapackReducedQR returns W = Q·R with Q m×k (orthonormal columns) and R k×n
// upper trapezoidal, via the LQ factorisation of the column-major Wᵀ (n×m):
// Wᵀ = L·Q′ gives Q = Q′ᵀ and R = Lᵀ.
func lapackReducedQR[T Float](w Matrix[T]) (q, r Matrix[T], err error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := append([]T(nil), w.Data...) // column-major n×m, lda = n
	tau := make([]T, k)
	var info C.int
	if isFloat32[T]() {
		info = C.prism_sgelqf(C.int(n), C.int(m), ptr32(a), C.int(n), ptr32(tau))
	} else {
		info = C.prism_dgelqf(C.int(n), C.int(m), ptr64(a), C.int(n), ptr64(tau))
	}
	if err := lapackError("?gelqf", info); err != nil {
		return q, r, err
	}
	// L(i, j) sits at a[i + j·n]; R(j, i) = L(i, j) at R.Data[j·n + i]: the same index.
	r = NewMatrix[T](k, n)
	for j := 0; j < k; j++ {
		copy(r.Data[j*n+j:(j+1)*n], a[j*n+j:(j+1)*n])
	}
	if isFloat32[T]() {
		info = C.prism_sorglq(C.int(k), C.int(m), C.int(k), ptr32(a), C.int(n), ptr32(tau))
	} else {
		info = C.prism_dorglq(C.int(k), C.int(m), C.int(k), ptr64(a), C.int(n), ptr64(tau))
	}
	if err := lapackError("?orglq", info); err != nil {
		return q, r, err
	}
	// Q′ is k×m column-major with lda = n: Q(i, j) = Q′(j, i) = a[j + i·n].
	q = NewMatrix[T](m, k)
	for i := 0; i < m; i++ {
		copy(q.Data[i*k:(i+1)*k], a[i*n:i*n+k])
	}
	return q, r, nil
}
