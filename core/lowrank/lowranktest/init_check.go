package lowranktest

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
)

// initConfigs returns the configurations CheckInit runs for a layer with
// k = min(m, n) components and rank r: every method, plain and rsLoRA scales.
func initConfigs(k, r int) []lowrank.Config {
	windows := []lowrank.WindowSpec{
		{Preset: lowrank.WindowStart, Start: (k - r) / 3},
		{Preset: lowrank.WindowFraction, Fraction: 0.7},
	}
	var out []lowrank.Config
	for _, scale := range []struct {
		alpha  float64
		rslora bool
	}{{0, false}, {16, true}, {2.5, false}} {
		base := lowrank.Config{Rank: r, Alpha: scale.alpha, RSLoRA: scale.rslora, Seed: 7}
		for _, method := range []string{lowrank.MethodLoRA, lowrank.MethodPiSSA, lowrank.MethodMiLoRA, lowrank.MethodMid, lowrank.MethodOLoRA} {
			c := base
			c.Method = method
			out = append(out, c)
		}
		for _, w := range windows {
			c := base
			c.Method = lowrank.MethodWindow
			c.Window = w
			out = append(out, c)
		}
	}
	return out
}

func describe(c lowrank.Config) string {
	s := fmt.Sprintf("%s/r=%d/alpha=%g", c.Method, c.Rank, c.Alpha)
	if c.Method == lowrank.MethodWindow {
		s += "/" + c.Window.String()
	}
	if c.RSLoRA {
		s += "/rslora"
	}
	if c.SVD != "" {
		s += "/" + c.SVD
	}
	return s
}

// presetOf returns the window spec a window method implies.
func presetOf(c lowrank.Config) lowrank.WindowSpec {
	switch c.Method {
	case lowrank.MethodPiSSA, lowrank.MethodMiLoRA, lowrank.MethodMid:
		return lowrank.WindowSpec{Preset: c.Method}
	}
	return c.Window
}

func isWindowMethod(method string) bool {
	switch method {
	case lowrank.MethodPiSSA, lowrank.MethodMiLoRA, lowrank.MethodMid, lowrank.MethodWindow:
		return true
	}
	return false
}

// CheckInit runs the initialisation properties on every Case, rank 1 and 3,
// every method, plain and rsLoRA scales:
//
//   - shapes A r×n, B m×r, Base m×n; Scale = Config.Scale(); W unmodified;
//   - identity ‖W − (Base + Scale·B·A)‖_F/‖W‖_F ≤ tol;
//   - windows: Start = the resolved s, Singular = σ_s … σ_{s+r−1},
//     BᵀB = diag(σ/scale) and A·Aᵀ = diag(σ/scale) (columns of B, rows of A
//     mutually orthogonal, squared norms σ_i/scale), Baseᵀ·B = 0 and
//     Base·Aᵀ = 0 (all within tol relative);
//   - pissa = window s=0, milora = window s=k−r, mid = window s=⌊(k−r)/2⌋,
//     fraction 0 = pissa, fraction 1 = milora;
//   - lora: B = 0, Base = W, |A_ij| ≤ 1/√n, same seed same A, other seed other A;
//   - olora: B has orthonormal columns, A is upper trapezoidal, A = Bᵀ·W;
//   - invalid rank, window, fraction, preset, method or alpha is an error
//     naming the layer and its shape.
//
// Use tol 1e-12 for float64 and 1e-5 for float32.
func CheckInit[T lowrank.Float](t *testing.T, initFn InitFunc[T], tol float64) {
	t.Helper()
	for _, c := range Cases[T]() {
		m, n := c.W.Rows, c.W.Cols
		k := min(m, n)
		for _, r := range slices.Compact([]int{1, min(3, k)}) {
			for _, cfg := range initConfigs(k, r) {
				t.Run(c.Name+"/"+describe(cfg), func(t *testing.T) {
					checkOneInit(t, initFn, c, cfg, tol)
				})
			}
			t.Run(fmt.Sprintf("%s/r=%d/presets", c.Name, r), func(t *testing.T) {
				checkPresets(t, initFn, c, r, tol)
			})
		}
	}
	t.Run("lora-seed", func(t *testing.T) { checkLoRASeed(t, initFn) })
	t.Run("errors", func(t *testing.T) { checkInitErrors(t, initFn) })
}

