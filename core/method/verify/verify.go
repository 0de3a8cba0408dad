// Package verify checks what a method returned for a request: shapes, dtypes,
// finiteness, and the identity W = Base + scale·B·A (DESIGN.md §1) within
// the tolerance of the dtype. prism's plugin host runs it on every plugin
// answer; tests of built-in methods can run it too.
package verify

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
)

// Tolerances of the relative Frobenius error ‖W − (Base + scale·B·A)‖_F / ‖W‖_F.
const (
	TolFloat32 = 1e-5
	TolFloat64 = 1e-12
)

// Tolerance is the identity tolerance for dtype d.
func Tolerance(d method.DType) float64 {
	if d == method.Float32 {
		return TolFloat32
	}
	return TolFloat64
}

// Matrix checks that m is a well-formed rows×cols matrix of dtype d with
// finite elements; name is used in errors (e.g. "A (r×n)").
func Matrix(name string, m method.Matrix, d method.DType, rows, cols int) error {
	if m.DType != d {
		return fmt.Errorf("%s has dtype %q, want %q (the weight's)", name, m.DType, d)
	}
	if m.Rows != rows || m.Cols != cols {
		return fmt.Errorf("%s has shape %d×%d, want %d×%d", name, m.Rows, m.Cols, rows, cols)
	}
	switch d {
	case method.Float32:
		if len(m.F32) != rows*cols || m.F64 != nil {
			return fmt.Errorf("%s: a %d×%d float32 matrix holds %d float32 and %d float64 elements", name, rows, cols, len(m.F32), len(m.F64))
		}
		for i, v := range m.F32 {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("%s has non-finite element %g at (%d,%d)", name, f, i/cols, i%cols)
			}
		}
	case method.Float64:
		if len(m.F64) != rows*cols || m.F32 != nil {
			return fmt.Errorf("%s: a %d×%d float64 matrix holds %d float64 and %d float32 elements", name, rows, cols, len(m.F64), len(m.F32))
		}
		for i, v := range m.F64 {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s has non-finite element %g at (%d,%d)", name, v, i/cols, i%cols)
			}
		}
	default:
		return fmt.Errorf("%s has unknown dtype %q", name, m.DType)
	}
	return nil
}

// Result checks res against req: A is r×n, B m×r, Base m×n, all in the
// weight's dtype and finite; component indices lie in [0, min(m,n)); and,
// unless res.ChangesFunction, ‖W − (Base + scale·B·A)‖_F / ‖W‖_F is within
// Tolerance. Errors name the layer.
func Result(req method.Request, res method.Result) error {
	w := req.Weight
	m, n, r := w.Rows, w.Cols, req.Rank
	for _, c := range []struct {
		name       string
		x          method.Matrix
		rows, cols int
	}{{"A (r×n)", res.A, r, n}, {"B (m×r)", res.B, m, r}, {"Base (m×n)", res.Base, m, n}} {
		if err := Matrix(c.name, c.x, w.DType, c.rows, c.cols); err != nil {
			return fmt.Errorf("layer %q: %w", req.Layer, err)
		}
	}
	k := min(m, n)
	for _, c := range res.Components {
		if c < 0 || c >= k {
			return fmt.Errorf("layer %q: component index %d outside [0, %d)", req.Layer, c, k)
		}
	}
	if res.ChangesFunction {
		return nil
	}
	rel := IdentityError(w, res.Base, res.B, res.A, req.Scale)
	if tol := Tolerance(w.DType); !(rel <= tol) {
		return fmt.Errorf("layer %q: Base + scale·B·A does not reproduce W: relative Frobenius error %.3g > %.0e (scale %g); a method that changes the function must declare it", req.Layer, rel, tol, req.Scale)
	}
	return nil
}

// IdentityError is ‖W − (Base + scale·B·A)‖_F / ‖W‖_F (‖W − Base − scale·B·A‖_F
// when W = 0). W, Base: m×n, B: m×r, A: r×n, same dtype. B·A is one GEMM
// (lowrank.MatMul: OpenBLAS with cgo) in the matrices' dtype; the sums are
// accumulated in float64 with rows split across GOMAXPROCS goroutines.
func IdentityError(w, base, b, a method.Matrix, scale float64) float64 {
	if w.DType == method.Float32 {
		return identityError(w.F32, base.F32, b.F32, a.F32, scale, w.Rows, w.Cols, b.Cols)
	}
	return identityError(w.F64, base.F64, b.F64, a.F64, scale, w.Rows, w.Cols, b.Cols)
}

func identityError[T lowrank.Float](w, base, b, a []T, scale float64, m, n, r int) float64 {
	bm, err1 := lowrank.MatrixFrom(m, r, b)
	am, err2 := lowrank.MatrixFrom(r, n, a)
	var prod []T
	if err1 == nil && err2 == nil && r > 0 {
		p, err := lowrank.MatMul(false, false, bm, am)
		if err == nil {
			prod = p.Data
		}
	}
	if prod == nil {
		prod = make([]T, m*n) // r = 0: B·A = 0
	}
	workers := min(runtime.GOMAXPROCS(0), max(m, 1))
	diff2 := make([]float64, workers)
	norm2 := make([]float64, workers)
	var wg sync.WaitGroup
	for g := range workers {
		lo, hi := g*m/workers*n, (g+1)*m/workers*n
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d2, w2 float64
			for i := lo; i < hi; i++ {
				wi := float64(w[i])
				d := wi - float64(base[i]) - scale*float64(prod[i])
				d2 += d * d
				w2 += wi * wi
			}
			diff2[g], norm2[g] = d2, w2
		}()
	}
	wg.Wait()
	var d, nw float64
	for g := range workers {
		d += diff2[g]
		nw += norm2[g]
	}
	if nw == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / nw)
}
