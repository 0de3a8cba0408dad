package lowranktest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
)

// SVDFunc computes a thin SVD: U m×k, S k descending, V n×k.
type SVDFunc[T lowrank.Float] func(w lowrank.Matrix[T]) (lowrank.Factors[T], error)

// WindowSVDFunc computes the singular triplets start … start+r−1.
type WindowSVDFunc[T lowrank.Float] func(w lowrank.Matrix[T], start, r int) (lowrank.Factors[T], error)

// TruncatedSVDFunc approximates the top q singular triplets.
type TruncatedSVDFunc[T lowrank.Float] func(w lowrank.Matrix[T], q int) (lowrank.Factors[T], error)

// InitFunc initialises an adapter (lowrank.Init or an equivalent).
type InitFunc[T lowrank.Float] func(layer string, w lowrank.Matrix[T], c lowrank.Config) (lowrank.Adapter[T], error)

// reporter is the part of *testing.T the checks use (so that the suite's own
// tests can run a check against a broken implementation and see it fail).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
}

// dense is a float64 row-major copy for the checks' own arithmetic.
type dense struct {
	r, c int
	d    []float64
}

func toDense[T lowrank.Float](m lowrank.Matrix[T]) dense {
	d := make([]float64, len(m.Data))
	for i, v := range m.Data {
		d[i] = float64(v)
	}
	return dense{m.Rows, m.Cols, d}
}

func (a dense) at(i, j int) float64 { return a.d[i*a.c+j] }

// mul returns op(a)·op(b) in float64 (plain loops: the suite's shapes are small).
func mul(a dense, ta bool, b dense, tb bool) dense {
	m, k := a.r, a.c
	if ta {
		m, k = k, m
	}
	n := b.c
	if tb {
		n = b.r
	}
	out := dense{m, n, make([]float64, m*n)}
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			var aip float64
			if ta {
				aip = a.at(p, i)
			} else {
				aip = a.at(i, p)
			}
			if aip == 0 {
				continue
			}
			row := out.d[i*n : (i+1)*n]
			for j := 0; j < n; j++ {
				if tb {
					row[j] += aip * b.at(j, p)
				} else {
					row[j] += aip * b.at(p, j)
				}
			}
		}
	}
	return out
}

func frob(a dense) float64 {
	var s float64
	for _, v := range a.d {
		s += v * v
	}
	return math.Sqrt(s)
}

func sub(a, b dense) dense {
	out := dense{a.r, a.c, make([]float64, len(a.d))}
	for i := range a.d {
		out.d[i] = a.d[i] - b.d[i]
	}
	return out
}

// orthonormalityError returns max |(XᵀX − I)_ij| for the columns of X.
func orthonormalityError(x dense) float64 {
	g := mul(x, true, x, false)
	var worst float64
	for i := 0; i < g.r; i++ {
		for j := 0; j < g.c; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			worst = max(worst, math.Abs(g.at(i, j)-want))
		}
	}
	return worst
}

// reconstruct returns U·diag(S)·Vᵀ.
func reconstruct[T lowrank.Float](f lowrank.Factors[T]) dense {
	u := toDense(f.U)
	for i := 0; i < u.r; i++ {
		for j := 0; j < u.c; j++ {
			u.d[i*u.c+j] *= float64(f.S[j])
		}
	}
	return mul(u, false, toDense(f.V), true)
}

func checkFactorShapes[T lowrank.Float](m, n, q int, f lowrank.Factors[T]) error {
	if len(f.S) != q || f.U.Rows != m || f.U.Cols != q || len(f.U.Data) != m*q ||
		f.V.Rows != n || f.V.Cols != q || len(f.V.Data) != n*q {
		return fmt.Errorf("factors have U %d×%d (%d values), S %d, V %d×%d (%d values); want U %d×%d, S %d, V %d×%d",
			f.U.Rows, f.U.Cols, len(f.U.Data), len(f.S), f.V.Rows, f.V.Cols, len(f.V.Data), m, q, q, n, q)
	}
	return nil
}

