package fastgrad

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gopjrt/dtypes"
)

func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layout is one random DotGeneral problem: operand dimensions and axes.
type layout struct {
	lhsDims, rhsDims []int
	axes             DotGeneralAxes
}

func (l layout) String() string {
	return fmt.Sprintf("lhs%v c%v b%v · rhs%v c%v b%v", l.lhsDims, l.axes.LhsContracting, l.axes.LhsBatch,
		l.rhsDims, l.axes.RhsContracting, l.axes.RhsBatch)
}

// randomLayout draws batch/contracting/cross axis counts, sizes and a random
// axis order for each operand, and a random pairing order of the axes.
func randomLayout(rng *rand.Rand) layout {
	nb, nc := rng.IntN(3), rng.IntN(3)
	nlx, nrx := rng.IntN(3), rng.IntN(3)
	dim := func() int { return 1 + rng.IntN(4) }
	batch := make([]int, nb)
	contract := make([]int, nc)
	for i := range batch {
		batch[i] = dim()
	}
	for i := range contract {
		contract[i] = dim()
	}
	build := func(nx int) (dims, cAxes, bAxes []int) {
		rank := nb + nc + nx
		perm := rng.Perm(rank) // perm[k] = axis of the k-th logical axis
		dims = make([]int, rank)
		cAxes = make([]int, nc)
		bAxes = make([]int, nb)
		for k := range rank {
			a := perm[k]
			switch {
			case k < nb:
				dims[a] = batch[k]
				bAxes[k] = a
			case k < nb+nc:
				dims[a] = contract[k-nb]
				cAxes[k-nb] = a
			default:
				dims[a] = dim()
			}
		}
		return
	}
	var l layout
	l.lhsDims, l.axes.LhsContracting, l.axes.LhsBatch = build(nlx)
	l.rhsDims, l.axes.RhsContracting, l.axes.RhsBatch = build(nrx)
	return l
}

func randomFlat(rng *rand.Rand, dims []int) []float64 {
	n := 1
	for _, d := range dims {
		n *= d
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = rng.Float64()*2 - 1
	}
	return out
}

// gradients returns ∂/∂lhs and ∂/∂rhs of Σ DotGeneral(lhs, rhs) ⊙ weights,
// built with the VJP table given.
func gradients(t testing.TB, b backends.Backend, table map[NodeType]VJP, l layout, lhs, rhs *tensors.Tensor) (out, gl, gr []float64) {
	t.Helper()
	Use(table)
	defer Use(Fast)
	var outDims []int
	var weights *tensors.Tensor
	exec, err := NewExec(b, func(x, y, w *Node) []*Node {
		o := DotGeneral(x, l.axes.LhsContracting, l.axes.LhsBatch, y, l.axes.RhsContracting, l.axes.RhsBatch)
		loss := ReduceAllSum(Mul(o, w))
		g := Gradient(loss, x, y)
		return []*Node{o, g[0], g[1]}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The output shape decides the weights' shape: build it once on a probe graph.
	probe, err := ExecOnce(b, func(x, y *Node) *Node {
		return DotGeneral(x, l.axes.LhsContracting, l.axes.LhsBatch, y, l.axes.RhsContracting, l.axes.RhsBatch)
	}, lhs, rhs)
	if err != nil {
		t.Fatal(err)
	}
	outDims = probe.Shape().Dimensions
	rng := rand.New(rand.NewPCG(7, uint64(len(outDims))))
	weights = tensors.FromFlatDataAndDimensions(randomFlat(rng, outDims), outDims...)
	res, err := exec.Exec(lhs, rhs, weights)
	if err != nil {
		t.Fatalf("%s: %v", l, err)
	}
	return tensors.MustCopyFlatData[float64](res[0]), tensors.MustCopyFlatData[float64](res[1]), tensors.MustCopyFlatData[float64](res[2])
}

func maxRelDiff(a, b []float64) float64 {
	worst := 0.0
	for i := range a {
		d := math.Abs(a[i]-b[i]) / math.Max(1, math.Max(math.Abs(a[i]), math.Abs(b[i])))
		worst = max(worst, d)
	}
	return worst
}

// TestDotGeneralMatchesStock compares the fast VJPs with GoMLX's stock ones on
// random axis layouts (batch, contracting and cross axes in any order).
func TestDotGeneralMatchesStock(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 300
	if testing.Short() {
		n = 60
	}
	worst := 0.0
	for range n {
		l := randomLayout(rng)
		lhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, l.lhsDims), l.lhsDims...)
		rhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, l.rhsDims), l.rhsDims...)
		_, fl, fr := gradients(t, b, Fast, l, lhs, rhs)
		_, sl, sr := gradients(t, b, Stock, l, lhs, rhs)
		d := max(maxRelDiff(fl, sl), maxRelDiff(fr, sr))
		worst = max(worst, d)
		if d > 1e-12 {
			t.Fatalf("%s: fast and stock gradients differ by %g", l, d)
		}
	}
	t.Logf("%d layouts, worst relative difference %.2g", n, worst)
}

