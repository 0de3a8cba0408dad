//go:build amd64 && !purego

package gokernels

// Small-matrix kernels (small_amd64.s), by rows and vectors.

//go:noescape
func smallKernel1x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel2x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel3x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel4x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel5x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel6x1AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel1x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel2x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel3x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel4x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel5x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel6x2AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel1x3AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel2x3AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel3x3AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

//go:noescape
func smallKernel4x3AVX2(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

type smallKernelFunc func(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

// smallKernels[R−1][V−1] computes R rows of V vectors (nil: no such kernel;
// smallRows(V) rows at most).
var smallKernels = [6][3]smallKernelFunc{
	{smallKernel1x1AVX2, smallKernel1x2AVX2, smallKernel1x3AVX2},
	{smallKernel2x1AVX2, smallKernel2x2AVX2, smallKernel2x3AVX2},
	{smallKernel3x1AVX2, smallKernel3x2AVX2, smallKernel3x3AVX2},
	{smallKernel4x1AVX2, smallKernel4x2AVX2, smallKernel4x3AVX2},
	{smallKernel5x1AVX2, smallKernel5x2AVX2, nil},
	{smallKernel6x1AVX2, smallKernel6x2AVX2, nil},
}

// hasSmallKernels reports whether smallGemm can run here.
func hasSmallKernels() bool { return useAsm }

// lastVectorMask is the lane mask of the first lanes (1…8) of a vector.
func lastVectorMask(lanes int) *int32 { return &edgeMasks[nr-lanes] }

//go:noescape
func transpose8x8AVX2(src *float32, lds int, dst *float32, ldd int)

// transpose8x8 sets dst[q·ldd + r] = src[r·lds + q] for r, q < 8 and
// reports true, or reports false (nothing done) without the kernel.
func transpose8x8(src []float32, lds int, dst []float32, ldd int) bool {
	if !useAsm {
		return false
	}
	_ = src[7*lds+7]
	_ = dst[7*ldd+7]
	transpose8x8AVX2(&src[0], lds, &dst[0], ldd)
	return true
}