// CheckSVD runs the thin-SVD properties on every Case: shapes (U m×k, S k,
// V n×k), UᵀU = I and VᵀV = I (max entry error ≤ tol), S descending and ≥ 0,
// S equal to the known spectrum (|ΔS_i| ≤ tol·σ₁), and
// ‖W − U·diag(S)·Vᵀ‖_F/‖W‖_F ≤ tol. Use tol 1e-12 for float64, 1e-5 for float32.
// It also checks that an empty or non-finite matrix is an error.
func CheckSVD[T lowrank.Float](t *testing.T, svd SVDFunc[T], tol float64) {
	t.Helper()
	for _, c := range Cases[T]() {
		t.Run(c.Name, func(t *testing.T) { checkSVDCase(t, c, svd, tol) })
	}
	t.Run("errors", func(t *testing.T) {
		if _, err := svd(lowrank.Matrix[T]{}); err == nil {
			t.Errorf("empty matrix: no error")
		}
		w := Cases[T]()[0].W.Clone()
		w.Data[5] = T(math.NaN())
		if _, err := svd(w); err == nil {
			t.Errorf("NaN in matrix: no error")
		}
		w.Data[5] = T(math.Inf(1))
		if _, err := svd(w); err == nil {
			t.Errorf("Inf in matrix: no error")
		}
	})
}

func checkSVDCase[T lowrank.Float](t reporter, c Case[T], svd SVDFunc[T], tol float64) {
	t.Helper()
	orig := c.W.Clone()
	f, err := svd(c.W)
	if err != nil {
		t.Fatalf("SVD: %v", err)
	}
	if !slices.Equal(orig.Data, c.W.Data) {
		t.Errorf("SVD modified its input")
	}
	m, n := c.W.Rows, c.W.Cols
	k := min(m, n)
	if err := checkFactorShapes(m, n, k, f); err != nil {
		t.Fatal(err)
	}
	checkFactorProperties(t, c, f, tol)
	if rel := frob(sub(toDense(c.W), reconstruct(f))) / frob(toDense(c.W)); rel > tol {
		t.Errorf("‖W − U·S·Vᵀ‖/‖W‖ = %.3g > %.3g", rel, tol)
	}
}

// checkFactorProperties: orthonormal U and V, S descending, non-negative and
// equal to the known spectrum (at the factors' offset).
func checkFactorProperties[T lowrank.Float](t reporter, c Case[T], f lowrank.Factors[T], tol float64) {
	t.Helper()
	if e := orthonormalityError(toDense(f.U)); e > tol {
		t.Errorf("max |UᵀU − I| = %.3g > %.3g", e, tol)
	}
	if e := orthonormalityError(toDense(f.V)); e > tol {
		t.Errorf("max |VᵀV − I| = %.3g > %.3g", e, tol)
	}
	top := c.Spectrum[0]
	for i, s := range f.S {
		if s < 0 {
			t.Errorf("S[%d] = %v is negative", i, s)
		}
		if i > 0 && s > f.S[i-1] {
			t.Errorf("S not descending: S[%d] = %v > S[%d] = %v", i, s, i-1, f.S[i-1])
		}
		if want := c.Spectrum[f.Offset+i]; math.Abs(float64(s)-want) > tol*top {
			t.Errorf("σ_%d = %.10g, want %.10g (tolerance %.3g)", f.Offset+i, float64(s), want, tol*top)
		}
	}
}

// CheckWindowSVD checks a window SVD on every Case and DecayingCase (whose
// dense tails catch index slips, as single-precision ?gesvdx makes) and several windows (top,
// bottom, middle, single): Offset = start, shapes U m×r, S r, V n×r,
// orthonormal U and V, S equal to the known σ_start … σ_start+r−1, and the
// defining relations W·V = U·diag(S), Wᵀ·U = V·diag(S) (Frobenius error
// ≤ tol·‖W‖_F). Invalid windows must be errors.
func CheckWindowSVD[T lowrank.Float](t *testing.T, svd WindowSVDFunc[T], tol float64) {
	t.Helper()
	for _, c := range append(Cases[T](), DecayingCases[T]()...) {
		m, n := c.W.Rows, c.W.Cols
		k := min(m, n)
		r := max(1, min(3, k/3))
		if k >= 64 {
			r = 16
		}
		for _, start := range slices.Compact([]int{0, k - r, (k - r) / 2, k - 1}) {
			rr := min(r, k-start)
			t.Run(fmt.Sprintf("%s/s=%d,r=%d", c.Name, start, rr), func(t *testing.T) {
				f, err := svd(c.W, start, rr)
				if err != nil {
					t.Fatalf("window SVD: %v", err)
				}
				if f.Offset != start {
					t.Errorf("Offset = %d, want %d", f.Offset, start)
				}
				if err := checkFactorShapes(m, n, rr, f); err != nil {
					t.Fatal(err)
				}
				checkFactorProperties(t, c, f, tol)
				w := toDense(c.W)
				us := toDense(f.U)
				vs := toDense(f.V)
				for i := 0; i < us.r; i++ {
					for j := 0; j < rr; j++ {
						us.d[i*rr+j] *= float64(f.S[j])
					}
				}
				for i := 0; i < vs.r; i++ {
					for j := 0; j < rr; j++ {
						vs.d[i*rr+j] *= float64(f.S[j])
					}
				}
				norm := frob(w)
				if e := frob(sub(mul(w, false, toDense(f.V), false), us)); e > tol*norm {
					t.Errorf("‖W·V − U·S‖ = %.3g > %.3g", e, tol*norm)
				}
				if e := frob(sub(mul(w, true, toDense(f.U), false), vs)); e > tol*norm {
					t.Errorf("‖Wᵀ·U − V·S‖ = %.3g > %.3g", e, tol*norm)
				}
			})
		}
	}
	t.Run("invalid", func(t *testing.T) {
		w := Cases[T]()[0].W
		k := min(w.Rows, w.Cols)
		for _, win := range [][2]int{{-1, 2}, {0, 0}, {k - 1, 2}, {0, k + 1}} {
			if _, err := svd(w, win[0], win[1]); err == nil {
				t.Errorf("window s=%d r=%d of a %d×%d matrix: no error", win[0], win[1], w.Rows, w.Cols)
			}
		}
	})
}

