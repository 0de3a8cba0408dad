package gokernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naive computes C_b = A_b·B_bᵀ in float64.
func naive(p Problem) []float64 {
	out := make([]float64, p.Batch*p.M*p.N)
	for b := range p.Batch {
		for i := range p.M {
			for j := range p.N {
				s := 0.0
				for q := range p.K {
					s += float64(p.A.Data[b*p.A.Batch+i*p.A.Row+q*p.A.Col]) * float64(p.B.Data[b*p.B.Batch+j*p.B.Row+q*p.B.Col])
				}
				out[(b*p.M+i)*p.N+j] = s
			}
		}
	}
	return out
}

// randomOperand lays out batch matrices rows×k either row-major (rows, k) or
// k-major (k, rows).
func randomOperand(rng *rand.Rand, batch, rows, k int, kMajor bool) Operand {
	data := make([]float32, batch*rows*k)
	for i := range data {
		data[i] = rng.Float32()*2 - 1
	}
	if kMajor {
		return Operand{Data: data, Batch: rows * k, Row: 1, Col: rows}
	}
	return Operand{Data: data, Batch: rows * k, Row: k, Col: 1}
}

func checkGemm(t *testing.T, p Problem) {
	t.Helper()
	want := naive(p)
	Gemm(p)
	for i, w := range want {
		if d := math.Abs(float64(p.C[i]) - w); d > 1e-5*float64(p.K)+1e-6 {
			t.Fatalf("batch %d %d×%d×%d: C[%d] = %g, want %g", p.Batch, p.M, p.N, p.K, i, p.C[i], w)
		}
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	for _, asm := range []bool{true, false} {
		if asm && !hasAVX2FMA {
			continue
		}
		t.Run(fmt.Sprintf("asm=%v", asm), func(t *testing.T) {
			saved := useAsm
			useAsm = asm
			defer func() { useAsm = saved }()
			rng := rand.New(rand.NewPCG(1, 2))
			sizes := []int{1, 2, 5, 6, 7, 15, 16, 17, 33, 64, 73, 130}
			for range 150 {
				batch := 1 + rng.IntN(3)
				m, n := sizes[rng.IntN(len(sizes))], sizes[rng.IntN(len(sizes))]
				k := []int{1, 3, 8, 16, 64, 255, 256, 257, 600}[rng.IntN(9)]
				p := Problem{Batch: batch, M: m, N: n, K: k,
					A: randomOperand(rng, batch, m, k, rng.IntN(2) == 0),
					B: randomOperand(rng, batch, n, k, rng.IntN(2) == 0),
					C: make([]float32, batch*m*n)}
				for i := range p.C {
					p.C[i] = float32(math.NaN()) // MatMul must overwrite C
				}
				checkGemm(t, p)
			}
			// Large enough to take the parallel paths (rows split and batch split).
			checkGemm(t, Problem{Batch: 1, M: 500, N: 190, K: 70, A: randomOperand(rng, 1, 500, 70, false), B: randomOperand(rng, 1, 190, 70, true), C: make([]float32, 500*190)})
			// Few rows, long contraction: the split-K path (weight gradients).
			checkGemm(t, Problem{Batch: 1, M: 8, N: 64, K: 2176, A: randomOperand(rng, 1, 8, 2176, true), B: randomOperand(rng, 1, 64, 2176, true), C: make([]float32, 8*64)})
			checkGemm(t, Problem{Batch: 1, M: 70, N: 9, K: 1500, A: randomOperand(rng, 1, 70, 1500, false), B: randomOperand(rng, 1, 9, 1500, true), C: make([]float32, 70*9)})
			checkGemm(t, Problem{Batch: 9, M: 40, N: 50, K: 70, A: randomOperand(rng, 9, 40, 70, true), B: randomOperand(rng, 9, 50, 70, false), C: make([]float32, 9*40*50)})
		})
	}
}

func benchGemm(b *testing.B, batch, m, n, k int, aKMajor, bKMajor bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := Problem{Batch: batch, M: m, N: n, K: k, A: randomOperand(rng, batch, m, k, aKMajor), B: randomOperand(rng, batch, n, k, bKMajor), C: make([]float32, batch*m*n)}
	b.ResetTimer()
	for range b.N {
		Gemm(p)
	}
	b.ReportMetric(2*float64(batch*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// The shapes of the default ViT at batch 128 (2176 tokens of width 64).
func BenchmarkQKV(b *testing.B)       { benchGemm(b, 1, 2176, 192, 64, false, false) }
func BenchmarkQKVGradX(b *testing.B)  { benchGemm(b, 1, 2176, 64, 192, false, true) }
func BenchmarkQKVGradW(b *testing.B)  { benchGemm(b, 1, 192, 64, 2176, true, true) }
func BenchmarkLoRAGradA(b *testing.B) { benchGemm(b, 1, 8, 64, 2176, true, true) }
func BenchmarkLoRAGradB(b *testing.B) { benchGemm(b, 1, 192, 8, 2176, true, true) }
func BenchmarkLoRADown(b *testing.B)  { benchGemm(b, 1, 2176, 8, 64, false, false) }
func BenchmarkAttention(b *testing.B) { benchGemm(b, 512, 17, 17, 16, false, false) }
func BenchmarkMLP784(b *testing.B)    { benchGemm(b, 1, 128, 256, 784, false, false) }
func BenchmarkSquare512(b *testing.B) { benchGemm(b, 1, 512, 512, 512, false, false) }

// BenchmarkMicroKernel measures the 6×16 micro-kernel alone on cached data
// (one core): the ceiling of the GEMM.
func BenchmarkMicroKernel(b *testing.B) {
	const k = 256
	ap, bp, c := make([]float32, k*mr), make([]float32, k*nr), make([]float32, mr*nr)
	for i := range ap {
		ap[i] = 1e-3
	}
	for i := range bp {
		bp[i] = 1e-3
	}
	b.ResetTimer()
	for range b.N {
		microKernel(k, ap, bp, c, nr)
	}
	b.ReportMetric(2*float64(k*mr*nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// TestSmallGemmMatchesNaive covers smallGemm (many small matrices, N ≤ 24,
// K ≤ 64, M ≤ 64) in every operand layout, with row counts that leave 1–3
// rows after the 4-row blocks and widths that leave 1–8 lanes in the last
// vector; C starts as NaN (smallGemm overwrites it).
func TestSmallGemmMatchesNaive(t *testing.T) {
	if !hasSmallKernels() {
		t.Skip("no small-matrix kernels on this platform")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 7, 8, 9, 16, 17, 24} {
		for _, m := range []int{1, 3, 4, 6, 17, 64} {
			for _, k := range []int{1, 5, 16, 17, 64} {
				aK, bK := rng.IntN(2) == 0, rng.IntN(2) == 0
				batch := 8 + rng.IntN(9)
				p := Problem{Batch: batch, M: m, N: n, K: k,
					A: randomOperand(rng, batch, m, k, aK), B: randomOperand(rng, batch, n, k, bK),
					C: make([]float32, batch*m*n)}
				for i := range p.C {
					p.C[i] = float32(math.NaN())
				}
				if !useSmallGemm(p, 2) {
					t.Fatalf("%d×%d×%d batch %d: not a small product", m, n, k, batch)
				}
				checkGemm(t, p)
			}
		}
	}
	// The attention shapes of the default ViT, at batch 512.
	for _, s := range [][5]int{{17, 17, 16, 0, 0}, {17, 16, 17, 0, 1}, {17, 16, 17, 1, 1}, {17, 17, 16, 1, 0}} {
		p := Problem{Batch: 512, M: s[0], N: s[1], K: s[2],
			A: randomOperand(rng, 512, s[0], s[2], s[3] == 1), B: randomOperand(rng, 512, s[1], s[2], s[4] == 1),
			C: make([]float32, 512*s[0]*s[1])}
		checkGemm(t, p)
	}
}

// BenchmarkAttentionValues is att·v (and the gradients' products of that
// shape): 512 products 17×16 over 17, B k-major.
func BenchmarkAttentionValues(b *testing.B) { benchGemm(b, 512, 17, 16, 17, false, true) }
