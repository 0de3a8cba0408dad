package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Float32Matrix views a dense row-major float32 buffer as a gonum mat.Matrix
// whose elements read as float64: element (i,j) is Data[i*Cols+j]. It lets
// float32 weights, bases and probes be analysed in float64 without making a
// float64 copy of the whole matrix (the analysis converts one block of rows at
// a time).
type Float32Matrix struct {
	Rows, Cols int
	Data       []float32
}

// Dims returns the number of rows and columns.
func (a Float32Matrix) Dims() (r, c int) { return a.Rows, a.Cols }

// At returns element (i,j) as float64.
func (a Float32Matrix) At(i, j int) float64 {
	if uint(i) >= uint(a.Rows) || uint(j) >= uint(a.Cols) {
		panic(mat.ErrIndexOutOfRange)
	}
	return float64(a.Data[i*a.Cols+j])
}

// T returns the implicit transpose.
func (a Float32Matrix) T() mat.Matrix { return mat.Transpose{Matrix: a} }

// checkFloat32Matrix reports a Float32Matrix whose buffer does not match its shape.
func checkFloat32Matrix(name string, a mat.Matrix) error {
	var f Float32Matrix
	switch t := a.(type) {
	case Float32Matrix:
		f = t
	case *Float32Matrix:
		f = *t
	default:
		return nil
	}
	if f.Rows < 0 || f.Cols < 0 || len(f.Data) != f.Rows*f.Cols {
		return fmt.Errorf("%s: float32 buffer has %d elements, want %d×%d = %d",
			name, len(f.Data), f.Rows, f.Cols, f.Rows*f.Cols)
	}
	return nil
}

// copyRows writes rows [r0, r1) of a, converted to float64, into dst, a
// row-major (r1−r0)×cols buffer. Float32Matrix and gonum's raw dense matrices
// are copied row by row; anything else goes through At.
func copyRows(dst []float64, a mat.Matrix, r0, r1 int) {
	_, cols := a.Dims()
	switch t := a.(type) {
	case Float32Matrix:
		convertRows(dst, t, r0, r1)
	case *Float32Matrix:
		convertRows(dst, *t, r0, r1)
	case mat.RawMatrixer:
		raw := t.RawMatrix()
		for i := r0; i < r1; i++ {
			copy(dst[(i-r0)*cols:(i-r0+1)*cols], raw.Data[i*raw.Stride:i*raw.Stride+cols])
		}
	default:
		for i := r0; i < r1; i++ {
			row := dst[(i-r0)*cols : (i-r0+1)*cols]
			for j := range row {
				row[j] = a.At(i, j)
			}
		}
	}
}

func convertRows(dst []float64, a Float32Matrix, r0, r1 int) {
	src := a.Data[r0*a.Cols : r1*a.Cols]
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// denseCopy returns a float64 copy of a.
func denseCopy(a mat.Matrix) *mat.Dense {
	r, c := a.Dims()
	d := mat.NewDense(r, c, nil)
	if r > 0 && c > 0 {
		copyRows(d.RawMatrix().Data, a, 0, r)
	}
	return d
}

// general wraps a row-major buffer as a BLAS matrix.
func general(rows, cols int, data []float64) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: max(cols, 1), Data: data}
}

// gemm computes c = alpha·op(a)·op(b) + beta·c.
func gemm(ta, tb blas.Transpose, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	blas64.Gemm(ta, tb, alpha, a, b, beta, c)
}

// rowBlocks calls f for consecutive row ranges [r0, r1) of at most size rows
// covering [0, rows).
func rowBlocks(rows, size int, f func(r0, r1 int)) {
	for r0 := 0; r0 < rows; r0 += size {
		f(r0, min(r0+size, rows))
	}
}

// sumSquares returns Σ x².
func sumSquares(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s
}

// orthoResidual returns ‖AᵀA − I‖_F for a tall matrix A read in row blocks.
func orthoResidual(a mat.Matrix, blockRows int) float64 {
	r, c := a.Dims()
	gram := make([]float64, c*c)
	buf := make([]float64, min(blockRows, r)*c)
	rowBlocks(r, blockRows, func(r0, r1 int) {
		b := buf[:(r1-r0)*c]
		copyRows(b, a, r0, r1)
		blk := general(r1-r0, c, b)
		gemm(blas.Trans, blas.NoTrans, 1, blk, blk, 1, general(c, c, gram))
	})
	for i := 0; i < c; i++ {
		gram[i*c+i] -= 1
	}
	return sqrtSum(gram)
}

func sqrtSum(x []float64) float64 { return math.Sqrt(sumSquares(x)) }
