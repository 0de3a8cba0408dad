package lowrank

import (
	"errors"
	"fmt"
)

// Factors is a thin or truncated singular value decomposition
//
//	W ≈ U·diag(S)·Vᵀ,   U: m×q, S: q (descending, ≥ 0), V: n×q,
//
// holding the singular triplets with indices Offset … Offset+q−1 of W (Offset is
// 0 for ThinSVD and RandomizedSVD; WindowSVD sets it to the window's start).
// For a thin SVD q = k = min(m, n) and W = U·diag(S)·Vᵀ to rounding.
type Factors[T Float] struct {
	U      Matrix[T] // m×q, orthonormal columns
	S      []T       // q singular values, descending
	V      Matrix[T] // n×q, orthonormal columns (right singular vectors, not Vᵀ)
	Offset int       // index of the first triplet held
}

// Len returns q, the number of singular triplets held.
func (f Factors[T]) Len() int { return len(f.S) }

// SVDBackend names an implementation of the dense SVD and its helpers.
type SVDBackend string

const (
	// BackendDefault picks LAPACK when available (built with cgo), else gonum.
	BackendDefault SVDBackend = ""
	// BackendLAPACK is OpenBLAS through LAPACKE (?gesdd, ?gesvdx, ?gelqf, ?gemm),
	// in the input's precision. Needs cgo.
	BackendLAPACK SVDBackend = "lapack"
	// BackendGonum is gonum's pure-Go float64 SVD; float32 input is converted.
	BackendGonum SVDBackend = "gonum"
)

// ErrLAPACKUnavailable is returned when BackendLAPACK is asked for in a build
// without cgo (or with the nolapack tag).
var ErrLAPACKUnavailable = errors.New("lowrank: LAPACK back-end not built in (needs cgo with OpenBLAS and LAPACKE; CGO_ENABLED=0 or tag nolapack given)")

// LAPACKAvailable reports whether the LAPACK back-end is compiled in.
func LAPACKAvailable() bool { return lapackAvailable }

// DefaultBackend returns the back-end BackendDefault resolves to.
func DefaultBackend() SVDBackend {
	if lapackAvailable {
		return BackendLAPACK
	}
	return BackendGonum
}

// ParseBackend checks a back-end name ("", "lapack", "gonum").
func ParseBackend(name string) (SVDBackend, error) {
	switch b := SVDBackend(name); b {
	case BackendDefault, BackendLAPACK, BackendGonum:
		if b == BackendLAPACK && !lapackAvailable {
			return b, ErrLAPACKUnavailable
		}
		return b, nil
	}
	return "", fmt.Errorf("lowrank: unknown SVD back-end %q (expected lapack or gonum)", name)
}

func (b SVDBackend) resolve() (SVDBackend, error) {
	switch b {
	case BackendDefault:
		return DefaultBackend(), nil
	case BackendLAPACK:
		if !lapackAvailable {
			return b, ErrLAPACKUnavailable
		}
		return b, nil
	case BackendGonum:
		return b, nil
	}
	return b, fmt.Errorf("lowrank: unknown SVD back-end %q (expected lapack or gonum)", string(b))
}

// ThinSVD computes the thin SVD W = U·diag(S)·Vᵀ of an m×n matrix with the
// default back-end: U m×k, S k descending, V n×k, k = min(m, n). W is not
// modified. It fails on an empty matrix or non-finite values.
func ThinSVD[T Float](w Matrix[T]) (Factors[T], error) {
	return ThinSVDWith(w, BackendDefault)
}

// ThinSVDWith is ThinSVD with an explicit back-end (LAPACK: ?gesdd, like numpy).
func ThinSVDWith[T Float](w Matrix[T], backend SVDBackend) (Factors[T], error) {
	return thinSVD("", w, backend)
}

// WindowSVD computes only the singular triplets start … start+r−1 of W (a
// window in the descending order), returning Factors with Offset = start,
// U m×r, S r, V n×r. With LAPACK it uses ?gesvdx (RANGE='I'); with gonum it
// takes the window from a full thin SVD.
func WindowSVD[T Float](w Matrix[T], start, r int, backend SVDBackend) (Factors[T], error) {
	return windowSVD("", w, start, r, backend)
}

func thinSVD[T Float](layer string, w Matrix[T], backend SVDBackend) (Factors[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Factors[T]{}, err
	}
	b, err := backend.resolve()
	if err != nil {
		return Factors[T]{}, err
	}
	var f Factors[T]
	if b == BackendLAPACK {
		f, err = lapackThinSVD(w)
	} else {
		f, err = gonumThinSVD(w)
	}
	if err != nil {
		return Factors[T]{}, fmt.Errorf("lowrank: %s: %w", where(layer, w.Rows, w.Cols), err)
	}
	return f, nil
}

func windowSVD[T Float](layer string, w Matrix[T], start, r int, backend SVDBackend) (Factors[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Factors[T]{}, err
	}
	k := min(w.Rows, w.Cols)
	if r < 1 || start < 0 || start+r > k {
		return Factors[T]{}, fmt.Errorf("lowrank: %s: invalid window s=%d r=%d (need r ≥ 1, s ≥ 0, s+r ≤ k=%d)",
			where(layer, w.Rows, w.Cols), start, r, k)
	}
	b, err := backend.resolve()
	if err != nil {
		return Factors[T]{}, err
	}
	var f Factors[T]
	if b == BackendLAPACK {
		f, err = lapackWindowSVD(w, start, r)
	} else {
		f, err = gonumThinSVD(w)
		if err == nil {
			f = f.slice(start, r)
		}
	}
	if err != nil {
		return Factors[T]{}, fmt.Errorf("lowrank: %s: %w", where(layer, w.Rows, w.Cols), err)
	}
	return f, nil
}

// slice returns the triplets with absolute indices start … start+r−1 (copies).
func (f Factors[T]) slice(start, r int) Factors[T] {
	lo := start - f.Offset
	return Factors[T]{
		U:      columns(f.U, lo, r),
		S:      append([]T(nil), f.S[lo:lo+r]...),
		V:      columns(f.V, lo, r),
		Offset: start,
	}
}

// columns copies columns lo … lo+r−1 of m.
func columns[T Float](m Matrix[T], lo, r int) Matrix[T] {
	out := NewMatrix[T](m.Rows, r)
	for i := 0; i < m.Rows; i++ {
		copy(out.Data[i*r:(i+1)*r], m.Data[i*m.Cols+lo:i*m.Cols+lo+r])
	}
	return out
}
