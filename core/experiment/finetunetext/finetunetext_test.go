package finetunetext

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// tinySpec is a sweep of a tiny model over a few methods, on tiny slices of
// the real corpora.
const tinySpec = `
name: text-tiny
kind: finetune-text
model:
  name: lm
  params: {width: 16, depth: 1, heads: 2, context: 32}
pretrain:
  task: kjv
  epochs: 1
  learning_rate: 1e-2
  batch_size: 16
  seed: 1
  params: {train_subset: 320, test_subset: 16, eval_every: 10}
finetune:
  task: austen
  batch_size: 16
  params: {train_subset: 64, test_subset: 16, old_test_subset: 16, eval_every: 2, sample_length: 20, prompt: "Emma "}
grid:
  methods: [lora, milora, window, full]
  window_starts: [4]
  ranks: [4]
  learning_rates: [1e-2]
  seeds: [1]
  epochs: [1]
`

func parse(t *testing.T, src string) (*experiment.Spec, []experiment.Run) {
	t.Helper()
	spec, err := experiment.ParseSpec("tiny.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return spec, runs
}

func TestConfigFromSpec(t *testing.T) {
	_, runs := parse(t, tinySpec)
	if len(runs) != 4 {
		t.Fatalf("%d runs, want 4", len(runs))
	}
	c, err := Config(runs[2].Config) // window s=4
	if err != nil {
		t.Fatal(err)
	}
	m := c.Pretrain.Model
	if m.Width != 16 || m.Depth != 1 || m.Heads != 2 || m.MLPDim != 64 || m.Context != 32 || m.Vocab != 256 || m.Positions != models.PositionsLearned {
		t.Errorf("model %+v (mlp_dim defaults to 4·width)", m)
	}
	p := c.Pretrain
	if p.Task != "kjv" || p.Hyper.Epochs != 1 || p.Hyper.LearningRate != 1e-2 || p.Hyper.BatchSize != 16 || p.Hyper.Seed != 1 ||
		p.TrainSubset != 320 || p.TestSubset != 16 || p.EvalEvery != 10 || p.Hyper.WeightDecay != 0.01 {
		t.Errorf("pretrain %+v", p)
	}
	if c.Task != "austen" || c.Method != "window" || c.Window.Preset != "start" || c.Window.Start != 4 || c.Rank != 4 || c.Alpha != 4 ||
		c.Hyper.LearningRate != 1e-2 || c.Hyper.Seed != 1 || c.Hyper.Epochs != 1 || c.TrainSubset != 64 || c.EvalEvery != 2 ||
		c.Sample.Prompt != "Emma " || c.Sample.Length != 20 || c.Sample.Temperature != 0.8 {
		t.Errorf("finetune %+v", c)
	}
	if err := Validate(runs[2].Config); err != nil {
		t.Error(err)
	}
}

// TestValidateErrors: each bad spec is refused before anything runs, with
// the error at the field that is wrong.
func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct{ edit, field, msg string }{
		{"window_starts: [4]|window_starts: [14]", "grid.window_starts", "exceeds k=16"},
		{"ranks: [4]|ranks: [17]", "grid.ranks", "exceeds"},
		{"name: lm|name: vit", "model.name", "language model"},
		{"heads: 2|heads: 3", "model.params", "heads"},
		{"context: 32}|context: 32, depht: 2}", "model.params.depht", "unknown parameter"},
		{"eval_every: 2,|eval_every: -2,", "finetune.params.eval_every", "integer"},
		{"prompt: \"Emma \"|prompt: 5", "finetune.params.prompt", "string"},
		{"eval_every: 10}|eval_every: 10, warmup: 2}", "pretrain.params.warmup", "[0, 1]"},
	} {
		old, repl, _ := strings.Cut(tc.edit, "|")
		if !strings.Contains(tinySpec, old) {
			t.Fatalf("edit %q: not in the spec", old)
		}
		spec, runs := parse(t, strings.Replace(tinySpec, old, repl, 1))
		err := spec.ValidateRuns(runs, Kind)
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %s … %s", tc.edit, err, tc.field, tc.msg)
		}
	}
}

