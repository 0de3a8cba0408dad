package adapter

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// gradCheck compares the gradients of Σ R ⊙ layer(inputs) (R random) with
// central finite differences of the same graph, in float64.
//
// layer takes the inputs in order and shapes gives their dimensions. It
// returns the analytic gradients of the inputs followed by their
// finite-difference estimates.
func gradCheck(t *testing.T, shapes [][]int, layer func(in []*Node) *Node, outDims []int, seed uint64) [][]float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	vals := make([][]float64, len(shapes))
	for i, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			vals[i][j] = rng.NormFloat64()
		}
	}
	outSize := 1
	for _, d := range outDims {
		outSize *= d
	}
	r := make([]float64, outSize)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	weights := tensors.FromFlatDataAndDimensions(r, outDims...)
	loss := func(in []*Node, rw *Node) *Node { return ReduceAllSum(Mul(layer(in), rw)) }

	b := getBackend(t)
	fwd, err := NewExec(b, func(in []*Node) *Node { return loss(in[:len(in)-1], in[len(in)-1]) })
	if err != nil {
		t.Fatal(err)
	}
	grad, err := NewExec(b, func(in []*Node) []*Node {
		params := in[:len(in)-1]
		return Gradient(loss(params, in[len(in)-1]), params...)
	})
	if err != nil {
		t.Fatal(err)
	}
	args := func() []any {
		out := make([]any, 0, len(vals)+1)
		for i, v := range vals {
			out = append(out, tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), shapes[i]...))
		}
		return append(out, weights)
	}
	eval := func() float64 {
		out, err := fwd.Exec(args()...)
		if err != nil {
			t.Fatal(err)
		}
		return out[0].Value().(float64)
	}
	gradsT, err := grad.Exec(args()...)
	if err != nil {
		t.Fatal(err)
	}
	grads := make([][]float64, len(gradsT))
	for i, g := range gradsT {
		grads[i] = tensors.MustCopyFlatData[float64](g)
	}
	const h = 1e-6
	fd := make([][]float64, len(vals))
	for i := range vals {
		fd[i] = make([]float64, len(vals[i]))
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + h
			up := eval()
			vals[i][j] = orig - h
			down := eval()
			vals[i][j] = orig
			fd[i][j] = (up - down) / (2 * h)
		}
	}
	return append(grads, fd...)
}

// compareGrad fails when analytic and finite-difference gradients differ by
// more than tol relative to the gradient's largest entry.
func compareGrad(t *testing.T, what string, analytic, fd []float64, tol float64) {
	t.Helper()
	var diff, scale float64
	for i := range analytic {
		diff = math.Max(diff, math.Abs(analytic[i]-fd[i]))
		scale = math.Max(scale, math.Abs(fd[i]))
	}
	if scale == 0 {
		t.Fatalf("%s: finite-difference gradient is zero (vacuous check)", what)
	}
	if diff/scale > tol {
		t.Errorf("%s: gradient differs from finite differences: max rel diff %.3g > %g", what, diff/scale, tol)
	}
}

func TestLoRAGradientFiniteDifferences(t *testing.T) {
	// x [2,3,5] (a batch of token sequences), Wres 4×5, b 4, A 2×5, B 4×2.
	names := []string{"x", "Wres", "b", "A", "B"}
	shapes := [][]int{{2, 3, 5}, {4, 5}, {4}, {2, 5}, {4, 2}}
	const scale = 1.5
	out := gradCheck(t, shapes, func(in []*Node) *Node {
		return LoRA(in[0], in[1], in[2], in[3], in[4], scale)
	}, []int{2, 3, 4}, 1)
	n := len(shapes)
	for i := range n {
		compareGrad(t, "LoRA ∂/∂"+names[i], out[i], out[n+i], 1e-7)
	}
}

func TestDenseGradientFiniteDifferences(t *testing.T) {
	names := []string{"x", "W", "b"}
	shapes := [][]int{{3, 5}, {4, 5}, {4}}
	out := gradCheck(t, shapes, func(in []*Node) *Node { return Dense(in[0], in[1], in[2]) }, []int{3, 4}, 2)
	for i := range 3 {
		compareGrad(t, "Dense ∂/∂"+names[i], out[i], out[3+i], 1e-7)
	}
}

