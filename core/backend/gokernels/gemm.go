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

// depthBlock splits a contraction of length k into equal blocks of at most kc.
func depthBlock(k int) int {
	blocks := (k + kc - 1) / kc
	return (k + blocks - 1) / blocks
}

// minParallelWork is the number of multiply-adds below which a product runs on
// one goroutine (spawning costs more than it saves).
const minParallelWork = 1 << 17

// Gemm computes p.C = A·Bᵀ for every batch element (C is overwritten).
// It uses up to GOMAXPROCS goroutines of its own.
func Gemm(p Problem) {
	if p.M == 0 || p.N == 0 || p.K == 0 {
		clear(p.C[:p.Batch*p.M*p.N])
		return
	}
	work := p.Batch * p.M * p.N * p.K
	workers := runtime.GOMAXPROCS(0)
	if work < minParallelWork {
		workers = 1
	}
	if useSmallGemm(p, workers) {
		smallGemm(p, workers)
		return
	}
	if !overwritesFirstBlock() {
		clear(p.C[:p.Batch*p.M*p.N])
	}
	if p.Batch >= workers || workers == 1 {
		// Split the batch: each goroutine owns whole matrices.
		parallelFor(min(workers, p.Batch), p.Batch, func(lo, hi int) {
			s := getScratch()
			defer putScratch(s)
			for b := lo; b < hi; b++ {
				for pc, kb := 0, depthBlock(p.K); pc < p.K; pc += kb {
					k := min(kb, p.K-pc)
					s.packB(p, b, pc, k)
					for ic := 0; ic < p.M; ic += mc {
						s.block(p, b, ic, min(mc, p.M-ic), pc, k, s.bPack)
					}
				}
			}
		})
		return
	}
	blocks := (p.M + mc - 1) / mc
	if p.K >= minSplitK*workers && (blocks < workers || p.K >= 4*max(p.M, p.N)) {
		// A long contraction with few rows or a small output (weight
		// gradients): split K, each goroutine accumulating into its own copy
		// of C, then sum.
		gemmSplitK(p, workers)
		return
	}
	// Few (large) matrices: pack B once per depth block, split the rows of A.
	s := getScratch()
	defer putScratch(s)
	if panels := (p.N + nr - 1) / nr; panels >= 2*workers {
		// Enough column panels: split them. Each goroutine packs only its
		// own panels and sweeps all rows, with one fork-join per product.
		parallelFor(workers, panels, func(plo, phi int) {
			w := getScratch()
			defer putScratch(w)
			for b := range p.Batch {
				for pc, kb := 0, depthBlock(p.K); pc < p.K; pc += kb {
					k := min(kb, p.K-pc)
					w.growB((phi - plo) * k * nr)
					packBPanels(w.bPack, p, b, pc, k, plo, phi, plo)
					for ic := 0; ic < p.M; ic += mc {
						w.blockPanels(p, b, ic, min(mc, p.M-ic), pc, k, w.bPack, plo, phi)
					}
				}
			}
		})
		return
	}
	// Rows per block: at most mc, a multiple of mr, balanced over the workers.
	rows := min(mc, (p.M+workers*mr-1)/(workers*mr)*mr)
	blocks = (p.M + rows - 1) / rows
	panels := (p.N + nr - 1) / nr
	for b := range p.Batch {
		for pc, kb := 0, depthBlock(p.K); pc < p.K; pc += kb {
			k := min(kb, p.K-pc)
			s.growB(panels * k * nr)
			bPack := s.bPack
			parallelFor(min(workers, panels), panels, func(lo, hi int) { packBPanels(bPack, p, b, pc, k, lo, hi, 0) })
			parallelFor(min(workers, blocks), blocks, func(lo, hi int) {
				w := getScratch()
				defer putScratch(w)
				for blk := lo; blk < hi; blk++ {
					ic := blk * rows
					w.block(p, b, ic, min(rows, p.M-ic), pc, k, bPack)
				}
			})
		}
	}
}

// minSplitK is the contraction length per goroutine from which gemmSplitK is used.
const minSplitK = 512

