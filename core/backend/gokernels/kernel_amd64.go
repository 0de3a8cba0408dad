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

//go:noescape
func kernel6x8AVX2(k int, ap, bp, c *float32, ldc int)

// microKernel8 is microKernel for a panel of nr/2 = 8 columns (Bp: k×8).
func microKernel8(k int, ap, bp, c []float32, ldc int) {
	if useAsm && k > 0 {
		_ = ap[k*mr-1]
		_ = bp[k*nr/2-1]
		_ = c[5*ldc+nr/2-1]
		kernel6x8AVX2(k, &ap[0], &bp[0], &c[0], ldc)
		return
	}
	microKernelGo8(k, ap, bp, c, ldc)
}

//go:noescape
func kernel6x16DirectAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int)

//go:noescape
func kernel6x8DirectAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int)

//go:noescape
func kernel6x16DirectStoreAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int)

//go:noescape
func kernel6x8DirectStoreAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int)

// microKernelDirectStore is microKernelDirect overwriting C (C = A·Bp)
// instead of adding to it.
func microKernelDirectStore(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc int) {
	_ = a[5*lda+(k-1)*kstride]
	_ = bp[k*w-1]
	_ = c[5*ldc+w-1]
	if w == nr {
		kernel6x16DirectStoreAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc)
	} else {
		kernel6x8DirectStoreAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc)
	}
}

// hasDirectKernel reports whether microKernelDirect is available.
func hasDirectKernel() bool { return useAsm }

// microKernelDirect is microKernel (w = 16) or microKernel8 (w = 8) reading
// six rows of A in place: A(i, q) at a[i·lda + q·kstride].
func microKernelDirect(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc int) {
	_ = a[5*lda+(k-1)*kstride]
	_ = bp[k*w-1]
	_ = c[5*ldc+w-1]
	if w == nr {
		kernel6x16DirectAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc)
	} else {
		kernel6x8DirectAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc)
	}
}

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

//go:noescape
func kernel6x16EdgeAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc, rows int, mask *int32)

//go:noescape
func kernel6x8EdgeAVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc, rows int, mask *int32)

// edgeMasks[16−cols:] starts with cols −1s (keep) followed by zeros.
var edgeMasks = func() (m [2 * nr]int32) {
	for i := range nr {
		m[i] = -1
	}
	return
}()

// hasEdgeKernel reports whether microKernelEdge is available.
func hasEdgeKernel() bool { return useAsm }

// microKernelEdge is the micro-kernel for an edge tile: C's first rows rows
// and cols columns (of a w-wide panel) get += A·Bp, with A(i, q) at
// a[i·lda + q·kstride] (rows beyond rows are never read when lda, kstride
// address a zero-padded packed panel or rows = mr).
func microKernelEdge(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc, rows, cols int) {
	_ = a[5*lda+(k-1)*kstride]
	_ = bp[k*w-1]
	_ = c[(rows-1)*ldc+cols-1]
	mask := &edgeMasks[nr-cols]
	if w == nr {
		kernel6x16EdgeAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc, rows, mask)
	} else {
		kernel6x8EdgeAVX2(k, &a[0], lda, kstride, &bp[0], &c[0], ldc, rows, mask)
	}
}
