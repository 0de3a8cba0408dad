package runner

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
)

// buildSweepbin compiles the crash-test subprocess once per test binary.
func buildSweepbin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sweepbin")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/prism-lora/prism/core/experiment/internal/sweepbin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building sweepbin: %v\n%s", err, out)
	}
	return bin
}

// outcome is what a sweep stored, without timings, hosts and attempts.
type outcome struct {
	ID        string
	Status    experiment.Status
	Error     string
	Config    experiment.RunConfig
	Metrics   map[string]float64
	Curves    map[string][]experiment.CurvePoint
	Summaries []experiment.Summary
}

func outcomes(t *testing.T, path string) ([]outcome, []store.Row) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("database %s is damaged: %v", path, err)
	}
	rows, err := st.Query(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	curves, err := st.Curves(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := st.Summaries(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]outcome, len(rows))
	for i, r := range rows {
		out[i] = outcome{ID: r.ID, Status: r.Status, Error: r.Error, Config: r.Config, Metrics: r.Metrics, Curves: curves[r.ID], Summaries: sums[r.ID]}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, rows
}

// finished counts runs that are done or failed.
func finished(t *testing.T, path string) int {
	_, rows := outcomes(t, path)
	n := 0
	for _, r := range rows {
		if r.Status == experiment.StatusDone || r.Status == experiment.StatusFailed {
			n++
		}
	}
	return n
}

// killAt runs the sweep with a fault point armed; when the process reports
// reaching it (stopped there, "pause") the test SIGKILLs it. With point ""
// the process is SIGKILLed after delay instead. It returns whether the
// process was killed (false: it finished first).
func killAt(t *testing.T, bin string, args []string, point string, delay time.Duration) bool {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if point != "" {
		cmd.Env = append(cmd.Env, "PRISM_FAULTPOINTS="+point)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "FAULTPOINT ") {
				reached <- sc.Text()
			}
		}
		close(reached)
	}()
	var timer <-chan time.Time
	if point == "" {
		timer = time.After(delay)
	}
	killed := false
	select {
	case line, ok := <-reached:
		if ok {
			t.Logf("reached %s; SIGKILL", line)
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	case <-timer:
		cmd.Process.Signal(syscall.SIGKILL)
		killed = true
	case <-time.After(2 * time.Minute):
		cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("fault point %q never reached", point)
	}
	err = cmd.Wait()
	if killed {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
		// The kill raced with a normal exit: also acceptable.
		return false
	}
	if point != "" && !strings.HasSuffix(point, "=kill") {
		t.Fatalf("sweep with %s ended without reaching it: %v", point, err)
	}
	return false
}

// TestSIGKILLAnywhereThenResume kills a real sweep process at chosen points
// (inside a run, inside the database transaction that stores a result, right
// after a commit, right after a run starts, at random times, with one and two
// workers), resumes it after each kill, and checks that the final database
// holds exactly what an uninterrupted sweep stores: every run once, nothing
// lost, nothing duplicated, and SQLite's integrity check passes.
func TestSIGKILLAnywhereThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills subprocesses; covered by the full suite")
	}
	bin := buildSweepbin(t)
	dir := t.TempDir()
	specPath := filepath.Join(dir, "crash.yaml")
	if err := os.WriteFile(specPath, []byte(sweepSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, runs := load(t, sweepSpec)
	ref := filepath.Join(dir, "ref.db")
	if out, err := exec.Command(bin, "-spec", specPath, "-db", ref, "-workers", "2").CombinedOutput(); err != nil {
		t.Fatalf("reference sweep: %v\n%s", err, out)
	}
	want, _ := outcomes(t, ref)
	if len(want) != len(runs) {
		t.Fatalf("reference stored %d runs, want %d", len(want), len(runs))
	}

	db := filepath.Join(dir, "crash.db")
	args := func(workers int) []string {
		return []string{"-spec", specPath, "-db", db, "-workers", fmt.Sprint(workers)}
	}
	// One worker, deterministic points: check exactly what each kill left.
	// Runs execute in spec order (seed fastest): lora lr=0.01 s0, s1; lora
	// lr=10 s0, s1 (these diverge in epoch 1 and are recorded as failed);
	// pissa lr=0.01 s0, s1; pissa lr=10 s0, s1; …
	if !killAt(t, bin, args(1), "store.before-commit@3", 0) {
		t.Fatal("not killed inside the third result transaction")
	}
	if n := finished(t, db); n != 2 {
		t.Fatalf("killed inside the 3rd result transaction: %d runs finished, want 2 (the 3rd rolled back)", n)
	}
	// Resume: the two lora lr=10 runs fail in epoch 1 (4 finished), then
	// pissa s0 is killed in its 2nd epoch.
	if !killAt(t, bin, args(1), "synthetic.epoch@2", 0) {
		t.Fatal("not killed inside a run")
	}
	if n := finished(t, db); n != 4 {
		t.Fatalf("killed inside a run: %d runs finished, want 4", n)
	}
	// Resume: failed runs are retried, so lora lr=10 s0 and s1 fail again
	// (commits 1, 2), then pissa s0 (again) and s1 finish (commits 3, 4);
	// killed right after the 4th commit.
	if !killAt(t, bin, args(1), "runner.recorded@4", 0) {
		t.Fatal("not killed between runs")
	}
	if n := finished(t, db); n != 6 {
		t.Fatalf("killed after the 4th commit: %d runs finished, want 6", n)
	}
	// Resume: lora lr=10 s0, s1 and pissa lr=10 s0 start and fail; killed as
	// the 4th run (pissa lr=10 s1) starts.
	if !killAt(t, bin, args(1), "runner.started@4", 0) {
		t.Fatal("not killed as a run started")
	}
	if n := finished(t, db); n != 7 {
		t.Fatalf("killed as the 4th run started: %d runs finished, want 7", n)
	}
	// Two workers: a commit killed by the process itself, and kills at
	// random moments.
	killAt(t, bin, args(2), "store.before-commit@2=kill", 0)
	rng := rand.New(rand.NewPCG(1, 2))
	randomKills := 0
	for i := 0; i < 6 && finished(t, db) < len(runs); i++ {
		delay := time.Duration(40+rng.IntN(120)) * time.Millisecond
		killed := killAt(t, bin, args(2), "", delay)
		t.Logf("random kill after %v: killed=%v, %d runs finished", delay, killed, finished(t, db))
		if killed {
			randomKills++
		}
	}
	if randomKills == 0 {
		t.Error("no random kill landed before the sweep finished")
	}
	// Resume to the end.
	out, err := exec.Command(bin, args(2)...).CombinedOutput()
	if err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	}
	got, rows := outcomes(t, db)
	if len(got) != len(want) {
		t.Fatalf("crashed sweep stored %d runs, uninterrupted %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("run %s differs from the uninterrupted sweep:\n got %+v\nwant %+v", experiment.ShortID(want[i].ID), got[i], want[i])
		}
	}
	retried := 0
	for _, r := range rows {
		if r.Status == experiment.StatusDone && r.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no finished run needed a second attempt: the kills did not interrupt any run")
	}
	// Row counts per table match the reference: no duplicates anywhere.
	counts := func(path string) map[string]int {
		st, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		m := map[string]int{}
		for _, table := range []string{"runs", "metrics", "curves", "summaries", "spec_runs", "specs"} {
			n, err := st.CountRows(context.Background(), table)
			if err != nil {
				t.Fatal(err)
			}
			m[table] = n
		}
		return m
	}
	if c, r := counts(db), counts(ref); !reflect.DeepEqual(c, r) {
		t.Errorf("row counts after crashes %v, uninterrupted %v", c, r)
	}
}
