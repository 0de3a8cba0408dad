package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

func init() { addCommand(newLowrankCmd) }

// newLowrankCmd is `prism lowrank`: the parent of init and spectrum.
func newLowrankCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lowrank",
		Short: "Initialise window adapters from a safetensors file, or inspect its spectra",
		Long: `Low-rank tools that work directly on safetensors weight files.

  prism lowrank init      initialise LoRA / PiSSA / MiLoRA / mid / any-window / OLoRA
                          adapters for every targeted 2-D weight (W = base + scale·B·A)
  prism lowrank spectrum  singular-value summary (rank, condition, energy) of each 2-D weight

A 2-D tensor of shape [out, in] is a linear layer's weight W (m×n, y = x·Wᵀ, as in PyTorch
and PEFT); its k = min(m, n) singular values are sorted descending, index 0 the largest.`,
	}
	cmd.AddCommand(newLowrankInitCmd(), newLowrankSpectrumCmd())
	return cmd
}

// targetSelection decides which tensors of a file a command works on.
type targetSelection struct {
	flag     string         // the --targets text ("" = every tensor)
	pattern  *regexp.Regexp // anchored: the whole name must match; nil = every tensor
	explicit []string       // alternatives of the pattern that read as plain names
}

// plainName matches a --targets alternative that names a tensor outright
// (dots are taken literally, as in tensor names).
var plainName = regexp.MustCompile(`^[A-Za-z0-9_.:/-]+$`)

// parseTargets compiles --targets: a regular expression that must match a
// tensor's whole name. Top-level alternatives that are plain names
// ("blocks.0.attn.qkv.weight") name tensors explicitly.
func parseTargets(text string) (targetSelection, error) {
	sel := targetSelection{flag: text}
	if text == "" {
		return sel, nil
	}
	re, err := regexp.Compile(`^(?:` + text + `)$`)
	if err != nil {
		return sel, fmt.Errorf("--targets %q is not a valid regular expression: %v", text, err)
	}
	sel.pattern = re
	for _, alt := range splitAlternatives(text) {
		if plainName.MatchString(alt) {
			sel.explicit = append(sel.explicit, alt)
		}
	}
	return sel, nil
}

// splitAlternatives splits a regular expression at its top-level '|'s.
func splitAlternatives(re string) []string {
	var alts []string
	depth, start, inClass := 0, 0, false
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '\\':
			i++
		case inClass:
			inClass = c != ']'
		case c == '[':
			inClass = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			alts = append(alts, re[start:i])
			start = i + 1
		}
	}
	return append(alts, re[start:])
}

func (s targetSelection) matches(name string) bool {
	return s.pattern == nil || s.pattern.MatchString(name)
}

func (s targetSelection) isExplicit(name string) bool { return slices.Contains(s.explicit, name) }

// skippedTensor is a tensor a command passed over, with the reason.
type skippedTensor struct{ name, reason string }

// selectMatrices picks the targeted 2-D float tensors of r. A targeted
// tensor that cannot be used (not 2-D, not a float type, or failing usable)
// is skipped and listed, or is an error when --targets names it explicitly.
// usable may be nil.
func selectMatrices(r *safetensors.Reader, sel targetSelection, usable func(m, n int) string) ([]safetensors.Info, []skippedTensor, error) {
	var chosen []safetensors.Info
	var skipped []skippedTensor
	names := map[string]bool{}
	for _, t := range r.Tensors() {
		names[t.Name] = true
		if !sel.matches(t.Name) {
			continue
		}
		reason := ""
		switch {
		case len(t.Shape) != 2:
			reason = fmt.Sprintf("not 2-D (shape %v)", t.Shape)
		case !t.DType.IsFloat():
			reason = fmt.Sprintf("dtype %s is not a float type", t.DType)
		case t.Shape[0] == 0 || t.Shape[1] == 0:
			reason = fmt.Sprintf("empty (shape %v)", t.Shape)
		case usable != nil:
			reason = usable(t.Shape[0], t.Shape[1])
		}
		if reason == "" {
			chosen = append(chosen, t)
			continue
		}
		if sel.isExplicit(t.Name) {
			return nil, nil, fmt.Errorf("--targets names tensor %q of %s, which cannot be used: %s", t.Name, r.Name(), reason)
		}
		skipped = append(skipped, skippedTensor{t.Name, reason})
	}
	for _, name := range sel.explicit {
		if !names[name] {
			return nil, nil, fmt.Errorf("--targets names tensor %q, which is not in %s", name, r.Name())
		}
	}
	if len(chosen) == 0 {
		what := "the file holds no usable 2-D float tensor"
		if sel.pattern != nil {
			what = fmt.Sprintf("--targets %q selects no usable 2-D float tensor", sel.flag)
		}
		return nil, skipped, fmt.Errorf("%s: %s (%d tensors, %d skipped%s)", r.Name(), what, len(names), len(skipped), skippedSummary(skipped, 5))
	}
	return chosen, skipped, nil
}

