//go:build amd64 && !purego

package gokernels

// AVX2 elementwise loops (binary_amd64.s); n must be a multiple of 8.

//go:noescape
func addVVAVX2(out, a, b *float32, n int)

//go:noescape
func addVSAVX2(out, a, b *float32, n int)

//go:noescape
func subVVAVX2(out, a, b *float32, n int)

//go:noescape
func subVSAVX2(out, a, b *float32, n int)

//go:noescape
func subSVAVX2(out, a, b *float32, n int)

//go:noescape
func mulVVAVX2(out, a, b *float32, n int)

//go:noescape
func mulVSAVX2(out, a, b *float32, n int)

//go:noescape
func divVVAVX2(out, a, b *float32, n int)

//go:noescape
func divVSAVX2(out, a, b *float32, n int)

//go:noescape
func divSVAVX2(out, a, b *float32, n int)

//go:noescape
func sumAVX2(x *float32, n int) float32

var simdLoops = map[string]vecLoop{
	"addVV": addVVAVX2, "addVS": addVSAVX2,
	"subVV": subVVAVX2, "subVS": subVSAVX2, "subSV": subSVAVX2,
	"mulVV": mulVVAVX2, "mulVS": mulVSAVX2,
	"divVV": divVVAVX2, "divVS": divVSAVX2, "divSV": divSVAVX2,
}

// sumVec is sum32 with AVX2 for the leading multiple of 8 elements.
func sumVec(x []float32) float32 {
	n := len(x) &^ 7
	if !useAsm || n == 0 {
		return sum32(x)
	}
	return sumAVX2(&x[0], n) + sum32(x[n:])
}

//go:noescape
func fillAVX2(out *float32, v float32, n int)

// fillVec sets every element of out to v.
func fillVec(out []float32, v float32) {
	n := len(out) &^ 7
	if useAsm && n > 0 {
		fillAVX2(&out[0], v, n)
	}
	for i := n; i < len(out); i++ {
		out[i] = v
	}
}

//go:noescape
func sqrtAVX2(out, in *float32, n int)

// sqrtVec computes out = √in with VSQRTPS (correctly rounded, like
// float32(math.Sqrt(float64(x)))) over the leading multiple of 8 elements.
func sqrtVec(out, in []float32) int {
	n := len(in) &^ 7
	if !useAsm || n == 0 {
		return 0
	}
	sqrtAVX2(&out[0], &in[0], n)
	return n
}

//go:noescape
func signAVX2(out, in *float32, n int)

// signVec computes out = sign(in) (−1, 0 or 1; 0 for NaN, like simplego)
// without branches over the leading multiple of 8 elements.
func signVec(out, in []float32) int {
	n := len(in) &^ 7
	if !useAsm || n == 0 {
		return 0
	}
	signAVX2(&out[0], &in[0], n)
	return n
}
