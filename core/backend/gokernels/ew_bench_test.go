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

// The softmax's row ops on [128,4,17,17] scores (rows of 17) and the
// attention's head transposes (runs of 16), ten of each per graph.
func BenchmarkRowSub(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			x = Sub(x, y)
		}
		return x
	}, []int{128, 4, 17, 17}, []int{128, 4, 17, 1})
}

func BenchmarkRowMax(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			y = Add(y, ReduceAndKeep(x, ReduceMax, -1))
		}
		return y
	}, []int{128, 4, 17, 17}, []int{128, 4, 17, 1})
}

func BenchmarkRowSum(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			y = Add(y, ReduceAndKeep(x, ReduceSum, -1))
		}
		return y
	}, []int{128, 4, 17, 17}, []int{128, 4, 17, 1})
}

func BenchmarkRowBroadcast(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			x = Add(x, BroadcastToDims(y, 128, 4, 17, 17))
		}
		return x
	}, []int{128, 4, 17, 17}, []int{128, 4, 17, 1})
}

func BenchmarkHeadTranspose(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 5 {
			x = TransposeAllAxes(x, 1, 3, 0, 2, 4) // [3 B H T hd] → [B T 3 H hd]
			x = TransposeAllAxes(x, 2, 0, 3, 1, 4) // and back
		}
		return Add(x, y)
	}, []int{3, 128, 4, 17, 16}, []int{1, 1, 1, 1, 1})
}

// LayerNorm's row means and the bias gradients' column sums of [128,17,64].
func BenchmarkRowSum64(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			y = Add(y, ReduceAndKeep(x, ReduceSum, -1))
		}
		return y
	}, []int{128, 17, 64}, []int{128, 17, 1})
}

func BenchmarkColumnSum64(b *testing.B) {
	benchGraph(b, func(x, y *Node) *Node {
		for range 10 {
			y = Add(y, ReduceSum(x, 0, 1))
		}
		return y
	}, []int{128, 17, 64}, []int{64})
}
