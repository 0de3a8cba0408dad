package adamw

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestStep32MatchesGo checks the float32 step (assembly on amd64) against
// the Go loop in float32 on random data, lengths around the vector widths,
// with and without clipping and weight decay, to a few float32 ulps.
func TestStep32MatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1003} {
		for _, c := range []coefficients{
			newCoefficients(Config{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, WeightDecay: 0.01}, 1e-3, 1),
			newCoefficients(Config{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8}, 3e-2, 17),
		} {
			for _, clip := range []float64{1, 0.37} {
				c.clip = clip
				theta, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
				for i := range n {
					theta[i] = float32(rng.NormFloat64())
					g[i] = float32(rng.NormFloat64() * 0.1)
					m[i] = float32(rng.NormFloat64() * 0.01)
					v[i] = float32(rng.ExpFloat64() * 1e-4)
				}
				if n > 2 {
					g[1], m[1], v[1] = 0, 0, 0 // the ε path
				}
				theta2, g2, m2, v2 := clone(theta), clone(g), clone(m), clone(v)
				adamwStep32(theta, g, m, v, c)
				adamwStep(theta2, g2, m2, v2, c)
				// A few ulps of the array's largest value: with fused
				// multiply-adds, β·m + (1−β)·g differs most where its terms cancel.
				for k, p := range [][2][]float32{{theta, theta2}, {m, m2}, {v, v2}} {
					scale := 0.0
					for _, x := range p[1] {
						scale = max(scale, math.Abs(float64(x)))
					}
					for i := range n {
						if d := math.Abs(float64(p[0][i] - p[1][i])); d > 5e-7*scale {
							t.Fatalf("n=%d clip=%g, array %d, element %d: kernel %v, Go loop %v", n, clip, k, i, p[0][i], p[1][i])
						}
					}
				}
			}
		}
	}
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

func BenchmarkStep32(b *testing.B) {
	const n = 203530 // the MLP's parameters
	theta, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		theta[i], g[i] = 0.1, 0.01
	}
	c := newCoefficients(Config{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, WeightDecay: 0.01}, 1e-3, 3)
	b.SetBytes(n * 4 * 4)
	for b.Loop() {
		adamwStep32(theta, g, m, v, c)
	}
}
