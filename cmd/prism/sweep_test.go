package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/slurm/slurmtest"
	"github.com/prism-lora/prism/core/experiment/store"
)

const cliSpec = `name: cli
kind: synthetic
model: {name: linear, params: {m: 16, n: 12}}
pretrain: {task: synthetic-a}
finetune: {task: synthetic-b}
grid:
  methods: [lora, pissa, milora, window, full]
  window_starts: [0, 4, 8]
  ranks: [4]
  learning_rates: [1e-2, 10]
  seeds: [0, 1]
  epochs: [2]
output: OUT
`

// writeSpec writes the spec with its output under dir and returns its path.
func writeSpec(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "spec.yaml")
	text = strings.ReplaceAll(text, "OUT", filepath.Join(dir, "out"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSweepAndResultsCommands(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, cliSpec)
	db := filepath.Join(dir, "out", "results.db")
	ctx := context.Background()

	var out bytes.Buffer
	err := runSweep(ctx, sweepOptions{Spec: spec, DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "28 runs (lora 4, pissa 4, milora 4, window 12, full 4)") || strings.Count(out.String(), " new ") != 28 {
		t.Errorf("dry run:\n%s", out.String())
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a dry run created the database")
	}

	out.Reset()
	err = runSweep(ctx, sweepOptions{Spec: spec, Workers: 2, Out: &out})
	var sf *sweepFailed
	if !errors.As(err, &sf) || sf.ExitCode() != 3 || sf.n != 14 {
		t.Fatalf("sweep with diverging runs returned %v, want 14 failures with exit status 3\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "spec cli: 14/28 runs done, 14 failed") {
		t.Errorf("sweep output:\n%s", out.String())
	}
	// Again with --skip-failed: nothing runs, the status is the same.
	out.Reset()
	err = runSweep(ctx, sweepOptions{Spec: spec, SkipFailed: true, Out: &out})
	if !errors.As(err, &sf) || !strings.Contains(out.String(), "28 runs, 28 already finished, 0 to run") {
		t.Errorf("second sweep: %v\n%s", err, out.String())
	}

	// prism results: table, filters, sort.
	out.Reset()
	if err := runResults(ctx, resultsOptions{resultsFilter: resultsFilter{DB: db, Methods: []string{"window"}, Where: []string{"lr=0.01"}},
		Sort: "b_acc", Desc: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+6+1 || !strings.Contains(lines[0], "SERIES") || !strings.Contains(lines[0], "B_ACC") || lines[7] != "6 run(s)" {
		t.Fatalf("filtered table:\n%s", out.String())
	}
	var prev = 1e9
	for _, l := range lines[1:7] {
		f := strings.Fields(l)
		acc, err := strconv.ParseFloat(f[len(f)-5], 64) // B_ACC, A_ACC_BEFORE, A_ACC_AFTER, FORGETTING, TRAINABLE_PARAMS
		if err != nil || acc > prev {
			t.Errorf("not sorted by b_acc descending: %q", l)
		}
		prev = acc
	}
	// CSV export: every run, exact numbers, matching the store.
	csvPath := filepath.Join(dir, "runs.csv")
	out.Reset()
	if err := runResults(ctx, resultsOptions{resultsFilter: resultsFilter{DB: db}, Format: "csv", OutFile: csvPath, Out: &out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 29 {
		t.Fatalf("csv: %d records (%v)", len(recs), err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Query(ctx, store.Filter{})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.Row{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, rec := range recs[1:] {
		r, ok := byID[rec[col["id"]]]
		if !ok {
			t.Fatalf("csv id %q not in the store", rec[col["id"]])
		}
		if rec[col["status"]] != string(r.Status) || rec[col["method"]] != r.Config.Method {
			t.Errorf("csv row %v disagrees with the store", rec)
		}
		if r.Status == experiment.StatusDone {
			got, err := strconv.ParseFloat(rec[col["b_acc"]], 64)
			if err != nil || got != r.Metrics["b_acc"] {
				t.Errorf("csv b_acc %q, store %v: not exact", rec[col["b_acc"]], r.Metrics["b_acc"])
			}
		} else if rec[col["b_acc"]] != "" || !strings.Contains(rec[col["error"]], "diverged") {
			t.Errorf("failed run in csv: b_acc %q error %q", rec[col["b_acc"]], rec[col["error"]])
		}
	}
	// JSON.
	out.Reset()
	if err := runResults(ctx, resultsOptions{resultsFilter: resultsFilter{DB: db, Statuses: []string{"done"}}, Format: "json", Limit: 2, Out: &out}); err != nil {
		t.Fatal(err)
	}
	var js []map[string]any
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || len(js) != 2 || js[0]["metrics"].(map[string]any)["b_acc"] == nil {
		t.Errorf("json: %v %v", err, out.String())
	}
	// Markdown.
	out.Reset()
	if err := runResults(ctx, resultsOptions{resultsFilter: resultsFilter{DB: db, Methods: []string{"full"}}, Format: "markdown", Columns: []string{"series", "lr", "seed", "status"}, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "| series | lr | seed | status |\n|---|---|---|---|\n| full | 0.01 | 0 | done |") {
		t.Errorf("markdown:\n%s", out.String())
	}
	// Errors name what was expected.
	for _, c := range []struct {
		o    resultsOptions
		want string
	}{
		{resultsOptions{resultsFilter: resultsFilter{DB: db, Where: []string{"bacc>1"}}}, `unknown field "bacc"`},
		{resultsOptions{resultsFilter: resultsFilter{DB: db, Statuses: []string{"ok"}}}, `--status "ok": expected pending, running, done or failed`},
		{resultsOptions{resultsFilter: resultsFilter{DB: db}, Format: "xml"}, `--format "xml"`},
		{resultsOptions{resultsFilter: resultsFilter{DB: filepath.Join(dir, "none.db")}}, "none.db"},
		{resultsOptions{resultsFilter: resultsFilter{DB: db}, Columns: []string{"nope"}}, `--columns: unknown field "nope"`},
	} {
		if err := runResults(ctx, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	t.Setenv("PRISM_DB", "")
	if err := runResults(ctx, resultsOptions{}); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Errorf("no database: %v", err)
	}

	// show and specs.
	out.Reset()
	id := rows[0].ID
	if err := runResultsShow(ctx, resultsShowOptions{DB: db, ID: id[:8], Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run " + id, "status:", `"method": "` + rows[0].Config.Method + `"`, "curves (epoch: value):", "b_loss"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, out.String())
		}
	}
	if err := runResultsShow(ctx, resultsShowOptions{DB: db, ID: "zzzz"}); err == nil || !strings.Contains(err.Error(), "no run with ID zzzz") {
		t.Errorf("show unknown: %v", err)
	}
	out.Reset()
	if err := runResultsSpecs(ctx, resultsSpecsOptions{DB: db, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cli   28    14    14") {
		t.Errorf("specs:\n%s", out.String())
	}

	// figures.
	figDir := filepath.Join(dir, "figs")
	out.Reset()
	if err := runResultsFigures(ctx, resultsFiguresOptions{resultsFilter: resultsFilter{DB: db, Where: []string{"lr=0.01"}}, OutDir: figDir, Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fig1", "pareto", "curves"} {
		for _, ext := range []string{"svg", "pdf", "png"} {
			if st, err := os.Stat(filepath.Join(figDir, name+"."+ext)); err != nil || st.Size() == 0 {
				t.Errorf("%s.%s: %v", name, ext, err)
			}
		}
	}
	if !strings.Contains(out.String(), "skipped lr: the runs have a single learning rate") {
		t.Errorf("figures output:\n%s", out.String())
	}
	// Asked for explicitly, a figure that does not apply is an error (the lr
	// 10 runs all diverged, so the done runs have one learning rate).
	if err := runResultsFigures(ctx, resultsFiguresOptions{resultsFilter: resultsFilter{DB: db}, OutDir: figDir, Figures: []string{"lr"}}); err == nil || !strings.Contains(err.Error(), "lr: the runs have a single learning rate") {
		t.Errorf("lr figure with one learning rate: %v", err)
	}
	if err := runResultsFigures(ctx, resultsFiguresOptions{resultsFilter: resultsFilter{DB: db}, OutDir: figDir, Figures: []string{"fig2"}}); err == nil || !strings.Contains(err.Error(), `--figure "fig2"`) {
		t.Errorf("unknown figure: %v", err)
	}
}

func TestSweepSpecErrors(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, strings.Replace(cliSpec, "kind: synthetic", "kind: nosuch", 1))
	err := runSweep(context.Background(), sweepOptions{Spec: spec})
	if err == nil || !strings.Contains(err.Error(), spec+":2:7: kind: unknown run kind \"nosuch\" (registered: continual, finetune, finetune-text, synthetic)") {
		t.Errorf("unknown kind: %v", err)
	}
	spec = writeSpec(t, dir, strings.Replace(cliSpec, "window_starts: [0, 4, 8]", "window_starts: [0, 4, 10]", 1))
	err = runSweep(context.Background(), sweepOptions{Spec: spec})
	if err == nil || !strings.Contains(err.Error(), ":8:18: grid.window_starts: window start 10 with rank 4 runs past k = 12 components") {
		t.Errorf("kind validation: %v", err)
	}
	spec = writeSpec(t, dir, cliSpec)
	if err := runSweep(context.Background(), sweepOptions{Spec: spec, Wait: true}); err == nil || !strings.Contains(err.Error(), "--wait applies to --executor slurm") {
		t.Errorf("--wait locally: %v", err)
	}
	if err := runSweep(context.Background(), sweepOptions{Spec: spec, Executor: "k8s"}); err == nil || !strings.Contains(err.Error(), `--executor "k8s"`) {
		t.Errorf("bad executor: %v", err)
	}
}

var (
	prismOnce sync.Once
	prismBin  string
	prismErr  error
)

// buildPrism builds this command once for the tests that run it as a
// process.
func buildPrism(t *testing.T) string {
	t.Helper()
	prismOnce.Do(func() {
		dir, err := os.MkdirTemp("", "prism-bin")
		if err != nil {
			prismErr = err
			return
		}
		prismBin = filepath.Join(dir, "prism")
		out, err := exec.Command("go", "build", "-o", prismBin, ".").CombinedOutput()
		if err != nil {
			prismErr = errors.New(string(out))
		}
	})
	if prismErr != nil {
		t.Fatalf("building prism: %v", prismErr)
	}
	return prismBin
}

// TestPrismProcessKilledAndResumed runs `prism sweep` as a process, SIGKILLs
// it inside a result transaction and inside a run, and resumes it to the end.
func TestPrismProcessKilledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds prism")
	}
	bin := buildPrism(t)
	dir := t.TempDir()
	spec := writeSpec(t, dir, strings.Replace(cliSpec, "finetune: {task: synthetic-b}", "finetune: {task: synthetic-b, params: {sleep_ms: 10}}", 1))
	for _, point := range []string{"store.before-commit@5", "synthetic.epoch@3"} {
		cmd := exec.Command(bin, "sweep", spec, "--workers", "1")
		cmd.Env = append(os.Environ(), "PRISM_FAULTPOINTS="+point)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		reached := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "FAULTPOINT "+strings.Split(point, "@")[0]) {
				reached = true
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if !reached {
			t.Fatalf("%s not reached", point)
		}
	}
	out, err := exec.Command(bin, "sweep", spec, "--workers", "2").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "spec cli: 14/28 runs done, 14 failed") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	st, err := store.Open(filepath.Join(dir, "out", "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Error(err)
	}
	if n, _ := st.CountRows(context.Background(), "runs"); n != 28 {
		t.Errorf("%d runs stored, want 28", n)
	}
	// The results command works on the process's database.
	out, err = exec.Command(bin, "results", "--db", filepath.Join(dir, "out", "results.db"), "--status", "done", "--format", "csv", "--columns", "id,b_acc").CombinedOutput()
	if err != nil || strings.Count(string(out), "\n") != 15 {
		t.Errorf("prism results: %v\n%s", err, out)
	}
}

// TestPrismSweepOnSlurm runs `prism sweep --executor slurm --wait` against a
// real single-node Slurm: the tasks run `prism sweep-task`.
func TestPrismSweepOnSlurm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster")
	}
	slurmtest.Start(t)
	bin := buildPrism(t)
	dir := t.TempDir()
	text := strings.NewReplacer("methods: [lora, pissa, milora, window, full]", "methods: [pissa, window, full]",
		"window_starts: [0, 4, 8]", "window_starts: [4]", "seeds: [0, 1]", "seeds: [0]").Replace(cliSpec)
	text += "executor: {kind: slurm, slurm: {poll: 300ms, cpus_per_task: 1, mem: 100M, time: \"5\"}}\n"
	spec := writeSpec(t, dir, text)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "sweep", spec, "--wait").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("slurm sweep: %v\n%s", err, out)
	}
	for _, want := range []string{"submitted Slurm array", "6 submitted", "[6/6] 3 failed · Slurm: no tasks left", "spec cli: 3/6 runs done, 3 failed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Re-submission with --skip-failed: nothing left to submit.
	out, _ = exec.CommandContext(ctx, bin, "sweep", spec, "--skip-failed").CombinedOutput()
	if !strings.Contains(string(out), "slurm: 6 run(s) finished, 0 already queued or running, 0 submitted") {
		t.Errorf("re-submission:\n%s", out)
	}
	out, err = exec.Command(bin, "results", "--db", filepath.Join(dir, "out", "results.db"), "--columns", "series,lr,status,executor").CombinedOutput()
	if err != nil || strings.Count(string(out), "slurm ") != 6 {
		t.Errorf("results after slurm:\n%s (%v)", out, err)
	}
}
