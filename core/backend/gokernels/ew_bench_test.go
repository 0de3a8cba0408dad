package gokernels

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
)

func benchGraph(b *testing.B, fn func(x, y *Node) *Node, xd, yd []int) {
	if err := Install(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := randTensor(rng, xd), randTensor(rng, yd)
	exec := MustNewExec(testBackend, fn)
	if _, err := exec.Exec(x, y); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		out, err := exec.Exec(x, y)
		if err != nil {
			b.Fatal(err)
		}
		out[0].FinalizeAll()
	}
}

// Ten chained adds of [128,17,64] tensors: the cost of elementwise ops
// inside a graph (per op: ~139k elements).
func BenchmarkAddChain(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			x = Add(x, y)
		}
		return x
	}, []int{128, 17, 64}, []int{128, 17, 64})
}

func BenchmarkAddBiasChain(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			x = Add(x, y)
		}
		return x
	}, []int{128, 17, 64}, []int{1, 1, 64})
}

func BenchmarkRawAdd(b *testing.B) {
	n := 128 * 17 * 64
	x, y, z := make([]float32, n), make([]float32, n), make([]float32, n)
	for range b.N {
		for range 10 {
			addRun(z, x, y, 1, 1)
		}
	}
}
