package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
)

const specText = `name: s1
kind: synthetic
model: {name: linear}
finetune: {task: b}
grid:
  methods: [lora, window, full]
  window_starts: [0, 4]
  ranks: [2]
  learning_rates: [1e-2, 1e-1]
  epochs: [2]
`

func testSpec(t *testing.T, text string) (*experiment.Spec, []experiment.Run) {
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

func openTemp(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "sub", "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func record(r experiment.Run, status experiment.Status, acc float64) experiment.RunRecord {
	rec := experiment.RunRecord{
		ID: r.ID, Config: r.Config, Status: status, Host: "h", Executor: "local",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 4, 7, 500e6, time.UTC),
	}
	if status == experiment.StatusFailed {
		rec.Error = "diverged"
		return rec
	}
	rec.Result = experiment.Result{
		Metrics: map[string]float64{"b_acc": acc, "forgetting": 100 - acc, "a_kl": math.NaN(), "inf": math.Inf(1)},
		Curves: map[string][]experiment.CurvePoint{
			"loss": {{Epoch: 1, Value: 2}, {Epoch: 2, Value: 1}, {Epoch: 3, Value: math.NaN()}},
		},
		Summaries: []experiment.Summary{{Scope: "layer0", Key: "diag", Value: 1.5}, {Scope: "", Key: "note", Text: "ok", Value: math.NaN()}},
	}
	return rec
}

func TestSchemaAndMigrations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := st.Version(ctx)
	if err != nil || v != SchemaVersion || SchemaVersion < 1 {
		t.Fatalf("version %d (%v), want %d", v, err, SchemaVersion)
	}
	var mode string
	if err := st.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
	var busy int
	if err := st.db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy < 1000 {
		t.Errorf("busy_timeout %d (%v)", busy, err)
	}
	if err := st.Check(ctx); err != nil {
		t.Error(err)
	}
	// A database from a newer prism is refused, naming the versions.
	if _, err := st.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this prism understands") {
		t.Errorf("newer schema: got %v", err)
	}
	// Reopening a current database is a no-op; opening concurrently from
	// several handles (as several processes would) migrates once.
	path2 := filepath.Join(dir, "r2.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(path2)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
	if _, err := Open(filepath.Join(dir, "bad?.db")); err == nil {
		t.Error("'?' in the path accepted")
	}
}

