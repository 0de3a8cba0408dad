package gokernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// compareWithStock evaluates fn on the inputs with simplego's executors and
// with the fast ones and checks the results agree within tol (relative).
func compareWithStock(t *testing.T, name string, tol float64, fn func(xs []*Node) *Node, inputs ...*tensors.Tensor) {
	t.Helper()
	eval := func() []float32 {
		args := make([]any, len(inputs))
		for i, in := range inputs {
			args[i] = in
		}
		exec := MustNewExec(testBackend, func(xs []*Node) *Node { return fn(xs) })
		out, err := exec.Exec1(args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	Uninstall()
	want := eval()
	if err := Install(); err != nil {
		t.Fatal(err)
	}
	f0, s0 := Calls()
	got := eval()
	f1, s1 := Calls()
	if f1 == f0 || s1 != s0 {
		t.Errorf("%s: fast executor not used (fast +%d, handed back +%d)", name, f1-f0, s1-s0)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && math.Abs(g-w) > tol*math.Max(1, math.Abs(w))) {
			t.Fatalf("%s: element %d = %g, simplego %g", name, i, g, w)
		}
	}
}

func randomDims(rng *rand.Rand, rank int) []int {
	dims := make([]int, rank)
	for i := range dims {
		dims[i] = []int{1, 2, 3, 5, 17, 64}[rng.IntN(6)]
	}
	return dims
}

func TestBinaryOpsMatchStock(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ops := map[string]func(a, b *Node) *Node{"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Max": Max, "Min": Min}
	for name, op := range ops {
		for trial := range 12 {
			rank := 1 + rng.IntN(4)
			dims := randomDims(rng, rank)
			// Broadcast some axes of either operand; sometimes a scalar.
			ad, bd := append([]int(nil), dims...), append([]int(nil), dims...)
			for i := range dims {
				switch rng.IntN(4) {
				case 0:
					ad[i] = 1
				case 1:
					bd[i] = 1
				}
			}
			if trial%5 == 4 {
				bd = nil
			}
			a, b := randTensor(rng, ad), randTensor(rng, bd)
			compareWithStock(t, fmt.Sprintf("%s %v %v", name, ad, bd), 1e-6, func(xs []*Node) *Node {
				y := xs[1]
				if name == "Div" {
					y = AddScalar(Abs(y), 0.5)
				}
				return op(xs[0], y)
			}, a, b)
		}
	}
	// Short rows with a per-row operand (softmax, LayerNorm), both orders,
	// small and large enough to split across goroutines: the same IEEE
	// operation per element as simplego, so exactly equal.
	for name, op := range ops {
		for _, dims := range [][]int{{5, 3, 17}, {128, 4, 17, 17}, {130, 31}, {9, 64}} {
			rowDims := append([]int(nil), dims...)
			rowDims[len(dims)-1] = 1
			a, b := randTensor(rng, dims), randTensor(rng, rowDims)
			pos := func(y *Node) *Node {
				if name == "Div" {
					return AddScalar(Abs(y), 0.5)
				}
				return y
			}
			compareWithStock(t, fmt.Sprintf("%s rows %v", name, dims), 0, func(xs []*Node) *Node { return op(xs[0], pos(xs[1])) }, a, b)
			compareWithStock(t, fmt.Sprintf("%s rows reversed %v", name, dims), 0, func(xs []*Node) *Node { return op(xs[1], pos(xs[0])) }, a, b)
		}
	}
	// Large enough to split across goroutines.
	big := []int{130, 17, 64}
	compareWithStock(t, "Add big", 1e-6, func(xs []*Node) *Node { return Add(xs[0], xs[1]) }, randTensor(rng, big), randTensor(rng, []int{1, 1, 64}))
}

func TestTransposeBroadcastReduceMatchStock(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for trial := range 30 {
		rank := 1 + rng.IntN(5)
		dims := randomDims(rng, rank)
		x := randTensor(rng, dims)
		perm := rng.Perm(rank)
		compareWithStock(t, fmt.Sprintf("Transpose %v %v", dims, perm), 0, func(xs []*Node) *Node { return TransposeAllAxes(xs[0], perm...) }, x)
		var axes []int
		for a := range rank {
			if rng.IntN(2) == 0 {
				axes = append(axes, a)
			}
		}
		if len(axes) == 0 {
			axes = []int{rng.IntN(rank)}
		}
		compareWithStock(t, fmt.Sprintf("ReduceSum %v %v", dims, axes), 1e-5, func(xs []*Node) *Node { return ReduceSum(xs[0], axes...) }, x)
		compareWithStock(t, fmt.Sprintf("ReduceMax %v %v", dims, axes), 0, func(xs []*Node) *Node { return ReduceMax(xs[0], axes...) }, x)
		// BroadcastInDim: insert a new axis and grow size-1 axes.
		outDims := append([]int{3}, dims...)
		small := append([]int(nil), dims...)
		small[trial%rank] = 1
		y := randTensor(rng, small)
		compareWithStock(t, fmt.Sprintf("BroadcastToDims %v→%v", small, outDims), 0, func(xs []*Node) *Node {
			return BroadcastPrefix(BroadcastToDims(xs[0], dims...), 3)
		}, y)
	}
	for trial := range 20 {
		dims := randomDims(rng, 1+rng.IntN(4))
		x := randTensor(rng, dims)
		specs := make([]SliceAxisSpec, len(dims))
		for a, d := range dims {
			lo := rng.IntN(d)
			hi := lo + 1 + rng.IntN(d-lo)
			specs[a] = AxisRange(lo, hi)
			if trial%3 == 0 {
				specs[a] = specs[a].Stride(1 + rng.IntN(2))
			}
		}
		compareWithStock(t, fmt.Sprintf("Slice %v %v", dims, specs), 0, func(xs []*Node) *Node { return Slice(xs[0], specs...) }, x)
		axis := rng.IntN(len(dims))
		other := append([]int(nil), dims...)
		other[axis] = 1 + rng.IntN(3)
		y := randTensor(rng, other)
		compareWithStock(t, fmt.Sprintf("Concatenate %v %v axis %d", dims, other, axis), 0, func(xs []*Node) *Node {
			return Concatenate([]*Node{xs[0], xs[1], xs[0]}, axis)
		}, x, y)
	}
	big := randTensor(rng, []int{128, 4, 17, 17})
	compareWithStock(t, "ReduceSum big last", 1e-5, func(xs []*Node) *Node { return ReduceSum(xs[0], 3) }, big)
	compareWithStock(t, "ReduceSum big first", 1e-5, func(xs []*Node) *Node { return ReduceSum(xs[0], 0) }, big)
	compareWithStock(t, "ReduceMax big first", 0, func(xs []*Node) *Node { return ReduceMax(xs[0], 0, 2) }, big)
	compareWithStock(t, "ReduceSum bias gradient", 1e-4, func(xs []*Node) *Node { return ReduceSum(xs[0], 0, 1) }, randTensor(rng, []int{128, 17, 64}))
	// Row sums of rows that are multiples of 8 (LayerNorm's means) and column
	// sums (bias gradients), small and split across goroutines.
	for _, dims := range [][]int{{128, 17, 64}, {5, 3, 16}, {7, 40}} {
		x := randTensor(rng, dims)
		last := len(dims) - 1
		lead := make([]int, last)
		for i := range lead {
			lead[i] = i
		}
		compareWithStock(t, fmt.Sprintf("ReduceSum rows %v", dims), 1e-5, func(xs []*Node) *Node { return ReduceSum(xs[0], last) }, x)
		compareWithStock(t, fmt.Sprintf("ReduceSum columns %v", dims), 1e-4, func(xs []*Node) *Node { return ReduceSum(xs[0], lead...) }, x)
	}
	compareWithStock(t, "ReduceMax big last", 0, func(xs []*Node) *Node { return ReduceMax(xs[0], 3) }, big)
	compareWithStock(t, "ReduceMin big last", 0, func(xs []*Node) *Node { return ReduceMin(xs[0], 3) }, big)
	rows := randTensor(rng, []int{128, 4, 17, 1})
	compareWithStock(t, "Broadcast big rows", 0, func(xs []*Node) *Node { return BroadcastToDims(xs[0], 128, 4, 17, 17) }, rows)
	compareWithStock(t, "Transpose heads", 0, func(xs []*Node) *Node { return TransposeAllAxes(xs[0], 1, 3, 0, 2, 4) }, randTensor(rng, []int{3, 128, 4, 17, 16}))
	compareWithStock(t, "Transpose big", 0, func(xs []*Node) *Node { return TransposeAllAxes(xs[0], 0, 2, 1, 3) }, big)
}

func TestUnaryOpsMatchStock(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := randTensor(rng, []int{300, 170})
	compareWithStock(t, "Exp", 2e-7, func(xs []*Node) *Node { return Exp(MulScalar(xs[0], 30)) }, x)
	compareWithStock(t, "Erf", 2e-7, func(xs []*Node) *Node { return Erf(MulScalar(xs[0], 3)) }, x)
	compareWithStock(t, "Neg", 0, func(xs []*Node) *Node { return Neg(xs[0]) }, x)
	compareWithStock(t, "Sqrt", 0, func(xs []*Node) *Node { return Sqrt(Abs(xs[0])) }, x)
	compareWithStock(t, "Rsqrt", 0, func(xs []*Node) *Node { return Rsqrt(AddScalar(Abs(xs[0]), 0.01)) }, x)
	compareWithStock(t, "Sign", 0, func(xs []*Node) *Node { return Sign(xs[0]) }, x)
	// Zeros (the ReLU gradient's case) and a length that is no multiple of 8.
	compareWithStock(t, "Sign of ReLU", 0, func(xs []*Node) *Node { return Sign(MaxScalar(xs[0], 0)) }, x)
	compareWithStock(t, "Sign ragged", 0, func(xs []*Node) *Node { return Sign(MinScalar(xs[0], 0)) }, randTensor(rng, []int{7, 13}))
}
