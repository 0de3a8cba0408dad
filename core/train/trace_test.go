package train

import (
	"context"
	"math"
	"testing"

	"github.com/prism-lora/prism/core/adapter"
)

// TestTrace: with Options.TracePerEpoch the run records the training loss
// and accuracy at evenly spaced steps within each epoch; the intervals cover
// every step once, so the step-weighted mean of the trace equals each
// epoch's mean (EpochStats), and the last point of an epoch ends it.
func TestTrace(t *testing.T) {
	cfg := digitsFinetune(adapter.MethodLoRA)
	cfg.Hyper.Seed = 23
	res, err := Finetune(context.Background(), cfg, testOptions(t, sharedCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	spe := 1442 / cfg.Hyper.BatchSize // 45 steps per epoch; every 11 steps → 4 full intervals and one of 1
	if len(res.Trace) != cfg.Hyper.Epochs*5 {
		t.Fatalf("%d trace points, want 5 per epoch for %d epochs", len(res.Trace), cfg.Hyper.Epochs)
	}
	prev := 0
	for e, stats := range res.Curves {
		var loss, acc float64
		for _, p := range res.Trace[e*5 : (e+1)*5] {
			n := float64(p.Step - prev)
			loss += n * p.Loss
			acc += n * p.Accuracy
			if want := float64(e) + float64(p.Step-e*spe)/float64(spe); p.Epoch != want {
				t.Errorf("point at step %d: epoch %v, want %v", p.Step, p.Epoch, want)
			}
			prev = p.Step
		}
		if prev != (e+1)*spe {
			t.Errorf("epoch %d: trace ends at step %d, want %d", e+1, prev, (e+1)*spe)
		}
		if math.Abs(loss/float64(spe)-stats.TrainLoss) > 1e-12 || math.Abs(acc/float64(spe)-stats.TrainAccuracy) > 1e-9 {
			t.Errorf("epoch %d: trace means %.15g, %.15g; epoch stats %.15g, %.15g", e+1, loss/float64(spe), acc/float64(spe), stats.TrainLoss, stats.TrainAccuracy)
		}
	}
}
