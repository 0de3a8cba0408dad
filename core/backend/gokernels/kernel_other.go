//go:build !amd64 || purego

package gokernels

const hasAVX2FMA = false

var useAsm = false

func microKernel(k int, ap, bp, c []float32, ldc int) { microKernelGo(k, ap, bp, c, ldc) }

func microKernel8(k int, ap, bp, c []float32, ldc int) { microKernelGo8(k, ap, bp, c, ldc) }

// KernelName says which micro-kernel is in use.
func KernelName() string { return "go 6x16" }

func expChunk(out, in []float32) { expChunkGo(out, in) }
func erfChunk(out, in []float32) { erfChunkGo(out, in) }

func hasDirectKernel() bool { return false }

func microKernelDirect(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc int) {
	panic("gokernels: no direct kernel on this platform")
}

var simdLoops = map[string]vecLoop{}

func sumVec(x []float32) float32 { return sum32(x) }

func fillVec(out []float32, v float32) {
	for i := range out {
		out[i] = v
	}
}

func hasEdgeKernel() bool { return false }

func microKernelEdge(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc, rows, cols int) {
	panic("gokernels: no edge kernel on this platform")
}

func sqrtVec(out, in []float32) int { return 0 }

func signVec(out, in []float32) int { return 0 }

func microKernelDirectStore(w, k int, a []float32, lda, kstride int, bp, c []float32, ldc int) {
	panic("gokernels: no direct kernel on this platform")
}
