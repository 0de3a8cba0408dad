package gokernels

import (
	"math"
	"reflect"
	"runtime"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Float32 executors for simplego's elementwise, broadcast, transpose and
// reduce ops. simplego runs broadcasts and transposes through a per-element
// index iterator and evaluates exp/erf in float64 via package math, one op at
// a time on one core; these executors collapse each op into a loop nest over
// contiguous runs (nest.go), use the float32 functions of mathf32.go, and
// split large ops across goroutines. Anything not float32 goes back to
// simplego's executor.

// binaryRun computes out[i] = a[i·sa] ∘ b[i·sb] for i < len(out).
type binaryRun func(out, a, b []float32, sa, sb int)

// vecLoop is an 8-lane loop over n elements (n a multiple of 8): vector ∘
// vector, vector ∘ scalar (b[0]) or scalar (a[0]) ∘ vector.
type vecLoop func(out, a, b *float32, n int)

// vecLoops returns the vector loops of an op (nil where there is none).
func vecLoops(op string) (vv, vs, sv vecLoop) {
	return simdLoops[op+"VV"], simdLoops[op+"VS"], simdLoops[op+"SV"]
}

var (
	addVV, addVS, _     = vecLoops("add")
	subVV, subVS, subSV = vecLoops("sub")
	mulVV, mulVS, _     = vecLoops("mul")
	divVV, divVS, divSV = vecLoops("div")
)

// vec runs loop over the leading multiple of 8 elements of out when the
// vector loops are in use, returning how many elements it did.
func vec(loop vecLoop, out, a, b []float32) int {
	n := len(out) &^ 7
	if loop == nil || !useAsm || n == 0 {
		return 0
	}
	loop(&out[0], &a[0], &b[0], n)
	return n
}

func addRun(out, a, b []float32, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		i0 := vec(addVV, out, a, b)
		a, b = a[:len(out)], b[:len(out)]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] + b[i]
		}
	case sa == 1 && sb == 0:
		i0 := vec(addVS, out, a, b)
		a, c := a[:len(out)], b[0]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] + c
		}
	case sa == 0 && sb == 1:
		i0 := vec(addVS, out, b, a)
		b, c := b[:len(out)], a[0]
		for i := i0; i < len(out); i++ {
			out[i] = c + b[i]
		}
	default:
		for i := range out {
			out[i] = a[i*sa] + b[i*sb]
		}
	}
}

func subRun(out, a, b []float32, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		i0 := vec(subVV, out, a, b)
		a, b = a[:len(out)], b[:len(out)]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] - b[i]
		}
	case sa == 1 && sb == 0:
		i0 := vec(subVS, out, a, b)
		a, c := a[:len(out)], b[0]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] - c
		}
	case sa == 0 && sb == 1:
		i0 := vec(subSV, out, a, b)
		b, c := b[:len(out)], a[0]
		for i := i0; i < len(out); i++ {
			out[i] = c - b[i]
		}
	default:
		for i := range out {
			out[i] = a[i*sa] - b[i*sb]
		}
	}
}

func mulRun(out, a, b []float32, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		i0 := vec(mulVV, out, a, b)
		a, b = a[:len(out)], b[:len(out)]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] * b[i]
		}
	case sa == 1 && sb == 0:
		i0 := vec(mulVS, out, a, b)
		a, c := a[:len(out)], b[0]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] * c
		}
	case sa == 0 && sb == 1:
		i0 := vec(mulVS, out, b, a)
		b, c := b[:len(out)], a[0]
		for i := i0; i < len(out); i++ {
			out[i] = c * b[i]
		}
	default:
		for i := range out {
			out[i] = a[i*sa] * b[i*sb]
		}
	}
}

func divRun(out, a, b []float32, sa, sb int) {
	switch {
	case sa == 1 && sb == 1:
		i0 := vec(divVV, out, a, b)
		a, b = a[:len(out)], b[:len(out)]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] / b[i]
		}
	case sa == 1 && sb == 0:
		i0 := vec(divVS, out, a, b)
		a, c := a[:len(out)], b[0]
		for i := i0; i < len(out); i++ {
			out[i] = a[i] / c
		}
	case sa == 0 && sb == 1:
		i0 := vec(divSV, out, a, b)
		b, c := b[:len(out)], a[0]
		for i := i0; i < len(out); i++ {
			out[i] = c / b[i]
		}
	default:
		for i := range out {
			out[i] = a[i*sa] / b[i*sb]
		}
	}
}

