package gokernels

import (
	"runtime"
	"sync"
)

// Blocking of the float32 matrix product (BLIS-style): the micro-kernel
// updates an mr×nr tile of C from an mr-row panel of A and an nr-column panel
// of B, both packed k-major; kc bounds the panels' depth (so they stay in
// L1/L2) and mc the rows of A packed at once.
const (
	mr = 6
	nr = 16
	kc = 256
	mc = 72 // a multiple of mr
)

// Operand is a batch of strided float32 matrices: element (i, p) of matrix b is
// Data[b*Batch + i*Row + p*Col].
type Operand struct {
	Data            []float32
	Batch, Row, Col int
}

// Problem is C_b = A_b·B_bᵀ for b < Batch, A_b: M×K, B_b: N×K, C_b: M×N stored
// row-major and contiguous at C[b·M·N:].
type Problem struct {
	Batch, M, N, K int
	A, B           Operand
	C              []float32
}

// minParallelWork is the number of multiply-adds below which a product runs on
// one goroutine (spawning costs more than it saves).
const minParallelWork = 1 << 17

// Gemm computes p.C = A·Bᵀ for every batch element (C is overwritten).
// It uses up to GOMAXPROCS goroutines of its own.
func Gemm(p Problem) {
	clear(p.C[:p.Batch*p.M*p.N])
	if p.M == 0 || p.N == 0 || p.K == 0 {
		return
	}
	work := p.Batch * p.M * p.N * p.K
	workers := runtime.GOMAXPROCS(0)
	if work < minParallelWork {
		workers = 1
	}
	if p.Batch >= workers || workers == 1 {
		// Split the batch: each goroutine owns whole matrices.
		parallelFor(min(workers, p.Batch), p.Batch, func(lo, hi int) {
			s := getScratch()
			defer putScratch(s)
			for b := lo; b < hi; b++ {
				for pc := 0; pc < p.K; pc += kc {
					k := min(kc, p.K-pc)
					s.packB(p, b, pc, k)
					for ic := 0; ic < p.M; ic += mc {
						s.block(p, b, ic, min(mc, p.M-ic), pc, k, s.bPack)
					}
				}
			}
		})
		return
	}
	// Few (large) matrices: pack B once per depth block, split the rows of A.
	s := getScratch()
	defer putScratch(s)
	blocks := (p.M + mc - 1) / mc
	for b := range p.Batch {
		for pc := 0; pc < p.K; pc += kc {
			k := min(kc, p.K-pc)
			s.packB(p, b, pc, k)
			bPack := s.bPack
			parallelFor(min(workers, blocks), blocks, func(lo, hi int) {
				w := getScratch()
				defer putScratch(w)
				for blk := lo; blk < hi; blk++ {
					ic := blk * mc
					w.block(p, b, ic, min(mc, p.M-ic), pc, k, bPack)
				}
			})
		}
	}
}

