package lowrank

import (
	"fmt"
	"math/rand/v2"
)

// Defaults for the randomized SVD (used when the option is 0).
const (
	DefaultNIter      = 4
	DefaultOversample = 16
)

// RandomizedOptions tunes RandomizedSVD. The zero value uses the defaults.
type RandomizedOptions struct {
	Oversample int        // extra sample columns p; 0 → DefaultOversample, < 0 → none
	NIter      int        // power iterations; 0 → DefaultNIter, < 0 → none
	Seed       uint64     // seeds the Gaussian test matrix
	Backend    SVDBackend // "" (default), lapack, gonum
}

func (o RandomizedOptions) oversample() int {
	switch {
	case o.Oversample == 0:
		return DefaultOversample
	case o.Oversample < 0:
		return 0
	}
	return o.Oversample
}

func (o RandomizedOptions) niter() int {
	switch {
	case o.NIter == 0:
		return DefaultNIter
	case o.NIter < 0:
		return 0
	}
	return o.NIter
}

// RandomizedSVD approximates the top q singular triplets of the m×n W
// (Halko, Martinsson & Tropp 2011, Alg. 4.4 with a QR after every product):
//
//	l = min(q+p, k);  Ω: n×l Gaussian (seeded);  Q = qr(W·Ω)
//	repeat niter times:  Q = qr(W·qr(Wᵀ·Q))
//	B = Qᵀ·W (l×n) = Ũ·diag(S)·Vᵀ;  U = Q·Ũ;  keep the first q triplets.
//
// It returns U m×q, S q (descending), V n×q. Cost O(mnl·(niter+1)) instead of
// O(mnk) for a full SVD. Deterministic for a given Seed and back-end.
func RandomizedSVD[T Float](w Matrix[T], q int, o RandomizedOptions) (Factors[T], error) {
	return randomizedSVD("", w, q, o)
}

func randomizedSVD[T Float](layer string, w Matrix[T], q int, o RandomizedOptions) (Factors[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Factors[T]{}, err
	}
	m, n := w.Rows, w.Cols
	k := min(m, n)
	if q < 1 || q > k {
		return Factors[T]{}, fmt.Errorf("lowrank: %s: randomized SVD needs 1 ≤ q ≤ k=%d, got q=%d", where(layer, m, n), k, q)
	}
	backend, err := o.Backend.resolve()
	if err != nil {
		return Factors[T]{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("lowrank: %s: randomized SVD: %w", where(layer, m, n), err)
	}
	l := min(q+o.oversample(), k)
	omega := gaussian[T](n, l, o.Seed)
	y, err := orthonormalize(backend, matMul(backend, false, false, w, omega))
	if err != nil {
		return Factors[T]{}, wrap(err)
	}
	for it := 0; it < o.niter(); it++ {
		z, err := orthonormalize(backend, matMul(backend, true, false, w, y)) // n×l
		if err != nil {
			return Factors[T]{}, wrap(err)
		}
		if y, err = orthonormalize(backend, matMul(backend, false, false, w, z)); err != nil { // m×l
			return Factors[T]{}, wrap(err)
		}
	}
	small := matMul(backend, true, false, y, w) // l×n
	var f Factors[T]
	if backend == BackendLAPACK {
		f, err = lapackThinSVD(small)
	} else {
		f, err = gonumThinSVD(small)
	}
	if err != nil {
		return Factors[T]{}, wrap(err)
	}
	// small = Ũ·S·Vᵀ with Ũ l×l: U = Q·Ũ.
	u := matMul(backend, false, false, y, f.U)
	out := Factors[T]{U: u, S: f.S, V: f.V}
	if q < l {
		out = out.slice(0, q)
	}
	return out, nil
}

// gaussian returns a rows×cols matrix of independent N(0, 1) draws from a PCG
// stream seeded by seed (the same draws for float32 and float64).
func gaussian[T Float](rows, cols int, seed uint64) Matrix[T] {
	rng := rand.New(rand.NewPCG(seed, seedStreamRandomized))
	g := NewMatrix[T](rows, cols)
	for i := range g.Data {
		g.Data[i] = T(rng.NormFloat64())
	}
	return g
}

// exactWindowFactors returns exact factors holding the window s … s+r−1.
func exactWindowFactors[T Float](layer string, w Matrix[T], s, r int, backend SVDBackend) (Factors[T], error) {
	b, err := backend.resolve()
	if err != nil {
		return Factors[T]{}, err
	}
	if b == BackendLAPACK && preferWindowSVD(w.Rows, w.Cols, s, r) {
		return windowSVD(layer, w, s, r, b)
	}
	return thinSVD(layer, w, b)
}

// preferWindowSVD reports whether ?gesvdx of only the window beats ?gesdd of
// the whole matrix (measured; see bench-lowrank).
func preferWindowSVD(m, n, s, r int) bool { return false }
