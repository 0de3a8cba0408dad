package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// signedBasis returns a random orthonormal m×m basis whose columns follow the
// FeatureChange sign convention (largest-magnitude entry positive).
func signedBasis(rng *rand.Rand, m int) *mat.Dense {
	q := randOrthonormal(rng, m, m)
	for c := 0; c < m; c++ {
		col := mat.Col(nil, c, q)
		if signOfLargest(col) < 0 {
			for i := range col {
				col[i] = -col[i]
			}
			q.SetCol(c, col)
		}
	}
	return q
}

// covariance returns Q·diag(λ)·Qᵀ (+ extra when non-nil) as a SymDense.
func covarianceOf(q *mat.Dense, lambda []float64, extra *mat.Dense) *mat.SymDense {
	m := len(lambda)
	var ql, s mat.Dense
	ql.Mul(q, mat.NewDiagDense(m, lambda))
	s.Mul(&ql, q.T())
	if extra != nil {
		s.Add(&s, extra)
	}
	sym := mat.NewSymDense(m, nil)
	for i := 0; i < m; i++ {
		for j := i; j < m; j++ {
			sym.SetSym(i, j, 0.5*(s.At(i, j)+s.At(j, i)))
		}
	}
	return sym
}

var syntheticLambda = []float64{9, 7, 5.5, 4, 3, 2.2, 1.5, 1}

func TestFeatureSpaceFromCovariancesVarianceChangeAlongOneDirection(t *testing.T) {
	rng := newRand(21)
	m := len(syntheticLambda)
	q := signedBasis(rng, m)
	s0 := covarianceOf(q, syntheticLambda, nil)
	for _, i := range []int{0, 3, m - 1} {
		const delta = 0.6
		var bump mat.Dense
		qi := mat.NewVecDense(m, mat.Col(nil, i, q))
		bump.Outer(delta, qi, qi)
		s1 := covarianceOf(q, syntheticLambda, &bump)
		f, err := FeatureSpaceFromCovariances(s0, s1, FeatureOptions{Split: SplitOptions{KeepDelta: true}})
		if err != nil {
			t.Fatal(err)
		}
		expectDelta(t, f.Split, func(a, b int) float64 {
			if a == i && b == i {
				return delta
			}
			return 0
		}, 1e-13)
		for c, l := range syntheticLambda {
			if !near(f.Lambda[c], l, 1e-13) {
				t.Errorf("λ_%d = %g, want %g", c, f.Lambda[c], l)
			}
		}
		if !near(f.Variance1-f.Variance0, delta, 1e-12) || f.OutsideVariance > 1e-12 {
			t.Errorf("variances %g → %g, outside %g", f.Variance0, f.Variance1, f.OutsideVariance)
		}
	}
}

