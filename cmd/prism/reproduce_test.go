package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/finetune"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/plugintest"
)

// withCache points the finetune kind (and core/train) at a fresh cache.
func withCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := finetune.Settings
	finetune.Settings.CacheDir = dir
	t.Cleanup(func() { finetune.Settings = old })
	return dir
}

// storedRuns opens a results database and returns its runs by ID after an
// integrity check.
func storedRuns(t *testing.T, db string) map[string]store.Row {
	t.Helper()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("%s: %v", db, err)
	}
	rows, err := st.Query(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Row{}
	for _, r := range rows {
		if _, dup := out[r.ID]; dup {
			t.Fatalf("run %s stored twice", r.ID)
		}
		out[r.ID] = r
	}
	if n, _ := st.CountRows(context.Background(), "runs"); n != len(out) {
		t.Fatalf("runs table has %d rows, query %d", n, len(out))
	}
	return out
}

// TestReproduceFig1AndLRTiny runs both reproductions end to end in their
// tiny test setting (real data and training, seconds): the output files,
// the database (every run once, all done), the markdown table's rows, and
// that running again trains nothing.
func TestReproduceFig1AndLRTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains ViTs")
	}
	catalogtest.Open(t, "mnist")
	catalogtest.Open(t, "fashion-mnist")
	withCache(t)
	ctx := context.Background()
	// Both share one database: lr reuses the 2 seeds × 5 configurations at
	// fig1's learning rate.
	db := filepath.Join(t.TempDir(), "results.db")
	for _, tc := range []struct {
		name            string
		reproduction    reproduction
		runs, new, have int
		figures         []string
		rows            []string
	}{
		{"fig1", fig1Reproduction, 2 * 8, 2 * 8, 2 * 8, []string{"fig1", "pareto", "curves"},
			[]string{"PiSSA", "window f=0.5", "MiLoRA", "LoRA", "OLoRA", "DoRA", "full FT", "head only"}},
		{"lr", lrReproduction, 2 * 2 * 5, 2 * 5, 2*8 + 2*5, []string{"lr"},
			[]string{"PiSSA", "window f=0.5", "MiLoRA", "LoRA", "full FT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), tc.name)
			var stdout bytes.Buffer
			res, err := runReproduction(ctx, reproduceOptions{Quick: true, Tiny: true, Out: out, DB: db, Stdout: &stdout}, tc.reproduction)
			if err != nil {
				t.Fatalf("%v\n%s", err, stdout.String())
			}
			if len(res.runs) != tc.runs || res.summary.Done != tc.new || res.summary.Skipped != tc.runs-tc.new {
				t.Fatalf("%d runs, %d done now, %d found done; want %d, %d new", len(res.runs), res.summary.Done, res.summary.Skipped, tc.runs, tc.new)
			}
			stored := storedRuns(t, db)
			if len(stored) != tc.have {
				t.Errorf("%d runs in the database, want %d", len(stored), tc.have)
			}
			for _, r := range stored {
				if r.Status != experiment.StatusDone {
					t.Errorf("run %s: %s %s", r.Config.Label(), r.Status, r.Error)
				}
			}
			for _, f := range tc.figures {
				for _, ext := range []string{"png", "svg", "pdf"} {
					if st, err := os.Stat(filepath.Join(out, "figures", f+"."+ext)); err != nil || st.Size() < 1000 {
						t.Errorf("figure %s.%s: %v", f, ext, err)
					}
				}
			}
			md, err := os.ReadFile(filepath.Join(out, "results.md"))
			if err != nil {
				t.Fatal(err)
			}
			// Each configuration is one table row (twice for lr: accuracy and forgetting).
			perRow := 1
			if tc.name == "lr" {
				perRow = 2
			}
			var tableRows []string
			for _, line := range strings.Split(string(md), "\n") {
				if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| method") {
					tableRows = append(tableRows, strings.TrimSpace(strings.Split(line, "|")[1]))
				}
			}
			var want []string
			for range perRow {
				want = append(want, tc.rows...)
			}
			if !reflect.DeepEqual(tableRows, want) {
				t.Errorf("table rows %q, want %q\n%s", tableRows, want, md)
			}
			if tc.name == "fig1" {
				// Every row has a number ± std for both seeds.
				if n := regexp.MustCompile(`\d ± \d`).FindAllStringIndex(string(md), -1); len(n) < 8*4 {
					t.Errorf("%d mean ± std cells:\n%s", len(n), md)
				}
				for _, want := range []string{"Forgetting from the top to the bottom of the spectrum: PiSSA", "Pareto front", "![", "figures/fig1.png"} {
					if !strings.Contains(string(md), want) {
						t.Errorf("results.md lacks %q", want)
					}
				}
			}
			// Again: nothing trains, the report is written again.
			stdout.Reset()
			res, err = runReproduction(ctx, reproduceOptions{Quick: true, Tiny: true, Out: out, DB: db, Stdout: &stdout}, tc.reproduction)
			if err != nil || res.summary.Skipped != tc.runs || res.summary.Done != 0 {
				t.Errorf("second run: %v, %+v", err, res.summary)
			}
			if again := storedRuns(t, db); len(again) != tc.have {
				t.Errorf("after the second run: %d runs stored", len(again))
			}
		})
	}
}

