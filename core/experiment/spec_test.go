package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const fullSpec = `# a complete spec
name: fig1-quick
kind: finetune
description: window sweep on the quick setting
model:
  name: vit
  params: {patch: 7, width: 64, depth: 4}
pretrain:
  task: mnist
  epochs: 3
  learning_rate: 1e-3
  batch_size: 128
  seed: 0
finetune:
  task: fashion-mnist
  batch_size: 128
  params: {warmup_epochs: 0.5}
adapter:
  targets: ['blocks\.\d+\.attn\.qkv', 'blocks.0.mlp.fc1']
  svd: randomized
grid:
  methods: [lora, pissa, milora, window, full, head]
  window_starts: [0, 8, 16]
  window_fractions: [0.5]
  ranks: [4, 8]
  learning_rates: [1e-3, 3e-3]
  seeds: [0, 1, 2]
  epochs: [2]
  overrides:
    full: {learning_rates: [1e-4]}
output: /tmp/out
executor:
  kind: slurm
  workers: 2
  slurm: {partition: cpu, time: "01:00:00", cpus_per_task: 2, mem: 4G, poll: 2s}
`

func TestParseFullSpecAndExpand(t *testing.T) {
	s, err := ParseSpec("fig1.yaml", []byte(fullSpec))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "fig1-quick" || s.Model.Params["width"] != 64.0 || s.Pretrain.LearningRate != 1e-3 {
		t.Errorf("parsed spec wrong: %+v", s)
	}
	if s.Executor.Slurm.Poll.String() != "2s" {
		t.Errorf("poll = %v", s.Executor.Slurm.Poll)
	}
	runs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	// Counting by the documented rules: seeds 3 × epochs 1 everywhere.
	//   lora, pissa, milora: ranks 2 × alphas (default 1) × lr 2           = 4 each
	//   window: windows (3 starts + 1 fraction) × ranks 2 × lr 2           = 16
	//   full: lr overridden to 1 value, no rank/alpha, no windows          = 1
	//   head: lr 2, no rank/alpha, no windows                              = 2
	want := map[string]int{"lora": 4 * 3, "pissa": 4 * 3, "milora": 4 * 3, "window": 16 * 3, "full": 1 * 3, "head": 2 * 3}
	got := map[string]int{}
	ids := map[string]bool{}
	for _, r := range runs {
		got[r.Config.Method]++
		if ids[r.ID] {
			t.Errorf("duplicate run ID %s", r.ID)
		}
		ids[r.ID] = true
		c := r.Config
		switch c.Method {
		case "full", "head":
			if c.Rank != 0 || c.Alpha != 0 || c.Window != nil || c.Targets != nil {
				t.Errorf("%s run carries adapter settings: %+v", c.Method, c)
			}
		default:
			if c.Alpha != float64(c.Rank) {
				t.Errorf("default alpha: got α=%v for r=%d, want α = r", c.Alpha, c.Rank)
			}
			if len(c.Targets) != 2 || c.SVD != "randomized" {
				t.Errorf("adapter settings missing: %+v", c)
			}
		}
		if c.Method == "full" && c.LearningRate != 1e-4 {
			t.Errorf("full lr = %v, want the override 1e-4", c.LearningRate)
		}
		if c.Method == "pissa" && (c.Window == nil || c.Window.Preset != "pissa") {
			t.Errorf("pissa window = %+v", c.Window)
		}
		if c.Method == "lora" && c.Window != nil {
			t.Errorf("lora has a window %+v", c.Window)
		}
		if c.Pretrain == nil || c.Pretrain.Task != "mnist" || c.Finetune.Tasks[0] != "fashion-mnist" {
			t.Errorf("tasks not resolved: %+v", c)
		}
	}
	for m, n := range want {
		if got[m] != n {
			t.Errorf("%s: %d runs, want %d", m, got[m], n)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("runs per method %v, want %v", got, want)
	}
	// Seeds vary fastest.
	if runs[0].Config.Seed != 0 || runs[1].Config.Seed != 1 || runs[2].Config.Seed != 2 {
		t.Error("seed is not the innermost axis")
	}
	if d := Describe(runs); !strings.HasPrefix(d, fmt.Sprintf("%d runs (lora 12, pissa 12", len(runs))) {
		t.Errorf("Describe = %q", d)
	}
}

func TestRunIDIsContentAddressed(t *testing.T) {
	base := RunConfig{
		Schema: RunSchema, Kind: "finetune",
		Model:    ModelConfig{Name: "vit", Params: map[string]any{"width": 64.0, "depth": 4.0}},
		Finetune: FinetuneConfig{Tasks: []string{"fashion-mnist"}},
		Method:   "window", Window: &Window{Preset: "start", Start: 8},
		Rank: 8, Alpha: 16, SVD: "full", LearningRate: 1e-3, Seed: 0, Epochs: 3,
	}
	id := base.MustID()
	// The canonical encoding is a stable format: if it changes, every stored
	// result is orphaned (bump RunSchema instead).
	canon, _ := base.Canonical()
	wantCanon := `{"schema":1,"kind":"finetune","model":{"name":"vit","params":{"depth":4,"width":64}},"finetune":{"tasks":["fashion-mnist"]},"method":"window","window":{"preset":"start","start":8},"rank":8,"alpha":16,"svd":"full","learning_rate":0.001,"seed":0,"epochs":3}`
	if string(canon) != wantCanon {
		t.Errorf("canonical encoding changed:\n got %s\nwant %s", canon, wantCanon)
	}
	sum := sha256.Sum256([]byte("prism-run\n" + wantCanon))
	if id != hex.EncodeToString(sum[:]) {
		t.Errorf("ID %s is not SHA-256 of the tagged canonical encoding", id)
	}
	// Equal meaning, equal ID: integers and floats in params, map order.
	same := base
	same.Model.Params = map[string]any{"depth": 4, "width": 64.0}
	if same.MustID() != id {
		t.Error("params 4 and 4.0 give different IDs")
	}
	// Any change of a field changes the ID.
	mutations := map[string]func(c *RunConfig){
		"schema":   func(c *RunConfig) { c.Schema = 2 },
		"kind":     func(c *RunConfig) { c.Kind = "synthetic" },
		"model":    func(c *RunConfig) { c.Model.Params = map[string]any{"width": 65.0, "depth": 4.0} },
		"tasks":    func(c *RunConfig) { c.Finetune.Tasks = []string{"kmnist"} },
		"method":   func(c *RunConfig) { c.Method = "pissa" },
		"window":   func(c *RunConfig) { c.Window = &Window{Preset: "start", Start: 9} },
		"fraction": func(c *RunConfig) { c.Window = &Window{Preset: "fraction", Fraction: 0.5} },
		"rank":     func(c *RunConfig) { c.Rank = 4 },
		"alpha":    func(c *RunConfig) { c.Alpha = 8 },
		"lr":       func(c *RunConfig) { c.LearningRate = 1.0000000001e-3 },
		"seed":     func(c *RunConfig) { c.Seed = 1 },
		"epochs":   func(c *RunConfig) { c.Epochs = 4 },
		"pretrain": func(c *RunConfig) { c.Pretrain = &PretrainConfig{Task: "mnist"} },
		"rslora":   func(c *RunConfig) { c.RSLoRA = true },
		"targets":  func(c *RunConfig) { c.Targets = []string{"x"} },
	}
	for name, mut := range mutations {
		c := base
		c.Model.Params = map[string]any{"width": 64.0, "depth": 4.0}
		mut(&c)
		if c.MustID() == id {
			t.Errorf("changing %s kept the ID", name)
		}
	}
	// The spec's name, output and executor are not part of a run.
	a, err := ParseSpec("a.yaml", []byte(fullSpec))
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(fullSpec, "name: fig1-quick", "name: renamed", 1)
	other = strings.Replace(other, "output: /tmp/out", "output: /elsewhere", 1)
	other = strings.Replace(other, "kind: slurm", "kind: local", 1)
	b, err := ParseSpec("b.yaml", []byte(other))
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := a.Expand()
	rb, _ := b.Expand()
	for i := range ra {
		if ra[i].ID != rb[i].ID {
			t.Fatalf("run %d: renaming the spec changed its ID", i)
		}
	}
	// The pretrain key ignores everything after pretraining.
	c2 := base
	c2.Method, c2.Seed = "lora", 7
	if c2.PretrainKey() != base.PretrainKey() {
		t.Error("pretrain key depends on fine-tuning settings")
	}
	c3 := base
	c3.Model.Params = map[string]any{"width": 128.0}
	if c3.PretrainKey() == base.PretrainKey() {
		t.Error("pretrain key ignores the model")
	}
}

// specErr parses text and returns the error text, failing if it parses.
func specErr(t *testing.T, text string) string {
	t.Helper()
	_, err := ParseSpec("bad.yaml", []byte(text))
	if err == nil {
		t.Fatalf("spec parsed without error:\n%s", text)
	}
	var se SpecErrors
	if !errors.As(err, &se) {
		t.Fatalf("error is %T, want SpecErrors: %v", err, err)
	}
	return err.Error()
}

const minimal = `name: m
model: {name: vit}
finetune: {task: b}
grid:
  methods: [lora]
  ranks: [8]
  learning_rates: [1e-3]
  epochs: [1]
`

func TestSpecErrorsNameFileLineFieldAndExpectation(t *testing.T) {
	if _, err := ParseSpec("ok.yaml", []byte(minimal)); err != nil {
		t.Fatalf("minimal spec: %v", err)
	}
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown top-level key", minimal + "outptu: x\n",
			[]string{`bad.yaml:9:1: outptu: unknown field "outptu"; did you mean "output"?`}},
		{"unknown nested key", strings.Replace(minimal, "  ranks: [8]", "  ranks: [8]\n  lerning_rates: [1]", 1),
			[]string{`bad.yaml:7:3: grid.lerning_rates: unknown field`, `did you mean "learning_rates"?`}},
		{"wrong scalar type", strings.Replace(minimal, "ranks: [8]", "ranks: [8, eight]", 1),
			[]string{`bad.yaml:6:14: grid.ranks[1]: expected an integer, got the string "eight"`}},
		{"number for string", strings.Replace(minimal, "name: m", "name: 2024", 1),
			[]string{`bad.yaml:1:7: name: expected a string, got the integer 2024 (quote it: "2024")`}},
		{"mapping expected", strings.Replace(minimal, "model: {name: vit}", "model: vit", 1),
			[]string{`bad.yaml:2:8: model: expected a mapping`}},
		{"missing required", strings.Replace(minimal, "  learning_rates: [1e-3]\n", "", 1),
			[]string{`grid.learning_rates: required: at least one learning rate`}},
		{"bad method with suggestion", strings.Replace(minimal, "[lora]", "[lora, pisa]", 1),
			[]string{`bad.yaml:5:19: grid.methods[1]: unknown method "pisa"; did you mean "pissa"?`}},
		{"windowed method without windows", strings.Replace(minimal, "[lora]", "[lora, window]", 1),
			[]string{`grid.window_starts: a windowed method (window) needs window_starts`}},
		{"windows without windowed method", minimal + "  window_starts: [0]\n",
			[]string{`bad.yaml:9:18: grid.window_starts: window starts are given but no method in grid.methods is windowed`}},
		{"fraction out of range", strings.Replace(minimal, "[lora]", "[window]", 1) + "  window_fractions: [0.5, 1.5]\n",
			[]string{`bad.yaml:9:27: grid.window_fractions[1]: expected a fraction of the spectrum in [0, 1], got 1.5`}},
		{"negative lr and zero rank", strings.Replace(strings.Replace(minimal, "[1e-3]", "[-1e-3]", 1), "ranks: [8]", "ranks: [0]", 1),
			[]string{`grid.ranks[0]: expected a rank ≥ 1, got 0`, `grid.learning_rates[0]: expected a learning rate > 0, got -0.001`}},
		{"duplicate value", strings.Replace(minimal, "epochs: [1]", "epochs: [1, 2, 1]", 1),
			[]string{`grid.epochs[2]: value 1 repeats grid.epochs[0]`}},
		{"bad regexp", minimal + "adapter: {targets: ['blocks.(']}\n",
			[]string{`bad.yaml:9:21: adapter.targets[0]: "blocks.(" is not a valid regular expression`}},
		{"override of unlisted method", minimal + "  overrides: {full: {learning_rates: [1]}}\n",
			[]string{`grid.overrides.full: override for "full", which is not in grid.methods`}},
		{"task and tasks", strings.Replace(minimal, "finetune: {task: b}", "finetune: {task: b, tasks: [c]}", 1),
			[]string{`finetune.tasks: give either finetune.task`}},
		{"executor kind", minimal + "executor: {kind: k8s}\n",
			[]string{`bad.yaml:9:18: executor.kind: "k8s": expected local or slurm`}},
		{"slurm time", minimal + "executor: {slurm: {time: 1h}}\n",
			[]string{`executor.slurm.time: "1h": expected a Slurm time limit`}},
		{"duration", minimal + "executor: {slurm: {poll: 5}}\n",
			[]string{`executor.slurm.poll: expected a duration such as "5s"`}},
		{"duplicate key", minimal + "name: again\n",
			[]string{`bad.yaml:9:1: name: field given twice`}},
		{"yaml syntax", "name: [unclosed\n", []string{`bad.yaml: not valid YAML`}},
		{"empty", "", []string{`empty spec`}},
		{"two documents", minimal + "---\nname: x\n", []string{`a spec file holds one YAML document`}},
		{"top-level list", "- a\n- b\n", []string{`bad.yaml:1:1: expected a mapping (key: value lines) at the top of the spec, got a list`}},
		{"alias", "name: &n m\nkind: *n\n", []string{`kind: YAML aliases`}},
		{"missing name and model", "finetune: {task: b}\ngrid: {methods: [head], learning_rates: [1], epochs: [1]}\n",
			[]string{`name: required`, `model.name: required`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := specErr(t, c.text)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
		})
	}
}

