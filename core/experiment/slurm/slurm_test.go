package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/slurm/slurmtest"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/experiment/synthetic"
)

func TestScript(t *testing.T) {
	s := Script("fig1", 12, "/opt/prism it's/prism", "/shared/d", "/shared/d/jobs/x/manifest.json", "/shared/d/jobs/x/logs",
		experiment.SlurmSpec{Partition: "gpu", Time: "01:30:00", CPUsPerTask: 4, Mem: "8G", GPUs: 1, MaxParallel: 3, ExtraArgs: []string{"--qos=normal"}})
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=prism-fig1\n",
		"#SBATCH --array=0-11%3\n",
		"#SBATCH --output=/shared/d/jobs/x/logs/%A_%a.out\n",
		"#SBATCH --partition=gpu\n", "#SBATCH --time=01:30:00\n", "#SBATCH --cpus-per-task=4\n",
		"#SBATCH --mem=8G\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --qos=normal\n",
		`exec '/opt/prism it'\''s/prism' sweep-task --dir '/shared/d' --manifest '/shared/d/jobs/x/manifest.json' --index "$SLURM_ARRAY_TASK_ID"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// The quoting survives a real shell.
	out, err := exec.Command("bash", "-c", "printf '%s' "+shellQuote("a 'b' $c \"d\"")).Output()
	if err != nil || string(out) != `a 'b' $c "d"` {
		t.Errorf("shell quoting: %q (%v)", out, err)
	}
	if s := Script("x", 1, "/p", "/d", "/m", "/l", experiment.SlurmSpec{}); !strings.Contains(s, "--array=0-0\n") || strings.Contains(s, "--mem") {
		t.Errorf("minimal script:\n%s", s)
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]string{"42\n": "42", "42;cluster\n": "42", "warning: x\n77\n": "77"} {
		got, err := parseSbatch(in)
		if err != nil || got != want {
			t.Errorf("parseSbatch(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "Submitted batch job 5", "x;y"} {
		if _, err := parseSbatch(bad); err == nil {
			t.Errorf("parseSbatch(%q) accepted", bad)
		}
	}
	sq := parseSqueue("7_0|COMPLETED\n7_1|RUNNING\n 7_2|PENDING \n7_[3-4]|PENDING\n8|RUNNING\n")
	want := map[string]string{"7_0": "COMPLETED", "7_1": "RUNNING", "7_2": "PENDING"}
	if !reflect.DeepEqual(sq, want) {
		t.Errorf("parseSqueue = %v", sq)
	}
	sc := parseScontrol("JobId=9 ArrayJobId=7 ArrayTaskId=2 JobName=x JobState=TIMEOUT Reason=None\n" +
		"JobId=7 ArrayJobId=7 ArrayTaskId=3-4 JobState=PENDING\n")
	if !reflect.DeepEqual(sc, map[string]string{"7_2": "TIMEOUT"}) {
		t.Errorf("parseScontrol = %v", sc)
	}
	for st, want := range map[string]bool{"PENDING": true, "RUNNING": true, "COMPLETING": true, "COMPLETED": false, "FAILED": false, "CANCELLED": false, "TIMEOUT": false, "GONE": false} {
		if Active(st) != want {
			t.Errorf("Active(%s) = %v", st, !want)
		}
	}
}

const taskSpec = `name: st
kind: synthetic
model: {name: linear, params: {m: 10, n: 8}}
finetune: {task: b}
grid:
  methods: [lora, full]
  ranks: [2]
  learning_rates: [1e-2, 10]
  epochs: [2]
`

func loadSpec(t *testing.T, text string) (*experiment.Spec, []experiment.Run) {
	t.Helper()
	s, err := experiment.ParseSpec("s.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return s, runs
}

// TestRunTask runs tasks in-process from hand-made shared files.
func TestRunTask(t *testing.T) {
	dir := t.TempDir()
	_, runs := loadSpec(t, taskSpec)
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
		if err := os.MkdirAll(runDir(dir, r.ID), 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(configFile{ID: r.ID, Config: r.Config})
		if err := os.WriteFile(configPath(dir, r.ID), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(dir, "manifest.json")
	data, _ := json.Marshal(Manifest{Spec: "st", Runs: ids})
	if err := os.WriteFile(manifest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	kinds := &experiment.Registry{}
	if err := kinds.Register(synthetic.Kind); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var log bytes.Buffer
	if err := RunTask(ctx, kinds, dir, manifest, 0, &log); err != nil {
		t.Fatalf("task 0: %v\n%s", err, log.String())
	}
	rec, err := experiment.ReadRecordFile(resultPath(dir, ids[0]))
	if err != nil || rec.Status != experiment.StatusDone || rec.Result.Metrics["b_acc"] <= 0 {
		t.Fatalf("task 0 result: %+v (%v)", rec, err)
	}
	// The same numbers as running the configuration directly.
	direct, err := runner.Execute(ctx, synthetic.Kind, runs[0], nil, "h", "local")
	if err != nil || !reflect.DeepEqual(direct.Result, rec.Result) {
		t.Errorf("task result differs from a direct run")
	}
	// Task 1 (lr 10) fails: the record says why and the exit status is 3.
	err = RunTask(ctx, kinds, dir, manifest, 1, &log)
	var tf *TaskFailed
	if !errors.As(err, &tf) || tf.ExitCode() != 3 || !strings.Contains(tf.Reason, "diverged") {
		t.Errorf("failing task returned %v", err)
	}
	if rec, err := experiment.ReadRecordFile(resultPath(dir, ids[1])); err != nil || rec.Status != experiment.StatusFailed {
		t.Errorf("failed task record: %+v (%v)", rec, err)
	}
	// A task whose run is done does nothing (requeue).
	log.Reset()
	if err := RunTask(ctx, kinds, dir, manifest, 0, &log); err != nil || !strings.Contains(log.String(), "already has a result") {
		t.Errorf("rerun of a done task: %v %q", err, log.String())
	}
	if err := RunTask(ctx, kinds, dir, manifest, 9, &log); err == nil || !strings.Contains(err.Error(), "outside the manifest's 4 runs") {
		t.Errorf("bad index: %v", err)
	}
	// A configuration file that does not hash to its ID is refused.
	c := runs[2].Config
	c.Seed = 5
	data, _ = json.Marshal(configFile{ID: ids[2], Config: c})
	os.WriteFile(configPath(dir, ids[2]), data, 0o644)
	if err := RunTask(ctx, kinds, dir, manifest, 2, &log); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Errorf("tampered config: %v", err)
	}
}

func buildSweepbin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sweepbin")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/prism-lora/prism/core/experiment/internal/sweepbin").CombinedOutput()
	if err != nil {
		t.Fatalf("building sweepbin: %v\n%s", err, out)
	}
	return bin
}

type outcome struct {
	ID      string
	Status  experiment.Status
	Error   string
	Metrics map[string]float64
	Curves  map[string][]experiment.CurvePoint
}

func outcomes(t *testing.T, st *store.Store, spec string) []outcome {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Query(ctx, store.Filter{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	curves, err := st.Curves(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var out []outcome
	for _, r := range rows {
		out = append(out, outcome{ID: r.ID, Status: r.Status, Error: r.Error, Metrics: r.Metrics, Curves: curves[r.ID]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TestRealSlurm submits sweeps to a real single-node Slurm started for the
// test: results equal a local sweep's, failures are recorded with their
// reason, re-submission skips finished and in-flight runs, and a cancelled
// task becomes a failed run naming its Slurm state.
func TestRealSlurm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster")
	}
	slurmtest.Start(t)
	bin := buildSweepbin(t)
	ctx := context.Background()
	base := t.TempDir()
	shared := filepath.Join(base, "shared")
	spec, runs := loadSpec(t, taskSpec)
	st, err := store.Open(filepath.Join(base, "ctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out bytes.Buffer
	opt := Options{Dir: shared, Prism: bin, Out: &out, Poll: 200 * time.Millisecond, Grace: 5 * time.Second}

	sub, err := Submit(ctx, st, spec, runs, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.JobIDs) != 1 || sub.Runs != 4 || sub.Finished != 0 {
		t.Fatalf("first submission %+v", sub)
	}
	// Submitting again while the array is queued or running adds nothing.
	again, err := Submit(ctx, st, spec, runs, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.JobIDs) != 0 || again.Runs != 0 || again.InFlight+again.Finished != 4 {
		t.Errorf("re-submission while in flight: %+v", again)
	}
	ctxW, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sum, err := Wait(ctxW, st, spec, runs, opt)
	if err != nil {
		t.Fatalf("wait: %v\n%s", err, out.String())
	}
	if sum.Done != 2 || sum.Failed != 2 || sum.Total != 4 {
		t.Errorf("after waiting: %+v\n%s", sum, out.String())
	}
	// Same outcomes as a local sweep of the same spec.
	local, err := store.Open(filepath.Join(base, "local.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := runner.Sweep(ctx, local, spec, runs, synthetic.Kind, runner.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	got, want := outcomes(t, st, "st"), outcomes(t, local, "st")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Slurm outcomes differ from local ones:\n got %+v\nwant %+v", got, want)
	}
	rows, _ := st.Query(ctx, store.Filter{Spec: "st"})
	for _, r := range rows {
		if !strings.HasPrefix(r.Executor, "slurm "+sub.JobIDs[0]+"_") {
			t.Errorf("run %s executor %q", r.Config.Label(), r.Executor)
		}
	}
	if open, _ := st.OpenSlurmTasks(ctx, "st"); len(open) != 0 {
		t.Errorf("%d tasks still open after waiting", len(open))
	}
	// Re-submission retries only the failed runs, or nothing with SkipFailed.
	skip := opt
	skip.SkipFailed = true
	if s, err := Submit(ctx, st, spec, runs, skip); err != nil || s.Runs != 0 || s.Finished != 4 {
		t.Errorf("re-submission skipping failures: %+v (%v)", s, err)
	}
	retry, err := Submit(ctx, st, spec, runs, opt)
	if err != nil || retry.Runs != 2 || retry.Finished != 2 {
		t.Fatalf("re-submission retrying failures: %+v (%v)", retry, err)
	}
	if _, err := Wait(ctxW, st, spec, runs, opt); err != nil {
		t.Fatal(err)
	}
	rows, _ = st.Query(ctx, store.Filter{Spec: "st", Statuses: []experiment.Status{experiment.StatusFailed}})
	for _, r := range rows {
		if r.Attempts != 2 || !strings.Contains(r.Error, "diverged") {
			t.Errorf("retried run %s: attempts %d error %q", r.Config.Label(), r.Attempts, r.Error)
		}
	}

	// A task cancelled while running becomes a failed run naming the state.
	slowSpec, slowRuns := loadSpec(t, strings.NewReplacer("name: st", "name: slow",
		"finetune: {task: b}", "finetune: {task: b, params: {sleep_ms: 20000}}",
		"methods: [lora, full]", "methods: [full]", "learning_rates: [1e-2, 10]", "learning_rates: [1e-2]").Replace(taskSpec))
	sub, err = Submit(ctx, st, slowSpec, slowRuns, opt)
	if err != nil || sub.Runs != 1 {
		t.Fatalf("slow submission %+v (%v)", sub, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		states, err := queryStates(ctx, sub.JobIDs[0])
		if err != nil {
			t.Fatal(err)
		}
		if states[sub.JobIDs[0]+"_0"] == "RUNNING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow task never ran: %v", states)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := exec.Command("scancel", sub.JobIDs[0]).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	sum, err = Wait(ctxW, st, slowSpec, slowRuns, opt)
	if err != nil || sum.Failed != 1 {
		t.Fatalf("after cancelling: %+v (%v)", sum, err)
	}
	rows, _ = st.Query(ctx, store.Filter{Spec: "slow"})
	if len(rows) != 1 || !strings.Contains(rows[0].Error, "ended (CANCELLED) without writing a result") {
		t.Errorf("cancelled run: %+v", rows)
	}
	if err := st.Check(ctx); err != nil {
		t.Error(err)
	}
}
