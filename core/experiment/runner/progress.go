package runner

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prism-lora/prism/core/experiment"
)

// display shows a sweep's progress: overall (runs done/total, failures, ETA)
// and each active run's latest progress.
type display struct {
	mu       sync.Mutex
	out      io.Writer
	live     bool
	interval time.Duration
	spec     string
	total    int // runs in the spec
	skipped  int
	todo     int // runs to execute in this sweep
	finished int // runs of todo finished (done or failed)
	failed   int
	began    time.Time
	active   map[string]*activeRun
	order    int
	lines    int // lines of the live block currently on screen
	width    int // terminal columns (live mode); lines are cut to fit
	stop     chan struct{}
	stopped  chan struct{}
}

type activeRun struct {
	seq         int
	label       string
	short       string
	done, total int
	status      string
	started     time.Time
	lastLog     time.Time
}

func newDisplay(opt Options, spec string, total, skipped, todo, workers int) *display {
	d := &display{
		out: opt.Out, spec: spec, total: total, skipped: skipped, todo: todo, began: time.Now(),
		active: map[string]*activeRun{}, interval: opt.LogInterval,
	}
	if d.out == nil {
		d.out = io.Discard
	}
	if d.interval <= 0 {
		d.interval = 10 * time.Second
	}
	if opt.Live != nil {
		d.live = *opt.Live
	} else if f, ok := d.out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			d.live = os.Getenv("TERM") != "dumb"
			d.width = termWidth(f)
		}
	}
	fmt.Fprintf(d.out, "sweep %s: %d runs, %d already finished, %d to run on %d worker(s)\n", spec, total, skipped, todo, workers)
	if d.live {
		d.stop = make(chan struct{})
		d.stopped = make(chan struct{})
		go d.loop()
	}
	return d
}

func (d *display) loop() {
	defer close(d.stopped)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.mu.Lock()
			d.redrawLocked()
			d.mu.Unlock()
		}
	}
}

func (d *display) close() {
	if d.live {
		close(d.stop)
		<-d.stopped
		d.mu.Lock()
		d.clearLocked()
		d.mu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "sweep %s: %d/%d finished in this sweep (%d failed), %d already finished, %s elapsed\n",
		d.spec, d.finished, d.todo, d.failed, d.skipped, fmtDuration(time.Since(d.began)))
}

// eta estimates the time left from the work done so far: finished runs count
// 1, active runs their reported fraction.
func (d *display) etaLocked() string {
	work := float64(d.finished)
	for _, a := range d.active {
		if a.total > 0 {
			work += math.Min(1, float64(a.done)/float64(a.total))
		}
	}
	left := float64(d.todo) - work
	if work <= 0 || left <= 0 {
		if left <= 0 {
			return "0s"
		}
		return "?"
	}
	el := time.Since(d.began).Seconds()
	return fmtDuration(time.Duration(el / work * left * float64(time.Second)))
}

func (d *display) headerLocked() string {
	n := d.finished
	pct := 100.0
	if d.todo > 0 {
		pct = 100 * float64(n) / float64(d.todo)
	}
	return fmt.Sprintf("[%d/%d %3.0f%%] %d failed · elapsed %s · ETA %s",
		n, d.todo, pct, d.failed, fmtDuration(time.Since(d.began)), d.etaLocked())
}

// printLocked prints a permanent line (above the live block).
func (d *display) printLocked(line string) {
	if d.live {
		d.clearLocked()
	}
	fmt.Fprintln(d.out, line)
	if d.live {
		d.redrawLocked()
	}
}

func (d *display) clearLocked() {
	if d.lines > 0 {
		fmt.Fprintf(d.out, "\x1b[%dA\x1b[J", d.lines)
		d.lines = 0
	}
}

func (d *display) redrawLocked() {
	d.clearLocked()
	runs := make([]*activeRun, 0, len(d.active))
	for _, a := range d.active {
		runs = append(runs, a)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].seq < runs[j].seq })
	width := d.width
	if width <= 0 {
		width = 100
	}
	var b strings.Builder
	b.WriteString(truncate(d.headerLocked(), width-1))
	b.WriteByte('\n')
	for _, a := range runs {
		line := fmt.Sprintf("  %s %s %s %s", bar(a.done, a.total, 12), a.short, truncate(a.label, 60), a.status)
		b.WriteString(truncate(line, width-1))
		b.WriteByte('\n')
	}
	fmt.Fprint(d.out, b.String())
	d.lines = 1 + len(runs)
}

func bar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("·", width) + "]"
	}
	f := min(width, width*done/total)
	return "[" + strings.Repeat("#", f) + strings.Repeat("·", width-f) + "]"
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (d *display) start(r experiment.Run) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.order++
	d.active[r.ID] = &activeRun{seq: d.order, label: r.Config.Label(), short: experiment.ShortID(r.ID), started: time.Now(), lastLog: time.Now()}
	if !d.live {
		fmt.Fprintf(d.out, "%s start  %s %s\n", d.counterLocked(), experiment.ShortID(r.ID), r.Config.Label())
	}
}

func (d *display) counterLocked() string {
	w := len(fmt.Sprint(d.todo))
	return fmt.Sprintf("[%*d/%d]", w, d.finished, d.todo)
}

// progressFor returns the Progress the run function reports to.
func (d *display) progressFor(r experiment.Run) experiment.Progress {
	return experiment.ProgressFunc(func(done, total int, status string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		a, ok := d.active[r.ID]
		if !ok {
			return
		}
		a.done, a.total, a.status = done, total, status
		if !d.live && time.Since(a.lastLog) >= d.interval {
			a.lastLog = time.Now()
			fmt.Fprintf(d.out, "%s        %s %d/%d %s · ETA %s\n", d.counterLocked(), a.short, done, total, status, d.etaLocked())
		}
	})
}

func (d *display) finish(r experiment.Run, rec experiment.RunRecord, elsewhere bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.active, r.ID)
	d.finished++
	if elsewhere {
		d.printLocked(fmt.Sprintf("%s skip   %s %s (recorded by another process)", d.counterLocked(), experiment.ShortID(r.ID), r.Config.Label()))
		return
	}
	dur := fmtDuration(rec.Finished.Sub(rec.Started))
	if rec.Status == experiment.StatusFailed {
		d.failed++
		d.printLocked(fmt.Sprintf("%s FAILED %s %s (%s): %s · ETA %s", d.counterLocked(), experiment.ShortID(r.ID), r.Config.Label(), dur,
			truncate(firstLine(rec.Error), 200), d.etaLocked()))
		return
	}
	d.printLocked(fmt.Sprintf("%s done   %s %s (%s) %s · ETA %s", d.counterLocked(), experiment.ShortID(r.ID), r.Config.Label(), dur,
		headline(rec.Result.Metrics), d.etaLocked()))
}

func (d *display) interrupted(r experiment.Run) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.active, r.ID)
	d.printLocked(fmt.Sprintf("%s interrupted %s %s (will run again next time)", d.counterLocked(), experiment.ShortID(r.ID), r.Config.Label()))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// headline formats the standard metrics a run reported.
func headline(m map[string]float64) string {
	var parts []string
	for _, k := range []string{experiment.MetricTaskBAcc, experiment.MetricForgetting,
		experiment.MetricTaskBBPC, experiment.MetricBPCForgetting, experiment.MetricKL} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