// parallelFor splits [0, n) into parts contiguous ranges run concurrently.
func parallelFor(parts, n int, fn func(lo, hi int)) {
	if parts <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range parts {
		lo, hi := i*n/parts, (i+1)*n/parts
		if lo == hi {
			continue
		}
		if i == parts-1 {
			fn(lo, hi) // the caller works too
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// scratch holds one goroutine's packing buffers.
type scratch struct {
	aPack []float32 // mc×kc, mr-row panels
	bPack []float32 // N×kc, nr-column panels (grown as needed)
	tile  [mr * nr]float32
}

var scratchPool = sync.Pool{New: func() any { return &scratch{aPack: make([]float32, mc*kc)} }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { scratchPool.Put(s) }

// packB packs B_b[:, pc:pc+k] into nr-column panels, k-major, zero-padded:
// bPack[jp·k·nr + q·nr + jj] = B_b(jp·nr + jj, pc + q).
func (s *scratch) packB(p Problem, b, pc, k int) {
	panels := (p.N + nr - 1) / nr
	need := panels * k * nr
	if cap(s.bPack) < need {
		s.bPack = make([]float32, need)
	}
	s.bPack = s.bPack[:need]
	B := p.B
	base := b*B.Batch + pc*B.Col
	for jp := range panels {
		dst := s.bPack[jp*k*nr : (jp+1)*k*nr]
		j0 := jp * nr
		cols := min(nr, p.N-j0)
		if cols < nr {
			clear(dst)
		}
		if B.Row == 1 { // B stored k-major: a panel row is contiguous
			for q := range k {
				src := B.Data[base+q*B.Col+j0 : base+q*B.Col+j0+cols]
				copy(dst[q*nr:q*nr+cols], src)
			}
			continue
		}
		for jj := range cols {
			src := base + (j0+jj)*B.Row
			for q := range k {
				dst[q*nr+jj] = B.Data[src+q*B.Col]
			}
		}
	}
}

// packA packs A_b[ic:ic+m, pc:pc+k] into mr-row panels, k-major, zero-padded:
// aPack[ip·k·mr + q·mr + ii] = A_b(ic + ip·mr + ii, pc + q).
func (s *scratch) packA(p Problem, b, ic, m, pc, k int) {
	A := p.A
	base := b*A.Batch + ic*A.Row + pc*A.Col
	panels := (m + mr - 1) / mr
	for ip := range panels {
		dst := s.aPack[ip*k*mr : (ip+1)*k*mr]
		i0 := ip * mr
		rows := min(mr, m-i0)
		if rows < mr {
			clear(dst)
		}
		if A.Row == 1 { // A stored k-major
			for q := range k {
				src := A.Data[base+q*A.Col+i0 : base+q*A.Col+i0+rows]
				copy(dst[q*mr:q*mr+rows], src)
			}
			continue
		}
		for ii := range rows {
			src := base + (i0+ii)*A.Row
			if A.Col == 1 {
				row := A.Data[src : src+k]
				for q, v := range row {
					dst[q*mr+ii] = v
				}
				continue
			}
			for q := range k {
				dst[q*mr+ii] = A.Data[src+q*A.Col]
			}
		}
	}
}

// block multiplies rows [ic, ic+m) of A_b (depth block pc, k) with the packed
// B panels into C_b.
func (s *scratch) block(p Problem, b, ic, m, pc, k int, bPack []float32) {
	s.packA(p, b, ic, m, pc, k)
	c := p.C[b*p.M*p.N:]
	ldc := p.N
	for jp := 0; jp*nr < p.N; jp++ {
		j0 := jp * nr
		cols := min(nr, p.N-j0)
		bp := bPack[jp*k*nr:]
		for ip := 0; ip*mr < m; ip++ {
			i0 := ic + ip*mr
			rows := min(mr, m-ip*mr)
			ap := s.aPack[ip*k*mr:]
			if rows == mr && cols == nr {
				microKernel(k, ap, bp, c[i0*ldc+j0:], ldc)
				continue
			}
			clear(s.tile[:])
			microKernel(k, ap, bp, s.tile[:], nr)
			for ii := range rows {
				dst := c[(i0+ii)*ldc+j0 : (i0+ii)*ldc+j0+cols]
				for jj := range dst {
					dst[jj] += s.tile[ii*nr+jj]
				}
			}
		}
	}
}

// microKernelGo is the portable micro-kernel: C[mr×nr] += Ap·Bp over depth k,
// Ap: k×mr (k-major), Bp: k×nr (k-major), C rows ldc apart.
func microKernelGo(k int, ap, bp, c []float32, ldc int) {
	var acc [mr][nr]float32
	ap = ap[:k*mr]
	bp = bp[:k*nr]
	for q := range k {
		brow := (*[nr]float32)(bp[q*nr : q*nr+nr])
		arow := (*[mr]float32)(ap[q*mr : q*mr+mr])
		for i := range mr {
			a := arow[i]
			r := &acc[i]
			for j := range nr {
				r[j] += a * brow[j]
			}
		}
	}
	for i := range mr {
		row := c[i*ldc : i*ldc+nr]
		for j := range nr {
			row[j] += acc[i][j]
		}
	}
}
