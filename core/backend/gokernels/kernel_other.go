//go:build !amd64 || purego

package gokernels

const hasAVX2FMA = false

var useAsm = false

func microKernel(k int, ap, bp, c []float32, ldc int) { microKernelGo(k, ap, bp, c, ldc) }

// KernelName says which micro-kernel is in use.
func KernelName() string { return "go 6x16" }
