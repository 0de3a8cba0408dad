//go:build amd64 && !purego

package gokernels

import "math"

// expAVX2 and erfAVX2 are in unary_amd64.s; n must be a multiple of 8.
//
//go:noescape
func expAVX2(out, in *float32, n int)

//go:noescape
func erfAVX2(out, in *float32, n int, small, large *float32)

// Coefficients of erfAVX2's polynomials (constant term first), each
// replicated over 8 lanes:
//
//	erfSmall: erf(a)/a as a polynomial in 2a² − 1 on a ∈ [0, 1]
//	erfLarge: e^(a²)·erfc(a) as a polynomial in (a − 2.5)/1.5 on a ∈ [1, 4]
var erfSmall, erfLarge = replicate8(chebFit(func(s float64) float64 {
	if s == 0 {
		return 2 / math.SqrtPi
	}
	a := math.Sqrt(s)
	return math.Erf(a) / a
}, 0, 1, 7)), replicate8(chebFit(func(a float64) float64 {
	return math.Erfc(a) * math.Exp(a*a)
}, 1, 4, 11))

func replicate8(c []float64) []float32 {
	out := make([]float32, 8*len(c))
	for i, v := range c {
		for l := range 8 {
			out[8*i+l] = float32(v)
		}
	}
	return out
}

// vectorized runs the 8-lane kernel over in, the ragged tail through an
// 8-element scratch so that every element gets the same arithmetic.
func vectorized(out, in []float32, kernel func(out, in *float32, n int)) {
	n := len(in) &^ 7
	if n > 0 {
		kernel(&out[0], &in[0], n)
	}
	if n < len(in) {
		var a, b [8]float32
		copy(a[:], in[n:])
		kernel(&b[0], &a[0], 8)
		copy(out[n:], b[:len(in)-n])
	}
}

func expChunk(out, in []float32) {
	if !useAsm {
		expChunkGo(out, in)
		return
	}
	vectorized(out, in, expAVX2)
}

func erfChunk(out, in []float32) {
	if !useAsm {
		erfChunkGo(out, in)
		return
	}
	vectorized(out, in, func(o, i *float32, n int) { erfAVX2(o, i, n, &erfSmall[0], &erfLarge[0]) })
}
