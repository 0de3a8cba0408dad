package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/experiment/synthetic"
)

const sweepSpec = `name: crash
kind: synthetic
model: {name: linear, params: {m: 16, n: 12}}
pretrain: {task: synthetic-a}
finetune: {task: synthetic-b, params: {sleep_ms: 20}}
grid:
  methods: [lora, pissa, window, full]
  window_starts: [2, 6]
  ranks: [3]
  learning_rates: [1e-2, 10]
  seeds: [0, 1]
  epochs: [3]
`

func load(t *testing.T, text string) (*experiment.Spec, []experiment.Run) {
	t.Helper()
	s, err := experiment.ParseSpec("crash.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateRuns(runs, synthetic.Kind); err != nil {
		t.Fatal(err)
	}
	return s, runs
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSweepRecordsFailuresAndResumes(t *testing.T) {
	spec, runs := load(t, sweepSpec)
	st := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	ctx := context.Background()
	builds := synthetic.PretrainBuilds()
	var out bytes.Buffer
	sum, err := Sweep(ctx, st, spec, runs, synthetic.Kind, Options{Workers: 2, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	// lr 10 diverges for every method: half the runs fail, the rest finish.
	if sum.Total != 20 || sum.Done != 10 || sum.Failed != 10 || sum.Skipped != 0 || sum.Cancelled != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if got := synthetic.PretrainBuilds() - builds; got != 1 {
		t.Errorf("base model built %d times in one sweep, want 1 (shared cache)", got)
	}
	for _, f := range sum.Failures {
		if !strings.Contains(f.Error, "diverged") || !strings.Contains(f.Label, "lr=10") {
			t.Errorf("failure %+v", f)
		}
	}
	rows, err := st.Query(ctx, store.Filter{Spec: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		switch {
		case r.Config.LearningRate == 10 && (r.Status != experiment.StatusFailed || !strings.Contains(r.Error, "diverged")):
			t.Errorf("run %s: %s %q, want failed with the divergence", r.Config.Label(), r.Status, r.Error)
		case r.Config.LearningRate != 10 && (r.Status != experiment.StatusDone || r.Metrics[experiment.MetricTaskBAcc] <= 0):
			t.Errorf("run %s: %s %v", r.Config.Label(), r.Status, r.Metrics)
		}
		if r.Host == "" || r.Executor != "local" || r.Attempts != 1 {
			t.Errorf("run %s: host %q executor %q attempts %d", r.Config.Label(), r.Host, r.Executor, r.Attempts)
		}
	}
	text := out.String()
	for _, want := range []string{"sweep crash: 20 runs, 0 already finished, 20 to run on 2 worker(s)", "[20/20] ", "FAILED", "done", "ETA", "b_acc="} {
		if !strings.Contains(text, want) {
			t.Errorf("progress output lacks %q:\n%s", want, text)
		}
	}
	// Again: done runs are skipped, failed ones run again (and fail again).
	sum, err = Sweep(ctx, st, spec, runs, synthetic.Kind, Options{Workers: 2})
	if err != nil || sum.Skipped != 10 || sum.Failed != 10 || sum.Done != 0 {
		t.Errorf("second sweep %+v (%v)", sum, err)
	}
	// With SkipFailed nothing is left to do.
	sum, err = Sweep(ctx, st, spec, runs, synthetic.Kind, Options{SkipFailed: true})
	if err != nil || sum.Skipped != 20 || sum.Done+sum.Failed != 0 {
		t.Errorf("third sweep %+v (%v)", sum, err)
	}
	rows, _ = st.Query(ctx, store.Filter{Statuses: []experiment.Status{experiment.StatusFailed}})
	for _, r := range rows {
		if r.Attempts != 2 {
			t.Errorf("failed run %s has %d attempts, want 2", r.Config.Label(), r.Attempts)
		}
	}
}

func TestPanicAndEmptyResultsAreFailures(t *testing.T) {
	spec, runs := load(t, sweepSpec)
	kind := experiment.Kind{Name: "flaky", Run: func(ctx context.Context, c experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		switch {
		case c.Method == "full" && c.Seed == 1:
			var m map[string]int
			m["boom"]++ // a real nil-map panic
		case c.Method == "pissa":
			return experiment.Result{Summaries: []experiment.Summary{{Key: ""}}}, nil
		}
		return experiment.Result{Metrics: map[string]float64{"b_acc": 1}}, nil
	}}
	st := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	sum, err := Sweep(context.Background(), st, spec, runs, kind, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 2+4 || sum.Done != 14 {
		t.Fatalf("summary %+v", sum)
	}
	var panics int
	for _, f := range sum.Failures {
		if strings.Contains(f.Error, "panic: assignment to entry in nil map") && strings.Contains(f.Error, "runner_test.go") {
			panics++
		} else if !strings.Contains(f.Error, "empty key") {
			t.Errorf("failure reason %q", f.Error)
		}
	}
	if panics != 2 {
		t.Errorf("%d panics recorded with their stack, want 2", panics)
	}
}

func TestCancelLeavesRunsForNextTime(t *testing.T) {
	spec, runs := load(t, sweepSpec)
	started := make(chan struct{})
	var once sync.Once
	kind := experiment.Kind{Name: "slow", Run: func(ctx context.Context, c experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		if c.Method == "window" {
			once.Do(func() { close(started) })
			<-ctx.Done()
			return experiment.Result{}, ctx.Err()
		}
		return experiment.Result{Metrics: map[string]float64{"b_acc": 1}}, nil
	}}
	st := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	sum, err := Sweep(ctx, st, spec, runs, kind, Options{Workers: 2})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run it again to continue") {
		t.Fatalf("cancelled sweep returned %v", err)
	}
	if sum.Cancelled == 0 || sum.Done+sum.Failed+sum.Cancelled != 20 {
		t.Errorf("summary %+v", sum)
	}
	rows, _ := st.Query(context.Background(), store.Filter{Methods: []string{"window"}})
	for _, r := range rows {
		if r.Status == experiment.StatusDone || r.Status == experiment.StatusFailed {
			t.Errorf("interrupted run %s was recorded as %s", r.Config.Label(), r.Status)
		}
	}
	// The next sweep finishes the rest.
	kind.Run = func(ctx context.Context, c experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		return experiment.Result{Metrics: map[string]float64{"b_acc": 2}}, nil
	}
	sum, err = Sweep(context.Background(), st, spec, runs, kind, Options{Workers: 2})
	if err != nil || sum.Done+sum.Skipped != 20 || sum.Done == 0 {
		t.Errorf("resumed sweep %+v (%v)", sum, err)
	}
}

func TestProgressDisplay(t *testing.T) {
	spec, runs := load(t, sweepSpec)
	runs = runs[:4]
	kind := experiment.Kind{Name: "steps", Run: func(ctx context.Context, c experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		for i := 1; i <= 3; i++ {
			time.Sleep(5 * time.Millisecond)
			p.Report(i, 3, fmt.Sprintf("epoch %d/3 loss %.2f", i, 1/float64(i)))
		}
		return experiment.Result{Metrics: map[string]float64{"b_acc": 90, "forgetting": 3}}, nil
	}}
	var lines bytes.Buffer
	st := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	if _, err := Sweep(context.Background(), st, spec, runs, kind, Options{Workers: 1, Out: &lines, LogInterval: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	text := lines.String()
	for _, want := range []string{"start  ", "epoch 2/3 loss 0.50", "done   ", "b_acc=90 forgetting=3", "[4/4]", "4/4 finished in this sweep (0 failed)"} {
		if !strings.Contains(text, want) {
			t.Errorf("line output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("line output contains terminal escapes")
	}
	// The live display redraws a block with the overall line and active runs.
	live := true
	var block bytes.Buffer
	st2 := openStore(t, filepath.Join(t.TempDir(), "r2.db"))
	kind.Run = func(ctx context.Context, c experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		for i := 1; i <= 3; i++ {
			p.Report(i, 3, "working")
			time.Sleep(120 * time.Millisecond)
		}
		return experiment.Result{}, nil
	}
	if _, err := Sweep(context.Background(), st2, spec, runs[:2], kind, Options{Workers: 2, Out: &block, Live: &live}); err != nil {
		t.Fatal(err)
	}
	bt := block.String()
	for _, want := range []string{"\x1b[", "ETA", "working", "[####", "[2/2 100%]"} {
		if !strings.Contains(bt, want) {
			t.Errorf("live output lacks %q:\n%q", want, bt)
		}
	}
}

func TestETA(t *testing.T) {
	d := &display{todo: 10, finished: 4, began: time.Now().Add(-40 * time.Second), active: map[string]*activeRun{
		"a": {done: 1, total: 2},
		"b": {done: 0, total: 0},
	}}
	// 4.5 units of work in 40 s; 5.5 left → 48.9 s.
	if got := d.etaLocked(); got != "48.9s" {
		t.Errorf("ETA = %s, want 48.9s", got)
	}
	d.finished, d.active = 0, map[string]*activeRun{}
	if got := d.etaLocked(); got != "?" {
		t.Errorf("ETA with no progress = %s, want ?", got)
	}
}

// TestRunFinishedElsewhereIsSkipped: a run that another process (a second
// sweep sharing the database) records while this sweep is under way is not
// executed again when its turn comes.
func TestRunFinishedElsewhereIsSkipped(t *testing.T) {
	spec, all := load(t, sweepSpec)
	var runs []experiment.Run
	for _, r := range all {
		if r.Config.LearningRate == 1e-2 && len(runs) < 3 {
			runs = append(runs, r)
		}
	}
	st := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	ctx := context.Background()
	var executed []string
	kind := synthetic.Kind
	kind.Run = func(ctx context.Context, cfg experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
		id := cfg.MustID()
		executed = append(executed, id)
		if id == runs[0].ID {
			// "Another process" finishes the third run meanwhile.
			other, err := synthetic.Run(ctx, runs[2].Config, experiment.NopProgress{})
			if err != nil {
				return other, err
			}
			now := time.Now().UTC()
			if err := st.Record(ctx, experiment.RunRecord{ID: runs[2].ID, Config: runs[2].Config, Status: experiment.StatusDone,
				Result: other, Host: "elsewhere", Executor: "local", Started: now, Finished: now}); err != nil {
				return other, err
			}
		}
		return synthetic.Run(ctx, cfg, p)
	}
	var out bytes.Buffer
	sum, err := Sweep(ctx, st, spec, runs, kind, Options{Workers: 1, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(executed) != 2 || sum.Done != 2 || sum.Skipped != 1 {
		t.Errorf("executed %d runs, summary %+v, want 2 executed and 1 skipped\n%s", len(executed), sum, out.String())
	}
	if !strings.Contains(out.String(), "(recorded by another process)") {
		t.Errorf("output:\n%s", out.String())
	}
}
