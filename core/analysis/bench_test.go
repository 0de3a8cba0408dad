package analysis

import (
	"fmt"
	"math"
	"testing"
)

// benchLayer returns float32 W₀, W₁ (m×n) and a float32 basis (not a true
// SVD: the cost does not depend on it) for benchmarks.
func benchLayer(m, n int) (w0, w1 Float32Matrix, b Basis) {
	rng := newRand(99)
	fill := func(r, c int, scale float64) Float32Matrix {
		f := Float32Matrix{Rows: r, Cols: c, Data: make([]float32, r*c)}
		for i := range f.Data {
			f.Data[i] = float32(scale * rng.NormFloat64())
		}
		return f
	}
	k := min(m, n)
	w0, w1 = fill(m, n, 1), fill(m, n, 1)
	s := make([]float64, k)
	for i := range s {
		s[i] = float64(k - i)
	}
	return w0, w1, Basis{U: fill(m, k, 1/math.Sqrt(float64(m))), S: s, V: fill(n, k, 1/math.Sqrt(float64(n)))}
}

func benchmarkWeightSpace(b *testing.B, m, n int) {
	w0, w1, basis := benchLayer(m, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := WeightSpace(w1, basis, WeightOptions{W0: w0}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkFeatureSpace(b *testing.B, samples, m, n int) {
	w0, w1, _ := benchLayer(m, n)
	x, _, _ := benchLayer(samples, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := FeatureSpace(x, w0, w1, FeatureOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// ViT-B shapes: attention projections 768×768, MLP 3072×768 and 768×3072.
func BenchmarkWeightSpace(b *testing.B) {
	for _, s := range [][2]int{{768, 768}, {3072, 768}, {768, 3072}} {
		b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) { benchmarkWeightSpace(b, s[0], s[1]) })
	}
}

func BenchmarkFeatureSpace(b *testing.B) {
	for _, s := range [][3]int{{2048, 768, 768}, {2048, 3072, 768}} {
		b.Run(fmt.Sprintf("N%d_%dx%d", s[0], s[1], s[2]), func(b *testing.B) { benchmarkFeatureSpace(b, s[0], s[1], s[2]) })
	}
}
