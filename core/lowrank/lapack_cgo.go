//go:build cgo && !nolapack

package lowrank

/*
#cgo LDFLAGS: -llapacke -lopenblas
#include <stdlib.h>
#include <lapacke.h>

// OpenBLAS entry points, declared here so no multiarch cblas.h is needed.
// Enums are ints: CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void cblas_dgemm(int order, int transA, int transB, int m, int n, int k, double alpha,
	const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc);
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

// isFloat32 reports whether T is (based on) float32.
func isFloat32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
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

// lapackThinSVD: ?gesdd (JOBZ='S') of the column-major Wᵀ.
func lapackThinSVD[T Float](w Matrix[T]) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := append([]T(nil), w.Data...) // destroyed by ?gesdd
	s := make([]T, k)
	uPrime := make([]T, n*k) // n×k col-major, ldu = n
	u := NewMatrix[T](m, k)  // = V′ᵀ, k×m col-major, ldvt = k
	var info C.int
	routine := "dgesdd"
	if isFloat32[T]() {
		routine = "sgesdd"
		info = C.prism_sgesdd(C.int(n), C.int(m), ptr32(a), C.int(n), ptr32(s), ptr32(uPrime), C.int(n), ptr32(u.Data), C.int(k))
	} else {
		info = C.prism_dgesdd(C.int(n), C.int(m), ptr64(a), C.int(n), ptr64(s), ptr64(uPrime), C.int(n), ptr64(u.Data), C.int(k))
	}
	if err := lapackError(routine, info); err != nil {
		return Factors[T]{}, err
	}
	v := NewMatrix[T](n, k)
	transposeInto(v.Data, uPrime, k, n)
	return Factors[T]{U: u, S: s, V: v}, nil
}

// lapackWindowSVD: ?gesvdx (RANGE='I', IL=start+1, IU=start+r) of the
// column-major Wᵀ.
func lapackWindowSVD[T Float](w Matrix[T], start, r int) (Factors[T], error) {
	m, n := w.Rows, w.Cols
	k := min(m, n)
	a := append([]T(nil), w.Data...)
	s := make([]T, k)
	uPrime := make([]T, n*r) // n×r col-major
	u := NewMatrix[T](m, r)  // r×m col-major = our U
	var ns C.int
	var info C.int
	routine := "dgesvdx"
	il, iu := C.int(start+1), C.int(start+r)
	if isFloat32[T]() {
		routine = "sgesvdx"
		info = C.prism_sgesvdx(C.int(n), C.int(m), ptr32(a), C.int(n), il, iu, &ns, ptr32(s), ptr32(uPrime), C.int(n), ptr32(u.Data), C.int(r))
	} else {
		info = C.prism_dgesvdx(C.int(n), C.int(m), ptr64(a), C.int(n), il, iu, &ns, ptr64(s), ptr64(uPrime), C.int(n), ptr64(u.Data), C.int(r))
	}
	if err := lapackError(routine, info); err != nil {
		return Factors[T]{}, err
	}
	if int(ns) != r {
		return Factors[T]{}, fmt.Errorf("%s returned %d singular triplets, expected %d", routine, ns, r)
	}
	v := NewMatrix[T](n, r)
	transposeInto(v.Data, uPrime, r, n)
	return Factors[T]{U: u, S: s[:r:r], V: v, Offset: start}, nil
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
	if m == 0 || n == 0 {
		return c
	}
	ta, tb := C.int(111), C.int(111)
	if transA {
		ta = 112
	}
	if transB {
		tb = 112
	}
	if isFloat32[T]() {
		C.cblas_sgemm(101, ta, tb, C.int(m), C.int(n), C.int(ka), 1, ptr32(a.Data), C.int(max(a.Cols, 1)),
			ptr32(b.Data), C.int(max(b.Cols, 1)), 0, ptr32(c.Data), C.int(n))
	} else {
		C.cblas_dgemm(101, ta, tb, C.int(m), C.int(n), C.int(ka), 1, ptr64(a.Data), C.int(max(a.Cols, 1)),
			ptr64(b.Data), C.int(max(b.Cols, 1)), 0, ptr64(c.Data), C.int(n))
	}
	return c
}

// lapackResidual returns W − scale·B·A, accumulated in float64 (?dgemm with
// β = 1 on a float64 copy of W), rounded to T.
func lapackResidual[T Float](w, b, a Matrix[T], scale float64) Matrix[T] {
	m, n, r := w.Rows, w.Cols, b.Cols
	c := toFloat64(w.Data)
	if r > 0 {
		b64, a64 := toFloat64(b.Data), toFloat64(a.Data)
		C.cblas_dgemm(101, 111, 111, C.int(m), C.int(n), C.int(r), C.double(-scale), ptr64(b64), C.int(r),
			ptr64(a64), C.int(n), 1, ptr64(c), C.int(n))
	}
	return Matrix[T]{Rows: m, Cols: n, Data: fromFloat64[T](c)}
}

// lapackOrthonormalize returns an m×l matrix with orthonormal columns spanning
// the columns of the row-major m×l Y (m ≥ l): the LQ factorisation of the
// column-major Yᵀ is the QR factorisation of Y.
func lapackOrthonormalize[T Float](y Matrix[T]) (Matrix[T], error) {
	m, l := y.Rows, y.Cols
	a := append([]T(nil), y.Data...)
	tau := make([]T, l)
	var info C.int
	if isFloat32[T]() {
		if info = C.prism_sgelqf(C.int(l), C.int(m), ptr32(a), C.int(l), ptr32(tau)); info == 0 {
			info = C.prism_sorglq(C.int(l), C.int(m), C.int(l), ptr32(a), C.int(l), ptr32(tau))
		}
	} else {
		if info = C.prism_dgelqf(C.int(l), C.int(m), ptr64(a), C.int(l), ptr64(tau)); info == 0 {
			info = C.prism_dorglq(C.int(l), C.int(m), C.int(l), ptr64(a), C.int(l), ptr64(tau))
		}
	}
	if err := lapackError("?gelqf/?orglq", info); err != nil {
		return Matrix[T]{}, err
	}
	return Matrix[T]{Rows: m, Cols: l, Data: a}, nil
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