// gemmSplitK computes p (C already zero) by splitting the contraction into
// parts contiguous ranges, one per goroutine, summing the partial products.
func gemmSplitK(p Problem, parts int) {
	size := p.Batch * p.M * p.N
	partial := make([][]float32, parts)
	parallelFor(parts, parts, func(lo, hi int) {
		s := getScratch()
		defer putScratch(s)
		for part := lo; part < hi; part++ {
			k0, k1 := part*p.K/parts, (part+1)*p.K/parts
			sub := p
			sub.K = k1 - k0
			sub.A.Data = p.A.Data[k0*p.A.Col:]
			sub.B.Data = p.B.Data[k0*p.B.Col:]
			if part == 0 {
				sub.C = p.C
			} else {
				sub.C = make([]float32, size)
				partial[part] = sub.C
			}
			for b := range sub.Batch {
				for pc, kb := 0, depthBlock(sub.K); pc < sub.K; pc += kb {
					k := min(kb, sub.K-pc)
					s.packB(sub, b, pc, k)
					for ic := 0; ic < sub.M; ic += mc {
						s.block(sub, b, ic, min(mc, sub.M-ic), pc, k, s.bPack)
					}
				}
			}
		}
	})
	for _, c := range partial[1:] {
		for i, v := range c {
			p.C[i] += v
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

// panelWidth is the width of the B panel starting at column j0: nr, or nr/2
// for a last panel of at most nr/2 columns.
func panelWidth(n, j0 int) int {
	if n-j0 <= nr/2 {
		return nr / 2
	}
	return nr
}

// packB packs B_b[:, pc:pc+k] into column panels (panelWidth), k-major,
// zero-padded: panel jp starts at jp·k·nr and holds
// bPack[jp·k·nr + q·w + jj] = B_b(jp·nr + jj, pc + q).
func (s *scratch) packB(p Problem, b, pc, k int) {
	panels := (p.N + nr - 1) / nr
	s.growB(panels * k * nr)
	packBPanels(s.bPack, p, b, pc, k, 0, panels, 0)
}

// growB makes bPack hold n values.
func (s *scratch) growB(n int) {
	if cap(s.bPack) < n {
		s.bPack = make([]float32, n)
	}
	s.bPack = s.bPack[:n]
}

// packBPanels packs the B panels [lo, hi) into dst, panel jp at
// (jp−first)·k·nr.
func packBPanels(dst []float32, p Problem, b, pc, k, lo, hi, first int) {
	bPack := dst
	B := p.B
	base := b*B.Batch + pc*B.Col
	for jp := lo; jp < hi; jp++ {
		j0 := jp * nr
		w := panelWidth(p.N, j0)
		dst := bPack[(jp-first)*k*nr : (jp-first)*k*nr+k*w]
		cols := min(w, p.N-j0)
		if cols < w {
			clear(dst)
		}
		if B.Row == 1 { // B stored k-major: a panel row is contiguous
			switch {
			case cols == nr:
				for q := range k {
					o := base + q*B.Col + j0
					*(*[nr]float32)(dst[q*nr : q*nr+nr]) = *(*[nr]float32)(B.Data[o : o+nr])
				}
			case cols == nr/2:
				for q := range k {
					o := base + q*B.Col + j0
					*(*[nr / 2]float32)(dst[q*w : q*w+nr/2]) = *(*[nr / 2]float32)(B.Data[o : o+nr/2])
				}
			default:
				for q := range k {
					o := base + q*B.Col + j0
					d := dst[q*w : q*w+cols]
					for jj := range d {
						d[jj] = B.Data[o+jj]
					}
				}
			}
			continue
		}
		if B.Col == 1 && cols == nr {
			// Row-major B (x·Wᵀ with W out×in): gather 16 rows at a time so
			// each packed row (one cache line) is written once.
			var rows [nr][]float32
			for jj := range rows {
				o := base + (j0+jj)*B.Row
				rows[jj] = B.Data[o : o+k]
			}
			for q := range k {
				d := (*[nr]float32)(dst[q*nr : q*nr+nr])
				d[0], d[1], d[2], d[3] = rows[0][q], rows[1][q], rows[2][q], rows[3][q]
				d[4], d[5], d[6], d[7] = rows[4][q], rows[5][q], rows[6][q], rows[7][q]
				d[8], d[9], d[10], d[11] = rows[8][q], rows[9][q], rows[10][q], rows[11][q]
				d[12], d[13], d[14], d[15] = rows[12][q], rows[13][q], rows[14][q], rows[15][q]
			}
			continue
		}
		for jj := range cols {
			src := base + (j0+jj)*B.Row
			for q := range k {
				dst[q*w+jj] = B.Data[src+q*B.Col]
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
	if m%mr != 0 {
		clear(s.aPack[(panels-1)*k*mr : panels*k*mr])
	}
	if A.Row == 1 {
		// A stored k-major: read each depth's m values as one contiguous run
		// and deal them out to the panels.
		full := m / mr
		for q := range k {
			src := A.Data[base+q*A.Col : base+q*A.Col+m]
			for ip := range full {
				d := (*[mr]float32)(s.aPack[ip*k*mr+q*mr : ip*k*mr+q*mr+mr])
				a := (*[mr]float32)(src[ip*mr : ip*mr+mr])
				d[0], d[1], d[2], d[3], d[4], d[5] = a[0], a[1], a[2], a[3], a[4], a[5]
			}
			if full < panels {
				d := s.aPack[full*k*mr+q*mr:]
				for ii, v := range src[full*mr:] {
					d[ii] = v
				}
			}
		}
		return
	}
	for ip := range panels {
		dst := s.aPack[ip*k*mr : (ip+1)*k*mr]
		i0 := ip * mr
		rows := min(mr, m-i0)
		if A.Col == 1 && rows == mr {
			src := base + i0*A.Row
			r0 := A.Data[src : src+k]
			r1 := A.Data[src+A.Row : src+A.Row+k]
			r2 := A.Data[src+2*A.Row : src+2*A.Row+k]
			r3 := A.Data[src+3*A.Row : src+3*A.Row+k]
			r4 := A.Data[src+4*A.Row : src+4*A.Row+k]
			r5 := A.Data[src+5*A.Row : src+5*A.Row+k]
			for q := range k {
				d := (*[mr]float32)(dst[q*mr : q*mr+mr])
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[q], r1[q], r2[q], r3[q], r4[q], r5[q]
			}
			continue
		}
		for ii := range rows {
			src := base + (i0+ii)*A.Row
			for q := range k {
				dst[q*mr+ii] = A.Data[src+q*A.Col]
			}
		}
	}
}

// block multiplies rows [ic, ic+m) of A_b (depth block pc, k) with the packed
// B panels into C_b. Full mr-row panels of a row-major A are read in place
// (no packing) when the direct kernels are available; other rows are packed.
func (s *scratch) block(p Problem, b, ic, m, pc, k int, bPack []float32) {
	s.blockPanels(p, b, ic, m, pc, k, bPack, 0, (p.N+nr-1)/nr)
}

// blockPanels is block restricted to the B panels [plo, phi), which bPack
// holds from its start (panel jp at (jp−plo)·k·nr).
//
// With overwritesFirstBlock, C is not cleared beforehand: the first depth
// block (pc = 0) stores its full tiles (microKernelDirectStore) and clears
// each other tile just before adding to it, so every element of C is
// written once without a separate clearing pass or reads of C.
func (s *scratch) blockPanels(p Problem, b, ic, m, pc, k int, bPack []float32, plo, phi int) {
	c := p.C[b*p.M*p.N:]
	ldc := p.N
	first := pc == 0 && overwritesFirstBlock()
	packed := m // rows from ic+m−packed on go through packA
	if (p.A.Col == 1 || p.A.Row == 1) && hasDirectKernel() {
		full := m / mr * mr
		packed = m - full
		base := b*p.A.Batch + pc*p.A.Col
		for jp := plo; jp < phi; jp++ {
			j0 := jp * nr
			w := panelWidth(p.N, j0)
			cols := min(w, p.N-j0)
			bp := bPack[(jp-plo)*k*nr:]
			for i0 := ic; i0 < ic+full; i0 += mr {
				a := p.A.Data[base+i0*p.A.Row:]
				if cols == w {
					if first {
						microKernelDirectStore(w, k, a, p.A.Row, p.A.Col, bp, c[i0*ldc+j0:], ldc)
					} else {
						microKernelDirect(w, k, a, p.A.Row, p.A.Col, bp, c[i0*ldc+j0:], ldc)
					}
					continue
				}
				if first {
					clearTile(c, i0, j0, ldc, mr, cols)
				}
				if hasEdgeKernel() {
					microKernelEdge(w, k, a, p.A.Row, p.A.Col, bp, c[i0*ldc+j0:], ldc, mr, cols)
					continue
				}
				clear(s.tile[:])
				microKernelDirect(w, k, a, p.A.Row, p.A.Col, bp, s.tile[:], nr)
				s.addTile(c, i0, j0, ldc, mr, cols)
			}
		}
		if packed == 0 {
			return
		}
	}
	ic += m - packed
	m = packed
	s.packA(p, b, ic, m, pc, k)
	for jp := plo; jp < phi; jp++ {
		j0 := jp * nr
		w := panelWidth(p.N, j0)
		kernel := microKernel
		if w < nr {
			kernel = microKernel8
		}
		cols := min(w, p.N-j0)
		bp := bPack[(jp-plo)*k*nr:]
		for ip := 0; ip*mr < m; ip++ {
			i0 := ic + ip*mr
			rows := min(mr, m-ip*mr)
			ap := s.aPack[ip*k*mr:]
			if first {
				clearTile(c, i0, j0, ldc, rows, cols)
			}
			if rows == mr && cols == w {
				kernel(k, ap, bp, c[i0*ldc+j0:], ldc)
				continue
			}
			if hasEdgeKernel() {
				microKernelEdge(w, k, ap, 1, mr, bp, c[i0*ldc+j0:], ldc, rows, cols)
				continue
			}
			clear(s.tile[:])
			kernel(k, ap, bp, s.tile[:], nr)
			s.addTile(c, i0, j0, ldc, rows, cols)
		}
	}
}

// overwritesFirstBlock reports whether blockPanels overwrites C in the first
// depth block (the direct kernels are available), so Gemm need not clear C.
func overwritesFirstBlock() bool { return hasDirectKernel() }

// clearTile zeroes rows×cols of C at (i0, j0).
func clearTile(c []float32, i0, j0, ldc, rows, cols int) {
	for ii := range rows {
		clear(c[(i0+ii)*ldc+j0 : (i0+ii)*ldc+j0+cols])
	}
}

// addTile adds the top-left rows×cols of the scratch tile to C at (i0, j0).
func (s *scratch) addTile(c []float32, i0, j0, ldc, rows, cols int) {
	for ii := range rows {
		dst := c[(i0+ii)*ldc+j0 : (i0+ii)*ldc+j0+cols]
		src := s.tile[ii*nr : ii*nr+cols]
		for jj := range dst {
			dst[jj] += src[jj]
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

// microKernelGo8 is microKernelGo for an 8-column panel (Bp: k×8).
func microKernelGo8(k int, ap, bp, c []float32, ldc int) {
	const w = nr / 2
	var acc [mr][w]float32
	ap = ap[:k*mr]
	bp = bp[:k*w]
	for q := range k {
		brow := (*[w]float32)(bp[q*w : q*w+w])
		arow := (*[mr]float32)(ap[q*mr : q*mr+mr])
		for i := range mr {
			a := arow[i]
			r := &acc[i]
			for j := range w {
				r[j] += a * brow[j]
			}
		}
	}
	for i := range mr {
		row := c[i*ldc : i*ldc+w]
		for j := range w {
			row[j] += acc[i][j]
		}
	}
}
