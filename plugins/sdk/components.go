package sdk

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// ComponentAdapter builds the adapter of req from the singular components
// idx (indices into req.SVD, 0 = largest; len(idx) = req.Rank) in the given
// order. With c = idx[j] and σ = S[c]/scale:
//
//	B[:, j] = U[:, c]·√σ        (m×r)
//	A[j, :] = √σ·V[:, c]ᵀ       (r×n)
//	Base    = W − scale·B·A     (m×n)
//
// so that Base + scale·B·A = W up to rounding. A contiguous window starting
// at s is idx = s, s+1, …, s+r−1 (PiSSA: s = 0; MiLoRA: s = k−r).
func ComponentAdapter(req Request, idx []int) (Result, error) {
	if req.SVD == nil {
		return Result{}, fmt.Errorf("layer %q: no SVD in the request (set Metadata.NeedsSVD)", req.Layer)
	}
	w, svd := req.Weight, req.SVD
	m, n, r, q := w.Rows, w.Cols, req.Rank, len(svd.S)
	if len(idx) != r {
		return Result{}, fmt.Errorf("layer %q: %d component indices for rank %d", req.Layer, len(idx), r)
	}
	if svd.U.Rows != m || svd.U.Cols != q || svd.V.Rows != n || svd.V.Cols != q {
		return Result{}, fmt.Errorf("layer %q: SVD shapes U %d×%d, V %d×%d, %d values do not fit a %d×%d weight",
			req.Layer, svd.U.Rows, svd.U.Cols, svd.V.Rows, svd.V.Cols, q, m, n)
	}
	if !(req.Scale > 0) {
		return Result{}, fmt.Errorf("layer %q: scale %g is not positive", req.Layer, req.Scale)
	}
	roots := make([]float64, r)
	for j, c := range idx {
		if c < 0 || c >= q {
			return Result{}, fmt.Errorf("layer %q: component %d outside [0, %d)", req.Layer, c, q)
		}
		roots[j] = math.Sqrt(math.Max(svd.S[c], 0) / req.Scale)
	}
	res := Result{Components: append([]int(nil), idx...)}
	res.A = Matrix{DType: w.DType, Rows: r, Cols: n}
	res.B = Matrix{DType: w.DType, Rows: m, Cols: r}
	res.Base = Matrix{DType: w.DType, Rows: m, Cols: n}
	switch w.DType {
	case Float32:
		res.A.F32, res.B.F32, res.Base.F32 = make([]float32, r*n), make([]float32, m*r), make([]float32, m*n)
		for j, c := range idx {
			for i := range m {
				res.B.F32[i*r+j] = float32(float64(svd.U.F32[i*q+c]) * roots[j])
			}
			for i := range n {
				res.A.F32[j*n+i] = float32(roots[j] * float64(svd.V.F32[i*q+c]))
			}
		}
		residual(w.F32, res.B.F32, res.A.F32, res.Base.F32, float32(req.Scale), m, n, r)
	case Float64:
		res.A.F64, res.B.F64, res.Base.F64 = make([]float64, r*n), make([]float64, m*r), make([]float64, m*n)
		for j, c := range idx {
			for i := range m {
				res.B.F64[i*r+j] = svd.U.F64[i*q+c] * roots[j]
			}
			for i := range n {
				res.A.F64[j*n+i] = roots[j] * svd.V.F64[i*q+c]
			}
		}
		residual(w.F64, res.B.F64, res.A.F64, res.Base.F64, req.Scale, m, n, r)
	default:
		return Result{}, fmt.Errorf("layer %q: unknown dtype %q", req.Layer, w.DType)
	}
	return res, nil
}

// residual sets base = w − scale·b·a (w, base m×n; b m×r; a r×n), rows split
// across GOMAXPROCS goroutines.
func residual[T float32 | float64](w, b, a, base []T, scale T, m, n, r int) {
	workers := min(runtime.GOMAXPROCS(0), max(m, 1))
	var wg sync.WaitGroup
	for g := range workers {
		lo, hi := g*m/workers, (g+1)*m/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				row := base[i*n : (i+1)*n]
				copy(row, w[i*n:(i+1)*n])
				for k := range r {
					bik := scale * b[i*r+k]
					for j, v := range a[k*n : (k+1)*n] {
						row[j] -= bik * v
					}
				}
			}
		}()
	}
	wg.Wait()
}
