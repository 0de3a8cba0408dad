package lowrank

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Initialisation methods (Config.Method).
const (
	MethodLoRA   = "lora"   // A Kaiming-uniform U(−1/√n, 1/√n), B = 0, Wres = W
	MethodPiSSA  = "pissa"  // window s = 0
	MethodMiLoRA = "milora" // window s = k−r
	MethodMid    = "mid"    // window s = ⌊(k−r)/2⌋
	MethodWindow = "window" // window from Config.Window (start or fraction)
	MethodOLoRA  = "olora"  // W = Q·R, B = Q[:, :r], A = R[:r, :]
)

// SVD strategies (Config.SVD).
const (
	// SVDFull (the default, also "") is an exact SVD: the package picks
	// SVDThin or SVDWindowOnly, whichever is faster for the shape and window.
	SVDFull = "full"
	// SVDThin always computes the complete thin SVD (LAPACK ?gesdd, as numpy;
	// gonum Dgesvd) and takes the window from it.
	SVDThin = "thin"
	// SVDWindowOnly computes only the window's triplets exactly (LAPACK
	// dgesvdx with RANGE='I'; with gonum it falls back to SVDThin).
	SVDWindowOnly = "window"
	// SVDRandomized computes the top s+r triplets with RandomizedSVD
	// (randomized block Krylov by default, or Halko–Martinsson–Tropp subspace
	// iteration: Config.Randomized); the fast path when s+r ≪ k.
	SVDRandomized = "randomized"
)

// Methods lists every method Init accepts.
var Methods = []string{MethodLoRA, MethodPiSSA, MethodMiLoRA, MethodMid, MethodWindow, MethodOLoRA}

// Config says how to initialise an adapter. The zero value is invalid (Method
// and Rank are required); Alpha 0 means α = r.
type Config struct {
	Method     string     // lora | pissa | milora | mid | window | olora
	Rank       int        // r ≥ 1
	Alpha      float64    // α > 0; 0 means α = r (scale 1 without rsLoRA)
	RSLoRA     bool       // scale = α/√r instead of α/r
	Window     WindowSpec // where the window starts, for Method "window"
	SVD        string     // full (default: exact, fastest) | thin | window | randomized
	Randomized string     // randomized: krylov (default, also "") | subspace
	NIter      int        // randomized: Krylov steps or power iterations; 0 → the algorithm's default, < 0 → none
	Oversample int        // randomized: extra columns; 0 → the algorithm's default, < 0 → none
	Seed       uint64     // seeds the randomized SVD and LoRA's A
	Backend    SVDBackend // "" (default), lapack, gonum
}

// Scale returns the LoRA scale: α/r, or α/√r with rsLoRA (α = r when Alpha is 0).
func (c Config) Scale() float64 {
	alpha := c.alpha()
	if c.RSLoRA {
		return alpha / math.Sqrt(float64(c.Rank))
	}
	return alpha / float64(c.Rank)
}

func (c Config) alpha() float64 {
	if c.Alpha == 0 {
		return float64(c.Rank)
	}
	return c.Alpha
}

// window returns the window spec the method implies.
func (c Config) window() WindowSpec {
	switch c.Method {
	case MethodPiSSA, MethodMiLoRA, MethodMid:
		return WindowSpec{Preset: c.Method}
	}
	return c.Window
}

// usesSVD reports whether the method initialises from singular components.
func (c Config) usesSVD() bool {
	switch c.Method {
	case MethodPiSSA, MethodMiLoRA, MethodMid, MethodWindow:
		return true
	}
	return false
}

// validate checks the method-independent parts of c for a layer of shape m×n;
// errors name the layer and its shape.
func (c Config) validate(layer string, m, n int) error {
	k := min(m, n)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lowrank: layer %q (%d×%d, k=%d): %s", layer, m, n, k, fmt.Sprintf(format, args...))
	}
	switch c.Method {
	case MethodLoRA, MethodPiSSA, MethodMiLoRA, MethodMid, MethodWindow, MethodOLoRA:
	default:
		return fail("unknown method %q (expected lora, pissa, milora, mid, window or olora)", c.Method)
	}
	if c.Rank < 1 || c.Rank > k {
		return fail("rank r=%d must be in [1, k]", c.Rank)
	}
	if !(c.Alpha >= 0) || math.IsInf(c.Alpha, 0) {
		return fail("alpha %v must be positive (0 means alpha = r)", c.Alpha)
	}
	switch c.SVD {
	case "", SVDFull, SVDThin, SVDWindowOnly, SVDRandomized:
	default:
		return fail("unknown SVD strategy %q (expected full, thin, window or randomized)", c.SVD)
	}
	if _, err := ParseRandomizedAlgorithm(c.Randomized); err != nil {
		return fail("%v", err)
	}
	if _, err := c.Backend.resolve(); err != nil {
		return fail("%v", err)
	}
	return nil
}