func TestFeatureSpaceFromCovariancesCouplingOfTwoDirections(t *testing.T) {
	rng := newRand(22)
	m := len(syntheticLambda)
	q := signedBasis(rng, m)
	s0 := covarianceOf(q, syntheticLambda, nil)
	i, j := 1, 5
	const eps = 0.3
	qi := mat.NewVecDense(m, mat.Col(nil, i, q))
	qj := mat.NewVecDense(m, mat.Col(nil, j, q))
	var a, b mat.Dense
	a.Outer(eps, qi, qj)
	b.Outer(eps, qj, qi)
	a.Add(&a, &b)
	f, err := FeatureSpaceFromCovariances(s0, covarianceOf(q, syntheticLambda, &a), FeatureOptions{Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	expectDelta(t, f.Split, func(a, b int) float64 {
		if (a == i && b == j) || (a == j && b == i) {
			return eps
		}
		return 0
	}, 1e-13)
	if f.DiagNorm > 1e-13 || !near(f.OffNorm, eps*math.Sqrt2, 1e-13) {
		t.Errorf("‖diag‖=%g ‖off‖=%g", f.DiagNorm, f.OffNorm)
	}
}

// Rotating the features by θ in the plane of q_i, q_j (Σ₁ = R·Σ₀·Rᵀ,
// R q_i = c·q_i + s·q_j, R q_j = −s·q_i + c·q_j) gives the exact block
//
//	ΔΣ[{i,j},{i,j}] = [[(c²−1)λ_i + s²λ_j, cs(λ_i − λ_j)], [cs(λ_i − λ_j), s²λ_i + (c²−1)λ_j]].
func TestFeatureSpaceFromCovariancesRotationInPlane(t *testing.T) {
	rng := newRand(23)
	m := len(syntheticLambda)
	q := signedBasis(rng, m)
	s0 := covarianceOf(q, syntheticLambda, nil)
	i, j := 2, 4
	theta := 0.05
	c, s := math.Cos(theta), math.Sin(theta)
	// R = I + (c−1)(q_i q_iᵀ + q_j q_jᵀ) + s(q_j q_iᵀ − q_i q_jᵀ)
	r := eye(m)
	add := func(coef float64, a, b int) {
		var o mat.Dense
		o.Outer(coef, mat.NewVecDense(m, mat.Col(nil, a, q)), mat.NewVecDense(m, mat.Col(nil, b, q)))
		r.Add(r, &o)
	}
	add(c-1, i, i)
	add(c-1, j, j)
	add(s, j, i)
	add(-s, i, j)
	var rs, s1 mat.Dense
	rs.Mul(r, s0)
	s1.Mul(&rs, r.T())
	sym := mat.NewSymDense(m, nil)
	for a := 0; a < m; a++ {
		for b := a; b < m; b++ {
			sym.SetSym(a, b, s1.At(a, b))
		}
	}
	li, lj := syntheticLambda[i], syntheticLambda[j]
	want := map[[2]int]float64{
		{i, i}: (c*c-1)*li + s*s*lj, {i, j}: c * s * (li - lj),
		{j, i}: c * s * (li - lj), {j, j}: s*s*li + (c*c-1)*lj,
	}
	f, err := FeatureSpaceFromCovariances(s0, sym, FeatureOptions{Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	expectDelta(t, f.Split, func(a, b int) float64 { return want[[2]int{a, b}] }, 1e-13)
	// A rotation keeps the total variance.
	if !near(f.Variance0, f.Variance1, 1e-12) {
		t.Errorf("rotation changed total variance %g → %g", f.Variance0, f.Variance1)
	}
}

// probeCovariances forms Y₀ = X·W₀ᵀ and Y₁ = X·W₁ᵀ explicitly and returns
// their centred covariances: the brute-force reference for FeatureSpace.
func probeCovariances(t *testing.T, x, w0, w1 mat.Matrix) (*mat.SymDense, *mat.SymDense) {
	t.Helper()
	var y0, y1 mat.Dense
	y0.Mul(x, w0.T())
	y1.Mul(x, w1.T())
	cov := func(y *mat.Dense) *mat.SymDense {
		var c Covariance
		if err := c.Add(y); err != nil {
			t.Fatal(err)
		}
		s, err := c.Matrix()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return cov(&y0), cov(&y1)
}

// FeatureSpace (which never forms Y or an m×m matrix) agrees with the
// brute-force decomposition of the explicit output covariances, with few
// probes (N ≤ n, factor from X) and many (N > n, pivoted Cholesky of Σ_X,
// also when inputs have no variance), for wide and tall layers (both the
// m ≤ p and the Gram branch).
func TestFeatureSpaceMatchesExplicitCovariances(t *testing.T) {
	for _, tc := range []struct {
		name           string
		nSamples, m, n int
		dead           int // input columns without variance (image borders)
	}{
		{"few probes tall", 9, 14, 12, 0},
		{"many probes tall", 200, 14, 6, 0},
		{"many probes wide", 150, 5, 9, 0},
		{"few probes wide", 4, 6, 10, 0},
		{"many probes, dead inputs", 120, 7, 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := newRand(24)
			x := randDense(rng, tc.nSamples, tc.n)
			// Anisotropic inputs with a large common offset.
			for i := 0; i < tc.nSamples; i++ {
				for j := 0; j < tc.n; j++ {
					v := x.At(i, j)*float64(j+1) + 100
					if j < tc.dead {
						v = 0.5
					}
					x.Set(i, j, v)
				}
			}
			w0 := randDense(rng, tc.m, tc.n)
			dw := randDense(rng, tc.m, tc.n)
			dw.Scale(0.05, dw)
			w1 := mat.DenseCopyOf(w0)
			w1.Add(w1, dw)
			s0, s1 := probeCovariances(t, x, w0, w1)
			o := FeatureOptions{Split: SplitOptions{KeepDelta: true}, BlockRows: 4}
			want, err := FeatureSpaceFromCovariances(s0, s1, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FeatureSpace(x, w0, w1, o)
			if err != nil {
				t.Fatal(err)
			}
			if got.K != want.K || got.Samples != tc.nSamples || got.Outputs != tc.m {
				t.Fatalf("kept %d directions (%d samples, %d outputs), want %d", got.K, got.Samples, got.Outputs, want.K)
			}
			scale := want.Lambda[0]
			for c := range want.Lambda {
				if !near(got.Lambda[c], want.Lambda[c], 1e-9*scale) {
					t.Errorf("λ_%d = %.12g, want %.12g", c, got.Lambda[c], want.Lambda[c])
				}
			}
			if d := maxAbsDiff(got.Delta, want.Delta); d > 1e-8*scale {
				t.Errorf("ΔΣ differs from the explicit one by %g (λ_max %g)", d, scale)
			}
			for _, v := range [][2]float64{{got.Variance0, want.Variance0}, {got.Variance1, want.Variance1}} {
				if !near(v[0], v[1], 1e-10*v[1]) {
					t.Errorf("variance %g, want %g", v[0], v[1])
				}
			}
			if !near(got.OutsideVariance, want.OutsideVariance, 1e-9*want.Variance1) {
				t.Errorf("outside variance %g, want %g", got.OutsideVariance, want.OutsideVariance)
			}
			// Σ_X streamed elsewhere gives the same answer.
			var cx Covariance
			if err := cx.Add(x); err != nil {
				t.Fatal(err)
			}
			sx, _ := cx.Matrix()
			viaCov, err := FeatureSpaceFromInputCovariance(sx, w0, w1, o)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(viaCov.Delta, want.Delta); d > 1e-8*scale {
				t.Errorf("from Σ_X: ΔΣ differs by %g", d)
			}
		})
	}
}

// W₁ = (I + δ·q_i·q_iᵀ)·W₀ scales the old features along q_i by 1+δ, so
// ΔΣ_ii = ((1+δ)² − 1)·λ_i and nothing else.
func TestFeatureSpaceScalingOneFeatureDirection(t *testing.T) {
	rng := newRand(25)
	nSamples, m, n := 300, 6, 8
	x := randDense(rng, nSamples, n)
	w0 := randDense(rng, m, n)
	var y0 mat.Dense
	y0.Mul(x, w0.T())
	var cy Covariance
	_ = cy.Add(&y0)
	sy, _ := cy.Matrix()
	ref, err := FeatureSpaceFromCovariances(sy, sy, FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Recover the signed eigenvectors the analysis uses.
	var eig mat.EigenSym
	eig.Factorize(sy, true)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	vals := eig.Values(nil)
	order := descending(vals)
	const i, delta = 2, 0.25
	qi := mat.Col(nil, order[i], &vecs)
	if signOfLargest(qi) < 0 {
		for r := range qi {
			qi[r] = -qi[r]
		}
	}
	p := eye(m)
	var o mat.Dense
	o.Outer(delta, mat.NewVecDense(m, qi), mat.NewVecDense(m, qi))
	p.Add(p, &o)
	var w1 mat.Dense
	w1.Mul(p, w0)
	f, err := FeatureSpace(x, w0, &w1, FeatureOptions{Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := ((1+delta)*(1+delta) - 1) * ref.Lambda[i]
	expectDelta(t, f.Split, func(a, b int) float64 {
		if a == i && b == i {
			return want
		}
		return 0
	}, 1e-11*ref.Lambda[0])
}

// An untrained adapter leaves the features unchanged to rounding, also when
// everything is stored in float32.
func TestFeatureSpaceUntrainedAdapterGivesZeroChange(t *testing.T) {
	rng := newRand(26)
	x := randDense(rng, 40, 16)
	w0 := randDense(rng, 24, 16)
	b := svdBasis(t, w0)
	w1 := windowInit(w0, b, 5, 4, 0.5)
	f, err := FeatureSpace(x, w0, w1, FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tol := 1e-13 * f.Lambda[0]; f.Norm() > tol || f.OutsideVariance > tol {
		t.Errorf("‖ΔΣ‖=%g outside=%g, want ≤ %g", f.Norm(), f.OutsideVariance, tol)
	}
	f32, err := FeatureSpace(toFloat32(x), toFloat32(w0), toFloat32(w0), FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f32.Norm() != 0 {
		t.Errorf("identical float32 weights: ‖ΔΣ‖ = %g, want exactly 0", f32.Norm())
	}
}

// Y₁ gains variance along a direction where Y₀ had none: the kept directions
// do not see it, OutsideVariance does.
func TestFeatureSpaceOutsideVariance(t *testing.T) {
	rng := newRand(27)
	nSamples, m, n := 100, 7, 3 // rank Σ_Y₀ ≤ 3 < m
	x := randDense(rng, nSamples, n)
	w0 := randDense(rng, m, n)
	// Unit vector orthogonal to range(W₀).
	var qr mat.QR
	qr.Factorize(w0)
	var qfull mat.Dense
	qr.QTo(&qfull)
	perp := mat.NewVecDense(m, mat.Col(nil, n, &qfull))
	dir := mat.NewVecDense(n, []float64{1, 0, 0})
	var change mat.Dense
	change.Outer(0.5, perp, dir)
	w1 := mat.DenseCopyOf(w0)
	w1.Add(w1, &change)
	f, err := FeatureSpace(x, w0, w1, FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cx Covariance
	_ = cx.Add(x)
	sx, _ := cx.Matrix()
	want := 0.25 * sx.At(0, 0)
	if f.K != n || !near(f.OutsideVariance, want, 1e-12*f.Variance1) || f.Norm() > 1e-12*f.Lambda[0] {
		t.Errorf("K=%d outside=%g ‖ΔΣ‖=%g, want %d, %g, 0", f.K, f.OutsideVariance, f.Norm(), n, want)
	}
}

func TestFeatureSpaceRankOption(t *testing.T) {
	rng := newRand(28)
	x := randDense(rng, 50, 6)
	w0 := randDense(rng, 5, 6)
	f, err := FeatureSpace(x, w0, w0, FeatureOptions{Rank: 2})
	if err != nil {
		t.Fatal(err)
	}
	if f.K != 2 || len(f.Lambda) != 2 {
		t.Errorf("Rank 2 kept %d directions", f.K)
	}
	if _, err := FeatureSpace(x, w0, w0, FeatureOptions{RelTol: -1}); err == nil {
		t.Error("negative RelTol accepted")
	}
	if _, err := FeatureSpace(randDense(rng, 50, 4), w0, w0, FeatureOptions{}); err == nil {
		t.Error("probe width mismatch accepted")
	}
}

func TestCovarianceStreamsStably(t *testing.T) {
	rng := newRand(29)
	n := 5
	x := randDense(rng, 103, n)
	for i := 0; i < 103; i++ {
		for j := 0; j < n; j++ {
			x.Set(i, j, 1e8+x.At(i, j)*float64(j+1))
		}
	}
	// Two-pass reference.
	mean := make([]float64, n)
	for j := range mean {
		for i := 0; i < 103; i++ {
			mean[j] += x.At(i, j)
		}
		mean[j] /= 103
	}
	var c Covariance
	// Uneven batches, one of a single row.
	for _, r := range [][2]int{{0, 1}, {1, 40}, {40, 41}, {41, 103}} {
		if err := c.Add(x.Slice(r[0], r[1], 0, n)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			var want float64
			for i := 0; i < 103; i++ {
				want += (x.At(i, a) - mean[a]) * (x.At(i, b) - mean[b])
			}
			want /= 102
			if !near(got.At(a, b), want, 1e-7*math.Sqrt(want*want+1)) {
				t.Errorf("Σ(%d,%d) = %g, want %g", a, b, got.At(a, b), want)
			}
		}
		if !near(c.Mean()[a], mean[a], 1e-6) {
			t.Errorf("mean %d = %.10g, want %.10g", a, c.Mean()[a], mean[a])
		}
	}
	if c.Count() != 103 {
		t.Errorf("count %d", c.Count())
	}
	var empty Covariance
	if _, err := empty.Matrix(); err == nil {
		t.Error("covariance of no rows accepted")
	}
	if err := c.Add(randDense(rng, 2, n+1)); err == nil {
		t.Error("width change accepted")
	}
}

func ExampleFeatureSpaceFromCovariances() {
	// Old-task features with variances 4 and 1 along the axes. After
	// fine-tuning the second feature's variance grows by 0.5 and the two
	// become correlated (covariance 0.5): a rotation of the feature space.
	before := mat.NewSymDense(2, []float64{4, 0, 0, 1})
	after := mat.NewSymDense(2, []float64{4, 0.5, 0.5, 1.5})
	f, err := FeatureSpaceFromCovariances(before, after, FeatureOptions{Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("Λ = %v\n", f.Lambda)
	fmt.Printf("ΔΣ = %v\n", mat.Formatted(f.Delta, mat.Prefix("     ")))
	fmt.Printf("variance change along old directions %v, rotation ‖off‖ = %.3f\n", f.Diag, f.OffNorm)
	// Output:
	// Λ = [4 1]
	// ΔΣ = ⎡  0  0.5⎤
	//      ⎣0.5  0.5⎦
	// variance change along old directions [0 0.5], rotation ‖off‖ = 0.707
}