// TestDotGeneralFiniteDifferences checks the fast VJPs against central finite
// differences of f(lhs, rhs) = Σ DotGeneral(lhs, rhs) ⊙ w, in float64.
func TestDotGeneralFiniteDifferences(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const h = 1e-4
	for range 12 {
		l := randomLayout(rng)
		lhsFlat, rhsFlat := randomFlat(rng, l.lhsDims), randomFlat(rng, l.rhsDims)
		lhs := tensors.FromFlatDataAndDimensions(lhsFlat, l.lhsDims...)
		rhs := tensors.FromFlatDataAndDimensions(rhsFlat, l.rhsDims...)
		_, gl, gr := gradients(t, b, Fast, l, lhs, rhs)

		var outDims []int
		probe, err := ExecOnce(b, func(x, y *Node) *Node {
			return DotGeneral(x, l.axes.LhsContracting, l.axes.LhsBatch, y, l.axes.RhsContracting, l.axes.RhsBatch)
		}, lhs, rhs)
		if err != nil {
			t.Fatal(err)
		}
		outDims = probe.Shape().Dimensions
		wrng := rand.New(rand.NewPCG(7, uint64(len(outDims))))
		w := tensors.FromFlatDataAndDimensions(randomFlat(wrng, outDims), outDims...)
		f := MustNewExec(b, func(x, y, w *Node) *Node {
			return ReduceAllSum(Mul(DotGeneral(x, l.axes.LhsContracting, l.axes.LhsBatch, y, l.axes.RhsContracting, l.axes.RhsBatch), w))
		})
		eval := func(x, y []float64) float64 {
			res, err := f.Exec1(tensors.FromFlatDataAndDimensions(x, l.lhsDims...), tensors.FromFlatDataAndDimensions(y, l.rhsDims...), w)
			if err != nil {
				t.Fatal(err)
			}
			return tensors.MustCopyFlatData[float64](res)[0]
		}
		check := func(which string, flat []float64, grad []float64, perturb func(p []float64) float64) {
			for i := range flat {
				orig := flat[i]
				flat[i] = orig + h
				fp := perturb(flat)
				flat[i] = orig - h
				fm := perturb(flat)
				flat[i] = orig
				fd := (fp - fm) / (2 * h)
				if math.Abs(fd-grad[i]) > 1e-7*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%s: ∂f/∂%s[%d] = %g, finite difference %g", l, which, i, grad[i], fd)
				}
			}
		}
		check("lhs", lhsFlat, gl, func(p []float64) float64 { return eval(p, rhsFlat) })
		check("rhs", rhsFlat, gr, func(p []float64) float64 { return eval(lhsFlat, p) })
	}
}

