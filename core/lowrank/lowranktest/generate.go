// Package lowranktest is the shared property suite for package lowrank: every
// SVD implementation and every initialisation method must pass it (in the
// spirit of gonum's testlapack). It also generates test matrices with a known
// spectrum, deterministically from a seed.
package lowranktest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/prism-lora/prism/core/lowrank"
)

// Case is a named test matrix W (m×n) whose singular values are known:
// Spectrum holds all k = min(m, n) of them, descending.
type Case[T lowrank.Float] struct {
	Name     string
	W        lowrank.Matrix[T]
	Spectrum []float64
}

// Gaussian returns a rows×cols matrix of N(0, 1) draws (PCG seeded by seed).
func Gaussian[T lowrank.Float](rows, cols int, seed uint64) lowrank.Matrix[T] {
	rng := rand.New(rand.NewPCG(seed, 0x6c72746573742d67))
	g := lowrank.NewMatrix[T](rows, cols)
	for i := range g.Data {
		g.Data[i] = T(rng.NormFloat64())
	}
	return g
}

// WithSpectrum returns W = U·diag(s)·Vᵀ (m×n) with U (m×len(s)) and V
// (n×len(s)) random orthonormal (Q factors of Gaussian matrices), so that the
// singular values of W are s (plus zeros); len(s) ≤ min(m, n), s ≥ 0. Built in
// float64, then rounded to T.
func WithSpectrum[T lowrank.Float](m, n int, s []float64, seed uint64) (lowrank.Matrix[T], error) {
	q := len(s)
	if q > min(m, n) {
		return lowrank.Matrix[T]{}, fmt.Errorf("lowranktest: %d singular values for a %d×%d matrix", q, m, n)
	}
	u, _, err := lowrank.ReducedQR(Gaussian[float64](m, q, seed))
	if err != nil {
		return lowrank.Matrix[T]{}, err
	}
	v, _, err := lowrank.ReducedQR(Gaussian[float64](n, q, seed^0x9e3779b97f4a7c15))
	if err != nil {
		return lowrank.Matrix[T]{}, err
	}
	for i := 0; i < m; i++ {
		for j := 0; j < q; j++ {
			u.Data[i*q+j] *= s[j]
		}
	}
	w, err := lowrank.MatMul(false, true, u, v)
	if err != nil {
		return lowrank.Matrix[T]{}, err
	}
	out := lowrank.NewMatrix[T](m, n)
	for i, x := range w.Data {
		out.Data[i] = T(x)
	}
	return out, nil
}

// GeometricSpectrum returns k values σ_i = top·ratio^i.
func GeometricSpectrum(k int, top, ratio float64) []float64 {
	s := make([]float64, k)
	for i := range s {
		s[i] = top * math.Pow(ratio, float64(i))
	}
	return s
}

// PowerLawSpectrum returns k values σ_i = top·(1+i)^(−exponent): the slow
// decay seen in trained transformer weights.
func PowerLawSpectrum(k int, top, exponent float64) []float64 {
	s := make([]float64, k)
	for i := range s {
		s[i] = top * math.Pow(1+float64(i), -exponent)
	}
	return s
}

// Cases returns the suite's matrices: tall, wide and square with distinct
// values, one with a repeated value, a rank-deficient one (trailing zeros),
// a row and a column vector. Fixed seeds.
func Cases[T lowrank.Float]() []Case[T] {
	specs := []struct {
		name     string
		m, n     int
		spectrum []float64
	}{
		{"tall-40x17", 40, 17, GeometricSpectrum(17, 5, 0.8)},
		{"wide-13x37", 13, 37, PowerLawSpectrum(13, 3, 1)},
		{"square-24x24", 24, 24, GeometricSpectrum(24, 2, 0.85)},
		{"repeated-20x30", 20, 30, append([]float64{4, 3, 3, 3, 2}, GeometricSpectrum(15, 1.5, 0.7)...)},
		{"rank-deficient-30x20", 30, 20, append(GeometricSpectrum(7, 10, 0.6), make([]float64, 13)...)},
		{"row-1x9", 1, 9, []float64{2}},
		{"column-11x1", 11, 1, []float64{0.5}},
	}
	out := make([]Case[T], 0, len(specs))
	for i, sp := range specs {
		w, err := WithSpectrum[T](sp.m, sp.n, sp.spectrum, uint64(1000+i))
		if err != nil {
			panic(err) // fixed, valid shapes: cannot happen
		}
		out = append(out, Case[T]{Name: sp.name, W: w, Spectrum: sp.spectrum})
	}
	return out
}

// DecayingCases returns larger matrices with decaying spectra for the
// randomized SVD: geometric and power-law decay, tall and wide, a slow decay
// like trained weights' (σ_i ∝ (1+i)^−0.5, bench-lowrank's spectrum), and a
// rank-deficient one (rank 12: the top 16 include zeros, and a Krylov space
// of the default size is invariant long before it is full), and the zero
// matrix (every product vanishes exactly).
func DecayingCases[T lowrank.Float]() []Case[T] {
	specs := []struct {
		name     string
		m, n     int
		spectrum []float64
	}{
		{"geometric-120x80", 120, 80, GeometricSpectrum(80, 10, 0.9)},
		{"power-law-70x150", 70, 150, PowerLawSpectrum(70, 8, 1.5)},
		{"power-law-200x200", 200, 200, PowerLawSpectrum(200, 1, 1)},
		{"slow-power-law-256x512", 256, 512, PowerLawSpectrum(256, 2, 0.5)},
		{"rank-deficient-150x90", 150, 90, append(GeometricSpectrum(12, 5, 0.8), make([]float64, 78)...)},
		{"zero-40x25", 40, 25, make([]float64, 25)},
	}
	out := make([]Case[T], 0, len(specs))
	for i, sp := range specs {
		w, err := WithSpectrum[T](sp.m, sp.n, sp.spectrum, uint64(2000+i))
		if err != nil {
			panic(err)
		}
		out = append(out, Case[T]{Name: sp.name, W: w, Spectrum: sp.spectrum})
	}
	return out
}