// killSpec is a real finetune sweep that takes a second or two: an MLP on
// sklearn's digits (both tasks), two epochs, training checkpoints every 3
// steps, three methods.
const killSpec = `name: kill
kind: finetune
model: {name: mlp, params: {hidden: 24}}
pretrain: {task: digits, epochs: 2, learning_rate: 1e-2, batch_size: 32, seed: 1}
finetune: {task: digits, batch_size: 32, params: {checkpoint_every: 3, trace: 5, analysis: true}}
grid:
  methods: [window, lora, full]
  window_fractions: [0.5]
  ranks: [4]
  learning_rates: [1e-2]
  epochs: [2]
output: OUT
`

// TestFinetuneSweepKilledAndResumed runs `prism sweep` on the finetune kind
// as a process: an uninterrupted reference, then a sweep SIGKILLed inside a
// training run (after a training checkpoint) and inside a result
// transaction, resumed each time. The final database must hold exactly the
// reference's runs and numbers (timings apart): the killed run continued
// from core/train's checkpoint to the same result.
func TestFinetuneSweepKilledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds prism")
	}
	catalogtest.Open(t, "digits")
	bin := buildPrism(t)
	cache := t.TempDir()
	env := append(os.Environ(), "PRISM_CACHE_DIR="+cache)
	sweep := func(dir, faultpoint string) (string, error) {
		spec := writeSpec(t, dir, killSpec)
		cmd := exec.Command(bin, "sweep", spec, "--workers", "1")
		cmd.Env = env
		if faultpoint == "" {
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		cmd.Env = append(cmd.Env, "PRISM_FAULTPOINTS="+faultpoint)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		reached := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "FAULTPOINT ") {
				reached = true
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if !reached {
			t.Fatalf("fault point %s not reached", faultpoint)
		}
		return "", nil
	}
	refDir, dir := t.TempDir(), t.TempDir()
	if out, err := sweep(refDir, ""); err != nil {
		t.Fatalf("reference sweep: %v\n%s", err, out)
	}
	ref := storedRuns(t, filepath.Join(refDir, "out", "results.db"))
	// Killed at the 5th step of the first run (its checkpoint is at step 3),
	// then inside the transaction of the second result.
	sweep(dir, "finetune.step@5")
	if runs := storedRuns(t, filepath.Join(dir, "out", "results.db")); countDone(runs) != 0 {
		t.Fatalf("killed inside the first run: %d runs done", countDone(runs))
	}
	if ckpts, _ := filepath.Glob(filepath.Join(cache, "runs", "*", "state.safetensors")); len(ckpts) != 1 {
		t.Fatalf("%d training checkpoints after the kill, want the killed run's one", len(ckpts))
	}
	sweep(dir, "store.before-commit@2")
	if runs := storedRuns(t, filepath.Join(dir, "out", "results.db")); countDone(runs) != 1 {
		t.Fatalf("killed inside the second result's transaction: %d runs done, want 1", countDone(runs))
	}
	if out, err := sweep(dir, ""); err != nil || !strings.Contains(out, "spec kill: 3/3 runs done, 0 failed") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	got := storedRuns(t, filepath.Join(dir, "out", "results.db"))
	if len(got) != len(ref) {
		t.Fatalf("%d runs after the kills, %d in the reference", len(got), len(ref))
	}
	st, _ := store.Open(filepath.Join(dir, "out", "results.db"))
	defer st.Close()
	rst, _ := store.Open(filepath.Join(refDir, "out", "results.db"))
	defer rst.Close()
	for id, want := range ref {
		g, ok := got[id]
		if !ok {
			t.Fatalf("run %s missing after the kills", id)
		}
		for name, v := range want.Metrics {
			if name == "wall_s" || name == "train_s" {
				continue
			}
			if g.Metrics[name] != v && !(math.IsNaN(v) && math.IsNaN(g.Metrics[name])) {
				t.Errorf("%s: %s = %v after the kills, %v uninterrupted", want.Config.Label(), name, g.Metrics[name], v)
			}
		}
		gc, _ := st.Curves(context.Background(), []string{id})
		wc, _ := rst.Curves(context.Background(), []string{id})
		if !reflect.DeepEqual(gc, wc) {
			t.Errorf("%s: curves differ after the kills", want.Config.Label())
		}
		gs, _ := st.Summaries(context.Background(), []string{id})
		ws, _ := rst.Summaries(context.Background(), []string{id})
		if !reflect.DeepEqual(gs, ws) {
			t.Errorf("%s: analysis summaries differ after the kills", want.Config.Label())
		}
		if g.Config.Method == "window" && g.Attempts < 2 {
			t.Errorf("the killed run (window) was stored after %d attempt(s)", g.Attempts)
		}
	}
	if ckpts, _ := filepath.Glob(filepath.Join(cache, "runs", "*")); len(ckpts) != 0 {
		t.Errorf("training checkpoints left: %v", ckpts)
	}
}