// CheckRandomizedInit runs window inits with Config.SVD = "randomized" on the
// DecayingCases (pissa and a window with small s+r): the identity holds to tol,
// Singular is within relTol (1e-3) of σ_s … σ_{s+r−1}, and the columns of B
// (rows of A) are orthogonal with squared norms Singular/scale.
func CheckRandomizedInit[T lowrank.Float](t *testing.T, initFn InitFunc[T], tol, relTol float64) {
	t.Helper()
	for _, c := range DecayingCases[T]() {
		for _, cfg := range []lowrank.Config{
			{Method: lowrank.MethodPiSSA, Rank: 8, Alpha: 16, SVD: lowrank.SVDRandomized, Seed: 3},
			{Method: lowrank.MethodWindow, Rank: 4, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 6},
				SVD: lowrank.SVDRandomized, Seed: 4, RSLoRA: true},
		} {
			t.Run(c.Name+"/"+describe(cfg), func(t *testing.T) {
				a, err := initFn("layer.rand", c.W, cfg)
				if err != nil {
					t.Fatal(err)
				}
				checkIdentity(t, c.W, a, tol)
				for i, s := range a.Singular {
					want := c.Spectrum[a.Start+i]
					if want == 0 {
						if zeroTol := 1e3 * epsilon[T]() * c.Spectrum[0]; math.Abs(s) > zeroTol {
							t.Errorf("σ_%d = %.8g, want 0 (within %.3g)", a.Start+i, s, zeroTol)
						}
					} else if rel := math.Abs(s-want) / want; rel > relTol {
						t.Errorf("σ_%d = %.8g, want %.8g (relative error %.3g)", a.Start+i, s, want, rel)
					}
				}
				checkGram(t, "BᵀB", mul(toDense(a.B), true, toDense(a.B), false), a.Singular, a.Scale, tol*c.Spectrum[0]/a.Scale*10)
				checkGram(t, "A·Aᵀ", mul(toDense(a.A), false, toDense(a.A), true), a.Singular, a.Scale, tol*c.Spectrum[0]/a.Scale*10)
			})
		}
	}
}

func checkIdentity[T lowrank.Float](t reporter, w lowrank.Matrix[T], a lowrank.Adapter[T], tol float64) {
	t.Helper()
	ba := mul(toDense(a.B), false, toDense(a.A), false)
	base := toDense(a.Base)
	for i := range base.d {
		base.d[i] += a.Scale * ba.d[i]
	}
	if rel := frob(sub(toDense(w), base)) / frob(toDense(w)); rel > tol {
		t.Errorf("‖W − (Base + scale·B·A)‖/‖W‖ = %.3g > %.3g", rel, tol)
	}
}

// checkGram checks that g = diag(σ_i/scale) entrywise within tol.
func checkGram(t reporter, name string, g dense, sigma []float64, scale, tol float64) {
	t.Helper()
	for i := 0; i < g.r; i++ {
		for j := 0; j < g.c; j++ {
			want := 0.0
			if i == j {
				want = sigma[i] / scale
			}
			if d := math.Abs(g.at(i, j) - want); d > tol {
				t.Errorf("%s[%d,%d] = %.10g, want %.10g (tolerance %.3g)", name, i, j, g.at(i, j), want, tol)
				return
			}
		}
	}
}

