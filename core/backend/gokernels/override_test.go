package gokernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestLayoutRecognised(t *testing.T) {
	if layoutErr != nil {
		t.Fatalf("simplego layout not recognised: %v", layoutErr)
	}
}

// dotCase is one DotGeneral in float32 with operands given by dims and axes.
type dotCase struct {
	lhsDims, rhsDims       []int
	lhsC, lhsB, rhsC, rhsB []int
	fast                   bool // whether the fast path must take it
}

func runDot(t *testing.T, c dotCase, lhs, rhs *tensors.Tensor) []float32 {
	t.Helper()
	out, err := ExecOnce(testBackend, func(x, y *Node) *Node {
		return DotGeneral(x, c.lhsC, c.lhsB, y, c.rhsC, c.rhsB)
	}, lhs, rhs)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out)
}

var testBackend = func() *simplego.Backend {
	b, err := simplego.New("ops_sequential")
	if err != nil {
		panic(err)
	}
	return b.(*simplego.Backend)
}()

func randTensor(rng *rand.Rand, dims []int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	flat := make([]float32, n)
	for i := range flat {
		flat[i] = rng.Float32()*2 - 1
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}

// TestOverrideMatchesStock runs DotGenerals of many layouts through simplego
// with and without the fast executor, checking equal results and that the
// layouts meant for the fast path took it.
func TestOverrideMatchesStock(t *testing.T) {
	if err := Install(); err != nil {
		t.Fatal(err)
	}
	cases := []dotCase{
		{[]int{37, 20}, []int{20, 9}, []int{1}, nil, []int{0}, nil, true},                              // x·W
		{[]int{37, 20}, []int{9, 20}, []int{1}, nil, []int{1}, nil, true},                              // x·Wᵀ
		{[]int{20, 37}, []int{20, 9}, []int{0}, nil, []int{0}, nil, true},                              // xᵀ·v (weight gradient)
		{[]int{4, 6, 20}, []int{9, 20}, []int{2}, nil, []int{1}, nil, true},                            // tokens·Wᵀ
		{[]int{4, 6, 20}, []int{4, 6, 9}, []int{0, 1}, nil, []int{0, 1}, nil, true},                    // gradient over two axes
		{[]int{3, 2, 17, 16}, []int{3, 2, 17, 16}, []int{3}, []int{0, 1}, []int{3}, []int{0, 1}, true}, // attention scores
		{[]int{3, 2, 17, 17}, []int{3, 2, 17, 16}, []int{3}, []int{0, 1}, []int{2}, []int{0, 1}, true}, // attention·v
		{[]int{5, 7}, []int{3, 11}, nil, nil, nil, nil, true},                                          // outer product
		{[]int{20, 37}, []int{9, 20}, []int{0}, nil, []int{1}, nil, true},                              // mixed
		{[]int{6, 4, 20}, []int{9, 20}, []int{2}, nil, []int{1}, nil, true},
		{[]int{4, 20, 6}, []int{9, 20}, []int{1}, nil, []int{1}, nil, false},            // contracting in the middle
		{[]int{6, 3, 5}, []int{3, 6, 5}, []int{2}, []int{1}, []int{2}, []int{0}, false}, // batch not leading
		{[]int{4, 5, 6}, []int{6, 5, 2}, []int{2, 1}, nil, []int{0, 1}, nil, false},     // contracting order reversed
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			lhs, rhs := randTensor(rng, c.lhsDims), randTensor(rng, c.rhsDims)
			Uninstall()
			want := runDot(t, c, lhs, rhs)
			if err := Install(); err != nil {
				t.Fatal(err)
			}
			f0, s0 := Calls()
			got := runDot(t, c, lhs, rhs)
			f1, s1 := Calls()
			if c.fast && (f1-f0 != 1 || s1 != s0) {
				t.Errorf("expected the fast path (fast calls +%d, handed back +%d)", f1-f0, s1-s0)
			}
			if !c.fast && (s1-s0 != 1 || f1 != f0) {
				t.Errorf("expected simplego's executor (fast calls +%d, handed back +%d)", f1-f0, s1-s0)
			}
			for j := range want {
				if math.Abs(float64(got[j]-want[j])) > 1e-4 {
					t.Fatalf("element %d: fast %g, simplego %g", j, got[j], want[j])
				}
			}
		})
	}
}