func maxRun(out, a, b []float32, sa, sb int) {
	for i := range out {
		out[i] = max(a[i*sa], b[i*sb])
	}
}

func minRun(out, a, b []float32, sa, sb int) {
	for i := range out {
		out[i] = min(a[i*sa], b[i*sb])
	}
}

// broadcastStrides returns the strides with which an operand of shape in is
// read over the index space out (same rank; axes where in has size 1 and out
// does not are broadcast, stride 0). A scalar (size 1) operand has all-zero strides.
func broadcastStrides(in, out []int) []int {
	s := make([]int, len(out))
	if len(in) != len(out) {
		return s // scalar
	}
	natural := rowMajor(in)
	for axis := range out {
		if in[axis] == out[axis] {
			s[axis] = natural[axis]
		}
	}
	return s
}

// binaryExecutor returns the executor of a float32 binary op.
func binaryExecutor(op backends.OpType, run binaryRun) executor {
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		lhs, rhs := inputs[0], inputs[1]
		a, ok1 := bufFlat(lhs).([]float32)
		b, ok2 := bufFlat(rhs).([]float32)
		outShape := nodeShape(node)
		lShape, rShape := bufShape(lhs), bufShape(rhs)
		if !ok1 || !ok2 || !broadcastable(lShape, outShape) || !broadcastable(rShape, outShape) {
			stockCalls.Add(1)
			return stocks[op](backend, node, inputs, owned)
		}
		// Reuse an owned input of the output's shape, as simplego does.
		var out *simplego.Buffer
		switch {
		case owned[1] && rShape.Equal(outShape):
			out, inputs[1] = rhs, nil
		case owned[0] && lShape.Equal(outShape):
			out, inputs[0] = lhs, nil
		default:
			out = getBufferForShape(backend, outShape)
		}
		c := bufFlat(out).([]float32)
		dims := outShape.Dimensions
		n := newNest(dims, rowMajor(dims), broadcastStrides(lShape.Dimensions, dims), broadcastStrides(rShape.Dimensions, dims))
		last := len(n.dims) - 1
		so, sa, sb := n.strides[0][last], n.strides[1][last], n.strides[2][last]
		if so != 1 && n.size() > 1 {
			panic("gokernels: binary op output is not contiguous") // cannot happen: row-major output
		}
		n.walkRows(1, func(off []int, rows int, step []int, length int) {
			if rows > 1 && sa+sb == 1 && rowScalarLoop(op, c, a, b, off, rows, step, length, sb == 0) {
				return
			}
			for range rows {
				run(c[off[0]:off[0]+length], a[off[1]:], b[off[2]:], sa, sb)
				off[0], off[1], off[2] = off[0]+step[0], off[1]+step[1], off[2]+step[2]
			}
		})
		fastCalls.Add(1)
		return out, nil
	}
}

// rowScalarLoop computes rows runs of a binary op whose one operand is a
// single value per run (the other contiguous): the softmax's and
// LayerNorm's x − max, e / Σe, …: contiguous rows through the AVX2 row loops,
// other layouts of short rows through Go loops; it returns false (nothing
// done) for long rows in other layouts. With scalarB, out = a ∘ b[row]
// (a contiguous); else out = a[row] ∘ b. Run r starts at off[op] + r·step[op]
// in c, a and b. Same arithmetic as the other paths (one IEEE operation per
// element, operands in the same order).
func rowScalarLoop(op backends.OpType, dst, a, b []float32, off []int, rows int, step []int, length int, scalarB bool) bool {
	vec, sc := a, b
	ov, os, sv, ss := off[1], off[2], step[1], step[2]
	if !scalarB {
		vec, sc = b, a
		ov, os, sv, ss = off[2], off[1], step[2], step[1]
	}
	oc, stc := off[0], step[0]
	if loop := rowLoopFor(op, scalarB); loop != nil && stc == length && sv == length && ss == 1 {
		// Contiguous rows: the vector row loop (same IEEE operations).
		n := rows * length
		out, in, c := dst[oc:oc+n], vec[ov:ov+n], sc[os:os+rows]
		loop(&out[0], &in[0], &c[0], rows, length, rowMask(length))
		return true
	}
	if length >= rowLoopMax {
		return false // the vector loops of the generic path are faster
	}
	switch {
	case op == backends.OpTypeAdd && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = x + c
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeAdd && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = c + x
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeSub && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = x - c
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeSub && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = c - x
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMul && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = x * c
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMul && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = c * x
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeDiv && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = x / c
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeDiv && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = c / x
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMax && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = max(x, c)
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMax && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = max(c, x)
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMin && scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = min(x, c)
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	case op == backends.OpTypeMin && !scalarB:
		for range rows {
			out, in, c := dst[oc:oc+length], vec[ov:ov+length], sc[os]
			for i, x := range in {
				out[i] = min(c, x)
			}
			oc, ov, os = oc+stc, ov+sv, os+ss
		}
	default:
		return false
	}
	return true
}

