package analysis

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

var weightShapes = []struct{ m, n int }{{12, 8}, {8, 12}, {10, 10}, {33, 5}}

// withAndWithoutW0 runs f with ΔM computed from W₁ alone and from W₁ − W₀.
func withAndWithoutW0(t *testing.T, w0 mat.Matrix, f func(t *testing.T, o WeightOptions)) {
	t.Run("M-diagS", func(t *testing.T) { f(t, WeightOptions{Split: SplitOptions{KeepDelta: true}}) })
	t.Run("W1-W0", func(t *testing.T) {
		f(t, WeightOptions{W0: w0, VerifyBasis: true, Split: SplitOptions{KeepDelta: true}})
	})
}

func TestWeightSpaceDiagonalChangeOnlyTouchesItsComponent(t *testing.T) {
	for _, sh := range weightShapes {
		rng := newRand(1)
		w0, b := spectralMatrix(rng, sh.m, sh.n, 1)
		k := len(b.S)
		for _, i := range []int{0, k / 2, k - 1} {
			const delta = 0.37
			w1 := addOuter(w0, delta, b.U, i, b.V, i)
			withAndWithoutW0(t, w0, func(t *testing.T, o WeightOptions) {
				c, err := WeightSpace(w1, b, o)
				if err != nil {
					t.Fatal(err)
				}
				expectDelta(t, c.Split, func(a, bb int) float64 {
					if a == i && bb == i {
						return delta
					}
					return 0
				}, 1e-13)
				if !near(c.DiagNorm, delta, 1e-13) || c.OffNorm > 1e-13 {
					t.Errorf("%dx%d i=%d: ‖diag‖=%g ‖off‖=%g, want %g and 0", sh.m, sh.n, i, c.DiagNorm, c.OffNorm, delta)
				}
				if !near(c.DiagCentroid, float64(i), 1e-9) {
					t.Errorf("diag centroid %g, want %d", c.DiagCentroid, i)
				}
				if o.W0 != nil {
					if !near(c.DeltaWNorm, delta, 1e-13) || !near(c.CapturedFraction(), 1, 1e-12) {
						t.Errorf("‖ΔW‖=%g captured=%g, want %g and 1", c.DeltaWNorm, c.CapturedFraction(), delta)
					}
					if c.BasisResidual > 1e-13 || c.OrthoResidual > 1e-13 {
						t.Errorf("exact basis reported residuals %g, %g", c.BasisResidual, c.OrthoResidual)
					}
				} else if !math.IsNaN(c.DeltaWNorm) || !math.IsNaN(c.CapturedFraction()) {
					t.Errorf("without W₀, ‖ΔW‖ = %g, want NaN", c.DeltaWNorm)
				}
			})
		}
	}
}

func TestWeightSpaceOffDiagonalChangeOnlyTouchesItsEntry(t *testing.T) {
	for _, sh := range weightShapes {
		rng := newRand(2)
		w0, b := spectralMatrix(rng, sh.m, sh.n, 1)
		k := len(b.S)
		const eps = -0.21
		for _, ij := range [][2]int{{0, k - 1}, {k - 1, 0}, {1, 2}} {
			i, j := ij[0], ij[1]
			w1 := addOuter(w0, eps, b.U, i, b.V, j)
			window := Window{Start: 0, Rank: 2} // i=1,j=2: row in, column out
			withAndWithoutW0(t, w0, func(t *testing.T, o WeightOptions) {
				o.Split.Window = window
				c, err := WeightSpace(w1, b, o)
				if err != nil {
					t.Fatal(err)
				}
				expectDelta(t, c.Split, func(a, bb int) float64 {
					if a == i && bb == j {
						return eps
					}
					return 0
				}, 1e-13)
				for x := 0; x < k; x++ {
					wantRow, wantCol := 0.0, 0.0
					if x == i {
						wantRow = eps * eps
					}
					if x == j {
						wantCol = eps * eps
					}
					if !near(c.OffRowEnergy[x], wantRow, 1e-14) || !near(c.OffColEnergy[x], wantCol, 1e-14) {
						t.Errorf("component %d: row/col energy %g/%g, want %g/%g", x, c.OffRowEnergy[x], c.OffColEnergy[x], wantRow, wantCol)
					}
				}
				if c.DiagNorm > 1e-13 || !near(c.OffNorm, -eps, 1e-13) || !math.IsInf(c.OffDiagRatio(), 1) && c.OffDiagRatio() < 1e10 {
					t.Errorf("‖diag‖=%g ‖off‖=%g ratio=%g", c.DiagNorm, c.OffNorm, c.OffDiagRatio())
				}
				e := c.WindowEnergy
				var got float64
				switch in, jn := window.Contains(i), window.Contains(j); {
				case in && jn:
					got = e.OffInIn
				case in:
					got = e.OffInOut
				case jn:
					got = e.OffOutIn
				default:
					got = e.OffOutOut
				}
				if !near(got, eps*eps, 1e-14) || !near(e.Total(), eps*eps, 1e-14) {
					t.Errorf("window energy %+v: entry (%d,%d) not in its block", e, i, j)
				}
			})
		}
	}
}