// TestDotMatchesStock covers graph.Dot (ranks 1·1, 2·1, 2·2).
func TestDotMatchesStock(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ lhs, rhs []int }{{[]int{5}, []int{5}}, {[]int{3, 5}, []int{5}}, {[]int{3, 5}, []int{5, 4}}} {
		lhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, c.lhs), c.lhs...)
		rhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, c.rhs), c.rhs...)
		run := func(table map[NodeType]VJP) (gl, gr []float64) {
			Use(table)
			defer Use(Fast)
			res, err := MustNewExec(b, func(x, y *Node) []*Node {
				o := Dot(x, y)
				w := Scalar(x.Graph(), o.DType(), 0.5)
				if o.Rank() > 0 {
					w = AddScalar(Iota(x.Graph(), o.Shape(), o.Rank()-1), 0.5)
				}
				loss := ReduceAllSum(Mul(o, w))
				return Gradient(loss, x, y)
			}).Exec(lhs, rhs)
			if err != nil {
				t.Fatal(err)
			}
			return tensors.MustCopyFlatData[float64](res[0]), tensors.MustCopyFlatData[float64](res[1])
		}
		fl, fr := run(Fast)
		sl, sr := run(Stock)
		if d := max(maxRelDiff(fl, sl), maxRelDiff(fr, sr)); d > 1e-12 {
			t.Fatalf("Dot %v·%v: fast and stock gradients differ by %g", c.lhs, c.rhs, d)
		}
	}
}

// TestAxesReflectionMatchesString checks that the two ways of reading a node's
// axes agree.
func TestAxesReflectionMatchesString(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(9, 9))
	for range 50 {
		l := randomLayout(rng)
		lhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, l.lhsDims), l.lhsDims...)
		rhs := tensors.FromFlatDataAndDimensions(randomFlat(rng, l.rhsDims), l.rhsDims...)
		_, err := ExecOnce(b, func(x, y *Node) *Node {
			o := DotGeneral(x, l.axes.LhsContracting, l.axes.LhsBatch, y, l.axes.RhsContracting, l.axes.RhsBatch)
			byRefl, ok := axesByReflection(o)
			if !ok {
				t.Fatalf("%s: reflection failed", l)
			}
			byStr, err := axesFromString(o.String())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(byRefl) != fmt.Sprint(byStr) || fmt.Sprint(byRefl) != fmt.Sprint(l.axes) {
				t.Fatalf("%s: reflection %v, string %v", l, byRefl, byStr)
			}
			return o
		}, lhs, rhs)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoBroadcastProduct checks the point of the package: the gradient graph
// of a batched matrix product holds no intermediate larger than its operands
// and output (the stock VJP builds a b·m·n·k broadcast product).
func TestNoBroadcastProduct(t *testing.T) {
	b := testBackend(t)
	const batch, m, k, n = 4, 32, 16, 24
	largest := func(table map[NodeType]VJP) int {
		Use(table)
		defer Use(Fast)
		worst := 0
		_, err := ExecOnce(b, func(x, y *Node) *Node {
			o := DotGeneral(x, []int{2}, []int{0}, y, []int{1}, []int{0}) // [b,m,k]·[b,k,n] → [b,m,n]
			grads := Gradient(ReduceAllSum(Mul(o, o)), x, y)
			for _, node := range x.Graph().Nodes() {
				worst = max(worst, node.Shape().Size())
			}
			return Add(ReduceAllSum(grads[0]), ReduceAllSum(grads[1]))
		}, tensors.FromShape(shapesMake(batch, m, k)), tensors.FromShape(shapesMake(batch, k, n)))
		if err != nil {
			t.Fatal(err)
		}
		return worst
	}
	bound := batch * max(m*k, k*n, m*n)
	if got := largest(Fast); got > bound {
		t.Errorf("fast gradient graph has a node of %d elements, want ≤ %d", got, bound)
	}
	if got := largest(Stock); got < batch*m*k*n {
		t.Errorf("stock gradient graph's largest node has %d elements; expected the b·m·n·k = %d broadcast product (did the stock VJP change?)", got, batch*m*k*n)
	}
}