func checkOneInit[T lowrank.Float](t reporter, initFn InitFunc[T], c Case[T], cfg lowrank.Config, tol float64) {
	t.Helper()
	m, n, r := c.W.Rows, c.W.Cols, cfg.Rank
	layer := "blocks.0." + c.Name
	orig := c.W.Clone()
	a, err := initFn(layer, c.W, cfg)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if !slices.Equal(orig.Data, c.W.Data) {
		t.Errorf("init modified W")
	}
	if a.A.Rows != r || a.A.Cols != n || len(a.A.Data) != r*n || a.B.Rows != m || a.B.Cols != r || len(a.B.Data) != m*r ||
		a.Base.Rows != m || a.Base.Cols != n || len(a.Base.Data) != m*n {
		t.Fatalf("shapes A %d×%d, B %d×%d, Base %d×%d; want A %d×%d, B %d×%d, Base %d×%d",
			a.A.Rows, a.A.Cols, a.B.Rows, a.B.Cols, a.Base.Rows, a.Base.Cols, r, n, m, r, m, n)
	}
	if a.Layer != layer || a.Method != cfg.Method || a.Rank != r || a.RSLoRA != cfg.RSLoRA {
		t.Errorf("adapter labelled %q/%q rank %d rslora %v; want %q/%q rank %d rslora %v",
			a.Layer, a.Method, a.Rank, a.RSLoRA, layer, cfg.Method, r, cfg.RSLoRA)
	}
	if math.Abs(a.Scale-cfg.Scale()) > 1e-15*cfg.Scale() {
		t.Errorf("Scale = %v, want %v", a.Scale, cfg.Scale())
	}
	checkIdentity(t, c.W, a, tol)
	top := c.Spectrum[0]
	normW := frob(toDense(c.W))
	switch {
	case isWindowMethod(cfg.Method):
		s, err := presetOf(cfg).Resolve(layer, m, n, r)
		if err != nil {
			t.Fatal(err)
		}
		if a.Start != s {
			t.Errorf("Start = %d, want %d", a.Start, s)
		}
		if len(a.Singular) != r {
			t.Fatalf("%d singular values, want %d", len(a.Singular), r)
		}
		for i, v := range a.Singular {
			if want := c.Spectrum[s+i]; math.Abs(v-want) > tol*top {
				t.Errorf("Singular[%d] = %.10g, want σ_%d = %.10g", i, v, s+i, want)
			}
		}
		gtol := tol * top / a.Scale
		checkGram(t, "BᵀB", mul(toDense(a.B), true, toDense(a.B), false), a.Singular, a.Scale, gtol)
		checkGram(t, "A·Aᵀ", mul(toDense(a.A), false, toDense(a.A), true), a.Singular, a.Scale, gtol)
		normB, normA := frob(toDense(a.B)), frob(toDense(a.A))
		if e := frob(mul(toDense(a.Base), true, toDense(a.B), false)); e > tol*normW*normB {
			t.Errorf("‖Baseᵀ·B‖ = %.3g > %.3g: the residual is not orthogonal to the window", e, tol*normW*normB)
		}
		if e := frob(mul(toDense(a.Base), false, toDense(a.A), true)); e > tol*normW*normA {
			t.Errorf("‖Base·Aᵀ‖ = %.3g > %.3g: the residual is not orthogonal to the window", e, tol*normW*normA)
		}
	case cfg.Method == lowrank.MethodLoRA:
		for i, v := range a.B.Data {
			if v != 0 {
				t.Fatalf("LoRA B[%d] = %v, want 0", i, v)
			}
		}
		if !slices.Equal(a.Base.Data, c.W.Data) {
			t.Errorf("LoRA Base differs from W")
		}
		bound := 1 / math.Sqrt(float64(n))
		nonzero := false
		for _, v := range a.A.Data {
			if math.Abs(float64(v)) > bound*(1+1e-6) {
				t.Fatalf("LoRA A entry %v outside ±1/√n = ±%v", v, bound)
			}
			nonzero = nonzero || v != 0
		}
		if !nonzero {
			t.Errorf("LoRA A is all zero")
		}
	case cfg.Method == lowrank.MethodOLoRA:
		if e := orthonormalityError(toDense(a.B)); e > tol {
			t.Errorf("OLoRA B: max |BᵀB − I| = %.3g", e)
		}
		for i := 0; i < r; i++ {
			for j := 0; j < min(i, n); j++ {
				if a.A.At(i, j) != 0 {
					t.Fatalf("OLoRA A[%d,%d] = %v: not upper trapezoidal", i, j, a.A.At(i, j))
				}
			}
		}
		if e := frob(sub(mul(toDense(a.B), true, toDense(c.W), false), toDense(a.A))); e > tol*normW {
			t.Errorf("OLoRA ‖Bᵀ·W − A‖ = %.3g > %.3g", e, tol*normW)
		}
	}
}

