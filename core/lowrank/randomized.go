package lowrank

import (
	"fmt"
	"math/rand/v2"
)

// Randomized SVD algorithms (RandomizedOptions.Algorithm, Config.Randomized).
const (
	// RandomizedKrylov is randomized block Krylov (Musco & Musco 2015): the
	// Rayleigh–Ritz step on the whole space span{Ω, MΩ, …, M^niter·Ω},
	// M = WᵀW (or W·Wᵀ), block width q + oversample. The default.
	RandomizedKrylov = "krylov"
	// RandomizedSubspace is Halko, Martinsson & Tropp's subspace (power)
	// iteration: only the last block (WWᵀ)^niter·W·Ω, width q + oversample.
	RandomizedSubspace = "subspace"
)

// Defaults of the randomized SVD (used when the option is 0), chosen with
// bench-lowrank on ViT-B-shaped float32 layers with a slowly decaying
// spectrum σ_i ∝ (1+i)^−0.5, r = 16 (worst relative error of the top 16
// values over 48 layers, and time per layer against the exact SVD):
//
//	krylov,   niter 5, oversample 0 (11 products with W of width 16): 2e-5
//	krylov,   niter 4, oversample 0 ( 9 products):                    2e-3
//	subspace, niter 4, oversample 24 (10 products of width 40):      3.4e-4, ≈ 2× the time
//
// Faster-decaying spectra converge sooner; slower ones need more.
const (
	DefaultNIter              = 5  // krylov: Krylov steps (blocks − 1)
	DefaultOversample         = 0  // krylov: extra block columns
	DefaultSubspaceNIter      = 4  // subspace: power iterations
	DefaultSubspaceOversample = 24 // subspace: extra sample columns
)

// RandomizedOptions tunes RandomizedSVD. The zero value uses the defaults.
type RandomizedOptions struct {
	Algorithm  string     // RandomizedKrylov ("" → default) or RandomizedSubspace
	Oversample int        // extra block/sample columns p; 0 → the algorithm's default, < 0 → none
	NIter      int        // Krylov steps or power iterations; 0 → the algorithm's default, < 0 → none
	Seed       uint64     // seeds the Gaussian test matrix
	Backend    SVDBackend // "" (default), lapack, gonum
}

func (o RandomizedOptions) subspace() bool { return o.Algorithm == RandomizedSubspace }

func (o RandomizedOptions) oversample() int {
	switch {
	case o.Oversample == 0 && o.subspace():
		return DefaultSubspaceOversample
	case o.Oversample == 0:
		return DefaultOversample
	case o.Oversample < 0:
		return 0
	}
	return o.Oversample
}

func (o RandomizedOptions) niter() int {
	switch {
	case o.NIter == 0 && o.subspace():
		return DefaultSubspaceNIter
	case o.NIter == 0:
		return DefaultNIter
	case o.NIter < 0:
		return 0
	}
	return o.NIter
}

// ParseRandomizedAlgorithm checks an algorithm name ("", "krylov", "subspace").
func ParseRandomizedAlgorithm(name string) (string, error) {
	switch name {
	case "", RandomizedKrylov, RandomizedSubspace:
		return name, nil
	}
	return "", fmt.Errorf("lowrank: unknown randomized SVD algorithm %q (want %q or %q)", name, RandomizedKrylov, RandomizedSubspace)
}

// RandomizedSVD approximates the top q singular triplets of the m×n W. It
// returns U m×q, S q (descending), V n×q; deterministic for a given Seed and
// back-end. The default algorithm is randomized block Krylov (see krylov.go):
// block width l = min(q+p, k), niter+1 blocks, 2·niter+1 products with W,
// cost O(mn·l·niter) instead of O(mnk) for a full SVD. RandomizedSubspace is
// Halko, Martinsson & Tropp 2011, Alg. 4.4 with a QR after every product:
//
//	l = min(q+p, k);  Ω: n×l Gaussian (seeded);  Q = qr(W·Ω)
//	repeat niter times:  Q = qr(W·qr(Wᵀ·Q))
//	B = Qᵀ·W (l×n) = Ũ·diag(S)·Vᵀ;  U = Q·Ũ;  keep the first q triplets.
func RandomizedSVD[T Float](w Matrix[T], q int, o RandomizedOptions) (Factors[T], error) {
	return randomizedSVD("", w, q, o)
}

func randomizedSVD[T Float](layer string, w Matrix[T], q int, o RandomizedOptions) (Factors[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Factors[T]{}, err
	}
	return randomizedSVDOf(layer, w, q, o)
}

// randomizedSVDOf is randomizedSVD for a weight already checked.
func randomizedSVDOf[T Float](layer string, w Matrix[T], q int, o RandomizedOptions) (Factors[T], error) {
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
	if _, err := ParseRandomizedAlgorithm(o.Algorithm); err != nil {
		return Factors[T]{}, wrap(err)
	}
	l := min(q+o.oversample(), k)
	if !o.subspace() {
		f, err := krylovSVDOf(backend, w, q, l, o.niter()+1, o.Seed)
		if err != nil {
			return Factors[T]{}, wrap(err)
		}
		return f, nil
	}
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
	return gaussianFrom[T](rand.New(rand.NewPCG(seed, seedStreamRandomized)), rows, cols)
}

// exactWindowFactors returns exact factors holding the window s … s+r−1,
// with the strategy (SVDFull, SVDThin, SVDWindowOnly) asked for.
func exactWindowFactors[T Float](layer string, w Matrix[T], s, r int, backend SVDBackend, strategy string) (Factors[T], error) {
	b, err := backend.resolve()
	if err != nil {
		return Factors[T]{}, err
	}
	windowOnly := strategy == SVDWindowOnly || (strategy != SVDThin && preferWindowSVD[T](w.Rows, w.Cols, s, r))
	if b == BackendLAPACK && windowOnly {
		return windowSVDOf(layer, w, s, r, b)
	}
	return thinSVDOf(layer, w, b)
}

// preferWindowSVD reports whether dgesvdx of only the window beats ?gesdd of
// the whole matrix. Measured (CPU time, one thread, OpenBLAS 0.3.21, ViT-B
// shapes, k = 768): r = 16 takes 0.70–0.88× of sgesdd's time, r = 64 0.9–1.2×,
// r = 192 1.3–2×; dgesvdx runs in double, so against dgesdd it wins for larger
// windows. Small matrices are cheap either way.
func preferWindowSVD[T Float](m, n, s, r int) bool {
	k := min(m, n)
	if isFloat32[T]() {
		return 24*r <= k
	}
	return 12*r <= k
}
