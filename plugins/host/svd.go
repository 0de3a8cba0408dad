package host

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/prism-lora/prism/core/method"
)

// ThinSVD computes W = U·diag(S)·Vᵀ (U m×k, V n×k, k = min(m,n), S
// descending) in float64 with gonum, returning U and V in W's dtype.
func ThinSVD(w method.Matrix) (*method.SVD, error) {
	data := make([]float64, w.Rows*w.Cols)
	switch w.DType {
	case method.Float32:
		for i, v := range w.F32 {
			data[i] = float64(v)
		}
	case method.Float64:
		copy(data, w.F64)
	default:
		return nil, fmt.Errorf("SVD: unknown dtype %q", w.DType)
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(w.Rows, w.Cols, data), mat.SVDThin) {
		return nil, fmt.Errorf("SVD of a %d×%d matrix did not converge", w.Rows, w.Cols)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	return &method.SVD{U: fromDense(&u, w.DType), V: fromDense(&v, w.DType), S: svd.Values(nil)}, nil
}

func fromDense(d *mat.Dense, dt method.DType) method.Matrix {
	r, c := d.Dims()
	m := method.Matrix{DType: dt, Rows: r, Cols: c}
	raw := d.RawMatrix()
	if dt == method.Float64 {
		m.F64 = make([]float64, r*c)
	} else {
		m.F32 = make([]float32, r*c)
	}
	for i := range r {
		row := raw.Data[i*raw.Stride : i*raw.Stride+c]
		for j, v := range row {
			if dt == method.Float64 {
				m.F64[i*c+j] = v
			} else {
				m.F32[i*c+j] = float32(v)
			}
		}
	}
	return m
}
