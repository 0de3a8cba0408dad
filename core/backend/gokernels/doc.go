// Package gokernels gives GoMLX's pure-Go backend (simplego) a fast float32
// matrix product.
//
// simplego's DotGeneral runs scalar Go loops over 64×64 blocks padded with
// zeros; the small, oddly shaped products of prism's models (rank-8 LoRA
// factors, 17-token attention, 64-wide layers) waste most of that work. This
// package computes the same products with a packed, register-blocked GEMM
// (BLIS-style: an AVX2/FMA 6×16 micro-kernel in assembly on amd64, a portable
// Go one elsewhere) on up to GOMAXPROCS goroutines of its own.
//
// Installing it (Install, called by package core/backend) replaces simplego's
// DotGeneral executor through go:linkname — GoMLX exposes no hook for it. The
// replacement checks at start-up that simplego's internal layout is the one it
// was written against (GoMLX v0.25.0) and otherwise leaves simplego untouched;
// it handles float32 operands whose batch axes lead and whose contracting and
// cross axes each form one contiguous group, and hands every other case
// (other dtypes, other layouts) back to simplego's own executor.
package gokernels