// broadcastable reports whether in is a scalar or has the rank of out with
// each dimension equal or 1.
func broadcastable(in, out shapes.Shape) bool {
	if in.Size() == 1 {
		return true
	}
	if in.Rank() != out.Rank() {
		return false
	}
	for i, d := range in.Dimensions {
		if d != out.Dimensions[i] && d != 1 {
			return false
		}
	}
	return true
}

// copyRuns copies in to out over the nest n of (out, in) strides, the
// output contiguous: out[i] = in[offset of i].
func (n nest) copyRuns(out, in []float32) {
	s := n.strides[1][len(n.dims)-1]
	n.walkRows(1, func(off []int, rows int, step []int, length int) {
		o, i := off[0], off[1]
		if s == 0 && length < rowLoopMax {
			// Each run repeats one value (a broadcast of a trailing axis).
			for range rows {
				v, d := in[i], out[o:o+length]
				for j := range d {
					d[j] = v
				}
				o, i = o+step[0], i+step[1]
			}
			return
		}
		if s == 1 && length == 16 { // attention heads of width 16
			for range rows {
				*(*[16]float32)(out[o : o+16]) = *(*[16]float32)(in[i : i+16])
				o, i = o+step[0], i+step[1]
			}
			return
		}
		for range rows {
			copyRun(out[o:o+length], in[i:], s)
			o, i = o+step[0], i+step[1]
		}
	})
}

// rowLoopMax is the run length below which runs that repeat one value
// (broadcast rows, a per-row scalar operand) are written by plain Go loops
// rather than the 8-lane vector loops, whose call costs more than short
// runs save.
const rowLoopMax = 32

// copyRun copies a strided run: out[i] = in[i·s].
func copyRun(out, in []float32, s int) {
	if s == 1 {
		if len(out) == 16 { // transposes of 16-wide heads: skip memmove's call
			*(*[16]float32)(out) = *(*[16]float32)(in[:16])
			return
		}
		copy(out, in[:len(out)])
		return
	}
	if s == 0 {
		fillVec(out, in[0])
		return
	}
	for i := range out {
		out[i] = in[i*s]
	}
}

// execBroadcastInDim: output axis broadcastAxes[i] takes operand axis i; the
// other output axes repeat the operand.
func execBroadcastInDim(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	in, ok := bufFlat(inputs[0]).([]float32)
	axes, ok2 := nodeData(node).([]int)
	inShape, outShape := bufShape(inputs[0]), nodeShape(node)
	if !ok || !ok2 || len(axes) != inShape.Rank() {
		stockCalls.Add(1)
		return stocks[backends.OpTypeBroadcastInDim](backend, node, inputs, owned)
	}
	dims := outShape.Dimensions
	strides := make([]int, len(dims))
	natural := rowMajor(inShape.Dimensions)
	for i, axis := range axes {
		if inShape.Dimensions[i] == dims[axis] {
			strides[axis] = natural[i]
		}
	}
	out := getBufferForShape(backend, outShape)
	c := bufFlat(out).([]float32)
	newNest(dims, rowMajor(dims), strides).copyRuns(c, in)
	fastCalls.Add(1)
	return out, nil
}

// execTranspose: output axis i is operand axis perm[i].
func execTranspose(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	in, ok := bufFlat(inputs[0]).([]float32)
	perm, ok2 := nodeData(node).([]int)
	inShape, outShape := bufShape(inputs[0]), nodeShape(node)
	if !ok || !ok2 || len(perm) != inShape.Rank() {
		stockCalls.Add(1)
		return stocks[backends.OpTypeTranspose](backend, node, inputs, owned)
	}
	dims := outShape.Dimensions
	natural := rowMajor(inShape.Dimensions)
	strides := make([]int, len(dims))
	for i, axis := range perm {
		strides[i] = natural[axis]
	}
	out := getBufferForShape(backend, outShape)
	c := bufFlat(out).([]float32)
	newNest(dims, rowMajor(dims), strides).copyRuns(c, in)
	fastCalls.Add(1)
	return out, nil
}

