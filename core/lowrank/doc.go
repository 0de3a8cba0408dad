// Package lowrank computes singular value decompositions of weight matrices and
// initialises low-rank adapters from any window of their singular components.
//
// Notation follows HuggingFace PEFT: a linear layer computes y = x·Wᵀ with W of
// shape out×in (m×n), k = min(m, n). A LoRA adapter adds scale·B·A with
// B: m×r, A: r×n and scale = α/r (or α/√r with rsLoRA).
//
// Window initialisation: with the thin SVD W = U·diag(S)·Vᵀ (S descending) and a
// window of r components starting at s (0 ≤ s, s+r ≤ k),
//
//	Sr   = S[s:s+r] / scale
//	B    = U[:, s:s+r] · diag(√Sr)      (m×r)
//	A    = diag(√Sr) · Vᵀ[s:s+r, :]      (r×n)
//	Wres = W − scale·B·A                 (m×n, frozen; from the actual A and B)
//
// so that Wres + scale·B·A reproduces W to rounding. PiSSA is s = 0, MiLoRA is
// s = k−r, "mid" is s = ⌊(k−r)/2⌋.
//
// Two SVD back-ends pass the same property suite (package lowranktest): LAPACK
// (OpenBLAS through LAPACKE, ?gesdd/?gesvdx; the default when built with cgo) and
// gonum (pure Go, float64; float32 is converted). Build with CGO_ENABLED=0 (or
// the tag nolapack) for the pure-Go path only.
//
// The package is plain Go plus gonum; it imports no GoMLX.
package lowrank
