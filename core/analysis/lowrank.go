package analysis

import (
	"fmt"
	"unsafe"

	"github.com/prism-lora/prism/core/lowrank"
	"gonum.org/v1/gonum/mat"
)

// MatrixOf views a lowrank.Matrix as a gonum mat.Matrix without copying:
// float32 data as a Float32Matrix, float64 data as a *mat.Dense sharing the
// buffer.
func MatrixOf[T lowrank.Float](m lowrank.Matrix[T]) (mat.Matrix, error) {
	if m.Rows <= 0 || m.Cols <= 0 || len(m.Data) != m.Rows*m.Cols {
		return nil, fmt.Errorf("matrix is %d×%d with %d values, want a non-empty matrix with Rows·Cols values", m.Rows, m.Cols, len(m.Data))
	}
	// T is ~float32 or ~float64: the same memory layout as float32 or float64.
	if unsafe.Sizeof(*new(T)) == 4 {
		data := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(m.Data))), len(m.Data))
		return Float32Matrix{Rows: m.Rows, Cols: m.Cols, Data: data}, nil
	}
	data := unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(m.Data))), len(m.Data))
	return mat.NewDense(m.Rows, m.Cols, data), nil
}

// BasisOf views the SVD factors computed at initialisation as a Basis (U and
// V not copied). The factors must start at component 0 (a thin SVD, or the
// leading q components of a randomized one): a window-only WindowSVD cannot
// place the change along the whole spectrum.
func BasisOf[T lowrank.Float](f lowrank.Factors[T]) (Basis, error) {
	if f.Offset != 0 {
		return Basis{}, fmt.Errorf("SVD factors start at component %d: the analysis needs the leading components (a thin or top-q SVD, Offset 0)", f.Offset)
	}
	u, err := MatrixOf(f.U)
	if err != nil {
		return Basis{}, fmt.Errorf("U: %w", err)
	}
	v, err := MatrixOf(f.V)
	if err != nil {
		return Basis{}, fmt.Errorf("V: %w", err)
	}
	s := make([]float64, len(f.S))
	for i, x := range f.S {
		s[i] = float64(x)
	}
	return Basis{U: u, S: s, V: v}, nil
}
