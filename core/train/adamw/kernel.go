package adamw

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// chunkLen is the number of elements of one unit of parallel work.
const chunkLen = 1 << 14

// chunk is elements [lo, hi) of trained variable v.
type chunk struct {
	v, lo, hi int
	sumSq     float64 // Σ g² over the chunk (when clipping)
}

func (o *Optimizer) update32(st *state, grads []*tensors.Tensor, c coefficients) error {
	return update(o, st, grads, c, adamwStep32)
}

func (o *Optimizer) update64(st *state, grads []*tensors.Tensor, c coefficients) error {
	return update(o, st, grads, c, adamwStep[float64])
}

// update runs one fused step over all trained variables: the clipping scale
// s from the gradients' global norm (summed per chunk in float64, then in
// the order of the variables' names and of the chunks, so the result does
// not depend on scheduling), then step on every chunk, in parallel.
func update[T float32 | float64](o *Optimizer, st *state, grads []*tensors.Tensor, c coefficients,
	step func(theta, g, m, v []T, c coefficients)) error {
	n := len(o.vars)
	theta, g, m, v := make([][]T, n), make([][]T, n), make([][]T, n), make([][]T, n)
	b := o.backend
	var err error
	for i, x := range o.vars {
		if theta[i], err = deviceFlat[T](b, x.MustValue()); err != nil {
			return err
		}
		if g[i], err = deviceFlat[T](b, grads[i]); err != nil {
			return err
		}
		if m[i], err = deviceFlat[T](b, st.m[i].MustValue()); err != nil {
			return err
		}
		if v[i], err = deviceFlat[T](b, st.v[i].MustValue()); err != nil {
			return err
		}
	}
	chunks := o.chunks[:0]
	first := make([]int, n+1) // chunks of variable i: chunks[first[i]:first[i+1]]
	for i := range n {
		first[i] = len(chunks)
		for lo := 0; lo < len(theta[i]); lo += chunkLen {
			chunks = append(chunks, chunk{v: i, lo: lo, hi: min(lo+chunkLen, len(theta[i]))})
		}
	}
	first[n] = len(chunks)
	o.chunks = chunks
	if o.cfg.Clip > 0 {
		parallel(len(chunks), func(k int) {
			ch := &chunks[k]
			ch.sumSq = sumSquares(g[ch.v][ch.lo:ch.hi])
		})
		sum := 0.0
		for _, i := range byName(o.names) {
			for _, ch := range chunks[first[i]:first[i+1]] {
				sum += ch.sumSq
			}
		}
		c.clip = min(1, o.cfg.Clip/(math.Sqrt(sum)+1e-6))
	}
	parallel(len(chunks), func(k int) {
		ch := chunks[k]
		i, lo, hi := ch.v, ch.lo, ch.hi
		step(theta[i][lo:hi], g[i][lo:hi], m[i][lo:hi], v[i][lo:hi], c)
	})
	return nil
}

// sumSquares is Σ x², accumulated in float64.
func sumSquares[T float32 | float64](x []T) float64 {
	var s0, s1 float64
	i := 0
	for ; i+1 < len(x); i += 2 {
		a, b := float64(x[i]), float64(x[i+1])
		s0 += a * a
		s1 += b * b
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a * a
	}
	return s0 + s1
}

// adamwStep is one AdamW step on equal-length θ, g, m, v, in T's precision:
//
//	g ← s·g
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	θ ← θ − (lrDebiased·m)/(√(debias2·v) + ε) − lrDecay·θ
func adamwStep[T float32 | float64](theta, g, m, v []T, c coefficients) {
	s, b1, b2 := T(c.clip), T(c.beta1), T(c.beta2)
	ob1, ob2 := 1-b1, 1-b2
	a, d2, eps, wd := T(c.lrDebiased), T(c.debias2), T(c.eps), T(c.lrDecay)
	g, m, v = g[:len(theta)], m[:len(theta)], v[:len(theta)]
	for i, x := range theta {
		gi := s * g[i]
		mi := b1*m[i] + ob1*gi
		vi := b2*v[i] + ob2*gi*gi
		m[i], v[i] = mi, vi
		theta[i] = x - (a*mi/(T(math.Sqrt(float64(d2*vi)))+eps) + wd*x)
	}
}

// parallel runs fn(0…n−1) on up to GOMAXPROCS goroutines (the caller's
// included), each index once.
func parallel(n int, fn func(k int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for k := range n {
			fn(k)
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
			fn(k)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}
