package gokernels

import "runtime"

// A nest describes a loop over an index space of rank r shared by several
// operands, each addressed with its own strides (0 on broadcast axes).
// Axes of size 1 are dropped and adjacent axes that every operand walks
// contiguously are merged, so most elementwise ops become one or two loops.
type nest struct {
	dims    []int
	strides [][]int // strides[op][axis]
}

// newNest builds the collapsed loop nest over dims for the operands' strides.
func newNest(dims []int, strides ...[]int) nest {
	var n nest
	n.strides = make([][]int, len(strides))
	for axis, d := range dims {
		if d == 1 {
			continue
		}
		last := len(n.dims) - 1
		mergeable := last >= 0
		for op := range strides {
			if mergeable && n.strides[op][last] != strides[op][axis]*d {
				mergeable = false
			}
		}
		if mergeable {
			n.dims[last] *= d
			for op := range strides {
				n.strides[op][last] = strides[op][axis]
			}
			continue
		}
		n.dims = append(n.dims, d)
		for op := range strides {
			n.strides[op] = append(n.strides[op], strides[op][axis])
		}
	}
	if len(n.dims) == 0 { // a single element
		n.dims = []int{1}
		for op := range strides {
			n.strides[op] = []int{0}
		}
	}
	return n
}

// size is the number of index points of the nest.
func (n nest) size() int {
	s := 1
	for _, d := range n.dims {
		s *= d
	}
	return s
}

// rowMajor returns the strides of a contiguous row-major array of dims.
func rowMajor(dims []int) []int {
	s := make([]int, len(dims))
	stride := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = stride
		stride *= dims[i]
	}
	return s
}

// minParallelElems is the size below which elementwise loops stay on one goroutine.
const minParallelElems = 1 << 15

// walk calls inner(offsets, n) for every innermost run of the nest, where
// offsets[op] is the operand's offset of the run's first element and n its
// length (the innermost strides are n.strides[op][last]).
//
// When the nest is large, runs are split over goroutines in groups of unit
// consecutive runs (unit 0: never split; unit 1: any split, and a single long
// run may be cut into pieces). inner must be safe to run concurrently on
// different groups.
func (n nest) walk(unit int, inner func(offsets []int, length int)) {
	n.walkRows(unit, func(off []int, rows int, step []int, length int) {
		for range rows {
			inner(off, length)
			for op := range off {
				off[op] += step[op]
			}
		}
	})
}

// walkRows is walk handing inner up to a whole second-innermost axis of runs
// at once: inner(offsets, rows, step, length) covers the rows runs starting
// at offsets, run r at offsets[op] + r·step[op] (step: the strides of the
// second-innermost axis; zero for a one-axis nest), each length long. inner
// may modify offsets. Looping over rows inside inner saves the per-run call
// and odometer step of walk, which dominate when runs are short (rows of 17
// attention scores, 16-wide heads).
func (n nest) walkRows(unit int, inner func(offsets []int, rows int, step []int, length int)) {
	rank := len(n.dims)
	nops := len(n.strides)
	outer := 1
	for _, d := range n.dims[:rank-1] {
		outer *= d
	}
	length := n.dims[rank-1]
	step := make([]int, nops)
	rowDim := 1 // runs per second-innermost axis
	if rank >= 2 {
		rowDim = n.dims[rank-2]
		for op := range nops {
			step[op] = n.strides[op][rank-2]
		}
	}
	workers := 1
	if unit > 0 && n.size() >= minParallelElems {
		workers = min(runtime.GOMAXPROCS(0), outer/unit)
	}
	run := func(lo, hi int) {
		offsets := make([]int, nops)
		call := make([]int, nops)
		idx := make([]int, rank-1)
		// Position the odometer at run lo.
		rem := lo
		for axis := rank - 2; axis >= 0; axis-- {
			idx[axis] = rem % n.dims[axis]
			rem /= n.dims[axis]
		}
		for op := range nops {
			o := 0
			for axis := 0; axis < rank-1; axis++ {
				o += idx[axis] * n.strides[op][axis]
			}
			offsets[op] = o
		}
		for r := lo; r < hi; {
			rows := 1
			if rank >= 2 {
				rows = min(hi-r, rowDim-idx[rank-2])
			}
			copy(call, offsets)
			inner(call, rows, step, length)
			r += rows
			if rank < 2 {
				continue
			}
			// Advance the second-innermost axis by rows, then carry.
			idx[rank-2] += rows
			for op := range nops {
				offsets[op] += rows * step[op]
			}
			if idx[rank-2] < rowDim {
				continue
			}
			idx[rank-2] = 0
			for op := range nops {
				offsets[op] -= rowDim * step[op]
			}
			for axis := rank - 3; axis >= 0; axis-- {
				idx[axis]++
				if idx[axis] < n.dims[axis] {
					for op := range nops {
						offsets[op] += n.strides[op][axis]
					}
					break
				}
				idx[axis] = 0
				for op := range nops {
					offsets[op] -= (n.dims[axis] - 1) * n.strides[op][axis]
				}
			}
		}
	}
	if unit == 1 && outer == 1 && length >= minParallelElems {
		// One long run: split it.
		parts := runtime.GOMAXPROCS(0)
		parallelFor(parts, parts, func(lo, hi int) {
			offsets := make([]int, nops)
			for p := lo; p < hi; p++ {
				start, end := p*length/parts, (p+1)*length/parts
				for op := range offsets {
					offsets[op] = start * n.strides[op][rank-1]
				}
				inner(offsets, 1, step, end-start)
			}
		})
		return
	}
	if workers <= 1 {
		run(0, outer)
		return
	}
	groups := outer / unit
	parallelFor(workers, groups, func(lo, hi int) { run(lo*unit, hi*unit) })
}