func TestRecordExactlyOnce(t *testing.T) {
	st := openTemp(t)
	ctx := context.Background()
	spec, runs := testSpec(t, specText)
	if len(runs) != 2+4+2 {
		t.Fatalf("%d runs", len(runs))
	}
	if err := st.AddRuns(ctx, spec, runs); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRuns(ctx, spec, runs); err != nil { // idempotent
		t.Fatal(err)
	}
	rows, err := st.Query(ctx, Filter{Spec: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(runs) {
		t.Fatalf("%d rows after adding %d runs twice", len(rows), len(runs))
	}
	for _, r := range rows {
		if r.Status != experiment.StatusPending || len(r.Specs) != 1 || r.Specs[0] != "s1" {
			t.Errorf("new run %s: status %s specs %v", r.ID, r.Status, r.Specs)
		}
	}
	r0 := runs[0]
	if err := st.MarkRunning(ctx, r0.ID, "h", "local", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Record(ctx, record(r0, experiment.StatusFailed, 0)); err != nil {
		t.Fatal(err)
	}
	// A failed run may be recorded again; the later record replaces it.
	if err := st.MarkRunning(ctx, r0.ID, "h", "local", time.Now()); err != nil {
		t.Fatal(err)
	}
	want := record(r0, experiment.StatusDone, 81.25)
	if err := st.Record(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A done run is never rewritten.
	again := record(r0, experiment.StatusDone, 12)
	if err := st.Record(ctx, again); !errors.Is(err, ErrAlreadyDone) {
		t.Errorf("second record of a done run: %v, want ErrAlreadyDone", err)
	}
	if err := st.MarkRunning(ctx, r0.ID, "other", "local", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := st.Query(ctx, Filter{IDPrefix: r0.ID[:10]})
	if err != nil || len(got) != 1 {
		t.Fatalf("query by id prefix: %v %d", err, len(got))
	}
	g := got[0]
	if g.Status != experiment.StatusDone || g.Error != "" || g.Attempts != 2 || g.Host != "h" {
		t.Errorf("stored run: status %s error %q attempts %d host %q", g.Status, g.Error, g.Attempts, g.Host)
	}
	if g.WallSeconds != 2.5 || !g.Started.Equal(want.Started) || !g.Finished.Equal(want.Finished) {
		t.Errorf("timings: %v %v %v", g.WallSeconds, g.Started, g.Finished)
	}
	if !reflect.DeepEqual(g.Config, r0.Config) {
		t.Errorf("config round trip:\n got %+v\nwant %+v", g.Config, r0.Config)
	}
	if g.Metrics["b_acc"] != 81.25 || g.Metrics["forgetting"] != 18.75 || !math.IsNaN(g.Metrics["a_kl"]) || !math.IsInf(g.Metrics["inf"], 1) || len(g.Metrics) != 4 {
		t.Errorf("metrics: %v", g.Metrics)
	}
	curves, err := st.Curves(ctx, []string{r0.ID})
	if err != nil {
		t.Fatal(err)
	}
	loss := curves[r0.ID]["loss"]
	if len(loss) != 3 || loss[0] != (experiment.CurvePoint{Epoch: 1, Value: 2}) || loss[1].Value != 1 || !math.IsNaN(loss[2].Value) {
		t.Errorf("curve: %v", loss)
	}
	sums, err := st.Summaries(ctx, []string{r0.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums[r0.ID]) != 2 || sums[r0.ID][1] != (experiment.Summary{Scope: "layer0", Key: "diag", Value: 1.5}) || sums[r0.ID][0].Text != "ok" {
		t.Errorf("summaries: %+v", sums[r0.ID])
	}
	// Each table holds the run's rows exactly once.
	for table, n := range map[string]int{"runs": 1, "metrics": 4, "curves": 3, "summaries": 2} {
		col := "run_id"
		if table == "runs" {
			col = "id"
		}
		var c int
		if err := st.db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = ?", table, col), r0.ID).Scan(&c); err != nil || c != n {
			t.Errorf("%s has %d rows for the run (%v), want %d", table, c, err, n)
		}
	}
	// A record whose ID does not hash from its configuration is refused.
	bad := record(runs[1], experiment.StatusDone, 50)
	bad.Config.Seed = 99
	if err := st.Record(ctx, bad); err == nil || !strings.Contains(err.Error(), "does not match its configuration") {
		t.Errorf("mismatched ID: %v", err)
	}
	// A record for a run the database has never seen is added.
	_, other := testSpec(t, strings.Replace(specText, "epochs: [2]", "epochs: [3]", 1))
	if err := st.Record(ctx, record(other[0], experiment.StatusDone, 60)); err != nil {
		t.Fatal(err)
	}
	all, _ := st.Query(ctx, Filter{})
	if len(all) != len(runs)+1 {
		t.Errorf("%d runs after recording an unregistered one, want %d", len(all), len(runs)+1)
	}
	if err := st.Check(ctx); err != nil {
		t.Error(err)
	}
}

func TestQueryFilters(t *testing.T) {
	st := openTemp(t)
	ctx := context.Background()
	spec, runs := testSpec(t, specText)
	if err := st.AddRuns(ctx, spec, runs); err != nil {
		t.Fatal(err)
	}
	for i, r := range runs {
		status := experiment.StatusDone
		if i == 3 {
			status = experiment.StatusFailed
		}
		if err := st.Record(ctx, record(r, status, float64(50+i))); err != nil {
			t.Fatal(err)
		}
	}
	spec2, runs2 := testSpec(t, strings.Replace(strings.Replace(specText, "name: s1", "name: s2", 1), "learning_rates: [1e-2, 1e-1]", "learning_rates: [1e-2]", 1))
	if err := st.AddRuns(ctx, spec2, runs2); err != nil {
		t.Fatal(err)
	}
	count := func(f Filter) int {
		t.Helper()
		rows, err := st.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	cond := func(s string) Condition {
		c, err := ParseCondition(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 8},
		{"spec s1", Filter{Spec: "s1"}, 8},
		{"spec s2 (shares runs with s1)", Filter{Spec: "s2"}, 4},
		{"method", Filter{Methods: []string{"window"}}, 4},
		{"two methods", Filter{Methods: []string{"window", "full"}}, 6},
		{"failed", Filter{Statuses: []experiment.Status{experiment.StatusFailed}}, 1},
		{"metric >=", Filter{Where: []Condition{cond("b_acc>=54")}}, 4}, // runs 4..7 (b_acc = 50 + index)
		{"config =", Filter{Where: []Condition{cond("lr=0.1")}}, 4},
		{"config and metric", Filter{Where: []Condition{cond("lr = 0.1"), cond("b_acc<55")}}, 1}, // run 1; run 3 failed, has no b_acc
		{"window start", Filter{Where: []Condition{cond("window_start>0")}}, 2},
		{"regexp", Filter{Where: []Condition{cond("series~^window s=")}}, 4},
		{"not equal matches missing", Filter{Where: []Condition{cond("rank!=2")}}, 2},
		{"limit", Filter{Limit: 3}, 3},
	}
	for _, c := range cases {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d rows, want %d", c.name, got, c.want)
		}
	}
	rows, err := st.Query(ctx, Filter{Sort: "b_acc", Descending: true})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Metrics["b_acc"] != 57 || rows[len(rows)-1].Status != experiment.StatusFailed {
		t.Errorf("sorted by b_acc desc: first %v, last %s", rows[0].Metrics["b_acc"], rows[len(rows)-1].Status)
	}
	if _, err := st.Query(ctx, Filter{Where: []Condition{cond("bacc>1")}}); err == nil || !strings.Contains(err.Error(), `unknown field "bacc"`) {
		t.Errorf("unknown field: %v", err)
	}
	for _, bad := range []string{"b_acc", "b_acc=>3", ">3", "x~("} {
		if _, err := ParseCondition(bad); err == nil {
			t.Errorf("condition %q accepted", bad)
		}
	}
	specs, err := st.Specs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Counts[experiment.StatusDone] != 7 || specs[0].Counts[experiment.StatusFailed] != 1 ||
		specs[1].Counts[experiment.StatusDone] != 4 || specs[1].Counts[experiment.StatusFailed] != 0 || specs[0].Source != specText {
		t.Errorf("specs: %+v", specs)
	}
	if got := MetricNames(rows); strings.Join(got, ",") != "b_acc,forgetting,a_kl,inf" {
		t.Errorf("metric names %v", got)
	}
}

// TestConcurrentWriters records from several handles at once, as several
// processes sharing a database would; busy_timeout serialises them.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	spec, runs := testSpec(t, specText)
	ctx := context.Background()
	var handles []*Store
	for i := 0; i < 4; i++ {
		st, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		handles = append(handles, st)
	}
	if err := handles[0].AddRuns(ctx, spec, runs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	recorded, dup := 0, 0
	for h, st := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, r := range runs {
				// Every handle tries every run: exactly one wins each.
				err := st.Record(ctx, record(r, experiment.StatusDone, float64(i*10+h)))
				mu.Lock()
				switch {
				case err == nil:
					recorded++
				case errors.Is(err, ErrAlreadyDone):
					dup++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if recorded != len(runs) || dup != 3*len(runs) {
		t.Errorf("%d recorded, %d refused; want %d and %d", recorded, dup, len(runs), 3*len(runs))
	}
	var n int
	if err := handles[1].db.QueryRow("SELECT count(*) FROM metrics").Scan(&n); err != nil || n != 4*len(runs) {
		t.Errorf("%d metric rows, want %d", n, 4*len(runs))
	}
}

func TestSlurmTasks(t *testing.T) {
	st := openTemp(t)
	ctx := context.Background()
	spec, runs := testSpec(t, specText)
	if err := st.AddRuns(ctx, spec, runs); err != nil {
		t.Fatal(err)
	}
	ids := []string{runs[0].ID, runs[1].ID, runs[2].ID}
	if err := st.AddSlurmTasks(ctx, "17", "s1", "/shared/x", ids); err != nil {
		t.Fatal(err)
	}
	open, err := st.OpenSlurmTasks(ctx, "s1")
	if err != nil || len(open) != 3 || open[2].RunID != runs[2].ID || open[2].Task != 2 || open[0].Dir != "/shared/x" {
		t.Fatalf("open tasks %+v (%v)", open, err)
	}
	if err := st.SetSlurmTaskStates(ctx, map[string]TaskState{"17_0": {"COMPLETED", true}, "17_1": {"RUNNING", false}, "17_2": {"FAILED", true}}); err != nil {
		t.Fatal(err)
	}
	open, _ = st.OpenSlurmTasks(ctx, "")
	if len(open) != 1 || open[0].Task != 1 || open[0].State != "RUNNING" {
		t.Errorf("after updates: %+v", open)
	}
	if open[0].Key() != "17_1" {
		t.Errorf("key %q", open[0].Key())
	}
	if err := st.SetSlurmTaskStates(ctx, map[string]TaskState{"bad": {"X", true}}); err == nil {
		t.Error("bad key accepted")
	}
}

func TestCheckLocalFS(t *testing.T) {
	if err := CheckLocalFS(filepath.Join(t.TempDir(), "a", "b", "r.db")); err != nil {
		t.Errorf("temporary directory reported as network file system: %v", err)
	}
	// /proc is not a network file system either; the check must not block it.
	if err := CheckLocalFS("/proc/x.db"); err != nil {
		t.Error(err)
	}
	// A directory whose statfs type is NFS's magic is refused, by name.
	real := statfsType
	defer func() { statfsType = real }()
	statfsType = func(string) (int64, error) { return 0x6969, nil }
	if err := CheckLocalFS("/shared/r.db"); err == nil || !strings.Contains(err.Error(), "network file system (NFS)") {
		t.Errorf("NFS: %v", err)
	}
}
