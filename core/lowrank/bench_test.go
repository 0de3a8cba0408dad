package lowrank_test

import (
	"fmt"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

// benchInit times Init of one m×n float32 layer with a power-law spectrum
// (σ_i ∝ (1+i)^−0.5) under config c.
func benchInit(b *testing.B, m, n int, c lowrank.Config) {
	w, err := lowranktest.WithSpectrum[float32](m, n, lowranktest.PowerLawSpectrum(min(m, n), 1, 0.5), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := lowrank.Init("bench", w, c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSVD times a thin SVD of one m×n float32 matrix with the given back-end.
func benchSVD(b *testing.B, m, n int, backend lowrank.SVDBackend) {
	w, err := lowranktest.WithSpectrum[float32](m, n, lowranktest.PowerLawSpectrum(min(m, n), 1, 0.5), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := lowrank.ThinSVDWith(w, backend); err != nil {
			b.Fatal(err)
		}
	}
}

var benchShapes = [][2]int{{768, 768}, {2304, 768}, {3072, 768}, {768, 3072}}

// BenchmarkInit: r = 16, α = r, ViT-B shapes, exact (default strategy, thin
// sgesdd, window dgesvdx) and randomized, as bench-lowrank does for a whole
// layer set.
func BenchmarkInit(b *testing.B) {
	configs := []struct {
		name string
		c    lowrank.Config
	}{
		{"mid-full", lowrank.Config{Method: lowrank.MethodMid, Rank: 16, SVD: lowrank.SVDFull}},
		{"mid-thin", lowrank.Config{Method: lowrank.MethodMid, Rank: 16, SVD: lowrank.SVDThin}},
		{"mid-window", lowrank.Config{Method: lowrank.MethodMid, Rank: 16, SVD: lowrank.SVDWindowOnly}},
		{"pissa-randomized", lowrank.Config{Method: lowrank.MethodPiSSA, Rank: 16, SVD: lowrank.SVDRandomized}},
		{"pissa-randomized-subspace", lowrank.Config{Method: lowrank.MethodPiSSA, Rank: 16, SVD: lowrank.SVDRandomized, Randomized: lowrank.RandomizedSubspace}},
		{"lora", lowrank.Config{Method: lowrank.MethodLoRA, Rank: 16}},
		{"olora", lowrank.Config{Method: lowrank.MethodOLoRA, Rank: 16}},
	}
	for _, sh := range benchShapes {
		for _, c := range configs {
			b.Run(fmt.Sprintf("%dx%d/%s", sh[0], sh[1], c.name), func(b *testing.B) { benchInit(b, sh[0], sh[1], c.c) })
		}
	}
}

// BenchmarkThinSVD: each back-end on a small and a ViT-B-sized matrix (gonum
// only on the small one: it takes seconds per 768-wide SVD).
func BenchmarkThinSVD(b *testing.B) {
	for _, backend := range backends() {
		for _, sh := range [][2]int{{256, 256}, {3072, 768}} {
			if backend == lowrank.BackendGonum && sh[0] > 256 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%dx%d", backend, sh[0], sh[1]), func(b *testing.B) { benchSVD(b, sh[0], sh[1], backend) })
		}
	}
}
