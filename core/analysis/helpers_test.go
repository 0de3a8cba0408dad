package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// randDense returns an m×n matrix of standard normal entries.
func randDense(rng *rand.Rand, m, n int) *mat.Dense {
	d := mat.NewDense(m, n, nil)
	for i := range d.RawMatrix().Data {
		d.RawMatrix().Data[i] = rng.NormFloat64()
	}
	return d
}

// randOrthonormal returns an m×k matrix with orthonormal columns (Q of a
// random Gaussian matrix).
func randOrthonormal(rng *rand.Rand, m, k int) *mat.Dense {
	var qr mat.QR
	qr.Factorize(randDense(rng, m, k))
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, m, 0, k))
}

// spectralMatrix returns W = U·diag(S)·Vᵀ with random orthonormal U (m×k),
// V (n×k), k = min(m,n), and well-separated S = k, k−1, …, 1 (times scale);
// the returned Basis is exact by construction (no SVD rounding).
func spectralMatrix(rng *rand.Rand, m, n int, scale float64) (*mat.Dense, Basis) {
	k := min(m, n)
	u := randOrthonormal(rng, m, k)
	v := randOrthonormal(rng, n, k)
	s := make([]float64, k)
	for i := range s {
		s[i] = scale * float64(k-i)
	}
	var us mat.Dense
	us.Mul(u, mat.NewDiagDense(k, s))
	var w mat.Dense
	w.Mul(&us, v.T())
	return &w, Basis{U: u, S: s, V: v}
}

// svdBasis computes the thin SVD of w with gonum (the analysis reuses a
// stored basis; tests that need one from real weights make it here).
func svdBasis(t testing.TB, w mat.Matrix) Basis {
	t.Helper()
	var svd mat.SVD
	if !svd.Factorize(w, mat.SVDThin) {
		t.Fatal("SVD did not converge")
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	return Basis{U: &u, S: svd.Values(nil), V: &v}
}

// addOuter returns w + c·x·yᵀ for column x of a and column y of b.
func addOuter(w *mat.Dense, c float64, a mat.Matrix, i int, b mat.Matrix, j int) *mat.Dense {
	x := mat.Col(nil, i, a)
	y := mat.Col(nil, j, b)
	var out mat.Dense
	out.Outer(c, mat.NewVecDense(len(x), x), mat.NewVecDense(len(y), y))
	out.Add(&out, w)
	return &out
}

// toFloat32 rounds a to float32 storage.
func toFloat32(a mat.Matrix) Float32Matrix {
	r, c := a.Dims()
	f := Float32Matrix{Rows: r, Cols: c, Data: make([]float32, r*c)}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			f.Data[i*c+j] = float32(a.At(i, j))
		}
	}
	return f
}

// expectDelta checks every entry of the split's ΔM against want(i, j) with an
// absolute tolerance.
func expectDelta(t *testing.T, s Split, want func(i, j int) float64, tol float64) {
	t.Helper()
	if s.Delta == nil {
		t.Fatal("Delta was not kept")
	}
	bad := 0
	for i := 0; i < s.K; i++ {
		for j := 0; j < s.K; j++ {
			got, w := s.Delta.At(i, j), want(i, j)
			if math.Abs(got-w) > tol {
				if bad < 5 {
					t.Errorf("Δ(%d,%d) = %.17g, want %.17g (tol %g)", i, j, got, w, tol)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d entries out of tolerance", bad)
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
