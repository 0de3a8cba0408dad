package lowrank

import (
	"fmt"
	"math"
)

// Float is the element type of the matrices this package works on.
type Float interface{ ~float32 | ~float64 }

// Matrix is a dense row-major matrix: element (i, j) is Data[i*Cols+j].
// The zero value is the empty 0×0 matrix.
type Matrix[T Float] struct {
	Rows, Cols int
	Data       []T
}

// NewMatrix returns a zeroed rows×cols matrix.
func NewMatrix[T Float](rows, cols int) Matrix[T] {
	return Matrix[T]{Rows: rows, Cols: cols, Data: make([]T, rows*cols)}
}

// MatrixFrom wraps data (row-major, not copied) as a rows×cols matrix; it fails
// when len(data) ≠ rows·cols or a dimension is negative.
func MatrixFrom[T Float](rows, cols int, data []T) (Matrix[T], error) {
	if rows < 0 || cols < 0 {
		return Matrix[T]{}, fmt.Errorf("lowrank: negative matrix shape %d×%d", rows, cols)
	}
	if len(data) != rows*cols {
		return Matrix[T]{}, fmt.Errorf("lowrank: %d×%d matrix needs %d values, got %d", rows, cols, rows*cols, len(data))
	}
	return Matrix[T]{Rows: rows, Cols: cols, Data: data}, nil
}

// At returns element (i, j).
func (m Matrix[T]) At(i, j int) T { return m.Data[i*m.Cols+j] }

// Set stores v at element (i, j).
func (m Matrix[T]) Set(i, j int, v T) { m.Data[i*m.Cols+j] = v }

// Clone returns a deep copy of m.
func (m Matrix[T]) Clone() Matrix[T] {
	return Matrix[T]{Rows: m.Rows, Cols: m.Cols, Data: append([]T(nil), m.Data...)}
}

// Transpose returns a new Cols×Rows matrix holding mᵀ.
func (m Matrix[T]) Transpose() Matrix[T] {
	t := NewMatrix[T](m.Cols, m.Rows)
	transposeInto(t.Data, m.Data, m.Rows, m.Cols)
	return t
}

// transposeInto writes the transpose of the rows×cols row-major src into dst
// (cols×rows), in cache-sized blocks.
func transposeInto[T Float](dst, src []T, rows, cols int) {
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		i1 := min(i0+blk, rows)
		for j0 := 0; j0 < cols; j0 += blk {
			j1 := min(j0+blk, cols)
			for i := i0; i < i1; i++ {
				for j := j0; j < j1; j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

// FrobeniusNorm returns ‖m‖_F, accumulated in float64 with scaling against
// overflow.
func FrobeniusNorm[T Float](m Matrix[T]) float64 {
	var scale, ssq float64 = 0, 1
	for _, v := range m.Data {
		a := math.Abs(float64(v))
		if a == 0 {
			continue
		}
		if scale < a {
			ssq = 1 + ssq*(scale/a)*(scale/a)
			scale = a
		} else {
			ssq += (a / scale) * (a / scale)
		}
	}
	return scale * math.Sqrt(ssq)
}

// where names a layer and its shape for error messages.
func where(layer string, m, n int) string {
	if layer == "" {
		return fmt.Sprintf("matrix (%d×%d)", m, n)
	}
	return fmt.Sprintf("layer %q (%d×%d)", layer, m, n)
}

// checkShape reports whether m's Data matches its shape, naming the layer.
func checkShape[T Float](layer, what string, m Matrix[T]) error {
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("lowrank: %s: %s has %d values", where(layer, m.Rows, m.Cols), what, len(m.Data))
	}
	return nil
}

// checkWeight validates a weight matrix: consistent shape, non-empty, finite.
func checkWeight[T Float](layer string, w Matrix[T]) error {
	if err := checkShape(layer, "weight", w); err != nil {
		return err
	}
	if w.Rows == 0 || w.Cols == 0 {
		return fmt.Errorf("lowrank: %s: weight is empty", where(layer, w.Rows, w.Cols))
	}
	for idx, v := range w.Data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("lowrank: %s: weight has non-finite value %v at (%d, %d)",
				where(layer, w.Rows, w.Cols), f, idx/w.Cols, idx%w.Cols)
		}
	}
	return nil
}
