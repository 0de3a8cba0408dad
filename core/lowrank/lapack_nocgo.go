//go:build !cgo || nolapack

package lowrank

const lapackAvailable = false

// SetBLASThreads sets the number of threads OpenBLAS uses inside one call
// (process-wide). It is a no-op without cgo.
func SetBLASThreads(n int) {}

// BLASThreads returns the number of threads OpenBLAS uses inside one call
// (1 without cgo).
func BLASThreads() int { return 1 }

func lapackThinSVD[T Float](Matrix[T]) (Factors[T], error) {
	return Factors[T]{}, ErrLAPACKUnavailable
}

func lapackWindowSVD[T Float](Matrix[T], int, int) (Factors[T], error) {
	return Factors[T]{}, ErrLAPACKUnavailable
}

func lapackMul[T Float](bool, bool, Matrix[T], Matrix[T]) Matrix[T] {
	panic(ErrLAPACKUnavailable)
}

func lapackResidual[T Float](Matrix[T], Matrix[T], Matrix[T], float64) Matrix[T] {
	panic(ErrLAPACKUnavailable)
}

func lapackKrylovStep[T Float](Matrix[T], bool, Matrix[T]) (y, z Matrix[T]) {
	panic(ErrLAPACKUnavailable)
}

func lapackSymEigen(Matrix[float64]) (Factors[float64], error) {
	return Factors[float64]{}, ErrLAPACKUnavailable
}

func lapackGram(Matrix[float64]) Matrix[float64] {
	panic(ErrLAPACKUnavailable)
}

func lapackOrthonormalize[T Float](Matrix[T]) (Matrix[T], error) {
	return Matrix[T]{}, ErrLAPACKUnavailable
}

func lapackReducedQR[T Float](Matrix[T]) (q, r Matrix[T], err error) {
	return q, r, ErrLAPACKUnavailable
}
