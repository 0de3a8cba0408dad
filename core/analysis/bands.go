package analysis

import "fmt"

// Window is the fine-tuned range of component indices [Start, Start+Rank)
// (the adapter's window of singular components). The zero Window marks none.
type Window struct {
	Start, Rank int
}

// End returns Start+Rank, one past the window's last index.
func (w Window) End() int { return w.Start + w.Rank }

// Empty reports whether the window marks no component.
func (w Window) Empty() bool { return w.Rank <= 0 }

// Contains reports whether component i is inside the window.
func (w Window) Contains(i int) bool { return !w.Empty() && i >= w.Start && i < w.End() }

// Overlap returns how many of the indices [lo, hi) are inside the window.
func (w Window) Overlap(lo, hi int) int {
	if w.Empty() {
		return 0
	}
	return max(0, min(hi, w.End())-max(lo, w.Start))
}

// String formats the window as "[s, s+r)" or "none".
func (w Window) String() string {
	if w.Empty() {
		return "none"
	}
	return fmt.Sprintf("[%d, %d)", w.Start, w.End())
}

// check reports a window that does not fit in k components.
func (w Window) check(k int) error {
	if w.Empty() {
		return nil
	}
	if w.Start < 0 || w.End() > k {
		return fmt.Errorf("window %v does not fit in %d components", w, k)
	}
	return nil
}

// Band is a contiguous range of component indices [Lo, Hi).
type Band struct {
	Lo, Hi int
}

// Len returns Hi−Lo.
func (b Band) Len() int { return b.Hi - b.Lo }

// String formats the band as "Lo–Hi−1" (inclusive), the way tables show it.
func (b Band) String() string {
	if b.Hi-b.Lo == 1 {
		return fmt.Sprint(b.Lo)
	}
	return fmt.Sprintf("%d–%d", b.Lo, b.Hi-1)
}

// EqualBands splits [0, k) into min(count, k) contiguous bands whose sizes
// differ by at most one, larger bands first: EqualBands(10, 3) is
// [0,4) [4,7) [7,10). It returns nil when k or count is not positive.
func EqualBands(k, count int) []Band {
	if k <= 0 || count <= 0 {
		return nil
	}
	count = min(count, k)
	bands := make([]Band, count)
	size, extra := k/count, k%count
	lo := 0
	for i := range bands {
		hi := lo + size
		if i < extra {
			hi++
		}
		bands[i] = Band{lo, hi}
		lo = hi
	}
	return bands
}

// Deciles is EqualBands(k, 10), the default summary bands.
func Deciles(k int) []Band { return EqualBands(k, 10) }

// checkBands reports a band that is empty or outside [0, k).
func checkBands(bands []Band, k int) error {
	for i, b := range bands {
		if b.Lo < 0 || b.Hi > k || b.Lo >= b.Hi {
			return fmt.Errorf("band %d [%d, %d) is empty or outside [0, %d)", i, b.Lo, b.Hi, k)
		}
	}
	return nil
}