func TestSpecErrorsAreAllReportedInFileOrder(t *testing.T) {
	text := `name: bad name
model: {name: vit}
finetune: {task: b}
grid:
  methods: [lora]
  ranks: [0]
  learning_rates: [1e-3]
  epochs: [0]
`
	msg := specErr(t, text)
	lines := strings.Split(msg, "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got:\n%s", msg)
	}
	for i, prefix := range []string{"bad.yaml:1:", "bad.yaml:6:", "bad.yaml:8:"} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
}

func TestValidateRunsPointsAtTheField(t *testing.T) {
	s, err := ParseSpec("k.yaml", []byte(minimal+"  method_params: {lora: {dropout: 2}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	k := Kind{Name: "k", Run: nil, Validate: func(c RunConfig) error {
		if d, _ := c.MethodParams["dropout"].(float64); d > 1 {
			return &FieldError{Field: "grid.method_params.lora.dropout", Msg: "expected a dropout in [0, 1]"}
		}
		return nil
	}}
	err = s.ValidateRuns(runs, k)
	if err == nil || !strings.Contains(err.Error(), "k.yaml:9:35: grid.method_params.lora.dropout: expected a dropout in [0, 1]") {
		t.Errorf("got %v", err)
	}
}

func TestTargetMatcher(t *testing.T) {
	match, err := TargetMatcher([]string{`blocks\.\d+\.attn\.qkv`, "head"})
	if err != nil {
		t.Fatal(err)
	}
	for layer, want := range map[string]bool{
		"blocks.0.attn.qkv": true, "blocks.11.attn.qkv": true, "blocks.0.attn.qkvx": false,
		"head": true, "heads": false, "blocks.0.mlp.fc1": false,
	} {
		if match(layer) != want {
			t.Errorf("match(%q) = %v, want %v", layer, !want, want)
		}
	}
	if _, err := TargetMatcher([]string{"("}); err == nil {
		t.Error("bad regexp accepted")
	}
}

func TestRegisterMethod(t *testing.T) {
	if err := RegisterMethod("randwindow", MethodTraits{Adapter: true}); err != nil {
		t.Fatal(err)
	}
	if err := RegisterMethod("randwindow", MethodTraits{}); err == nil {
		t.Error("registering twice succeeded")
	}
	if err := RegisterMethod("pissa", MethodTraits{}); err == nil {
		t.Error("re-registering a built-in succeeded")
	}
	text := strings.Replace(minimal, "[lora]", "[lora, randwindow]", 1)
	s, err := ParseSpec("p.yaml", []byte(text))
	if err != nil {
		t.Fatalf("plugin method rejected: %v", err)
	}
	runs, _ := s.Expand()
	if len(runs) != 2 || runs[1].Config.Method != "randwindow" || runs[1].Config.Rank != 8 {
		t.Errorf("plugin method runs: %+v", runs)
	}
}
