package gokernels

// Many small products — attention's per-head q·kᵀ and att·v, 17×17 by 16
// at batch 512 — spend more time packing and in edge tiles than in the 6×16
// micro-kernel: a 17-wide output is one full 16-column panel plus an 8-wide
// panel for its last column, and 17 rows are two 6-row panels plus a packed
// 5-row one. For N ≤ smallMaxN, smallGemm instead packs B_b once per batch
// element into one k-major panel 8V wide (V = ⌈N/8⌉ vectors, zero-padded),
// and sweeps the rows of A in place, 4–6 at a time, each row's N outputs held
// in V registers over the whole depth and stored once (the last vector under
// a lane mask): no A packing, no edge tiles, no C clear-and-add.
const (
	smallMaxN = 24
	smallMaxK = 64
	smallMaxM = 64
)

// useSmallGemm reports whether p goes through smallGemm: many small
// matrices (a batch to split across goroutines), N ≤ 24, K ≤ 64, M ≤ 64.
func useSmallGemm(p Problem, workers int) bool {
	return hasSmallKernels() && p.Batch >= 4*workers && p.N <= smallMaxN && p.K <= smallMaxK && p.M <= smallMaxM
}

// smallGemm computes p (C overwritten) with the small-matrix kernels, the
// batch split over workers goroutines.
func smallGemm(p Problem, workers int) {
	vecs := (p.N + 7) / 8
	width := 8 * vecs
	mask := lastVectorMask(p.N - 8*(vecs-1))
	A, B := p.A, p.B
	// Rows per kernel call: 6 rows of up to 2 vectors or 4 of 3 (12
	// accumulators), balanced so that the last block is not much shorter
	// (17 rows: 6, 6, 5).
	block := 6
	if vecs == 3 {
		block = 4
	}
	if calls := (p.M + block - 1) / block; calls > 0 {
		block = (p.M + calls - 1) / calls
	}
	parallelFor(min(workers, p.Batch), p.Batch, func(lo, hi int) {
		bp := make([]float32, p.K*width) // padding columns stay zero
		for b := lo; b < hi; b++ {
			// Pack B_b: bp[q·width + j] = B_b(j, q) — or read it in place
			// when it is k-major and exactly width wide.
			base := b * B.Batch
			panel := bp
			if B.Row == 1 && B.Col == width {
				panel = B.Data[base : base+p.K*width]
			} else if B.Row == 1 {
				for q := range p.K {
					copy(bp[q*width:q*width+p.N], B.Data[base+q*B.Col:base+q*B.Col+p.N])
				}
			} else {
				packSmallTransposed(bp, B, base, p.N, p.K, width)
			}
			c := p.C[b*p.M*p.N : (b+1)*p.M*p.N]
			aBase := b * A.Batch
			for i := 0; i < p.M; i += block {
				rows := min(block, p.M-i)
				a := A.Data[aBase+i*A.Row:]
				_ = a[(rows-1)*A.Row+(p.K-1)*A.Col] // bounds of the rows read
				_ = c[(i+rows-1)*p.N+p.N-1]
				smallKernels[rows-1][vecs-1](p.K, &a[0], A.Row, A.Col, &panel[0], &c[i*p.N], p.N, mask)
			}
		}
	})
}

// packSmallTransposed packs n rows of B (element (j, q) at
// Data[base + j·Row + q·Col]) k-major: bp[q·width + j] = B(j, q). Eight rows
// at a time, so each packed row segment is written as one 8-wide store.
func packSmallTransposed(bp []float32, B Operand, base, n, k, width int) {
	j := 0
	if B.Col == 1 && k >= 8 && useAsm {
		// 8×8 blocks through the AVX2 transpose, the last k mod 8 depths
		// element by element.
		tail := k - k%8
		for ; j+8 <= n; j += 8 {
			for q := 0; q < tail; q += 8 {
				transpose8x8(B.Data[base+j*B.Row+q:], B.Row, bp[q*width+j:], width)
			}
			for r := range 8 {
				src := base + (j+r)*B.Row
				for q := tail; q < k; q++ {
					bp[q*width+j+r] = B.Data[src+q]
				}
			}
		}
	}
	if B.Col == 1 {
		for ; j+8 <= n; j += 8 {
			var rows [8][]float32
			for r := range rows {
				o := base + (j+r)*B.Row
				rows[r] = B.Data[o : o+k]
			}
			for q := range k {
				d := (*[8]float32)(bp[q*width+j : q*width+j+8])
				d[0], d[1], d[2], d[3] = rows[0][q], rows[1][q], rows[2][q], rows[3][q]
				d[4], d[5], d[6], d[7] = rows[4][q], rows[5][q], rows[6][q], rows[7][q]
			}
		}
	}
	for ; j < n; j++ {
		src := base + j*B.Row
		for q := range k {
			bp[q*width+j] = B.Data[src+q*B.Col]
		}
	}
}
