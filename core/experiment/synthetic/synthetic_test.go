package synthetic

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
)

func config(method string, w *experiment.Window, lr float64) experiment.RunConfig {
	c := experiment.RunConfig{
		Schema: experiment.RunSchema, Kind: Name,
		Model:        experiment.ModelConfig{Name: "linear", Params: map[string]any{"m": 16.0, "n": 12.0}},
		Pretrain:     &experiment.PretrainConfig{Task: "synthetic-a"},
		Finetune:     experiment.FinetuneConfig{Tasks: []string{"synthetic-b"}},
		Method:       method,
		Window:       w,
		LearningRate: lr, Epochs: 4, Seed: 1,
	}
	if method != experiment.MethodFull {
		c.Rank, c.Alpha = 4, 4
	}
	return c
}

func TestDeterministicAndCached(t *testing.T) {
	ctx := experiment.WithCache(context.Background(), &experiment.Cache{})
	before := PretrainBuilds()
	c := config("window", &experiment.Window{Preset: "start", Start: 3}, 1e-2)
	a, err := Run(ctx, c, experiment.NopProgress{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(ctx, c, experiment.NopProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of one configuration differ")
	}
	if got := PretrainBuilds() - before; got != 1 {
		t.Errorf("base model built %d times for two runs sharing a cache, want 1", got)
	}
	if len(a.Curves["b_loss"]) != 4 {
		t.Errorf("b_loss curve has %d points, want one per epoch (4)", len(a.Curves["b_loss"]))
	}
	// Training lowers the task-B loss.
	bl := a.Curves["b_loss"]
	if !(bl[len(bl)-1].Value < bl[0].Value) {
		t.Errorf("task-B loss did not fall: %v", bl)
	}
	if acc := a.Metrics[experiment.MetricTaskBAcc]; !(acc > 0 && acc <= 100) {
		t.Errorf("b_acc = %v, want in (0, 100]", acc)
	}
	f := a.Metrics[experiment.MetricForgetting]
	if math.Abs(a.Metrics[experiment.MetricTaskAAccBefore]-a.Metrics[experiment.MetricTaskAAccAfter]-f) > 1e-12 {
		t.Error("forgetting is not a_acc_before − a_acc_after")
	}
}

func TestWindowInitIsExact(t *testing.T) {
	// With a zero learning rate nothing changes: the window split
	// W_res + scale·B·A reproduces W₀, so nothing is forgotten.
	for _, m := range []string{"pissa", "milora", "mid"} {
		c := config(m, &experiment.Window{Preset: m}, 0)
		c.Epochs = 1
		res, err := Run(context.Background(), c, experiment.NopProgress{})
		if err != nil {
			t.Fatal(err)
		}
		if f := res.Metrics[experiment.MetricForgetting]; math.Abs(f) > 1e-10 {
			t.Errorf("%s with lr 0: forgetting %g, want 0 (exact split)", m, f)
		}
	}
}

func TestDivergenceFails(t *testing.T) {
	c := config("full", nil, 1e4)
	_, err := Run(context.Background(), c, experiment.NopProgress{})
	if err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("lr 1e4: got %v, want a divergence error", err)
	}
}

func TestValidate(t *testing.T) {
	c := config("dora", nil, 1e-3)
	var fe *experiment.FieldError
	if err := Validate(c); err == nil || !asField(err, &fe) || fe.Field != "grid.methods" {
		t.Errorf("dora: got %v, want a FieldError on grid.methods", err)
	}
	c = config("window", &experiment.Window{Preset: "start", Start: 10}, 1e-3)
	if err := Validate(c); err == nil || !asField(err, &fe) || fe.Field != "grid.window_starts" {
		t.Errorf("window past k: got %v", err)
	}
	c = config("lora", nil, 1e-3)
	c.Model.Params["depth"] = 3.0
	if err := Validate(c); err == nil || !asField(err, &fe) || fe.Field != "model.params.depth" {
		t.Errorf("unknown param: got %v", err)
	}
}

func asField(err error, fe **experiment.FieldError) bool {
	f, ok := err.(*experiment.FieldError)
	*fe = f
	return ok
}