// Adapter is an initialised low-rank adapter for one layer:
//
//	W = Base + Scale·B·A   (to rounding),   B: m×r, A: r×n, Base (Wres): m×n.
type Adapter[T Float] struct {
	Layer    string
	Method   string
	Start    int // window start s (0 for lora and olora)
	Rank     int // r
	Alpha    float64
	Scale    float64 // α/r or α/√r
	RSLoRA   bool
	A        Matrix[T] // r×n  (PEFT lora_A.weight)
	B        Matrix[T] // m×r  (PEFT lora_B.weight)
	Base     Matrix[T] // m×n  Wres = W − Scale·B·A (a copy of W for lora)
	Singular []float64 // σ_s … σ_{s+r−1} of W for window methods, nil otherwise
}

// Init initialises an adapter for the m×n weight w of the named layer as
// DESIGN §1: for window methods, with the thin SVD W = U·diag(S)·Vᵀ and the
// resolved window start s,
//
//	Sr = S[s:s+r]/scale,  B = U[:, s:s+r]·diag(√Sr),  A = diag(√Sr)·Vᵀ[s:s+r, :],
//	Wres = W − scale·B·A  (from the actual A and B; one rank-r GEMM update);
//
// lora: A ~ U(−1/√n, 1/√n) (PEFT's kaiming_uniform_(a=√5)), B = 0, Wres = W;
// olora: W = Q·R (reduced QR), B = Q[:, :r], A = R[:r, :], Wres = W − scale·B·A.
// w is not modified. Errors name the layer.
func Init[T Float](layer string, w Matrix[T], c Config) (Adapter[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Adapter[T]{}, err
	}
	if err := c.validate(layer, w.Rows, w.Cols); err != nil {
		return Adapter[T]{}, err
	}
	switch c.Method {
	case MethodLoRA:
		return initLoRA(layer, w, c), nil
	case MethodOLoRA:
		return initOLoRA(layer, w, c)
	}
	s, err := c.window().Resolve(layer, w.Rows, w.Cols, c.Rank)
	if err != nil {
		return Adapter[T]{}, err
	}
	var f Factors[T]
	if c.SVD == SVDRandomized {
		f, err = randomizedSVDOf(layer, w, s+c.Rank, c.randomizedOptions())
	} else {
		f, err = exactWindowFactors(layer, w, s, c.Rank, c.Backend, c.SVD)
	}
	if err != nil {
		return Adapter[T]{}, err
	}
	return initFromSVD(layer, w, f, c)
}

func (c Config) randomizedOptions() RandomizedOptions {
	return RandomizedOptions{Algorithm: c.Randomized, NIter: c.NIter, Oversample: c.Oversample, Seed: c.Seed, Backend: c.Backend}
}

// InitFromSVD is Init for a window method reusing precomputed factors of w
// (from ThinSVD, WindowSVD or RandomizedSVD): f must hold the triplets
// s … s+r−1 of the resolved window (f.Offset ≤ s, s+r ≤ f.Offset+f.Len()).
func InitFromSVD[T Float](layer string, w Matrix[T], f Factors[T], c Config) (Adapter[T], error) {
	if err := checkWeight(layer, w); err != nil {
		return Adapter[T]{}, err
	}
	return initFromSVD(layer, w, f, c)
}

