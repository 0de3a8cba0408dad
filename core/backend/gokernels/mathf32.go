package gokernels

import (
	"math"
)

// Float32 elementary functions for the hot unary ops. Each computes in
// float64 and rounds once to float32, so results are within one float32 ulp
// of the correctly rounded value (tested against package math).

// expf returns e^x for a float32 x: with n = round(32·x/ln2) = 32·m + j,
// e^x = 2^m · 2^(j/32) · e^r, |r| ≤ ln2/64, e^r by its cubic Taylor
// polynomial (truncation < 6e-10 relative) and 2^(j/32) from a table.
func expf(x float32) float32 {
	switch {
	case x != x: // NaN
		return x
	case x > 89:
		return float32(math.Inf(1))
	case x < -104:
		return 0
	}
	const magic = 0x1.8p52 // adding it rounds to an integer held in the low mantissa bits
	xd := float64(x)
	v := xd*(32/math.Ln2) + magic
	n := int64(math.Float64bits(v)<<13) >> 13 // the rounded integer, sign-extended from 51 bits
	r := xd - (v-magic)*(math.Ln2/32)
	p := 1 + r + r*r*(0.5+r*(1.0/6))
	scale := math.Float64frombits(uint64(n>>5+1023) << 52)
	return float32(p * exp2Table[n&31] * scale)
}

// exp2Table[j] = 2^(j/32).
var exp2Table = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return
}()

// erf on [0, erfLimit) by piecewise polynomials in t ∈ [−1, 1] over intervals
// of width erfStep; beyond erfLimit, erf(x) rounds to ±1 in float32
// (1 − erf(4) ≈ 1.5e-8 < half an ulp of 1).
const (
	erfStep   = 0.25
	erfLimit  = 4.0
	erfDegree = 7
	erfPieces = int(erfLimit / erfStep)
)

// erfCoeffs[k] are the monomial coefficients (in t) of the Chebyshev
// interpolant of math.Erf on [k·erfStep, (k+1)·erfStep], built at start-up.
var erfCoeffs = fitPieces(math.Erf, erfPieces, erfStep, erfDegree)

// fitPieces interpolates f on each interval [k·step, (k+1)·step] and returns,
// per interval, the coefficients of Σ c_i·tⁱ with x = (k + ½ + t/2)·step.
func fitPieces(f func(float64) float64, pieces int, step float64, degree int) [][]float64 {
	out := make([][]float64, pieces)
	for k := range pieces {
		out[k] = chebFit(f, float64(k)*step, float64(k+1)*step, degree)
	}
	return out
}

// chebFit interpolates f at the degree+1 Chebyshev nodes of [lo, hi] and
// returns the interpolant's coefficients c (constant first) in the variable
// t ∈ [−1, 1], x = lo + (t+1)/2·(hi−lo): f(x) ≈ Σ c_i·tⁱ.
func chebFit(f func(float64) float64, lo, hi float64, degree int) []float64 {
	n := degree + 1
	vals := make([]float64, n)
	for i := range n {
		t := math.Cos(math.Pi * (float64(i) + 0.5) / float64(n))
		vals[i] = f(lo + (t+1)/2*(hi-lo))
	}
	// Chebyshev coefficients a_j = (2/n)·Σ_i f_i·T_j(t_i) (a_0 halved).
	cheb := make([]float64, n)
	for j := range n {
		s := 0.0
		for i := range n {
			s += vals[i] * math.Cos(math.Pi*float64(j)*(float64(i)+0.5)/float64(n))
		}
		cheb[j] = 2 * s / float64(n)
	}
	cheb[0] /= 2
	// Σ a_j·T_j(t) in monomials: T_0 = 1, T_1 = t, T_{j+1} = 2t·T_j − T_{j−1}.
	mono := make([]float64, n)
	prev, cur := make([]float64, n), make([]float64, n)
	prev[0] = 1
	if n > 1 {
		cur[1] = 1
	}
	for j := range n {
		var tj []float64
		switch j {
		case 0:
			tj = prev
		case 1:
			tj = cur
		default:
			next := make([]float64, n)
			for i := 0; i+1 < n; i++ {
				next[i+1] += 2 * cur[i]
			}
			for i := range n {
				next[i] -= prev[i]
			}
			prev, cur = cur, next
			tj = cur
		}
		for i := range n {
			mono[i] += cheb[j] * tj[i]
		}
	}
	return mono
}

// erff returns erf(x) for a float32 x.
func erff(x float32) float32 {
	if x != x {
		return x
	}
	a := math.Abs(float64(x))
	if a >= erfLimit {
		return float32(math.Copysign(1, float64(x)))
	}
	if a < erfStep {
		// Odd Maclaurin series, relative error < 1e-12 here (keeps tiny x exact).
		x2 := a * a
		p := 1 + x2*(-1.0/3+x2*(1.0/10+x2*(-1.0/42+x2*(1.0/216+x2*(-1.0/1320+x2*(1.0/9360))))))
		return float32(math.Copysign(2/math.SqrtPi*a*p, float64(x)))
	}
	k := int(a * (1 / erfStep))
	t := (a/erfStep-float64(k))*2 - 1
	c := (*[erfDegree + 1]float64)(erfCoeffs[k])
	// Estrin's scheme: shorter dependency chains than Horner's.
	t2 := t * t
	t4 := t2 * t2
	p := (c[0] + c[1]*t) + t2*(c[2]+c[3]*t) + t4*((c[4]+c[5]*t)+t2*(c[6]+c[7]*t))
	return float32(math.Copysign(p, float64(x)))
}