// unaryExecutor returns the executor of a float32 unary op computing fn on
// contiguous chunks.
func unaryExecutor(op backends.OpType, fn func(out, in []float32)) executor {
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		in, ok := bufFlat(inputs[0]).([]float32)
		if !ok {
			stockCalls.Add(1)
			return stocks[op](backend, node, inputs, owned)
		}
		var out *simplego.Buffer
		if owned[0] {
			out, inputs[0] = inputs[0], nil
		} else {
			out = getBufferForShape(backend, bufShape(inputs[0]))
		}
		c := bufFlat(out).([]float32)
		newNest([]int{len(in)}, []int{1}).walk(1, func(off []int, length int) {
			fn(c[off[0]:off[0]+length], in[off[0]:off[0]+length])
		})
		fastCalls.Add(1)
		return out, nil
	}
}

func expChunkGo(out, in []float32) {
	for i, x := range in {
		out[i] = expf(x)
	}
}

func erfChunkGo(out, in []float32) {
	for i, x := range in {
		out[i] = erff(x)
	}
}

// sqrtChunk, rsqrtChunk, absChunk and signChunk compute exactly what
// simplego's executors compute (same float64 arithmetic), on several cores.
func sqrtChunk(out, in []float32) {
	for i := sqrtVec(out, in); i < len(in); i++ {
		out[i] = float32(math.Sqrt(float64(in[i])))
	}
}

func rsqrtChunk(out, in []float32) {
	for i, x := range in {
		out[i] = float32(1 / math.Sqrt(float64(x)))
	}
}

func absChunk(out, in []float32) {
	for i, x := range in {
		if x < 0 {
			out[i] = -x
		} else {
			out[i] = x
		}
	}
}

func signChunk(out, in []float32) {
	for i := signVec(out, in); i < len(in); i++ {
		x := in[i]
		switch {
		case x < 0:
			out[i] = -1
		case x > 0:
			out[i] = 1
		default:
			out[i] = 0
		}
	}
}

func negChunk(out, in []float32) {
	minusOne := []float32{-1}
	i0 := vec(mulVS, out, in, minusOne)
	for i := i0; i < len(in); i++ {
		out[i] = -in[i]
	}
}

