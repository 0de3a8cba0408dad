// Package runner executes the runs of a sweep on this machine with a pool of
// workers, records each result in the results store as it finishes, and
// shows overall and per-run progress.
//
// Resumption: runs whose result is stored are skipped, so running a spec
// again continues where it stopped. Together with the store's one-transaction,
// write-once Record this makes a sweep safe to kill (even with SIGKILL) at any
// moment: a run killed before its transaction commits is simply run again,
// one killed after is skipped, and nothing is stored twice.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/internal/faultpoint"
	"github.com/prism-lora/prism/core/experiment/store"
)

// Options configure a local sweep. The zero value works.
type Options struct {
	// Workers is the number of runs executed at once; ≤ 0 sizes the pool to
	// the machine: runtime.NumCPU() / kind.Threads, at least 1.
	Workers int
	// Out receives progress; nil discards it. On a terminal the display is a
	// live block (overall line with ETA and one line per active run); on
	// anything else it is one line per started or finished run and a run's
	// progress line at most every LogInterval.
	Out io.Writer
	// Live forces the live display on (true) or off (false); nil detects a
	// terminal.
	Live *bool
	// LogInterval is the minimum time between two progress lines of one run in
	// line mode (default 10 s).
	LogInterval time.Duration
	// SkipFailed leaves runs recorded as failed alone instead of running them
	// again.
	SkipFailed bool
	// Host and Executor are recorded with each run (defaults: the host name
	// and "local").
	Host, Executor string
	// Cache is shared by the runs (e.g. the pretrained checkpoint); nil: a
	// fresh one.
	Cache *experiment.Cache
}

// Summary is the outcome of a sweep.
type Summary struct {
	Total     int // runs in the spec
	Skipped   int // already done (or failed, with SkipFailed) before this sweep
	Done      int // finished and recorded now
	Failed    int // failed and recorded now
	Cancelled int // not run or interrupted because the context ended
	Elapsed   time.Duration
	Failures  []Failure
}

// Failure is a run that failed in this sweep.
type Failure struct {
	ID, Label, Error string
}

func (s Summary) String() string {
	return fmt.Sprintf("%d runs: %d done now, %d failed, %d already finished, %d not run (%s)",
		s.Total, s.Done, s.Failed, s.Skipped, s.Cancelled, s.Elapsed.Round(time.Millisecond))
}

// DefaultWorkers is the pool size for a kind on this machine.
func DefaultWorkers(k experiment.Kind) int {
	t := k.Threads
	if t < 1 {
		t = 1
	}
	return max(1, runtime.NumCPU()/t)
}