// initFromSVD is InitFromSVD for a weight already checked.
func initFromSVD[T Float](layer string, w Matrix[T], f Factors[T], c Config) (Adapter[T], error) {
	if err := c.validate(layer, w.Rows, w.Cols); err != nil {
		return Adapter[T]{}, err
	}
	if !c.usesSVD() {
		return Adapter[T]{}, fmt.Errorf("lowrank: layer %q: method %q does not initialise from an SVD", layer, c.Method)
	}
	m, n, r := w.Rows, w.Cols, c.Rank
	s, err := c.window().Resolve(layer, m, n, r)
	if err != nil {
		return Adapter[T]{}, err
	}
	q := f.Len()
	if f.U.Rows != m || f.U.Cols != q || len(f.U.Data) != m*q || f.V.Rows != n || f.V.Cols != q || len(f.V.Data) != n*q {
		return Adapter[T]{}, fmt.Errorf("lowrank: layer %q (%d×%d): factors have U %d×%d, %d values, V %d×%d; expected U %d×%d and V %d×%d",
			layer, m, n, f.U.Rows, f.U.Cols, q, f.V.Rows, f.V.Cols, m, q, n, q)
	}
	if f.Offset > s || s+r > f.Offset+q {
		return Adapter[T]{}, fmt.Errorf("lowrank: layer %q (%d×%d): factors hold triplets %d…%d, window needs s=%d r=%d (%d…%d)",
			layer, m, n, f.Offset, f.Offset+q-1, s, r, s, s+r-1)
	}
	scale := c.Scale()
	a := NewMatrix[T](r, n)
	b := NewMatrix[T](m, r)
	sing := make([]float64, r)
	lo := s - f.Offset
	for t := 0; t < r; t++ {
		sigma := float64(f.S[lo+t])
		if sigma < 0 || math.IsNaN(sigma) {
			return Adapter[T]{}, fmt.Errorf("lowrank: layer %q: singular value %d is %v", layer, s+t, sigma)
		}
		sing[t] = sigma
		root := math.Sqrt(sigma / scale)
		for i := 0; i < m; i++ {
			b.Data[i*r+t] = T(float64(f.U.Data[i*q+lo+t]) * root)
		}
		for j := 0; j < n; j++ {
			a.Data[t*n+j] = T(root * float64(f.V.Data[j*q+lo+t]))
		}
	}
	backend, _ := c.Backend.resolve()
	return Adapter[T]{
		Layer: layer, Method: c.Method, Start: s, Rank: r,
		Alpha: c.alpha(), Scale: scale, RSLoRA: c.RSLoRA,
		A: a, B: b, Base: residual(backend, w, b, a, scale), Singular: sing,
	}, nil
}

// initLoRA: A ~ U(−1/√n, 1/√n) from a PCG stream seeded by c.Seed, B = 0,
// Base = copy of W.
func initLoRA[T Float](layer string, w Matrix[T], c Config) Adapter[T] {
	m, n, r := w.Rows, w.Cols, c.Rank
	rng := rand.New(rand.NewPCG(c.Seed, seedStreamLoRA))
	bound := 1 / math.Sqrt(float64(n))
	a := NewMatrix[T](r, n)
	for i := range a.Data {
		a.Data[i] = T((2*rng.Float64() - 1) * bound)
	}
	return Adapter[T]{
		Layer: layer, Method: c.Method, Rank: r,
		Alpha: c.alpha(), Scale: c.Scale(), RSLoRA: c.RSLoRA,
		A: a, B: NewMatrix[T](m, r), Base: w.Clone(),
	}
}

// initOLoRA follows PEFT's olora_init: Q, R = qr(W) (reduced), B = Q[:, :r],
// A = R[:r, :], Wres = W − scale·B·A.
func initOLoRA[T Float](layer string, w Matrix[T], c Config) (Adapter[T], error) {
	backend, _ := c.Backend.resolve()
	q, rr, err := reducedQR(backend, w)
	if err != nil {
		return Adapter[T]{}, fmt.Errorf("lowrank: layer %q (%d×%d): olora QR: %w", layer, w.Rows, w.Cols, err)
	}
	r := c.Rank
	b := columns(q, 0, r)
	a := Matrix[T]{Rows: r, Cols: w.Cols, Data: append([]T(nil), rr.Data[:r*w.Cols]...)}
	scale := c.Scale()
	return Adapter[T]{
		Layer: layer, Method: c.Method, Rank: r,
		Alpha: c.alpha(), Scale: scale, RSLoRA: c.RSLoRA,
		A: a, B: b, Base: residual(backend, w, b, a, scale),
	}, nil
}

// Distinct PCG streams so the same Seed gives independent draws per use.
const (
	seedStreamLoRA       = 0x4c6f5241 // "LoRA"
	seedStreamRandomized = 0x52535644 // "RSVD"
)
