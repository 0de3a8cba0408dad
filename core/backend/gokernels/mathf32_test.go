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