// checkPresets: the presets equal the explicit windows they name.
func checkPresets[T lowrank.Float](t reporter, initFn InitFunc[T], c Case[T], r int, tol float64) {
	t.Helper()
	k := min(c.W.Rows, c.W.Cols)
	win := func(w lowrank.WindowSpec) lowrank.Config {
		return lowrank.Config{Method: lowrank.MethodWindow, Rank: r, Alpha: 4, Window: w}
	}
	preset := func(method string) lowrank.Config {
		return lowrank.Config{Method: method, Rank: r, Alpha: 4}
	}
	pairs := []struct {
		name string
		a, b lowrank.Config
	}{
		{"pissa=start0", preset(lowrank.MethodPiSSA), win(lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 0})},
		{"milora=start(k-r)", preset(lowrank.MethodMiLoRA), win(lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: k - r})},
		{"mid=start((k-r)/2)", preset(lowrank.MethodMid), win(lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: (k - r) / 2})},
		{"pissa=fraction0", preset(lowrank.MethodPiSSA), win(lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0})},
		{"milora=fraction1", preset(lowrank.MethodMiLoRA), win(lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 1})},
		{"pissa=window-preset", preset(lowrank.MethodPiSSA), win(lowrank.WindowSpec{Preset: lowrank.WindowPiSSA})},
		{"milora=window-preset", preset(lowrank.MethodMiLoRA), win(lowrank.WindowSpec{Preset: lowrank.WindowMiLoRA})},
	}
	for _, p := range pairs {
		x, err := initFn("layer", c.W, p.a)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		y, err := initFn("layer", c.W, p.b)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if x.Start != y.Start {
			t.Errorf("%s: starts %d and %d", p.name, x.Start, y.Start)
			continue
		}
		for _, mm := range []struct {
			what string
			a, b lowrank.Matrix[T]
		}{{"A", x.A, y.A}, {"B", x.B, y.B}, {"Base", x.Base, y.Base}} {
			scale := max(frob(toDense(mm.a)), frob(toDense(c.W)))
			if d := frob(sub(toDense(mm.a), toDense(mm.b))); d > tol*scale {
				t.Errorf("%s: %s differs by %.3g (relative %.3g)", p.name, mm.what, d, d/scale)
			}
		}
	}
}

func checkLoRASeed[T lowrank.Float](t *testing.T, initFn InitFunc[T]) {
	t.Helper()
	w := Cases[T]()[0].W
	cfg := lowrank.Config{Method: lowrank.MethodLoRA, Rank: 4, Seed: 11}
	a1, err1 := initFn("l", w, cfg)
	a2, err2 := initFn("l", w, cfg)
	cfg.Seed = 12
	a3, err3 := initFn("l", w, cfg)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if !slices.Equal(a1.A.Data, a2.A.Data) {
		t.Errorf("same seed, different A")
	}
	if slices.Equal(a1.A.Data, a3.A.Data) {
		t.Errorf("different seeds, same A")
	}
	// Moments of U(−b, b): mean 0, variance b²/3.
	n := float64(w.Cols)
	var sum, sq float64
	for _, v := range a1.A.Data {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	cnt := float64(len(a1.A.Data))
	if variance, want := sq/cnt, 1/(3*n); math.Abs(variance-want) > 0.35*want {
		t.Errorf("LoRA A variance %.4g, want ≈ %.4g (1/(3n))", variance, want)
	}
}

func checkInitErrors[T lowrank.Float](t *testing.T, initFn InitFunc[T]) {
	t.Helper()
	c := Cases[T]()[0]
	m, n := c.W.Rows, c.W.Cols
	k := min(m, n)
	layer := "encoder.layer.3.attention.query"
	bad := []lowrank.Config{
		{Method: lowrank.MethodPiSSA, Rank: 0},
		{Method: lowrank.MethodMid, Rank: -2},
		{Method: lowrank.MethodMiLoRA, Rank: k + 1},
		{Method: lowrank.MethodLoRA, Rank: k + 1},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: -1}},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: k - 1}},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: -0.1}},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 1.5}},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: math.NaN()}},
		{Method: lowrank.MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: "top"}},
		{Method: "dora-ish", Rank: 2},
		{Method: lowrank.MethodPiSSA, Rank: 2, Alpha: -1},
		{Method: lowrank.MethodPiSSA, Rank: 2, SVD: "approximate"},
	}
	for _, cfg := range bad {
		_, err := initFn(layer, c.W, cfg)
		if err == nil {
			t.Errorf("%+v: no error", cfg)
			continue
		}
		if !errorNames(err, layer, m, n) {
			t.Errorf("%+v: error %q does not name the layer %q and its shape %d×%d", cfg, err, layer, m, n)
		}
	}
	w := c.W.Clone()
	w.Data[3] = T(math.Inf(-1))
	if _, err := initFn(layer, w, lowrank.Config{Method: lowrank.MethodPiSSA, Rank: 2}); err == nil || !errorNames(err, layer, m, n) {
		t.Errorf("Inf in W: error %v does not name the layer and shape", err)
	}
}

