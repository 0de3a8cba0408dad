package gokernels

import (
	"math"
	"testing"
)

// ulps is the distance in float32 ulps between got and the correctly rounded want.
func ulps(got float32, want float64) float64 {
	w := float32(want)
	if got == w {
		return 0
	}
	return math.Abs(float64(got)-float64(w)) / math.Abs(float64(math.Nextafter32(w, float32(math.Inf(1)))-w))
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-103.5); x < 88.7; x += 0.000731 {
		worst = max(worst, ulps(expf(x), math.Exp(float64(x))))
	}
	if worst > 1 {
		t.Errorf("expf: worst error %.2f ulp, want ≤ 1", worst)
	}
	if !math.IsInf(float64(expf(100)), 1) || expf(-200) != 0 || expf(0) != 1 || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Errorf("expf special values: %v %v %v %v", expf(100), expf(-200), expf(0), expf(float32(math.NaN())))
	}
}

func TestErff(t *testing.T) {
	worst := 0.0
	for x := float32(-6); x < 6; x += 0.0000731 {
		worst = max(worst, ulps(erff(x), math.Erf(float64(x))))
	}
	// Tiny arguments: erf(x) ≈ 2x/√π, check relative accuracy there too.
	for x := float32(1e-30); x < 1e-3; x *= 1.37 {
		worst = max(worst, ulps(erff(x), math.Erf(float64(x))))
	}
	if worst > 1 {
		t.Errorf("erff: worst error %.2f ulp, want ≤ 1", worst)
	}
	t.Logf("erff worst error %.2f ulp", worst)
}

func benchUnary(b *testing.B, fn func(out, in []float32)) {
	in := make([]float32, 1<<16)
	for i := range in {
		in[i] = float32(i%2000)/500 - 2
	}
	out := make([]float32, len(in))
	b.ResetTimer()
	for range b.N {
		fn(out, in)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/elem")
}

func BenchmarkExpf(b *testing.B) { benchUnary(b, expChunk) }
func BenchmarkErff(b *testing.B) { benchUnary(b, erfChunk) }
func BenchmarkMathExp(b *testing.B) {
	benchUnary(b, func(out, in []float32) {
		for i, x := range in {
			out[i] = float32(math.Exp(float64(x)))
		}
	})
}
func BenchmarkMathErf(b *testing.B) {
	benchUnary(b, func(out, in []float32) {
		for i, x := range in {
			out[i] = float32(math.Erf(float64(x)))
		}
	})
}
func BenchmarkNeg(b *testing.B) { benchUnary(b, negChunk) }

// checkChunk runs a chunk function over xs and reports the worst ulp error
// against ref (float64) and the special values.
func checkChunk(t *testing.T, name string, chunk func(out, in []float32), ref func(float64) float64, xs []float32, maxULP float64) {
	t.Helper()
	out := make([]float32, len(xs))
	chunk(out, xs)
	worst, at := 0.0, float32(0)
	for i, x := range xs {
		if e := ulps(out[i], ref(float64(x))); e > worst {
			worst, at = e, x
		}
	}
	if worst > maxULP {
		t.Errorf("%s: worst error %.2f ulp at x=%g, want ≤ %g", name, worst, at, maxULP)
	}
	t.Logf("%s: worst error %.2f ulp", name, worst)
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 200, -200}
	got := make([]float32, len(specials))
	chunk(got, specials)
	for i, x := range specials {
		want := float32(ref(float64(x)))
		if !(got[i] == want || (got[i] != got[i] && want != want)) {
			t.Errorf("%s(%g) = %g, want %g", name, x, got[i], want)
		}
	}
}

func grid(lo, hi, step float32) []float32 {
	var xs []float32
	for x := lo; x < hi; x += step {
		xs = append(xs, x)
	}
	return xs
}

// TestVectorExpErf checks the chunk functions in use (AVX2 when available,
// else the scalar ones) and the scalar ones explicitly.
func TestVectorExpErf(t *testing.T) {
	expXs := grid(-110, 95, 0.000913)
	erfXs := append(grid(-6, 6, 0.0000613), grid(-1e-3, 1e-3, 1.7e-7)...)
	checkChunk(t, "exp ("+KernelName()+")", expChunk, math.Exp, expXs, 2)
	checkChunk(t, "erf ("+KernelName()+")", erfChunk, math.Erf, erfXs, 2)
	checkChunk(t, "exp (go)", expChunkGo, math.Exp, expXs, 1)
	checkChunk(t, "erf (go)", erfChunkGo, math.Erf, erfXs, 1)
}