func TestDoRAGradientFiniteDifferences(t *testing.T) {
	names := []string{"x", "W", "b", "A", "B", "mag"}
	shapes := [][]int{{3, 5}, {4, 5}, {4}, {2, 5}, {4, 2}, {4}}
	const scale = 0.75
	// The exact gradient (norm differentiated) matches finite differences for every input.
	exact := gradCheck(t, shapes, func(in []*Node) *Node {
		return DoRA(in[0], in[1], in[2], in[3], in[4], in[5], scale, DoRAOptions{NormGradient: true})
	}, []int{3, 4}, 3)
	n := len(shapes)
	for i := range n {
		compareGrad(t, "DoRA(norm gradient) ∂/∂"+names[i], exact[i], exact[n+i], 1e-6)
	}

	// PEFT's detached norm: x, b and mag gradients are the exact ones (the
	// norm does not depend on them); W, A and B get the gradient of the layer
	// with ‖W′‖_row frozen at its current value, checked against finite
	// differences of that function.
	detached := gradCheck(t, shapes, func(in []*Node) *Node {
		return DoRA(in[0], in[1], in[2], in[3], in[4], in[5], scale, DoRAOptions{})
	}, []int{3, 4}, 3)
	for _, i := range []int{0, 2, 5} {
		compareGrad(t, "DoRA(detached) ∂/∂"+names[i], detached[i], exact[n+i], 1e-6)
	}
	// Detaching does change the gradient of W, A and B (not a no-op).
	for _, i := range []int{1, 3, 4} {
		var diff float64
		for j := range detached[i] {
			diff = math.Max(diff, math.Abs(detached[i][j]-exact[i][j]))
		}
		if diff < 1e-3 {
			t.Errorf("DoRA ∂/∂%s: detached and exact gradients agree (%.3g): the norm is not detached", names[i], diff)
		}
	}
	// W, A and B: against the layer with the norm held constant.
	checkDetachedAgainstFrozen(t, scale)
}

// checkDetachedAgainstFrozen compares DoRA's detached gradients for W, A, B
// with finite differences of the layer whose norm is fixed at ‖W′‖_row of the
// evaluation point.
func checkDetachedAgainstFrozen(t *testing.T, scale float64) {
	rng := rand.New(rand.NewPCG(5, 5))
	mk := func(dims ...int) []float64 {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	x, w, b, a, bm, mag := mk(3, 5), mk(4, 5), mk(4), mk(2, 5), mk(4, 2), mk(4)
	// ‖W′‖_row on the host.
	wp := make([]float64, 20)
	norm := make([]float64, 4)
	for i := 0; i < 4; i++ {
		var ss float64
		for j := 0; j < 5; j++ {
			v := w[i*5+j]
			for r := 0; r < 2; r++ {
				v += scale * bm[i*2+r] * a[r*5+j]
			}
			wp[i*5+j] = v
			ss += v * v
		}
		norm[i] = math.Sqrt(ss)
	}
	rw := mk(3, 4)
	tensor := func(v []float64, dims ...int) *tensors.Tensor {
		return tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), dims...)
	}
	be := getBackend(t)
	grad, err := NewExec(be, func(in []*Node) []*Node {
		loss := ReduceAllSum(Mul(DoRA(in[0], in[1], in[2], in[3], in[4], in[5], scale, DoRAOptions{}), in[6]))
		return Gradient(loss, in[1], in[3], in[4])
	})
	if err != nil {
		t.Fatal(err)
	}
	frozen, err := NewExec(be, func(in []*Node) *Node {
		x, wv, bv, av, bmv, magv, normv, rwv := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
		y := Add(linearMap(x, wv), MulScalar(linearMap(linearMap(x, av), bmv), scale))
		return ReduceAllSum(Mul(addBias(Mul(y, ExpandLeftToRank(Div(magv, normv), 2)), bv), rwv))
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := grad.Exec(tensor(x, 3, 5), tensor(w, 4, 5), tensor(b, 4), tensor(a, 2, 5), tensor(bm, 4, 2), tensor(mag, 4), tensor(rw, 3, 4))
	if err != nil {
		t.Fatal(err)
	}
	params := []struct {
		name string
		v    []float64
		dims []int
	}{{"W", w, []int{4, 5}}, {"A", a, []int{2, 5}}, {"B", bm, []int{4, 2}}}
	const h = 1e-6
	for k, p := range params {
		fd := make([]float64, len(p.v))
		for j := range p.v {
			eval := func(delta float64) float64 {
				orig := p.v[j]
				p.v[j] = orig + delta
				defer func() { p.v[j] = orig }()
				out, err := frozen.Exec(tensor(x, 3, 5), tensor(w, 4, 5), tensor(b, 4), tensor(a, 2, 5), tensor(bm, 4, 2),
					tensor(mag, 4), tensor(norm, 4), tensor(rw, 3, 4))
				if err != nil {
					t.Fatal(err)
				}
				return out[0].Value().(float64)
			}
			fd[j] = (eval(h) - eval(-h)) / (2 * h)
		}
		compareGrad(t, "DoRA(detached) ∂/∂"+p.name+" vs frozen-norm layer", tensors.MustCopyFlatData[float64](g[k]), fd, 1e-6)
	}
}
