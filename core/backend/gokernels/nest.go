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
	rank := len(n.dims)
	outer := 1
	for _, d := range n.dims[:rank-1] {
		outer *= d
	}
	length := n.dims[rank-1]
	workers := 1
	if unit > 0 && n.size() >= minParallelElems {
		workers = min(runtime.GOMAXPROCS(0), outer/unit)
	}
	run := func(lo, hi int) {
		nops := len(n.strides)
		offsets := make([]int, nops)
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
		for r := lo; r < hi; r++ {
			inner(offsets, length)
			for axis := rank - 2; axis >= 0; axis-- {
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
			offsets := make([]int, len(n.strides))
			for p := lo; p < hi; p++ {
				start, end := p*length/parts, (p+1)*length/parts
				for op := range offsets {
					offsets[op] = start * n.strides[op][rank-1]
				}
				inner(offsets, end-start)
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
