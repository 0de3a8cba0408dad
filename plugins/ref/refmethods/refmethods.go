// Package refmethods holds the reference method plugins' methods, which
// prism does not build in: RandWindow (a seeded random window) and Energy
// (the window where the spectrum's cumulative energy crosses a threshold).
// Each plugin's main is one line around these (plugins/ref/prism-method-*).
package refmethods

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/prism-lora/prism/plugins/sdk"
)

// window returns the indices s, s+1, …, s+r−1.
func window(s, r int) []int {
	idx := make([]int, r)
	for j := range idx {
		idx[j] = s + j
	}
	return idx
}

func ptr(x float64) *float64 { return &x }

// RandWindow picks the window start s uniformly at random among the starts
// between fractions lo and hi of the spectrum: s ∈ [round(lo·(k−r)),
// round(hi·(k−r))], k = min(m,n). The draw is seeded by the request's seed
// and the layer's name, so every layer gets its own window and a run is
// reproducible.
type RandWindow struct{}

// Metadata describes randwindow.
func (RandWindow) Metadata() sdk.Metadata {
	return sdk.Metadata{
		Name:        "randwindow",
		Version:     "1.0.0",
		Description: "window of r singular components at a seeded random start (per layer) between fractions lo and hi of the spectrum",
		NeedsSVD:    true,
		Hyperparameters: []sdk.HyperParam{
			{Name: "lo", Type: sdk.Float, Description: "lowest start, as a fraction of k−r", Default: sdk.Value{Float: 0}, Min: ptr(0), Max: ptr(1)},
			{Name: "hi", Type: sdk.Float, Description: "highest start, as a fraction of k−r", Default: sdk.Value{Float: 1}, Min: ptr(0), Max: ptr(1)},
		},
	}
}

// Init draws the start and builds the window adapter.
func (RandWindow) Init(_ context.Context, req sdk.Request) (sdk.Result, error) {
	k := min(req.Weight.Rows, req.Weight.Cols)
	lo, hi := req.Hyper["lo"].Float, req.Hyper["hi"].Float
	if lo > hi {
		return sdk.Result{}, fmt.Errorf("layer %q: lo %g > hi %g", req.Layer, lo, hi)
	}
	span := float64(k - req.Rank)
	first, last := int(math.Round(lo*span)), int(math.Round(hi*span))
	h := fnv.New64a()
	h.Write([]byte(req.Layer))
	rng := rand.New(rand.NewPCG(req.Seed, h.Sum64()))
	s := first + rng.IntN(last-first+1)
	res, err := sdk.ComponentAdapter(req, window(s, req.Rank))
	res.Note = fmt.Sprintf("random start s=%d in [%d, %d]", s, first, last)
	return res, err
}

// Energy starts the window at the first component where the cumulative
// energy of the spectrum reaches a threshold: the smallest s with
// Σ_{i<s} S_i^p ≥ threshold · Σ_i S_i^p (p = 2: energy, p = 1: nuclear
// norm), clamped to k−r. threshold 0 gives PiSSA's window, 1 MiLoRA's.
type Energy struct{}

// Metadata describes energy.
func (Energy) Metadata() sdk.Metadata {
	return sdk.Metadata{
		Name:        "energy",
		Version:     "1.0.0",
		Description: "window starting where the cumulative spectral energy crosses a threshold",
		NeedsSVD:    true,
		Hyperparameters: []sdk.HyperParam{
			{Name: "threshold", Type: sdk.Float, Description: "fraction of the spectrum's energy before the window", Default: sdk.Value{Float: 0.9}, Min: ptr(0), Max: ptr(1)},
			{Name: "measure", Type: sdk.String, Description: "energy: S², nuclear: S", Default: sdk.Value{String: "energy"}, Choices: []string{"energy", "nuclear"}},
		},
	}
}

// Init finds the start and builds the window adapter.
func (Energy) Init(_ context.Context, req sdk.Request) (sdk.Result, error) {
	s := EnergyStart(req.SVD.S, req.Rank, req.Hyper["threshold"].Float, req.Hyper["measure"].String == "nuclear")
	res, err := sdk.ComponentAdapter(req, window(s, req.Rank))
	res.Note = fmt.Sprintf("cumulative %s %.3g reached at s=%d", req.Hyper["measure"].String, req.Hyper["threshold"].Float, s)
	return res, err
}

// EnergyStart is the smallest s with Σ_{i<s} S_i^p ≥ threshold·Σ_i S_i^p
// (p = 1 if nuclear, else 2), clamped to len(S)−r.
func EnergyStart(s []float64, r int, threshold float64, nuclear bool) int {
	pow := func(x float64) float64 {
		if nuclear {
			return x
		}
		return x * x
	}
	var total float64
	for _, v := range s {
		total += pow(v)
	}
	limit := len(s) - r
	var acc float64
	for i := range limit {
		if acc >= threshold*total {
			return i
		}
		acc += pow(s[i])
	}
	return limit
}
