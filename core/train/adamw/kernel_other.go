//go:build !amd64 || purego

package adamw

// adamwStep32 is adamwStep for float32.
func adamwStep32(theta, g, m, v []float32, c coefficients) { adamwStep(theta, g, m, v, c) }