// Hostname is os.Hostname, or "unknown".
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// Pending returns the runs that still need to execute: those not done (and,
// with skipFailed, not failed).
func Pending(ctx context.Context, st *store.Store, runs []experiment.Run, skipFailed bool) ([]experiment.Run, error) {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	status, err := st.Statuses(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []experiment.Run
	for _, r := range runs {
		switch status[r.ID] {
		case experiment.StatusDone:
			continue
		case experiment.StatusFailed:
			if skipFailed {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Sweep registers the spec's runs in the store and executes those without a
// stored result. A run's failure is recorded with its reason and the other
// runs continue; an error is returned only when the store fails (the sweep
// then stops). When ctx ends, running runs are interrupted and left
// unrecorded (they run again next time).
func Sweep(ctx context.Context, st *store.Store, spec *experiment.Spec, runs []experiment.Run, kind experiment.Kind, opt Options) (Summary, error) {
	start := time.Now()
	sum := Summary{Total: len(runs)}
	if err := st.AddRuns(ctx, spec, runs); err != nil {
		return sum, err
	}
	todo, err := Pending(ctx, st, runs, opt.SkipFailed)
	if err != nil {
		return sum, err
	}
	sum.Skipped = len(runs) - len(todo)
	workers := opt.Workers
	if workers <= 0 {
		workers = DefaultWorkers(kind)
	}
	workers = min(workers, max(1, len(todo)))
	host := opt.Host
	if host == "" {
		host = Hostname()
	}
	executor := opt.Executor
	if executor == "" {
		executor = "local"
	}
	cache := opt.Cache
	if cache == nil {
		cache = &experiment.Cache{}
	}
	disp := newDisplay(opt, spec.Name, len(runs), sum.Skipped, len(todo), workers)
	defer disp.close()

	runCtx, cancel := context.WithCancel(experiment.WithCache(ctx, cache))
	defer cancel()
	var (
		mu       sync.Mutex
		storeErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan experiment.Run)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range jobs {
				// Bookkeeping writes must land even when the sweep is being
				// interrupted, so they do not use the cancellable context.
				bg := context.WithoutCancel(ctx)
				// Another process sharing the database (a second sweep
				// with runs in common) may have finished it meanwhile.
				if status, err := st.Statuses(bg, []string{r.ID}); err == nil && status[r.ID] == experiment.StatusDone {
					disp.finish(r, experiment.RunRecord{}, true)
					mu.Lock()
					sum.Skipped++
					mu.Unlock()
					continue
				}
				started := time.Now()
				if err := st.MarkRunning(bg, r.ID, host, executor, started); err != nil {
					mu.Lock()
					storeErr = errors.Join(storeErr, err)
					mu.Unlock()
					cancel()
					continue
				}
				faultpoint.Hit("runner.started")
				disp.start(r)
				rec, err := Execute(runCtx, kind, r, disp.progressFor(r), host, executor)
				if err != nil { // interrupted: leave it for the next sweep
					disp.interrupted(r)
					mu.Lock()
					sum.Cancelled++
					mu.Unlock()
					continue
				}
				err = st.Record(bg, rec)
				if errors.Is(err, store.ErrAlreadyDone) {
					// Another process recorded it first.
					disp.finish(r, rec, true)
					mu.Lock()
					sum.Skipped++
					mu.Unlock()
					continue
				}
				if err != nil {
					mu.Lock()
					storeErr = errors.Join(storeErr, err)
					mu.Unlock()
					cancel()
					continue
				}
				faultpoint.Hit("runner.recorded")
				disp.finish(r, rec, false)
				mu.Lock()
				if rec.Status == experiment.StatusDone {
					sum.Done++
				} else {
					sum.Failed++
					sum.Failures = append(sum.Failures, Failure{ID: r.ID, Label: r.Config.Label(), Error: rec.Error})
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i, r := range todo {
		select {
		case jobs <- r:
		case <-runCtx.Done():
			mu.Lock()
			sum.Cancelled += len(todo) - i
			mu.Unlock()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	sum.Elapsed = time.Since(start)
	if storeErr != nil {
		return sum, storeErr
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("sweep interrupted (%d runs not finished; run it again to continue): %w", sum.Cancelled, err)
	}
	return sum, nil
}

// Execute runs one configuration and returns its record: done with the
// result, or failed with the error (a panic in the run function is a failure
// whose reason carries the panic value and the top of the stack). It returns
// an error only when ctx ended during the run: an interrupted run has no
// record.
func Execute(ctx context.Context, kind experiment.Kind, r experiment.Run, p experiment.Progress, host, executor string) (experiment.RunRecord, error) {
	if p == nil {
		p = experiment.NopProgress{}
	}
	rec := experiment.RunRecord{ID: r.ID, Config: r.Config, Host: host, Executor: executor, Started: time.Now().UTC()}
	res, err := safeRun(ctx, kind.Run, r.Config, p)
	rec.Finished = time.Now().UTC()
	if ctx.Err() != nil {
		return experiment.RunRecord{}, ctx.Err()
	}
	if err == nil {
		err = res.Check()
	}
	if err != nil {
		rec.Status, rec.Error = experiment.StatusFailed, err.Error()
		if rec.Error == "" {
			rec.Error = "run failed with an empty error message"
		}
		return rec, nil
	}
	rec.Status, rec.Result = experiment.StatusDone, res
	return rec, nil
}

func safeRun(ctx context.Context, fn experiment.RunFunc, cfg experiment.RunConfig, p experiment.Progress) (res experiment.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := strings.Split(string(debug.Stack()), "\n")
			if len(stack) > 16 {
				stack = stack[:16]
			}
			err = fmt.Errorf("panic: %v\n%s", v, strings.Join(stack, "\n"))
		}
	}()
	return fn(ctx, cfg, p)
}