func shapesMake(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// TestSliceGradient checks the Pad-free Slice VJP against the exact gradient of
// Σ Slice(x) ⊙ w (w at the sliced positions, zero elsewhere) on the pure-Go
// backend, where the stock VJP fails for lack of Pad.
func TestSliceGradient(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(11, 12))
	dims := []int{3, 5, 4}
	for range 20 {
		starts, limits := make([]int, 3), make([]int, 3)
		specs := make([]SliceAxisSpec, 3)
		for a, d := range dims {
			starts[a] = rng.IntN(d)
			limits[a] = starts[a] + 1 + rng.IntN(d-starts[a])
			specs[a] = AxisRange(starts[a], limits[a])
		}
		xFlat := randomFlat(rng, dims)
		x := tensors.FromFlatDataAndDimensions(xFlat, dims...)
		res, err := MustNewExec(b, func(x *Node) []*Node {
			s := Slice(x, specs...)
			p, err := SliceParamsOf(s)
			if err != nil || fmt.Sprint(p.Starts, p.Limits) != fmt.Sprint(starts, limits) {
				t.Fatalf("SliceParamsOf = %v, %v; want starts %v limits %v", p, err, starts, limits)
			}
			w := AddScalar(Iota(x.Graph(), s.Shape(), 2), 1)
			return Gradient(ReduceAllSum(Mul(s, w)), x)
		}).Exec(x)
		if err != nil {
			t.Fatal(err)
		}
		grad := tensors.MustCopyFlatData[float64](res[0])
		// Expected: w at the sliced positions (w[i,j,k] = k - start2 + 1), 0 elsewhere.
		for i := range dims[0] {
			for j := range dims[1] {
				for k := range dims[2] {
					want := 0.0
					if i >= starts[0] && i < limits[0] && j >= starts[1] && j < limits[1] && k >= starts[2] && k < limits[2] {
						want = float64(k-starts[2]) + 1
					}
					if got := grad[(i*dims[1]+j)*dims[2]+k]; got != want {
						t.Fatalf("slice %v:%v: grad[%d,%d,%d] = %g, want %g", starts, limits, i, j, k, got, want)
					}
				}
			}
		}
	}
}

// TestRsqrtGradient checks d/dx x^(−1/2) = −½·x^(−3/2) against central finite
// differences in float64.
func TestRsqrtGradient(t *testing.T) {
	b := testBackend(t)
	xs := []float64{0.05, 0.3, 1, 2.5, 40}
	res, err := MustNewExec(b, func(x *Node) *Node {
		return Gradient(ReduceAllSum(Rsqrt(x)), x)[0]
	}).Exec1(tensors.FromFlatDataAndDimensions(xs, len(xs)))
	if err != nil {
		t.Fatal(err)
	}
	grad := tensors.MustCopyFlatData[float64](res)
	for i, x := range xs {
		const h = 1e-6
		fd := (1/math.Sqrt(x+h*x) - 1/math.Sqrt(x-h*x)) / (2 * h * x)
		if want := -0.5 * math.Pow(x, -1.5); math.Abs(grad[i]-want) > 1e-12*math.Abs(want) || math.Abs(fd-want) > 1e-6*math.Abs(want) {
			t.Errorf("d rsqrt(%g) = %g, want %g (finite difference %g)", x, grad[i], want, fd)
		}
	}
}

// TestSplitAxisGradient compares SplitAxis's concatenated gradient with the
// stock Split's (sum of zero-padded slices) when every part feeds the loss,
// and when a later part does not (its block of the gradient must be zero).
func TestSplitAxisGradient(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(13, 14))
	dims := []int{6, 4, 5}
	x := tensors.FromFlatDataAndDimensions(randomFlat(rng, dims), dims...)
	for _, axis := range []int{0, 1, 2} {
		n := []int{3, 2, 5}[axis]
		for _, useAll := range []bool{true, false} {
			run := func(split func(*Node, int, int) []*Node) []float64 {
				res, err := MustNewExec(b, func(x *Node) *Node {
					parts := split(x, axis, n)
					loss := ReduceAllSum(Square(parts[0]))
					for j, p := range parts[1:] {
						if useAll || j%2 == 1 {
							loss = Add(loss, ReduceAllSum(MulScalar(Exp(p), float64(j+2))))
						}
					}
					return Gradient(loss, x)[0]
				}).Exec1(x)
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float64](res)
			}
			got, want := run(SplitAxis), run(Split)
			if d := maxRelDiff(got, want); d > 1e-14 {
				t.Errorf("axis %d, all parts used %v: SplitAxis gradient differs from Split's by %g", axis, useAll, d)
			}
		}
	}
	splitMu.Lock()
	defer splitMu.Unlock()
	if len(splitPending) != 0 {
		t.Errorf("%d split gradients left pending", len(splitPending))
	}
}

