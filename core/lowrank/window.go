package lowrank

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Window presets (WindowSpec.Preset).
const (
	WindowPiSSA    = "pissa"    // s = 0: the top r components
	WindowMiLoRA   = "milora"   // s = k−r: the bottom r components
	WindowMid      = "mid"      // s = ⌊(k−r)/2⌋
	WindowStart    = "start"    // s = Start
	WindowFraction = "fraction" // s = round(Fraction·(k−r))
)

// WindowSpec chooses where a window of r singular components starts, for a
// weight with k = min(m, n) components. The zero value is {Preset: "start",
// Start: 0}, i.e. the PiSSA window.
type WindowSpec struct {
	Preset   string  // pissa | milora | mid | start | fraction ("" means start)
	Start    int     // s, for Preset "start"
	Fraction float64 // f ∈ [0, 1], for Preset "fraction": s = round(f·(k−r))
}

// Resolve returns the window start s for a layer of shape m×n and rank r, or
// an error naming the layer, its shape, s and r when the window is invalid
// (r < 1, s < 0, s+r > k, f ∉ [0, 1], unknown preset).
func (w WindowSpec) Resolve(layer string, m, n, rank int) (start int, err error) {
	k := min(m, n)
	bad := func(s int, why string) (int, error) {
		return 0, fmt.Errorf("lowrank: layer %q (%d×%d, k=%d): invalid window %s with s=%d r=%d: %s",
			layer, m, n, k, w, s, rank, why)
	}
	if m < 1 || n < 1 {
		return bad(0, "empty weight")
	}
	if rank < 1 {
		return bad(0, "rank must be at least 1")
	}
	if rank > k {
		return bad(0, fmt.Sprintf("rank exceeds k=min(m,n)=%d", k))
	}
	var s int
	switch w.Preset {
	case WindowPiSSA:
		s = 0
	case WindowMiLoRA:
		s = k - rank
	case WindowMid:
		s = (k - rank) / 2
	case WindowStart, "":
		s = w.Start
	case WindowFraction:
		if !(w.Fraction >= 0 && w.Fraction <= 1) { // also rejects NaN
			return bad(0, fmt.Sprintf("fraction %v outside [0, 1]", w.Fraction))
		}
		s = int(math.Round(w.Fraction * float64(k-rank)))
	default:
		return bad(0, fmt.Sprintf("unknown preset %q (expected pissa, milora, mid, start or fraction)", w.Preset))
	}
	if s < 0 {
		return bad(s, "start must be ≥ 0")
	}
	if s+rank > k {
		return bad(s, fmt.Sprintf("s+r=%d exceeds k=%d", s+rank, k))
	}
	return s, nil
}

// String renders the spec as ParseWindowSpec reads it: "pissa", "milora",
// "mid", "start=S" or "fraction=F".
func (w WindowSpec) String() string {
	switch w.Preset {
	case WindowStart, "":
		return "start=" + strconv.Itoa(w.Start)
	case WindowFraction:
		return "fraction=" + strconv.FormatFloat(w.Fraction, 'g', -1, 64)
	}
	return w.Preset
}

// ParseWindowSpec reads "pissa", "milora", "mid", "start=S" (or a bare
// integer S) and "fraction=F".
func ParseWindowSpec(text string) (WindowSpec, error) {
	t := strings.TrimSpace(text)
	switch t {
	case WindowPiSSA, WindowMiLoRA, WindowMid:
		return WindowSpec{Preset: t}, nil
	}
	key, val, ok := strings.Cut(t, "=")
	if !ok {
		key, val = WindowStart, t
	}
	switch strings.TrimSpace(key) {
	case WindowStart, "s":
		s, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil {
			return WindowSpec{}, fmt.Errorf("lowrank: window %q: start is not an integer", text)
		}
		return WindowSpec{Preset: WindowStart, Start: s}, nil
	case WindowFraction, "f":
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return WindowSpec{}, fmt.Errorf("lowrank: window %q: fraction is not a number", text)
		}
		return WindowSpec{Preset: WindowFraction, Fraction: f}, nil
	}
	return WindowSpec{}, fmt.Errorf("lowrank: unknown window %q (expected pissa, milora, mid, start=S or fraction=F)", text)
}
