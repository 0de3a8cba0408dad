package experiments_test

import (
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/finetune"
	"github.com/prism-lora/prism/experiments"
)

func expand(t *testing.T, name string) map[string]experiment.Run {
	t.Helper()
	text, err := experiments.Spec(name)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := experiment.ParseSpec(name, text)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.ValidateRuns(runs, finetune.Kind); err != nil {
		t.Fatal(err)
	}
	out := map[string]experiment.Run{}
	for _, r := range runs {
		out[r.ID] = r
	}
	return out
}

// TestSpecs: every spec parses and passes the finetune kind's checks, with
// the number of runs the docs state; the learning-rate specs share their
// runs at the Figure-1 learning rate with the Figure-1 specs (so --db reuses
// them).
func TestSpecs(t *testing.T) {
	want := map[string]int{"fig1.yaml": 36, "fig1-quick.yaml": 36, "lr.yaml": 56, "lr-quick.yaml": 56}
	if names := experiments.Names(); len(names) != len(want) {
		t.Errorf("specs %v", names)
	}
	all := map[string]map[string]experiment.Run{}
	for name, n := range want {
		all[name] = expand(t, name)
		if len(all[name]) != n {
			t.Errorf("%s: %d runs, want %d", name, len(all[name]), n)
		}
	}
	for _, pair := range [][2]string{{"lr.yaml", "fig1.yaml"}, {"lr-quick.yaml", "fig1-quick.yaml"}} {
		shared := 0
		for id := range all[pair[0]] {
			if _, ok := all[pair[1]][id]; ok {
				shared++
			}
		}
		// 7 series (PiSSA, 3 windows, MiLoRA, LoRA, full) × 2 seeds.
		if shared != 14 {
			t.Errorf("%s shares %d runs with %s, want 14", pair[0], shared, pair[1])
		}
	}
	if _, err := experiments.Spec("nope.yaml"); err == nil {
		t.Error("no error for a missing spec")
	}
}