// TestMulDivMatchStock compares the gradients of Mul and Div with every kind
// of broadcast operand (same shape, scalar, size-1 axes on either side)
// against GoMLX's VJPs: the same arithmetic per element, so equal.
func TestMulDivMatchStock(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(8, 8))
	pairs := [][2][]int{
		{{3, 4, 5}, {3, 4, 5}}, {{3, 4, 5}, {}}, {{}, {3, 4, 5}}, {{3, 4, 5}, {3, 4, 1}},
		{{3, 4, 1}, {3, 4, 5}}, {{3, 4, 5}, {1, 1, 5}}, {{1, 4, 5}, {3, 1, 5}}, {{2, 1, 3, 1}, {1, 4, 1, 5}},
	}
	for _, op := range []struct {
		name string
		fn   func(a, b *Node) *Node
		t    NodeType
	}{{"Mul", Mul, NodeTypeMul}, {"Div", Div, NodeTypeDiv}} {
		for _, pr := range pairs {
			a := tensors.FromFlatDataAndDimensions(randomFlat(rng, pr[0]), pr[0]...)
			bb := randomFlat(rng, pr[1])
			for i := range bb {
				bb[i] = 0.5 + math.Abs(bb[i]) // away from zero for Div
			}
			bt := tensors.FromFlatDataAndDimensions(bb, pr[1]...)
			grads := func(table map[NodeType]VJP) [][]float64 {
				Use(table)
				defer Use(Fast)
				out, err := MustNewExec(b, func(x, y *Node) []*Node {
					z := op.fn(x, y)
					w := Sin(IotaFull(x.Graph(), z.Shape())) // non-uniform upstream gradient
					return Gradient(ReduceAllSum(Mul(z, w)), x, y)
				}).Exec(a, bt)
				if err != nil {
					t.Fatal(err)
				}
				return [][]float64{tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])}
			}
			fast, stock := grads(Fast), grads(Stock)
			for i := range stock {
				if d := maxRelDiff(fast[i], stock[i]); d != 0 {
					t.Errorf("%s %v %v: gradient %d differs from the stock VJP by %g", op.name, pr[0], pr[1], i, d)
				}
			}
		}
	}
}

// TestGELUGradient compares GELU's written-out gradient with GoMLX's
// autodiff of x·½(1 + erf(x/√2)) and with central finite differences, in
// float64, over x in [−8, 8].
func TestGELUGradient(t *testing.T) {
	b := testBackend(t)
	n := 161
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = -8 + 16*float64(i)/float64(n-1)
	}
	x := tensors.FromFlatDataAndDimensions(xs, n)
	eval := func(f func(*Node) *Node) (y, g []float64) {
		out, err := MustNewExec(b, func(x *Node) []*Node {
			y := f(x)
			w := AddScalar(Sin(IotaFull(x.Graph(), y.Shape())), 2) // non-uniform upstream gradient
			return []*Node{y, Gradient(ReduceAllSum(Mul(y, w)), x)[0]}
		}).Exec(x)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])
	}
	plain := func(x *Node) *Node { return Mul(x, MulScalar(OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))), 0.5)) }
	y, g := eval(GELU)
	yWant, gWant := eval(plain)
	if d := maxRelDiff(y, yWant); d != 0 {
		t.Errorf("GELU values differ from x·Φ(x) by %g", d)
	}
	if d := maxRelDiff(g, gWant); d > 1e-14 {
		t.Errorf("GELU gradient differs from autodiff by %g", d)
	}
	for i, xi := range xs {
		const h = 1e-6
		gelu := func(x float64) float64 { return x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) }
		fd := (gelu(xi+h) - gelu(xi-h)) / (2 * h) * (math.Sin(float64(i)) + 2)
		if math.Abs(fd-g[i]) > 1e-8*math.Max(1, math.Abs(fd)) {
			t.Errorf("x = %g: gradient %g, finite difference %g", xi, g[i], fd)
		}
	}
}