// reduceExecutor returns the executor of a float32 ReduceSum/Max/Min over
// the axes stored in the node.
func reduceExecutor(op backends.OpType) executor {
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		in, ok := bufFlat(inputs[0]).([]float32)
		axes, ok2 := nodeData(node).([]int)
		if !ok || !ok2 || len(axes) == 0 {
			stockCalls.Add(1)
			return stocks[op](backend, node, inputs, owned)
		}
		inShape, outShape := bufShape(inputs[0]), nodeShape(node)
		out := getBufferForShape(backend, outShape)
		c := bufFlat(out).([]float32)
		init := float32(0)
		switch op {
		case backends.OpTypeReduceMax:
			init = float32(math.Inf(-1))
		case backends.OpTypeReduceMin:
			init = float32(math.Inf(1))
		}
		for i := range c {
			c[i] = init
		}
		// Output strides over the operand's index space: 0 on reduced axes.
		dims := inShape.Dimensions
		outStrides := make([]int, len(dims))
		reduced := make([]bool, len(dims))
		for _, a := range axes {
			reduced[a] = true
		}
		stride := 1
		for axis := len(dims) - 1; axis >= 0; axis-- {
			if !reduced[axis] {
				outStrides[axis] = stride
				stride *= dims[axis]
			}
		}
		n := newNest(dims, rowMajor(dims), outStrides)
		last := len(n.dims) - 1
		so := n.strides[1][last]
		// Runs write disjoint outputs across indices of the outermost axis when
		// it is kept: split only there (groups of all runs of one index).
		if len(n.dims) > 1 && n.strides[1][0] != 0 {
			unit := 1
			for _, d := range n.dims[1:last] {
				unit *= d
			}
			n.walkRows(unit, func(off []int, rows int, step []int, length int) {
				if op == backends.OpTypeReduceSum && so == 0 && step[1] == 1 && step[0] == length &&
					rowSums(c[off[1]:off[1]+rows], in[off[0]:off[0]+rows*length], length) {
					return // LayerNorm's row means: contiguous rows into consecutive outputs
				}
				if so == 0 && length < rowLoopMax {
					reduceShortRows(op, c, in, off[1], off[0], rows, step[1], step[0], length)
					return
				}
				for range rows {
					reduceRun(op, c[off[1]:], in[off[0]:off[0]+length], so)
					off[0], off[1] = off[0]+step[0], off[1]+step[1]
				}
			})
		} else if workers := min(runtime.GOMAXPROCS(0), n.dims[0]); len(n.dims) > 1 && workers > 1 && n.size() >= minParallelElems {
			// The outermost axis is reduced: split it, each goroutine reducing
			// into its own copy of the output, then combine.
			partial := make([][]float32, workers)
			parallelFor(workers, workers, func(lo, hi int) {
				for w := lo; w < hi; w++ {
					a0, a1 := w*n.dims[0]/workers, (w+1)*n.dims[0]/workers
					dst := c
					if w > 0 {
						dst = make([]float32, len(c))
						for i := range dst {
							dst[i] = init
						}
						partial[w] = dst
					}
					sub := nest{dims: append([]int{a1 - a0}, n.dims[1:]...), strides: n.strides}
					src := in[a0*n.strides[0][0]:]
					if op == backends.OpTypeReduceSum && n.isColumnSum() && colSums(dst, src, a1-a0, n.dims[1]) {
						continue
					}
					sub.walk(0, func(off []int, length int) { reduceRun(op, dst[off[1]:], src[off[0]:off[0]+length], so) })
				}
			})
			for _, p := range partial[1:] {
				reduceRun(op, c, p, 1)
			}
		} else if !(op == backends.OpTypeReduceSum && n.isColumnSum() && colSums(c, in, n.dims[0], n.dims[1])) {
			n.walk(0, func(off []int, length int) { reduceRun(op, c[off[1]:], in[off[0]:off[0]+length], so) })
		}
		fastCalls.Add(1)
		return out, nil
	}
}

// isColumnSum reports whether the reduce nest n (operand strides, output
// strides) sums the rows of a contiguous [rows, cols] operand into a
// contiguous [cols] output: the bias gradients' reduction of every axis but
// the last.
func (n nest) isColumnSum() bool {
	return len(n.dims) == 2 && n.strides[0][0] == n.dims[1] && n.strides[0][1] == 1 &&
		n.strides[1][0] == 0 && n.strides[1][1] == 1
}

// reduceShortRows folds rows short runs, each into one output value: run r
// is src[si + r·ss:][:length], folded into dst[di + r·ds] (the softmax's
// max and sum over rows of 17 scores). Sums use sum32's four partial sums
// (as sumVec does for runs shorter than 8); max and min propagate NaN like
// reduceRun.
func reduceShortRows(op backends.OpType, dst, src []float32, di, si, rows, ds, ss, length int) {
	switch op {
	case backends.OpTypeReduceSum:
		for range rows {
			dst[di] += sum32(src[si : si+length])
			di, si = di+ds, si+ss
		}
	case backends.OpTypeReduceMax:
		for range rows {
			dst[di] = max(dst[di], max4(src[si:si+length]))
			di, si = di+ds, si+ss
		}
	default:
		for range rows {
			dst[di] = min(dst[di], min4(src[si:si+length]))
			di, si = di+ds, si+ss
		}
	}
}

