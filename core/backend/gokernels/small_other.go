//go:build !amd64 || purego

package gokernels

type smallKernelFunc func(k int, a *float32, lda, kstride int, bp, c *float32, ldc int, mask *int32)

var smallKernels [6][3]smallKernelFunc

func hasSmallKernels() bool { return false }

func lastVectorMask(int) *int32 { return nil }

func transpose8x8([]float32, int, []float32, int) bool { return false }