// CheckTruncatedSVD checks an approximate top-q SVD (randomized) on the
// DecayingCases: shapes U m×q, S q, V n×q; orthonormal U and V (to 100·eps
// of T); S descending, each within relTol relative of the known σ_i; and the
// truncation error ‖W − U·S·Vᵀ‖_F within (1+relTol) of the optimal
// √(Σ_{i≥q} σ_i²) (plus rounding). Use relTol = 1e-3.
func CheckTruncatedSVD[T lowrank.Float](t *testing.T, svd TruncatedSVDFunc[T], relTol float64) {
	t.Helper()
	eps := epsilon[T]()
	for _, c := range DecayingCases[T]() {
		for _, q := range []int{1, 8, 16} {
			t.Run(fmt.Sprintf("%s/q=%d", c.Name, q), func(t *testing.T) {
				m, n := c.W.Rows, c.W.Cols
				f, err := svd(c.W, q)
				if err != nil {
					t.Fatalf("truncated SVD: %v", err)
				}
				if err := checkFactorShapes(m, n, q, f); err != nil {
					t.Fatal(err)
				}
				if e := orthonormalityError(toDense(f.U)); e > 100*eps*float64(m) {
					t.Errorf("max |UᵀU − I| = %.3g", e)
				}
				if e := orthonormalityError(toDense(f.V)); e > 100*eps*float64(n) {
					t.Errorf("max |VᵀV − I| = %.3g", e)
				}
				for i, s := range f.S {
					if i > 0 && s > f.S[i-1] {
						t.Errorf("S not descending at %d", i)
					}
					want := c.Spectrum[i]
					if want == 0 {
						if zeroTol := 1e3 * eps * c.Spectrum[0]; math.Abs(float64(s)) > zeroTol {
							t.Errorf("σ_%d = %.8g, want 0 (within %.3g)", i, float64(s), zeroTol)
						}
					} else if rel := math.Abs(float64(s)-want) / want; rel > relTol {
						t.Errorf("σ_%d = %.8g, want %.8g (relative error %.3g > %.3g)", i, float64(s), want, rel, relTol)
					}
				}
				var tail float64
				for _, s := range c.Spectrum[q:] {
					tail += s * s
				}
				tail = math.Sqrt(tail)
				got := frob(sub(toDense(c.W), reconstruct(f)))
				if slack := 1e3 * eps * frob(toDense(c.W)); got > (1+relTol)*tail+slack {
					t.Errorf("‖W − U·S·Vᵀ‖ = %.8g, optimal %.8g", got, tail)
				}
			})
		}
	}
	t.Run("invalid", func(t *testing.T) {
		w := Cases[T]()[0].W
		for _, q := range []int{0, -1, min(w.Rows, w.Cols) + 1} {
			if _, err := svd(w, q); err == nil {
				t.Errorf("q=%d of a %d×%d matrix: no error", q, w.Rows, w.Cols)
			}
		}
	})
}

// epsilon returns the unit roundoff of T's precision.
func epsilon[T lowrank.Float]() float64 {
	if float64(T(1)+T(1e-10)) == 1 { // float32 precision
		return 0x1p-24
	}
	return 0x1p-53
}

// errorNames reports whether err's text names the layer and the shape m×n.
func errorNames(err error, layer string, m, n int) bool {
	msg := err.Error()
	return strings.Contains(msg, layer) && strings.Contains(msg, fmt.Sprintf("%d×%d", m, n))
}
