//go:build amd64 && !purego

package gokernels

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether the assembly micro-kernel can run here.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16AVX2 is microKernel in AVX2/FMA assembly (kernel_amd64.s):
// C[6×16] += Ap·Bp, Ap: k×6, Bp: k×16 (k-major), C rows ldc floats apart.
//
//go:noescape
func kernel6x16AVX2(k int, ap, bp, c *float32, ldc int)

func microKernel(k int, ap, bp, c []float32, ldc int) {
	if useAsm && k > 0 {
		_ = ap[k*mr-1]
		_ = bp[k*nr-1]
		_ = c[5*ldc+nr-1]
		kernel6x16AVX2(k, &ap[0], &bp[0], &c[0], ldc)
		return
	}
	microKernelGo(k, ap, bp, c, ldc)
}

// useAsm selects the assembly micro-kernel (tests switch it off to compare).
var useAsm = hasAVX2FMA

// KernelName says which micro-kernel is in use.
func KernelName() string {
	if useAsm {
		return "avx2-fma 6x16"
	}
	return "go 6x16"
}
