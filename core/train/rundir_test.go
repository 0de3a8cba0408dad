package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets"
)

// TestRunDirForAnalysis: a fine-tune writes a run directory that
// core/analysis reads, and whose files are what they claim: W₀ is the
// pretrained weight, W₁ the merged weight that reproduces the fine-tuned
// model's task-A logits, the probes are the layers' inputs, the SVD
// decomposes W₀.
func TestRunDirForAnalysis(t *testing.T) {
	cache := sharedCache(t)
	dir := filepath.Join(t.TempDir(), "run")
	cfg := digitsFinetune(adapter.MethodMid)
	cfg.RunDir, cfg.RunDirEpochs, cfg.ProbeExamples = dir, true, 100
	res, err := Finetune(context.Background(), cfg, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rundir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != "mid" || len(m.Layers) != 2 || m.Layers[0].Name != "fc1" || m.Layers[0].Window == nil ||
		*m.Layers[0].Window != (rundir.Window{Start: 14, Rank: 4}) || *m.Layers[1].Window != (rundir.Window{Start: 10, Rank: 4}) {
		t.Errorf("manifest %+v", m)
	}
	run, err := rundir.Analyze(context.Background(), dir, rundir.Options{VerifyBasis: true})
	if err != nil {
		t.Fatal(err)
	}
	f := run.Forgetting
	if math.Abs(f.AccuracyBefore*100-res.TaskAAccuracyBefore) > 1e-9 || math.Abs(f.AccuracyAfter*100-res.TaskAAccuracyAfter) > 1e-9 ||
		math.Abs(f.MeanKL-res.MeanKL) > 1e-9*math.Max(1, res.MeanKL) {
		t.Errorf("analysis forgetting %+v, run measured before %v after %v KL %v", f, res.TaskAAccuracyBefore, res.TaskAAccuracyAfter, res.MeanKL)
	}
	if len(run.Checkpoints) != cfg.Hyper.Epochs {
		t.Errorf("%d checkpoints analysed, want one per epoch (%d)", len(run.Checkpoints), cfg.Hyper.Epochs)
	}
	for _, l := range run.Layers {
		if l.Feature == nil {
			t.Errorf("layer %s: no feature-space analysis (probes missing)", l.Name)
		}
		if !(l.Weight.DiagNorm > 0) || !(l.Weight.OffNorm > 0) {
			t.Errorf("layer %s: weight change diag %v off %v", l.Name, l.Weight.DiagNorm, l.Weight.OffNorm)
		}
	}

	// W₀ is the pretrained model's weight, bit for bit.
	pre, err := Pretrain(context.Background(), cfg.Pretrain, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	model := mustOpen(t, pre.ModelPath)
	w0File := mustOpen(t, filepath.Join(dir, RunPretrainedFile))
	w1File := mustOpen(t, filepath.Join(dir, RunFinetunedFile))
	for _, name := range []string{"fc1", "fc2"} {
		a, _ := model.Float32s(name + ".weight")
		b, _ := w0File.Float32s(name)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: %d vs %d values", name, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: weights_pretrained differs from the model at %d", name, i)
			}
		}
	}

	// The plain network with W₁ in place of W₀ gives the stored fine-tuned
	// task-A logits (LoRA-family methods leave biases and the old head alone).
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	if err := pre.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fc1", "fc2"} {
		w1, err := w1File.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := w1File.Info(name)
		v := ctx.In(ModelScope).In(name).GetVariable("weight")
		w32 := make([]float32, len(w1))
		for i, x := range w1 {
			w32[i] = float32(x)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(w32, info.Shape...)); err != nil {
			t.Fatal(err)
		}
	}
	testA, err := loadSplit(testOpenDataset(t, "digits"), datasets.Test, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	net := cfg.Pretrain.Network
	logits, err := evalLogits(b, ctx, net, net.Dense, HeadA, 10, testA, 500, nil)
	if err != nil {
		t.Fatal(err)
	}
	evalFile := mustOpen(t, filepath.Join(dir, RunEvalFile))
	stored, err := evalFile.Float32s("finetuned.logits")
	if err != nil {
		t.Fatal(err)
	}
	var diff, scale float64
	for i := range stored {
		diff = math.Max(diff, math.Abs(float64(stored[i]-logits[i])))
		scale = math.Max(scale, math.Abs(float64(stored[i])))
	}
	if diff > 1e-5*scale {
		t.Errorf("merged W₁ does not reproduce the fine-tuned logits: max diff %.3g (scale %.3g)", diff, scale)
	}

	// fc1's probes are the first 100 test images' pixels; fc2's are tanh(fc1) of the pretrained model.
	probes := mustOpen(t, filepath.Join(dir, RunProbesFile))
	p1, _ := probes.Float32s("fc1")
	info, _ := probes.Info("fc2")
	if len(p1) != 100*64 || info.Shape[0] != 100 || info.Shape[1] != 32 {
		t.Fatalf("probe shapes: fc1 %d values, fc2 %v", len(p1), info.Shape)
	}
	for i := range p1 {
		img, px := i/64, i%64
		if p1[i] != testA.inputs[testA.position(img)*64+px] {
			t.Fatalf("fc1 probe value %d is not the test image's pixel", i)
		}
	}
}

func mustOpen(t *testing.T, path string) *safetensors.Reader {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func testOpenDataset(t *testing.T, name string) datasets.InMemory {
	d, err := testOpen(t)(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
