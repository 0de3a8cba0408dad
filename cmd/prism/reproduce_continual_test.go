package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// tinyContinualSpec is a two-stage sequence on sklearn's digits with a small
// MLP: digits → digits rotated by 90° → digits transposed.
const tinyContinualSpec = `name: continual-tiny
kind: continual
model: {name: mlp, params: {hidden: [32, 24]}}
pretrain: {task: digits, epochs: 4, learning_rate: 3e-3, batch_size: 32, seed: 1}
finetune: {tasks: [digits/rot90, digits/transpose], batch_size: 32}
grid:
  methods: [pissa, mid, window, full, head]
  window_fractions: [0.25]
  ranks: [4]
  alphas: [8]
  learning_rates: [1e-2]
  epochs: [1]
output: OUT
`

func TestReproduceContinualEndToEnd(t *testing.T) {
	catalogtest.Open(t, "digits")
	t.Setenv("PRISM_CACHE_DIR", t.TempDir())
	out := filepath.Join(t.TempDir(), "continual")
	var log bytes.Buffer
	o := reproduceContinualOptions{Out: out, Seeds: 1, SpecText: strings.Replace(tinyContinualSpec, "OUT", out, 1), Stdout: &log}
	if err := runReproduceContinual(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, f := range []string{"spec.yaml", "results.db", "continual.md", "continual.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	for _, fig := range []string{"accuracy_matrices", "transfer", "acc_vs_bwt", "stages"} {
		for _, ext := range []string{".svg", ".pdf", ".png"} {
			if info, err := os.Stat(filepath.Join(out, "figures", fig+ext)); err != nil || info.Size() < 1000 {
				t.Errorf("figure %s%s: %v", fig, ext, err)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "continual.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0 digits → 1 digits/rot90 → 2 digits/transpose", "| PiSSA |", "| window f=0.25 |", "| mid |",
		"| full FT |", "| head only |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("continual.md lacks %q:\n%s", want, md)
		}
	}
	// Head only: frozen backbone and heads, so BWT and forgetting are exactly 0.
	if !regexp.MustCompile(`\| head only \| [0-9.]+ \| 0\.00 \| 0\.00 \|`).Match(md) {
		t.Errorf("head only row lacks BWT 0.00 and forgetting 0.00:\n%s", md)
	}
	if !strings.Contains(log.String(), string(md)) {
		t.Error("the table was not printed")
	}

	// The store holds every run, done, with its accuracy matrix.
	st, err := store.Open(filepath.Join(out, "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Query(context.Background(), store.Filter{Spec: "continual-tiny"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d runs stored, want 5", len(rows))
	}
	for _, r := range rows {
		if r.Status != experiment.StatusDone {
			t.Errorf("run %s: %s %s", r.Config.Series(), r.Status, r.Error)
		}
		if _, ok := r.Metrics["acc_s2_t1"]; !ok {
			t.Errorf("run %s has no R[2][1]", r.Config.Series())
		}
	}

	// Every run directory is what `prism analyze` reads, with the matrix.
	dirs, err := filepath.Glob(filepath.Join(out, "runs", "*"))
	if err != nil || len(dirs) != 5 {
		t.Fatalf("run directories %v (%v)", dirs, err)
	}
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Continual struct {
				Tasks    []string     `json:"tasks"`
				Accuracy [][]*float64 `json:"accuracy"`
			} `json:"continual"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Continual.Tasks) != 3 || m.Continual.Accuracy[0][1] != nil || m.Continual.Accuracy[2][1] == nil {
			t.Errorf("%s: continual section %+v", d, m.Continual)
		}
	}
	run, err := rundir.Analyze(context.Background(), dirs[0], rundir.Options{})
	if err != nil || run.Continual == nil {
		t.Fatalf("analysing %s: %v (continual %v)", dirs[0], err, run.Continual)
	}

	// Again: nothing runs, the outputs are rewritten.
	log.Reset()
	if err := runReproduceContinual(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "0 done now, 0 failed, 5 already finished") {
		t.Errorf("second run did not resume:\n%s", log.String())
	}
}

// TestContinualSpecFiles checks that experiments/continual*.yaml are the
// specs `prism reproduce continual` runs, and that prism sweep knows them.
func TestContinualSpecFiles(t *testing.T) {
	for _, c := range []struct {
		file  string
		quick bool
		out   string
	}{{"continual.yaml", false, "results/continual"}, {"continual-quick.yaml", true, "results/continual-quick"}} {
		path := filepath.Join("..", "..", "experiments", c.file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := continualSpec(c.quick, c.out, 1); string(data) != want {
			t.Errorf("%s differs from the built-in spec; it should read:\n%s", path, want)
		}
		stdout, _, err := runPrism(t, "sweep", path, "--dry-run", "--db", filepath.Join(t.TempDir(), "r.db"))
		if err != nil {
			t.Fatalf("prism sweep %s --dry-run: %v", path, err)
		}
		if !strings.Contains(stdout, "10 runs (lora 1, pissa 1, window 2, mid 1, milora 1, olora 1, dora 1, full 1, head 1)") {
			t.Errorf("dry run of %s:\n%s", path, stdout)
		}
	}
	spec, err := experiment.ParseSpec("x.yaml", []byte(continualSpec(true, "o", 3)))
	if err != nil {
		t.Fatal(err)
	}
	if runs, err := spec.Expand(); err != nil || len(runs) != 30 {
		t.Errorf("three seeds: %d runs (%v), want 30", len(runs), err)
	}
}