// A rotation by θ inside the plane of output directions u_i, u_j:
// u_i → c·u_i + s·u_j, u_j → −s·u_i + c·u_j. Then M_ab = S_b·u_aᵀu′_b and
//
//	ΔM[{i,j},{i,j}] = [[(c−1)·S_i, −s·S_j], [s·S_i, (c−1)·S_j]], zero elsewhere.
func TestWeightSpaceRotationInPlaneOfTwoComponents(t *testing.T) {
	for _, sh := range weightShapes {
		rng := newRand(3)
		w0, b := spectralMatrix(rng, sh.m, sh.n, 0.5)
		k := len(b.S)
		i, j := 1, k-2
		theta := 0.3
		c, s := math.Cos(theta), math.Sin(theta)
		ui := mat.Col(nil, i, b.U)
		uj := mat.Col(nil, j, b.U)
		rot := mat.DenseCopyOf(b.U)
		for r := range ui {
			rot.Set(r, i, c*ui[r]+s*uj[r])
			rot.Set(r, j, -s*ui[r]+c*uj[r])
		}
		var us, w1 mat.Dense
		us.Mul(rot, mat.NewDiagDense(k, b.S))
		w1.Mul(&us, b.V.T())
		want := map[[2]int]float64{
			{i, i}: (c - 1) * b.S[i], {i, j}: -s * b.S[j],
			{j, i}: s * b.S[i], {j, j}: (c - 1) * b.S[j],
		}
		withAndWithoutW0(t, w0, func(t *testing.T, o WeightOptions) {
			got, err := WeightSpace(&w1, b, o)
			if err != nil {
				t.Fatal(err)
			}
			expectDelta(t, got.Split, func(a, bb int) float64 { return want[[2]int{a, bb}] }, 1e-13)
			wantDiag := math.Hypot((c-1)*b.S[i], (c-1)*b.S[j])
			wantOff := math.Hypot(s*b.S[i], s*b.S[j])
			if !near(got.DiagNorm, wantDiag, 1e-13) || !near(got.OffNorm, wantOff, 1e-13) {
				t.Errorf("‖diag‖=%g ‖off‖=%g, want %g, %g", got.DiagNorm, got.OffNorm, wantDiag, wantOff)
			}
		})
	}
}

// A change outside span(U) (possible when m > n) is invisible to ΔM and shows
// up as a captured fraction below one.
func TestWeightSpaceChangeOutsideBasis(t *testing.T) {
	rng := newRand(4)
	m, n := 12, 5
	w0, b := spectralMatrix(rng, m, n, 1)
	// A unit vector orthogonal to U's columns.
	x := mat.Col(nil, 0, randDense(rng, m, 1))
	var coef mat.VecDense
	coef.MulVec(b.U.T(), mat.NewVecDense(m, x))
	var proj mat.VecDense
	proj.MulVec(b.U, &coef)
	perp := mat.NewVecDense(m, x)
	perp.SubVec(perp, &proj)
	perp.ScaleVec(1/mat.Norm(perp, 2), perp)
	var change mat.Dense
	change.Outer(0.8, perp, mat.NewVecDense(n, mat.Col(nil, 2, b.V)))
	w1 := mat.DenseCopyOf(w0)
	w1.Add(w1, &change)
	c, err := WeightSpace(w1, b, WeightOptions{W0: w0})
	if err != nil {
		t.Fatal(err)
	}
	if c.Norm() > 1e-13 || !near(c.DeltaWNorm, 0.8, 1e-13) || c.CapturedFraction() > 1e-25 {
		t.Errorf("‖ΔM‖=%g ‖ΔW‖=%g captured=%g, want 0, 0.8, 0", c.Norm(), c.DeltaWNorm, c.CapturedFraction())
	}
}