// CheckToLoRA initialises a window adapter on every Case, perturbs A and B as
// training would (A′ = A + 0.1·G₁, B′ = B + 0.1·G₂), converts with
// lowrank.ToLoRA and checks the shapes (2r×n, m×2r) and
//
//	‖(W + scale·B2·A2) − (Base + scale·B′·A′)‖_F / ‖W‖_F ≤ tol.
func CheckToLoRA[T lowrank.Float](t *testing.T, initFn InitFunc[T], tol float64) {
	t.Helper()
	for i, c := range Cases[T]() {
		m, n := c.W.Rows, c.W.Cols
		r := min(3, min(m, n))
		for _, cfg := range []lowrank.Config{
			{Method: lowrank.MethodMid, Rank: r, Alpha: 8},
			{Method: lowrank.MethodMiLoRA, Rank: r, Alpha: 2, RSLoRA: true},
		} {
			t.Run(c.Name+"/"+describe(cfg), func(t *testing.T) {
				a, err := initFn("l", c.W, cfg)
				if err != nil {
					t.Fatal(err)
				}
				trainedA, trainedB := a.A.Clone(), a.B.Clone()
				gA := Gaussian[T](r, n, uint64(50+i))
				gB := Gaussian[T](m, r, uint64(90+i))
				for j := range trainedA.Data {
					trainedA.Data[j] += 0.1 * gA.Data[j]
				}
				for j := range trainedB.Data {
					trainedB.Data[j] += 0.1 * gB.Data[j]
				}
				a2, b2, err := lowrank.ToLoRA(a, trainedA, trainedB)
				if err != nil {
					t.Fatal(err)
				}
				if a2.Rows != 2*r || a2.Cols != n || b2.Rows != m || b2.Cols != 2*r {
					t.Fatalf("A2 %d×%d, B2 %d×%d; want %d×%d and %d×%d", a2.Rows, a2.Cols, b2.Rows, b2.Cols, 2*r, n, m, 2*r)
				}
				lhs := toDense(c.W)
				for j, v := range mul(toDense(b2), false, toDense(a2), false).d {
					lhs.d[j] += a.Scale * v
				}
				rhs := toDense(a.Base)
				for j, v := range mul(toDense(trainedB), false, toDense(trainedA), false).d {
					rhs.d[j] += a.Scale * v
				}
				if rel := frob(sub(lhs, rhs)) / frob(toDense(c.W)); rel > tol {
					t.Errorf("‖(W + scale·B2·A2) − (Base + scale·B′·A′)‖/‖W‖ = %.3g > %.3g", rel, tol)
				}
				if alpha := a.LoRAAlpha(2 * r); math.Abs(scaleFor(alpha, 2*r, a.RSLoRA)-a.Scale) > 1e-12*a.Scale {
					t.Errorf("LoRAAlpha(2r) = %v gives scale %v, want %v", alpha, scaleFor(alpha, 2*r, a.RSLoRA), a.Scale)
				}
			})
		}
	}
	t.Run("shape-errors", func(t *testing.T) {
		c := Cases[T]()[0]
		a, err := initFn("l", c.W, lowrank.Config{Method: lowrank.MethodPiSSA, Rank: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := lowrank.ToLoRA(a, a.B, a.A); err == nil {
			t.Errorf("swapped A and B: no error")
		}
	})
}

func scaleFor(alpha float64, r int, rslora bool) float64 {
	return lowrank.Config{Rank: r, Alpha: alpha, RSLoRA: rslora}.Scale()
}