func skippedSummary(skipped []skippedTensor, limit int) string {
	if len(skipped) == 0 {
		return ""
	}
	var parts []string
	for i, s := range skipped {
		if i == limit {
			parts = append(parts, fmt.Sprintf("… %d more", len(skipped)-limit))
			break
		}
		parts = append(parts, s.name+": "+s.reason)
	}
	return ": " + strings.Join(parts, "; ")
}

// printSkipped lists the skipped tensors, one a line.
func printSkipped(w io.Writer, skipped []skippedTensor) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "skipped %d tensors:\n", len(skipped))
	for _, s := range skipped {
		fmt.Fprintf(w, "  %s: %s\n", s.name, s.reason)
	}
}

// Progress display modes (--progress).
const (
	progressAuto   = "auto"
	progressAlways = "always"
	progressNever  = "never"
)

func checkProgressMode(mode string) error {
	switch mode {
	case "", progressAuto, progressAlways, progressNever:
		return nil
	}
	return fmt.Errorf("--progress must be auto, always or never (got %q)", mode)
}

// progressLine shows "[done/total] layer (elapsed)" on w: rewritten in place
// on a terminal, one line per update otherwise. Mode auto shows it only when
// w is a terminal, so logs and tests stay clean.
type progressLine struct {
	w       io.Writer
	tty     bool
	enabled bool
	mu      sync.Mutex
	shown   bool
}

func newProgressLine(w io.Writer, mode string) *progressLine {
	tty := isTerminal(w)
	enabled := mode == progressAlways || ((mode == progressAuto || mode == "") && tty)
	return &progressLine{w: w, tty: tty, enabled: enabled}
}

func (p *progressLine) show(done, total int, layer string, elapsed time.Duration) {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("[%d/%d] %s (%.1fs)", done, total, layer, elapsed.Seconds())
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown = true
}

// clear removes an in-place progress line before the final report.
func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown && p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.shown = false
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// samePath reports whether a and b name the same existing file.
func samePath(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// computeType is the precision a tensor is decomposed in: float64 for F64,
// float32 for F32, F16 and BF16 (which are widened exactly on read).
func computeType(d safetensors.DType) safetensors.DType {
	if d == safetensors.F64 {
		return safetensors.F64
	}
	return safetensors.F32
}

// shapeText renders m×n.
func shapeText(m, n int) string { return fmt.Sprintf("%d×%d", m, n) }

// relIdentityError is ‖W − (Base + scale·B·A)‖_F / ‖W‖_F, accumulated in
// float64 (0 when W is zero and the reconstruction is exact).
func relIdentityError[T lowrank.Float](w lowrank.Matrix[T], a lowrank.Adapter[T]) float64 {
	m, n, r := w.Rows, w.Cols, a.Rank
	var num, den float64
	row := make([]float64, n)
	for i := 0; i < m; i++ {
		clear(row)
		for t := 0; t < r; t++ {
			bit := float64(a.B.Data[i*r+t])
			if bit == 0 {
				continue
			}
			arow := a.A.Data[t*n : (t+1)*n]
			for j, v := range arow {
				row[j] += bit * float64(v)
			}
		}
		for j := 0; j < n; j++ {
			wij := float64(w.Data[i*n+j])
			d := wij - (float64(a.Base.Data[i*n+j]) + a.Scale*row[j])
			num += d * d
			den += wij * wij
		}
	}
	if den == 0 {
		return num
	}
	return math.Sqrt(num / den)
}