// A truncated basis (top q components, e.g. a randomized SVD) analyses the
// leading q×q block.
func TestWeightSpaceTruncatedBasis(t *testing.T) {
	rng := newRand(5)
	w0, full := spectralMatrix(rng, 14, 9, 1)
	q := 4
	b := Basis{U: full.U.(*mat.Dense).Slice(0, 14, 0, q), S: full.S[:q], V: full.V.(*mat.Dense).Slice(0, 9, 0, q)}
	w1 := addOuter(w0, 0.5, full.U, 1, full.V, 3)
	w1 = addOuter(w1, 0.25, full.U, 6, full.V, 6) // outside the kept components
	c, err := WeightSpace(w1, b, WeightOptions{W0: w0, Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	if c.K != q {
		t.Fatalf("K = %d, want %d", c.K, q)
	}
	expectDelta(t, c.Split, func(i, j int) float64 {
		if i == 1 && j == 3 {
			return 0.5
		}
		return 0
	}, 1e-13)
	if want := 0.25 / 0.3125; !near(c.CapturedFraction(), want, 1e-12) {
		t.Errorf("captured %g, want %g", c.CapturedFraction(), want)
	}
}

// windowInit builds the window initialisation of DESIGN.md §1 from the SVD:
// B = U_w·diag(√(S_w/scale)), A = diag(√(S_w/scale))·V_wᵀ, Wres = W − scale·B·A,
// and returns W₁ = Wres + scale·B·A, the merged weights of an adapter that
// was never trained.
func windowInit(w mat.Matrix, b Basis, start, rank int, scale float64) *mat.Dense {
	m, n := w.Dims()
	bm := mat.NewDense(m, rank, nil)
	am := mat.NewDense(rank, n, nil)
	for c := 0; c < rank; c++ {
		root := math.Sqrt(b.S[start+c] / scale)
		for i := 0; i < m; i++ {
			bm.Set(i, c, b.U.At(i, start+c)*root)
		}
		for j := 0; j < n; j++ {
			am.Set(c, j, b.V.At(j, start+c)*root)
		}
	}
	var ba mat.Dense
	ba.Mul(bm, am)
	ba.Scale(scale, &ba)
	var res, merged mat.Dense
	res.Sub(w, &ba)
	merged.Add(&res, &ba)
	return &merged
}

// An adapter that was never trained leaves the weights unchanged up to the
// rounding of W − scale·B·A + scale·B·A: at most one ulp of W per entry.
func TestWeightSpaceUntrainedAdapterGivesZeroChange(t *testing.T) {
	rng := newRand(6)
	w0 := randDense(rng, 24, 16)
	b := svdBasis(t, w0)
	for _, win := range []Window{{0, 4}, {6, 4}, {12, 4}} {
		w1 := windowInit(w0, b, win.Start, win.Rank, 2.0)
		c, err := WeightSpace(w1, b, WeightOptions{W0: w0, Split: SplitOptions{Window: win}})
		if err != nil {
			t.Fatal(err)
		}
		// ‖ΔW‖_F ≤ ‖W‖_F·2⁻⁵² entrywise; ΔM = UᵀΔWV has the same norm bound.
		bound := mat.Norm(w0, 2) * 0x1p-52 * 4
		if c.DeltaWNorm > bound || c.Norm() > bound {
			t.Errorf("window %v: ‖ΔW‖=%g ‖ΔM‖=%g, want ≤ %g", win, c.DeltaWNorm, c.Norm(), bound)
		}
		// Without W₀, ΔM = UᵀW₁V − diag(S) includes the SVD's own rounding.
		c2, err := WeightSpace(w1, b, WeightOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tol := 1e-13 * b.S[0]; c2.Norm() > tol {
			t.Errorf("window %v without W₀: ‖ΔM‖=%g, want ≤ %g", win, c2.Norm(), tol)
		}
	}
}

// float32 weights and basis are analysed in float64: the result equals the
// analysis of the same (rounded) values held in float64, bit for bit.
func TestWeightSpaceFloat32InputsAnalysedInFloat64(t *testing.T) {
	rng := newRand(7)
	w0, b := spectralMatrix(rng, 20, 12, 1)
	w1 := addOuter(w0, 0.01, b.U, 3, b.V, 3)
	w0f, w1f := toFloat32(w0), toFloat32(w1)
	uf, vf := toFloat32(b.U), toFloat32(b.V)
	b32 := Basis{U: uf, S: b.S, V: &vf} // value and pointer forms both read
	c32, err := WeightSpace(&w1f, b32, WeightOptions{W0: w0f, Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	b64 := Basis{U: mat.DenseCopyOf(uf), S: b.S, V: mat.DenseCopyOf(vf)}
	c64, err := WeightSpace(mat.DenseCopyOf(w1f), b64, WeightOptions{W0: mat.DenseCopyOf(w0f), Split: SplitOptions{KeepDelta: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(c32.Delta, c64.Delta) || c32.DeltaWNorm != c64.DeltaWNorm {
		t.Errorf("float32 view and float64 copy differ: max |diff| %g", maxAbsDiff(c32.Delta, c64.Delta))
	}
	// The change itself is seen to float32 rounding of W (≈ 6e-8·‖W‖).
	if !near(c32.Diag[3], 0.01, 1e-5) {
		t.Errorf("ΔM₃₃ = %g, want 0.01 ± 1e-5", c32.Diag[3])
	}
}

func maxAbsDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, math.Inf(1))
}

func TestWeightSpaceBlockSizeDoesNotChangeResult(t *testing.T) {
	rng := newRand(8)
	w0 := randDense(rng, 37, 11)
	w1 := mat.DenseCopyOf(w0)
	w1.Add(w1, func() *mat.Dense { d := randDense(rng, 37, 11); d.Scale(0.01, d); return d }())
	b := svdBasis(t, w0)
	var ref *mat.Dense
	for _, br := range []int{1, 5, 36, 37, 1000} {
		c, err := WeightSpace(w1, b, WeightOptions{W0: w0, BlockRows: br, Split: SplitOptions{KeepDelta: true}})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = c.Delta
			continue
		}
		if d := maxAbsDiff(ref, c.Delta); d > 1e-15 {
			t.Errorf("BlockRows %d differs from BlockRows 1 by %g", br, d)
		}
	}
}

func TestWeightSpaceVerifyBasisCatchesWrongBasis(t *testing.T) {
	rng := newRand(9)
	w0 := randDense(rng, 10, 6)
	good := svdBasis(t, w0)
	c, err := WeightSpace(w0, good, WeightOptions{W0: w0, VerifyBasis: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.BasisResidual > 1e-12 || c.OrthoResidual > 1e-12 {
		t.Errorf("true SVD: residuals %g, %g", c.BasisResidual, c.OrthoResidual)
	}
	other := svdBasis(t, randDense(rng, 10, 6))
	c, err = WeightSpace(w0, other, WeightOptions{W0: w0, VerifyBasis: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.BasisResidual < 0.1 {
		t.Errorf("basis of another matrix: residual %g, want large", c.BasisResidual)
	}
}

func TestWeightSpaceErrorsNameTheProblem(t *testing.T) {
	rng := newRand(10)
	w0, b := spectralMatrix(rng, 6, 4, 1)
	cases := []struct {
		name string
		w1   mat.Matrix
		b    Basis
		o    WeightOptions
		want string
	}{
		{"U rows", w0, Basis{U: randDense(rng, 5, 4), S: b.S, V: b.V}, WeightOptions{}, "basis U is 5×4, want 6×4"},
		{"V rows", w0, Basis{U: b.U, S: b.S, V: randDense(rng, 3, 4)}, WeightOptions{}, "basis V is 3×4, want 4×4"},
		{"too many S", w0, Basis{U: b.U, S: make([]float64, 5), V: b.V}, WeightOptions{}, "5 singular values"},
		{"W0 shape", w0, b, WeightOptions{W0: randDense(rng, 4, 6)}, "W₀ is 4×6, want 6×4"},
		{"verify without W0", w0, b, WeightOptions{VerifyBasis: true}, "VerifyBasis needs W₀"},
		{"short float32", Float32Matrix{Rows: 6, Cols: 4, Data: make([]float32, 23)}, b, WeightOptions{}, "W₁: float32 buffer has 23 elements"},
		{"window", w0, b, WeightOptions{Split: SplitOptions{Window: Window{3, 2}}}, "window [3, 5) does not fit in 4"},
		{"band", w0, b, WeightOptions{Split: SplitOptions{Bands: []Band{{0, 5}}}}, "band 0 [0, 5)"},
	}
	for _, tc := range cases {
		_, err := WeightSpace(tc.w1, tc.b, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// A 3072×768 float32 layer (a ViT-B MLP matrix) with its float32 basis must
// be analysed in a few of its own sizes of memory.
func TestWeightSpaceMemoryOfLargeLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses a 3072×768 layer (about a second)")
	}
	rng := newRand(11)
	m, n := 3072, 768
	fill := func(r, c int, scale float64) Float32Matrix {
		f := Float32Matrix{Rows: r, Cols: c, Data: make([]float32, r*c)}
		for i := range f.Data {
			f.Data[i] = float32(scale * rng.NormFloat64())
		}
		return f
	}
	w0, w1, u, v := fill(m, n, 1), fill(m, n, 1), fill(m, n, 1/math.Sqrt(float64(m))), fill(n, n, 1/math.Sqrt(float64(n)))
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(n - i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := WeightSpace(w1, Basis{U: u, S: s, V: v}, WeightOptions{W0: w0})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	layer := uint64(m * n * 4)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MB for a %.1f MB layer (%.2f×); ‖ΔM‖ = %g", float64(allocated)/1e6, float64(layer)/1e6, float64(allocated)/float64(layer), c.Norm())
	if allocated > 3*layer {
		t.Errorf("allocated %d bytes, more than 3× the layer's %d", allocated, layer)
	}
}

func ExampleWeightSpace() {
	// W₀ = diag(3, 2, 1) in its own singular basis (U = V = I).
	w0 := mat.NewDense(3, 3, []float64{3, 0, 0, 0, 2, 0, 0, 0, 1})
	basis := Basis{U: eye(3), S: []float64{3, 2, 1}, V: eye(3)}
	// Fine-tuning strengthens component 1 by 0.5 and mixes 0.1 of input
	// direction 2 into output direction 0.
	w1 := mat.NewDense(3, 3, []float64{3, 0, 0.1, 0, 2.5, 0, 0, 0, 1})
	c, err := WeightSpace(w1, basis, WeightOptions{W0: w0, Split: SplitOptions{Window: Window{Start: 1, Rank: 1}}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("ΔM_ii = %.2f\n", c.Diag)
	fmt.Printf("off-diagonal energy by row %.2f, by column %.2f\n", c.OffRowEnergy, c.OffColEnergy)
	fmt.Printf("‖diag‖ = %.2f, ‖off‖ = %.2f, ratio %.2f, window %v\n", c.DiagNorm, c.OffNorm, c.OffDiagRatio(), c.Window)
	// Output:
	// ΔM_ii = [0.00 0.50 0.00]
	// off-diagonal energy by row [0.01 0.00 0.00], by column [0.00 0.00 0.01]
	// ‖diag‖ = 0.50, ‖off‖ = 0.10, ratio 0.20, window [1, 2)
}

func eye(n int) *mat.Dense {
	d := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		d.Set(i, i, 1)
	}
	return d
}
