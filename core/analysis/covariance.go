package analysis

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Covariance accumulates the centred covariance of rows streamed in batches:
//
//	Σ = 1/(N−1) · Σ_t (x_t − x̄)(x_t − x̄)ᵀ   (the unbiased estimate, as numpy.cov)
//
// Each block of rows is centred on its own mean and merged with the running
// scatter by the pairwise update of Chan, Golub & LeVeque (1979), so large
// means do not cancel. Memory is n² float64 whatever N is. The zero value is
// ready to use; the width n is fixed by the first Add.
type Covariance struct {
	n, count int
	mean     []float64
	scatter  []float64 // n×n, upper triangle valid
}

// Add accumulates the rows of x (N×n).
func (c *Covariance) Add(x mat.Matrix) error {
	if err := checkFloat32Matrix("covariance input", x); err != nil {
		return err
	}
	rows, n := x.Dims()
	if c.mean == nil {
		if n == 0 {
			return fmt.Errorf("covariance input has no columns")
		}
		c.n = n
		c.mean = make([]float64, n)
		c.scatter = make([]float64, n*n)
	}
	if n != c.n {
		return fmt.Errorf("covariance input has %d columns, want %d like the earlier rows", n, c.n)
	}
	blockRows := min(DefaultBlockRows, max(rows, 1))
	buf := make([]float64, blockRows*n)
	bMean := make([]float64, n)
	rowBlocks(rows, blockRows, func(r0, r1 int) {
		nb := r1 - r0
		b := buf[:nb*n]
		copyRows(b, x, r0, r1)
		clear(bMean)
		for i := 0; i < nb; i++ {
			for j, v := range b[i*n : (i+1)*n] {
				bMean[j] += v
			}
		}
		for j := range bMean {
			bMean[j] /= float64(nb)
		}
		for i := 0; i < nb; i++ {
			row := b[i*n : (i+1)*n]
			for j := range row {
				row[j] -= bMean[j]
			}
		}
		sym := blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: c.scatter}
		// scatter += X_cᵀ·X_c of the block.
		blas64.Syrk(blas.Trans, 1, general(nb, n, b), 1, sym)
		na, nTot := float64(c.count), float64(c.count+nb)
		// δ = x̄_b − x̄_a; scatter += δδᵀ·na·nb/N; x̄ += δ·nb/N.
		for j := range bMean {
			bMean[j] -= c.mean[j]
		}
		if c.count > 0 {
			blas64.Syr(na*float64(nb)/nTot, blas64.Vector{N: n, Inc: 1, Data: bMean}, sym)
		}
		for j, d := range bMean {
			c.mean[j] += d * float64(nb) / nTot
		}
		c.count += nb
	})
	return nil
}

// Count returns the number of rows accumulated.
func (c *Covariance) Count() int { return c.count }

// Mean returns a copy of the running mean x̄.
func (c *Covariance) Mean() []float64 { return append([]float64(nil), c.mean...) }

// Matrix returns Σ = scatter/(N−1), n×n; it needs at least two rows.
func (c *Covariance) Matrix() (*mat.SymDense, error) {
	if c.count < 2 {
		return nil, fmt.Errorf("covariance of %d rows: need at least 2", c.count)
	}
	data := make([]float64, len(c.scatter))
	s := 1 / float64(c.count-1)
	for i := 0; i < c.n; i++ {
		for j := i; j < c.n; j++ {
			data[i*c.n+j] = c.scatter[i*c.n+j] * s
		}
	}
	return mat.NewSymDense(c.n, data), nil
}
