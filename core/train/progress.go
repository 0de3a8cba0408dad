package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress is a snapshot of a training loop, reported after every step.
type Progress struct {
	Phase         string // "pretrain" or "finetune"
	Epoch, Epochs int    // current epoch (1-based) and their number
	Step, Steps   int    // optimisation steps done, of Steps in all
	// Loss and Accuracy (%) are running means over the current epoch.
	Loss, Accuracy float64
	// Elapsed is the training time so far (all sessions of a resumed run);
	// ETA estimates what is left from this session's pace.
	Elapsed, ETA time.Duration
}

// String is a one-line status, e.g. "finetune epoch 2/5 step 300/2340 loss 0.312 acc 91.2% ETA 1m20s".
func (p Progress) String() string {
	return fmt.Sprintf("%s epoch %d/%d step %d/%d loss %.4f acc %.1f%% ETA %s",
		p.Phase, p.Epoch, p.Epochs, p.Step, p.Steps, p.Loss, p.Accuracy, p.ETA.Round(time.Second))
}

// Callbacks receive a run's progress (the experiment runner and notebooks
// supply them). With any callback set no progress bar is drawn.
type Callbacks struct {
	// Progress is called after every optimisation step.
	Progress func(Progress)
	// Epoch is called after each epoch's evaluation.
	Epoch func(phase string, e EpochStats)
	// Log receives one-line notes (cache hits, resumption, timings); nil
	// writes them to the progress bar's terminal when there is one.
	Log func(line string)
}

func (c Callbacks) any() bool { return c.Progress != nil || c.Epoch != nil || c.Log != nil }

// reporter fans progress out to callbacks or to a terminal bar.
type reporter struct {
	cb    Callbacks
	bar   io.Writer // nil: no bar
	mu    sync.Mutex
	last  time.Time
	width int
	open  bool // a bar line is on screen
}

// newReporter draws a bar on stderr when it is a terminal, no callback is
// given and quiet is false.
func newReporter(cb Callbacks, quiet bool) *reporter {
	r := &reporter{cb: cb, width: 24}
	if !quiet && !cb.any() && isTerminal(os.Stderr) {
		r.bar = os.Stderr
	}
	return r
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func (r *reporter) step(p Progress) {
	if r.cb.Progress != nil {
		r.cb.Progress(p)
	}
	if r.bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.last) < 100*time.Millisecond && p.Step < p.Steps {
		return
	}
	r.last = time.Now()
	filled := 0
	if p.Steps > 0 {
		filled = r.width * p.Step / p.Steps
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", r.width-filled)
	fmt.Fprintf(r.bar, "\r\033[K%s %s", bar, p)
	r.open = true
}

func (r *reporter) epoch(phase string, e EpochStats) {
	if r.cb.Epoch != nil {
		r.cb.Epoch(phase, e)
	}
	if r.bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLine()
	keys := make([]string, 0, len(e.Eval))
	for _, k := range []string{"test_acc", "b_acc", "a_acc"} {
		if v, ok := e.Eval[k]; ok {
			keys = append(keys, fmt.Sprintf("%s %.2f%%", k, v))
		}
	}
	fmt.Fprintf(r.bar, "%s epoch %d: train loss %.4f acc %.2f%%  %s  (%.0fs)\n",
		phase, e.Epoch, e.TrainLoss, e.TrainAccuracy, strings.Join(keys, "  "), e.Seconds)
}

// logf writes a note to the Log callback or the terminal.
func (r *reporter) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if r.cb.Log != nil {
		r.cb.Log(line)
		return
	}
	if r.bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLine()
	fmt.Fprintln(r.bar, line)
}

func (r *reporter) done() {
	if r.bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLine()
}

func (r *reporter) endLine() {
	if r.open {
		fmt.Fprint(r.bar, "\r\033[K")
		r.open = false
	}
}

// epochsText is "1 epoch" or "N epochs".
func epochsText(n int) string {
	if n == 1 {
		return "1 epoch"
	}
	return fmt.Sprintf("%d epochs", n)
}