func countDone(runs map[string]store.Row) int {
	n := 0
	for _, r := range runs {
		if r.Status == experiment.StatusDone {
			n++
		}
	}
	return n
}

// TestFinetunePluginMethod: `prism finetune --method NAME` runs a method
// plugin with --param hyperparameters, and a crashing plugin is an error
// naming it.
func TestFinetunePluginMethod(t *testing.T) {
	if testing.Short() {
		t.Skip("builds plugins")
	}
	catalogtest.Open(t, "digits")
	plugins := t.TempDir()
	plugintest.Build(t, "../../plugins/ref/prism-method-energy", plugins, "prism-method-energy")
	plugintest.Build(t, "../../plugins/host/testdata/faulty", plugins, "prism-method-crash")
	if _, err := host.PinFiles(filepath.Join(plugins, "prism-method-energy"), filepath.Join(plugins, "prism-method-crash")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(host.EnvPluginPath, plugins)
	cache := t.TempDir()
	args := func(method string, extra ...string) []string {
		a := append([]string{"finetune", "--task", "digits", "--pretrain-task", "digits", "--pretrain-epochs", "2",
			"--pretrain-batch", "32", "--pretrain-lr", "0.01", "--method", method, "--rank", "4", "--alpha", "8",
			"--epochs", "1", "--batch", "32", "--lr", "0.01"}, tinyModel(cache)...)
		return append(a, extra...)
	}
	stdout, _, err := runPrism(t, args("energy", "--param", "threshold=0.5")...)
	if err != nil {
		t.Fatal(err)
	}
	// fc1 is 24×64: the energy window is some s of k = 24; the parameters are LoRA's.
	for _, want := range []string{"energy r=4 α=8 measure=energy threshold=0.5 (scale 2)", "602 of 2412", "of k=24", "task A accuracy"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	_, _, err = runPrism(t, args("crash")...)
	var he *host.Error
	if !errors.As(err, &he) || he.Fault != host.FaultCrash || !strings.Contains(err.Error(), `method plugin "crash"`) {
		t.Errorf("crashing plugin: %v", err)
	}
	if _, _, err := runPrism(t, args("energy", "--param", "thresh=1")...); err == nil || !strings.Contains(err.Error(), `unknown hyperparameter "thresh"`) {
		t.Errorf("bad --param: %v", err)
	}
	if _, _, err := runPrism(t, args("nosuch")...); err == nil || !strings.Contains(err.Error(), "installed: crash, energy") {
		t.Errorf("unknown method: %v", err)
	}
	if _, _, err := runPrism(t, args("mid", "--param", "x=1")...); err == nil || !strings.Contains(err.Error(), "--param sets a plugin method's hyperparameters") {
		t.Errorf("--param with a built-in: %v", err)
	}
}
