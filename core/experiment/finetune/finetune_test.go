package finetune

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/plugintest"
)

// tinySpec is a seconds-long real configuration: a one-block ViT of width
// 16 pretrained on 1,024 MNIST images, fine-tuned on 512 Fashion-MNIST
// images. PLUGINS is replaced by extra methods.
const tinySpec = `name: tiny
kind: finetune
model: {name: vit, params: {width: 16, depth: 1, heads: 2, mlp: 32}}
pretrain: {task: mnist, epochs: 2, learning_rate: 4e-3, batch_size: 64, seed: 1, params: {train_subset: 1024, test_subset: 256}}
finetune:
  task: fashion-mnist
  batch_size: 64
  params: {train_subset: 512, test_subset: 256, old_test_subset: 256, trace: 4, analysis: true}
grid:
  methods: [lora, pissa, milora, window, full, head PLUGINS]
  window_fractions: [0, 1]
  ranks: [4]
  alphas: [8]
  learning_rates: [3e-3]
  epochs: [2]
  method_params: {energy: {threshold: 0.5}}
`

func loadSpec(t *testing.T, text string) (*experiment.Spec, []experiment.Run) {
	t.Helper()
	spec, err := experiment.ParseSpec("tiny.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return spec, runs
}

func needData(t *testing.T) {
	t.Helper()
	catalogtest.Open(t, "mnist")
	catalogtest.Open(t, "fashion-mnist")
}

// withSettings points the kind at a cache and plugin directories for one test.
func withSettings(t *testing.T, o Options) {
	t.Helper()
	old := Settings
	Settings = o
	t.Cleanup(func() { Settings = old })
}

// TestSweepEndToEnd runs a real sweep of the kind through the local runner
// into SQLite — built-in methods, a method plugin (energy) and a faulty
// plugin that crashes in Init — and checks the stored results: the faulty
// plugin's run is failed with the plugin's reason and every other run is
// done; the window at f = 0 (f = 1) is exactly PiSSA (MiLoRA); head-only
// training forgets nothing and changes no weight; trainable parameters are
// r·(m+n) per adapted layer plus the new head; the curves, trace and
// analysis summaries are there; a second sweep runs nothing.
func TestSweepEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a ViT and builds plugins")
	}
	needData(t)
	plugins := t.TempDir()
	plugintest.Build(t, "../../../plugins/ref/prism-method-energy", plugins, "prism-method-energy")
	plugintest.Build(t, "../../../plugins/host/testdata/faulty", plugins, "prism-method-crash")
	if _, err := host.PinFiles(filepath.Join(plugins, "prism-method-energy"), filepath.Join(plugins, "prism-method-crash")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"energy", "crash"} {
		if _, ok := experiment.LookupMethod(m); !ok {
			if err := experiment.RegisterMethod(m, experiment.MethodTraits{Adapter: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	withSettings(t, Options{CacheDir: t.TempDir(), PluginDirs: []string{plugins}})
	spec, runs := loadSpec(t, strings.Replace(tinySpec, " PLUGINS", ", energy, crash", 1))
	if err := spec.ValidateRuns(runs, Kind); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	sum, err := runner.Sweep(ctx, st, spec, runs, Kind, runner.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != len(runs)-1 || sum.Failed != 1 {
		t.Fatalf("sweep: %v; failures %+v", sum, sum.Failures)
	}
	if f := sum.Failures[0]; !strings.HasPrefix(f.Error, `crash: method plugin "crash" Init layer "patch_embed.proj"`) {
		t.Errorf("the faulty plugin's run failed with %q", f.Error)
	}
	rows, err := st.Query(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.CountRows(ctx, "runs"); n != len(runs) || len(rows) != len(runs) {
		t.Fatalf("%d runs stored (%d rows), want %d", n, len(rows), len(runs))
	}
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(rows))
	by := map[string]store.Row{}
	for i, r := range rows {
		ids[i] = r.ID
		by[r.Config.Series()] = r
	}
	curves, err := st.Curves(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := st.Summaries(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	summary := func(id, scope, key string) (float64, bool) {
		for _, s := range sums[id] {
			if s.Scope == scope && s.Key == key {
				return s.Value, true
			}
		}
		return 0, false
	}

	// Windows at the ends of the spectrum are PiSSA and MiLoRA, exactly.
	for _, pair := range [][2]string{{"window f=0", "pissa"}, {"window f=1", "milora"}} {
		a, b := by[pair[0]], by[pair[1]]
		for _, m := range []string{"b_acc", "a_acc_after", "forgetting", "a_kl", "trainable_params"} {
			if a.Metrics[m] != b.Metrics[m] {
				t.Errorf("%s %s = %v, %s %v: the same adapters must train identically", pair[0], m, a.Metrics[m], pair[1], b.Metrics[m])
			}
		}
		if s, _ := summary(a.ID, "blocks.0.attn.qkv", "window_start"); pair[1] == "milora" && s != 12 {
			t.Errorf("window f=1 on blocks.0.attn.qkv (48×16): start %v, want k−r = 12", s)
		}
	}
	// Head only: the backbone and task A's head are untouched.
	head := by["head"]
	if head.Metrics["forgetting"] != 0 || head.Metrics["a_kl"] != 0 || head.Metrics["a_acc_after"] != head.Metrics["a_acc_before"] {
		t.Errorf("head only: forgetting %v, KL %v", head.Metrics["forgetting"], head.Metrics["a_kl"])
	}
	if d, ok := summary(head.ID, ModelScope, "diag_norm"); !ok || d != 0 {
		t.Errorf("head only: weight change %v (ok %v), want exactly 0", d, ok)
	}
	// Trainable parameters: the ViT (width 16, patch 7, MLP 32, one block)
	// has patch_embed 16×49, qkv 48×16, proj 16×16, fc1 32×16, fc2 16×32;
	// the new head 10×16 + 10.
	wantLoRA := 4*((16+49)+(48+16)+(16+16)+(32+16)+(16+32)) + 170
	for _, s := range []string{"lora", "pissa", "milora", "energy"} {
		if got := by[s].Metrics["trainable_params"]; got != float64(wantLoRA) {
			t.Errorf("%s: %v trainable parameters, want %d", s, got, wantLoRA)
		}
	}
	for _, r := range rows {
		if r.Status != experiment.StatusDone {
			continue
		}
		if r.Metrics["pretrain_acc"] < 25 {
			t.Errorf("%s: the pretrained model reaches %.1f%% on MNIST; expected well above chance (10%%)", r.Config.Label(), r.Metrics["pretrain_acc"])
		}
		c := curves[r.ID]
		if len(c["b_acc"]) != 2 || len(c["forgetting"]) != 2 || len(c["step_loss"]) != 2*4 {
			t.Errorf("%s: curves b_acc %d, forgetting %d, step_loss %d points", r.Config.Label(), len(c["b_acc"]), len(c["forgetting"]), len(c["step_loss"]))
		}
		if got := c["forgetting"][1].Value; math.Abs(got-r.Metrics["forgetting"]) > 1e-9 {
			t.Errorf("%s: last forgetting point %v, metric %v", r.Config.Label(), got, r.Metrics["forgetting"])
		}
		if _, ok := summary(r.ID, ModelScope, "off_norm"); !ok {
			t.Errorf("%s: no analysis summaries", r.Config.Label())
		}
		if r.Config.Rank > 0 && r.Config.Method != "lora" {
			e, ok := summary(r.ID, "blocks.0.mlp.fc1", "window_energy")
			if !ok || !(e > 0 && e < 1) {
				t.Errorf("%s: window energy %v (%v)", r.Config.Label(), e, ok)
			}
		}
	}
	// PiSSA's window holds more of the spectrum's energy than MiLoRA's.
	ep, _ := summary(by["pissa"].ID, ModelScope, "window_energy")
	em, _ := summary(by["milora"].ID, ModelScope, "window_energy")
	if !(ep > em) {
		t.Errorf("window energy: PiSSA %v, MiLoRA %v", ep, em)
	}

	// Again: everything is stored, nothing runs.
	sum, err = runner.Sweep(ctx, st, spec, runs, Kind, runner.Options{Workers: 1, SkipFailed: true})
	if err != nil || sum.Skipped != len(runs) || sum.Done+sum.Failed != 0 {
		t.Errorf("second sweep: %v, %v", sum, err)
	}
}

// TestValidate: problems are FieldErrors that the spec reports at the line
// of the field.
func TestValidate(t *testing.T) {
	base := strings.Replace(tinySpec, " PLUGINS", "", 1)
	for _, tc := range []struct{ from, to, want string }{
		{"width: 16,", "widht: 16,", `tiny.yaml:3:36: model.params.widht: unknown parameter of the finetune kind (expected one of: patch, width, depth, heads, mlp)`},
		{"name: vit,", "name: resnet,", `model.name: the finetune kind trains vit or mlp, not "resnet"`},
		{"ranks: [4]", "ranks: [17]", "grid.ranks: rank 17 exceeds k = min(m, n) = 16 of layer"},
		{"window_fractions: [0, 1]", "window_starts: [13]", "grid.window_starts: window start 13 with rank 4 runs past k = 16 components"},
		{"trace: 4,", "trace: 1.5,", "finetune.params.trace: expected an integer ≥ 0, got 1.5"},
		{"analysis: true}", "analysis: yes please}", "finetune.params.analysis: expected true or false"},
		{"methods: [", "method_params: {lora: {x: 1}}\n  methods: [", "grid.method_params.lora: the built-in method lora takes no parameters here"},
		{"task: fashion-mnist", "tasks: [fashion-mnist, mnist]", "finetune.tasks: the finetune kind fine-tunes on one task"},
	} {
		text := strings.Replace(base, tc.from, tc.to, 1)
		text = strings.Replace(text, "  method_params: {energy: {threshold: 0.5}}\n", "", 1)
		spec, err := experiment.ParseSpec("tiny.yaml", []byte(text))
		if err != nil {
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: parse error %v, want %q", tc.to, err, tc.want)
			}
			continue
		}
		runs, err := spec.Expand()
		if err != nil {
			t.Fatal(err)
		}
		err = spec.ValidateRuns(runs, Kind)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.to, err, tc.want)
		}
	}
	// A target that matches no layer.
	cfg := experiment.RunConfig{Kind: Name, Model: experiment.ModelConfig{Name: "mlp"}, Pretrain: &experiment.PretrainConfig{Task: "mnist"},
		Finetune: experiment.FinetuneConfig{Tasks: []string{"fashion-mnist"}}, Method: "lora", Rank: 4, Targets: []string{"blocks.*"},
		LearningRate: 1e-3, Epochs: 1}
	var fe *experiment.FieldError
	if err := Validate(cfg); !errors.As(err, &fe) || fe.Field != "adapter.targets" {
		t.Errorf("target matching nothing: %v", err)
	}
	cfg.Targets = nil
	cfg.Pretrain = &experiment.PretrainConfig{Checkpoint: "/x.safetensors"}
	if err := Validate(cfg); !errors.As(err, &fe) || fe.Field != "pretrain.checkpoint" {
		t.Errorf("checkpoint: %v", err)
	}
}

// TestResultMapping: core/train's result becomes the experiment's metrics
// (standard names), per-epoch curves with the forgetting curve, and the
// trace.
func TestResultMapping(t *testing.T) {
	r := train.Result{TaskBAccuracy: 80, TaskAAccuracyBefore: 97, TaskAAccuracyAfter: 90, Forgetting: 7, MeanKL: 0.2,
		TrainableParams: 100, TotalParams: 1000,
		Curves: []train.EpochStats{{Epoch: 1, TrainLoss: 1, Eval: map[string]float64{"b_acc": 70, "a_acc": 92}}, {Epoch: 2, TrainLoss: 0.5, Eval: map[string]float64{"b_acc": 80, "a_acc": 90}}},
		Trace:  []train.TracePoint{{Step: 5, Epoch: 0.5, Loss: 1.2, Accuracy: 60}, {Step: 10, Epoch: 1, Loss: 0.8, Accuracy: 70}}}
	out := result(r, &train.Pretrained{TestAccuracy: 97.5})
	want := map[string]float64{experiment.MetricTaskBAcc: 80, experiment.MetricTaskAAccBefore: 97, experiment.MetricTaskAAccAfter: 90,
		experiment.MetricForgetting: 7, experiment.MetricKL: 0.2, experiment.MetricTrainableParams: 100, "total_params": 1000, "pretrain_acc": 97.5}
	for k, v := range want {
		if out.Metrics[k] != v {
			t.Errorf("metric %s = %v, want %v", k, out.Metrics[k], v)
		}
	}
	if f := out.Curves["forgetting"]; len(f) != 2 || f[0].Value != 5 || f[1].Value != 7 {
		t.Errorf("forgetting curve %v", f)
	}
	if s := out.Curves["step_loss"]; len(s) != 2 || s[0] != (experiment.CurvePoint{Epoch: 0.5, Value: 1.2}) {
		t.Errorf("step_loss %v", s)
	}
	if err := out.Check(); err != nil {
		t.Error(err)
	}
}
