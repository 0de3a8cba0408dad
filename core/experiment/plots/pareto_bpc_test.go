package plots

import (
	"testing"

	"github.com/prism-lora/prism/core/experiment"
)

// bpcRun is a language-model run: new-task bits per character (lower is
// better) and their rise on the old corpus.
func bpcRun(method string, bpc, forget float64) Run {
	return Run{
		Config:  experiment.RunConfig{Method: method, LearningRate: 1e-3, Epochs: 1, Finetune: experiment.FinetuneConfig{Tasks: []string{"austen"}}},
		Metrics: map[string]float64{experiment.MetricTaskBBPC: bpc, experiment.MetricBPCForgetting: forget},
	}
}

// TestParetoFrontLowerIsBetter: with bits per character on the quality axis
// a point is dominated by one with lower (not higher) bits per character and
// no more forgetting.
func TestParetoFrontLowerIsBetter(t *testing.T) {
	runs := []Run{
		bpcRun("full", 2.70, 0.40),   // best quality
		bpcRun("head", 3.08, 0.15),   // least forgetting
		bpcRun("lora", 2.94, 0.24),   // on the front
		bpcRun("milora", 2.95, 0.25), // dominated by lora (worse on both)
		bpcRun("pissa", 3.10, 0.30),  // dominated by lora; with accuracies it would be the best "acc"
	}
	pts := ParetoFront(runs, experiment.MetricTaskBBPC, experiment.MetricBPCForgetting)
	want := map[string]bool{"full": true, "head": true, "lora": true, "milora": false, "pissa": false}
	for _, p := range pts {
		if p.Front != want[p.Series] {
			t.Errorf("%s on front = %v, want %v", p.Series, p.Front, want[p.Series])
		}
	}
	if !LowerIsBetter(experiment.MetricTaskBBPC) || LowerIsBetter(experiment.MetricTaskBAcc) {
		t.Error("LowerIsBetter: b_bpc must be lower-is-better, b_acc not")
	}
	if l := MetricLabel(experiment.MetricTaskBBPC); l != "new-task bits per character (lower is better)" {
		t.Errorf("b_bpc axis label %q", l)
	}
	if _, err := Pareto(runs, Options{AccMetric: experiment.MetricTaskBBPC, ForgetMetric: experiment.MetricBPCForgetting}); err != nil {
		t.Fatal(err)
	}
}
