package lowrank

import "fmt"

// MatMul returns op(A)·op(B), op(X) = Xᵀ when the flag is set, with the
// default back-end's GEMM (OpenBLAS ?gemm with cgo, gonum's Dgemm without).
// It fails when the inner dimensions differ.
func MatMul[T Float](transA, transB bool, a, b Matrix[T]) (Matrix[T], error) {
	if err := checkShape("", "A", a); err != nil {
		return Matrix[T]{}, err
	}
	if err := checkShape("", "B", b); err != nil {
		return Matrix[T]{}, err
	}
	ka, kb := a.Cols, b.Rows
	if transA {
		ka = a.Rows
	}
	if transB {
		kb = b.Cols
	}
	if ka != kb {
		return Matrix[T]{}, fmt.Errorf("lowrank: MatMul of %d×%d (transposed %v) and %d×%d (transposed %v): inner dimensions %d and %d differ",
			a.Rows, a.Cols, transA, b.Rows, b.Cols, transB, ka, kb)
	}
	return matMul(DefaultBackend(), transA, transB, a, b), nil
}

// ReducedQR returns the reduced QR factorisation W = Q·R of the m×n W with the
// default back-end: Q m×k with orthonormal columns, R k×n upper trapezoidal,
// k = min(m, n) (Householder, as LAPACK ?geqrf/?orgqr; the diagonal of R may be
// negative).
func ReducedQR[T Float](w Matrix[T]) (q, r Matrix[T], err error) {
	if err := checkWeight("", w); err != nil {
		return q, r, err
	}
	return reducedQR(DefaultBackend(), w)
}
