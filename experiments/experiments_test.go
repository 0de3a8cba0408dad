package experiments_test

import (
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/continual"
	"github.com/prism-lora/prism/core/experiment/finetune"
	"github.com/prism-lora/prism/core/experiment/finetunetext"
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
	kinds := map[string]experiment.Kind{finetune.Kind.Name: finetune.Kind, continual.Kind.Name: continual.Kind, finetunetext.Kind.Name: finetunetext.Kind}
	kind, ok := kinds[spec.Kind]
	if !ok {
		t.Fatalf("%s: kind %q is not one the shipped specs use", name, spec.Kind)
	}
	if err := spec.ValidateRuns(runs, kind); err != nil {
		t.Fatal(err)
	}
	out := map[string]experiment.Run{}
	for _, r := range runs {
		out[r.ID] = r
	}
	return out
}

// TestSpecs: every spec parses and passes its kind's checks, with the number
// of runs the docs state; the learning-rate specs share their
// runs at the Figure-1 learning rate with the Figure-1 specs (so --db reuses
// them).
func TestSpecs(t *testing.T) {
	want := map[string]int{"fig1.yaml": 36, "fig1-quick.yaml": 36, "lr.yaml": 56, "lr-quick.yaml": 56, "fig1-more-seeds.yaml": 15,
		"continual.yaml": 10, "continual-quick.yaml": 10, "text.yaml": 17, "text-quick.yaml": 12}
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