// max4 is the largest element of x (−∞ if empty; NaN if any is NaN), over
// four independent chains (max is exact, so the order does not matter).
func max4(x []float32) float32 {
	inf := float32(math.Inf(-1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	i := 0
	for ; i+3 < len(x); i += 4 {
		m0, m1, m2, m3 = max(m0, x[i]), max(m1, x[i+1]), max(m2, x[i+2]), max(m3, x[i+3])
	}
	for ; i < len(x); i++ {
		m0 = max(m0, x[i])
	}
	return max(max(m0, m1), max(m2, m3))
}

// min4 is max4 for the smallest element (+∞ if empty).
func min4(x []float32) float32 {
	inf := float32(math.Inf(1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	i := 0
	for ; i+3 < len(x); i += 4 {
		m0, m1, m2, m3 = min(m0, x[i]), min(m1, x[i+1]), min(m2, x[i+2]), min(m3, x[i+3])
	}
	for ; i < len(x); i++ {
		m0 = min(m0, x[i])
	}
	return min(min(m0, m1), min(m2, m3))
}

// reduceRun folds src into dst[i·so] (so = 0: all of src into dst[0]).
func reduceRun(op backends.OpType, dst, src []float32, so int) {
	switch op {
	case backends.OpTypeReduceSum:
		if so == 0 {
			dst[0] += sumVec(src)
			return
		}
		if so == 1 {
			dst = dst[:len(src)]
			i0 := vec(addVV, dst, dst, src)
			for i := i0; i < len(src); i++ {
				dst[i] += src[i]
			}
			return
		}
		for i, v := range src {
			dst[i*so] += v
		}
	case backends.OpTypeReduceMax:
		if so == 0 {
			m := dst[0]
			for _, v := range src {
				if v > m || v != v { // NaN propagates, as with max()
					m = v
				}
			}
			dst[0] = m
			return
		}
		for i, v := range src {
			dst[i*so] = max(dst[i*so], v)
		}
	default:
		for i, v := range src {
			dst[i*so] = min(dst[i*so], v)
		}
	}
}

// sum32 sums with four partial sums (float32, like simplego's loop but with
// more instruction-level parallelism).
func sum32(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+3 < len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sliceParams reads simplego's Slice parameters (starts, limits, strides)
// from the node (reflection, read-only).
func sliceParams(data any) (starts, strides []int, ok bool) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, nil, false
	}
	v = v.Elem()
	read := func(name string) ([]int, bool) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
			return nil, false
		}
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out, true
	}
	starts, ok1 := read("starts")
	strides, ok2 := read("strides")
	return starts, strides, ok1 && ok2
}

// execSlice copies the box starts + i·strides of the operand.
func execSlice(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	in, ok := bufFlat(inputs[0]).([]float32)
	starts, steps, ok2 := sliceParams(nodeData(node))
	inShape, outShape := bufShape(inputs[0]), nodeShape(node)
	if !ok || !ok2 || len(starts) != inShape.Rank() || (len(steps) != 0 && len(steps) != inShape.Rank()) {
		stockCalls.Add(1)
		return stocks[backends.OpTypeSlice](backend, node, inputs, owned)
	}
	natural := rowMajor(inShape.Dimensions)
	strides := make([]int, len(natural))
	base := 0
	for a := range natural {
		step := 1
		if len(steps) > 0 && steps[a] > 0 {
			step = steps[a]
		}
		strides[a] = natural[a] * step
		base += starts[a] * natural[a]
	}
	out := getBufferForShape(backend, outShape)
	c := bufFlat(out).([]float32)
	dims := outShape.Dimensions
	newNest(dims, rowMajor(dims), strides).copyRuns(c, in[base:])
	fastCalls.Add(1)
	return out, nil
}

// execConcatenate copies the operands one after the other along the axis.
func execConcatenate(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	axis, ok := nodeData(node).(int)
	outShape := nodeShape(node)
	flats := make([][]float32, len(inputs))
	for i, in := range inputs {
		f, isF32 := bufFlat(in).([]float32)
		if !isF32 {
			ok = false
			break
		}
		flats[i] = f
	}
	if !ok || axis < 0 || axis >= outShape.Rank() {
		stockCalls.Add(1)
		return stocks[backends.OpTypeConcatenate](backend, node, inputs, owned)
	}
	out := getBufferForShape(backend, outShape)
	c := bufFlat(out).([]float32)
	outStrides := rowMajor(outShape.Dimensions)
	offset := 0
	for i, in := range inputs {
		dims := bufShape(in).Dimensions
		n := newNest(dims, outStrides, rowMajor(dims))
		dst := c[offset*outStrides[axis]:]
		src := flats[i]
		last := len(n.dims) - 1
		so, si := n.strides[0][last], n.strides[1][last]
		n.walk(1, func(off []int, length int) {
			if so == 1 && si == 1 {
				copy(dst[off[0]:off[0]+length], src[off[1]:off[1]+length])
				return
			}
			for j := range length {
				dst[off[0]+j*so] = src[off[1]+j*si]
			}
		})
		offset += dims[axis]
	}
	fastCalls.Add(1)
	return out, nil
}
