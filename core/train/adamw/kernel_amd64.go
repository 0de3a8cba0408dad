//go:build amd64 && !purego

package adamw

import "golang.org/x/sys/cpu"

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// adamwAVX2 is in kernel_amd64.s: adamwStep on n elements, n a multiple of
// 8, with k = {s, β1, 1−β1, β2, 1−β2, lrDebiased, debias2, ε, lrDecay} in
// float32 (the products β·m + (1−β)·g are fused multiply-adds).
//
//go:noescape
func adamwAVX2(theta, grad, m, v *float32, n int, k *[9]float32)

// adamwStep32 is adamwStep for float32: AVX2/FMA over multiples of 8
// elements, the Go loop for the rest.
func adamwStep32(theta, g, m, v []float32, c coefficients) {
	n := len(theta)
	g, m, v = g[:n], m[:n], v[:n]
	vec := n &^ 7
	if hasAVX2FMA && vec > 0 {
		b1, b2 := float32(c.beta1), float32(c.beta2)
		k := [9]float32{float32(c.clip), b1, 1 - b1, b2, 1 - b2,
			float32(c.lrDebiased), float32(c.debias2), float32(c.eps), float32(c.lrDecay)}
		adamwAVX2(&theta[0], &g[0], &m[0], &v[0], vec, &k)
	} else {
		vec = 0
	}
	adamwStep(theta[vec:], g[vec:], m[vec:], v[vec:], c)
}