// TestSweep runs the tiny spec through the experiment runner and checks
// what the store holds: the metrics, curves and samples of every run, and
// that one model was pretrained for all of them.
func TestSweep(t *testing.T) {
	catalogtest.Open(t, "kjv")
	catalogtest.Open(t, "austen")
	spec, runs := parse(t, tinySpec)
	cache := t.TempDir()
	runDirs := t.TempDir()
	kind := KindWith(KindOptions{Train: train.Options{CacheDir: cache, Open: func(_ context.Context, name string) (datasets.InMemory, error) {
		return catalogtest.Open(t, name), nil
	}}, RunDirs: runDirs})
	st, err := store.Open(filepath.Join(t.TempDir(), "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out bytes.Buffer
	sum, err := runner.Sweep(context.Background(), st, spec, runs, kind, runner.Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 4 || sum.Failed != 0 {
		t.Fatalf("sweep: %s\n%s", sum, out.String())
	}
	if !strings.Contains(out.String(), "b_bpc=") {
		t.Errorf("runner output does not show b_bpc:\n%s", out.String())
	}
	rows, err := st.Query(context.Background(), store.Filter{Spec: spec.Name})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		m := r.Metrics
		for _, k := range []string{experiment.MetricTaskBBPC, experiment.MetricTaskBBPCBefore, experiment.MetricTaskABPCBefore,
			experiment.MetricTaskABPCAfter, experiment.MetricBPCForgetting, experiment.MetricKL, experiment.MetricTrainableParams} {
			if _, ok := m[k]; !ok {
				t.Errorf("run %s: no metric %s", r.Config.Label(), k)
			}
		}
		if d := m[experiment.MetricBPCForgetting] - (m[experiment.MetricTaskABPCAfter] - m[experiment.MetricTaskABPCBefore]); d != 0 {
			t.Errorf("run %s: forgetting off by %g", r.Config.Label(), d)
		}
		if !(m[experiment.MetricTaskBBPC] < m[experiment.MetricTaskBBPCBefore]) {
			t.Errorf("run %s: Austen bpc %.4f → %.4f", r.Config.Label(), m[experiment.MetricTaskBBPCBefore], m[experiment.MetricTaskBBPC])
		}
	}
	curves, err := st.Curves(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := st.Summaries(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var pretrained string
	for _, id := range ids {
		if n := len(curves[id][experiment.MetricTaskBBPC]); n != 3 {
			t.Errorf("run %s: %d points of b_bpc, want 3 (base, steps 2 and 4)", id[:8], n)
		}
		for _, s := range sums[id] {
			keys[s.Scope+"/"+s.Key] = true
			if s.Scope == SampleScope && s.Key != SamplePrompt && !strings.HasPrefix(s.Text, "Emma ") {
				t.Errorf("sample %s %q does not start with the prompt", s.Key, s.Text)
			}
			if s.Scope == "pretrain" && s.Key == "key" {
				if pretrained != "" && s.Text != pretrained {
					t.Errorf("runs fine-tuned different pretrained models %s and %s", pretrained, s.Text)
				}
				pretrained = s.Text
			}
		}
	}
	for _, k := range []string{"sample/before", "sample/after", "sample/prompt", "pretrain/test_bpc", "blocks.0.attn.qkv/window_start"} {
		if !keys[k] {
			t.Errorf("no summary %s", k)
		}
	}
	for _, r := range runs {
		dir, err := RunDir(runDirs, r.Config)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "run.json")); err != nil {
			t.Errorf("run %s: no analysis directory: %v", r.Config.Label(), err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(cache, "pretrained"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := 0
	for _, e := range entries {
		if e.IsDir() {
			dirs++
		}
	}
	if dirs != 1 {
		t.Errorf("%d pretrained models in the cache, want 1 shared by the runs", dirs)
	}
}

// TestSpecFilesMatchRepository: the built-in specs are the ones in the
// repository's experiments/ directory, and both are valid.
func TestSpecFilesMatchRepository(t *testing.T) {
	for _, name := range []string{QuickSpecFile, FullSpecFile} {
		builtin, err := SpecSource(name)
		if err != nil {
			t.Fatal(err)
		}
		repo, err := os.ReadFile(filepath.Join("..", "..", "..", "experiments", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(builtin, repo) {
			t.Errorf("experiments/%s differs from core/experiment/finetunetext/specs/%s: keep them identical", name, name)
		}
		spec, err := experiment.ParseSpec(name, builtin)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := spec.Expand()
		if err != nil {
			t.Fatal(err)
		}
		if err := spec.ValidateRuns(runs, Kind); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		methods := map[string]bool{}
		for _, r := range runs {
			methods[r.Config.Method] = true
		}
		for _, m := range []string{"lora", "pissa", "mid", "milora", "window", "olora", "dora", "full", "head"} {
			if !methods[m] {
				t.Errorf("%s: no %s run", name, m)
			}
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	_, runs := parse(t, strings.Replace(tinySpec, "name: lm", "name: mlp", 1))
	_, err := Kind.Run(context.Background(), runs[0].Config, experiment.NopProgress{})
	var fe *experiment.FieldError
	if !errors.As(err, &fe) || fe.Field != "model.name" {
		t.Errorf("err = %v, want a model.name field error", err)
	}
}
