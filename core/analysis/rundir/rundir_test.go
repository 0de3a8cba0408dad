package rundir_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/analysis/rundir/rundirtest"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

var (
	pretrainOnce sync.Once
	pretrained   *rundirtest.Pretrained
)

// realPretrained pretrains the Fashion-MNIST MLP once per test binary.
func realPretrained(t *testing.T) *rundirtest.Pretrained {
	t.Helper()
	d := rundirtest.LoadDataOrSkip(t)
	pretrainOnce.Do(func() { pretrained = rundirtest.Pretrain(d) })
	return pretrained
}

// A real fine-tuning run, written in the documented layout and analysed
// back: the forgetting matches the pretrained model's own accuracy, the
// stored SVD verifies against the pretrained weights, the change lands
// mostly in the window's rows and columns (first-order terms of
// scale·(B′A′ − BA)), and the checkpoints are followed.
func TestAnalyzeRealFineTuningRun(t *testing.T) {
	p := realPretrained(t)
	before := p.OldTaskAccuracy()
	if before < 0.7 {
		t.Fatalf("pretrained task-A accuracy %.3f: the fixture did not learn", before)
	}
	for _, preset := range []string{"pissa", "mid", "milora"} {
		dir := filepath.Join(t.TempDir(), preset)
		if err := p.WriteRun(dir, preset, 0.003); err != nil {
			t.Fatal(err)
		}
		run, err := rundir.Analyze(context.Background(), dir, rundir.Options{VerifyBasis: true})
		if err != nil {
			t.Fatal(err)
		}
		f := run.Forgetting
		if run.Name != preset || f.AccuracyBefore != before || math.Abs(f.AccuracyDrop-100*(f.AccuracyBefore-f.AccuracyAfter)) > 1e-12 || !(f.MeanKL > 0) {
			t.Errorf("%s: forgetting %+v (pretrained accuracy %.3f)", preset, f, before)
		}
		if len(run.Layers) != 1 || run.Layers[0].Feature == nil {
			t.Fatalf("%s: layers %+v", preset, run.Layers)
		}
		w := run.Layers[0].Weight
		wantStart := map[string]int{"pissa": 0, "mid": (rundirtest.Hidden - rundirtest.Rank) / 2, "milora": rundirtest.Hidden - rundirtest.Rank}[preset]
		if w.Window.Start != wantStart || w.Window.Rank != rundirtest.Rank || w.K != rundirtest.Hidden {
			t.Errorf("%s: window %v, K %d", preset, w.Window, w.K)
		}
		if !(w.DeltaWNorm > 0) || !(w.CapturedFraction() > 0 && w.CapturedFraction() <= 1+1e-9) || w.BasisResidual/norm(w.S) > 1e-5 {
			t.Errorf("%s: ‖ΔW‖ %g captured %g basis residual %g", preset, w.DeltaWNorm, w.CapturedFraction(), w.BasisResidual)
		}
		e := w.WindowEnergy
		if cross := (e.DiagIn + e.OffInIn + e.OffInOut + e.OffOutIn) / e.Total(); cross < 0.5 {
			t.Errorf("%s: only %.2f of ‖ΔM‖² in the window's rows and columns", preset, cross)
		}
		if len(run.Checkpoints) != 2 || run.Checkpoints[0].Step != 20 || math.IsNaN(run.Checkpoints[1].AccuracyAfter) ||
			!(run.Checkpoints[0].DiagNorm > 0) {
			t.Errorf("%s: checkpoints %+v", preset, run.Checkpoints)
		}
		t.Logf("%s: accuracy %.3f → %.3f, KL %.3f nats, ‖diag ΔM‖ %.3g ‖off ΔM‖ %.3g, captured %.2f",
			preset, f.AccuracyBefore, f.AccuracyAfter, f.MeanKL, w.DiagNorm, w.OffNorm, w.CapturedFraction())
	}
}

func norm(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

// exactRun writes a float64 run whose fine-tuning is W₁ = W₀ + δ·u_i·v_iᵀ.
func exactRun(t *testing.T, dir string, delta float64, i int) (lowrank.Matrix[float64], lowrank.Factors[float64]) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	m, n := 12, 8
	w0 := lowrank.NewMatrix[float64](m, n)
	for k := range w0.Data {
		w0.Data[k] = rng.NormFloat64()
	}
	f, err := lowrank.ThinSVD(w0)
	if err != nil {
		t.Fatal(err)
	}
	w1 := w0.Clone()
	for r := 0; r < m; r++ {
		for c := 0; c < n; c++ {
			w1.Data[r*n+c] += delta * f.U.At(r, i) * f.V.At(c, i)
		}
	}
	probes := lowrank.NewMatrix[float64](30, n)
	for k := range probes.Data {
		probes.Data[k] = rng.NormFloat64()
	}
	err = rundir.Write(dir, rundir.Manifest{Method: "pissa", Rank: 2, Window: "pissa"}, []rundir.LayerData[float64]{{
		Layer: rundir.Layer{Name: "fc"}, Pretrained: w0, Finetuned: w1, SVD: f, Probes: probes,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w0, f
}

// The contract round-trips exactly: a float64 run with a known change is
// read back to that change, the window comes from the manifest's spec, and
// metrics fill in for a missing eval file.
func TestAnalyzeExactRunRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exact")
	exactRun(t, dir, 0.25, 3)
	m, err := rundir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, after := 0.9, 0.85
	m.Metrics = &rundir.Metrics{AccuracyBefore: &before, AccuracyAfter: &after}
	v := func(x float64) *float64 { return &x }
	m.Continual = &rundir.Continual{Tasks: []string{"mnist", "fashion", "digits"}, Accuracy: [][]*float64{
		{v(0.90), nil, nil}, {v(0.80), v(0.85), nil}, {v(0.70), v(0.75), v(0.95)}}}
	if err := rundir.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	run, err := rundir.Analyze(context.Background(), dir, rundir.Options{VerifyBasis: true, BandCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	w := run.Layers[0].Weight
	if run.Name != "exact" || w.Window.Start != 0 || w.Window.Rank != 2 || len(w.Bands) != 4 {
		t.Errorf("name %q window %v bands %d", run.Name, w.Window, len(w.Bands))
	}
	for i, d := range w.Diag {
		want := 0.0
		if i == 3 {
			want = 0.25
		}
		if math.Abs(d-want) > 1e-14 {
			t.Errorf("ΔM_%d%d = %g, want %g", i, i, d, want)
		}
	}
	if w.OffNorm > 1e-14 || math.Abs(w.DeltaWNorm-0.25) > 1e-14 {
		t.Errorf("‖off‖ %g ‖ΔW‖ %g", w.OffNorm, w.DeltaWNorm)
	}
	if f := run.Forgetting; f.AccuracyBefore != 0.9 || math.Abs(f.AccuracyDrop-5) > 1e-12 || !math.IsNaN(f.MeanKL) {
		t.Errorf("forgetting %+v", f)
	}
	// Hand computation (see analysis.TestContinualMetricsAgainstHandComputation).
	if c := run.Continual; c == nil || len(c.Stages) != 3 || math.Abs(c.Stages[2].AverageAccuracy-0.8) > 1e-15 ||
		math.Abs(c.Stages[2].BackwardTransfer+0.15) > 1e-15 || !math.IsNaN(c.ForwardTransfer) {
		t.Errorf("continual %+v", run.Continual)
	}
	if run.Layers[0].Feature == nil || run.Layers[0].Feature.Samples != 30 {
		t.Error("probes not analysed")
	}
}

// Runs of one base model can share the pretrained weights and the SVD.
func TestAnalyzeSharedBaseFiles(t *testing.T) {
	root := t.TempDir()
	exactRun(t, filepath.Join(root, "a"), 0.5, 1)
	m, _ := rundir.ReadManifest(filepath.Join(root, "a"))
	b := filepath.Join(root, "b")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, "a", rundir.FinetunedFile))
	os.WriteFile(filepath.Join(b, rundir.FinetunedFile), data, 0o644)
	m.Files = rundir.Files{Pretrained: "../a/" + rundir.PretrainedFile, SVD: filepath.Join(root, "a", rundir.SVDFile)}
	m.Name = "shared"
	if err := rundir.WriteManifest(b, m); err != nil {
		t.Fatal(err)
	}
	run, err := rundir.Analyze(context.Background(), b, rundir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(run.Layers[0].Weight.Diag[1]-0.5) > 1e-14 || run.Layers[0].Feature != nil {
		t.Errorf("shared files: ΔM₁₁ = %g, feature %v", run.Layers[0].Weight.Diag[1], run.Layers[0].Feature)
	}
}

func TestAnalyzeErrorsNameTheFileAndLayer(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	exactRun(t, good, 0.1, 0)

	// An SVD of another matrix fails VerifyBasis.
	other := filepath.Join(root, "other")
	exactRun(t, other, 0.1, 0)
	rng := rand.New(rand.NewPCG(9, 9))
	w := lowrank.NewMatrix[float64](12, 8)
	for k := range w.Data {
		w.Data[k] = rng.NormFloat64()
	}
	f, _ := lowrank.ThinSVD(w)
	if err := safetensors.WriteFile(filepath.Join(other, rundir.SVDFile), []safetensors.Tensor{
		safetensors.FromMatrix("fc.U", f.U), safetensors.FromFloats("fc.S", []int{len(f.S)}, f.S), safetensors.FromMatrix("fc.V", f.V),
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := rundir.Analyze(context.Background(), other, rundir.Options{VerifyBasis: true})
	if err == nil || !strings.Contains(err.Error(), "svd.safetensors does not decompose the pretrained weight") || !strings.Contains(err.Error(), `layer "fc"`) {
		t.Errorf("wrong SVD: %v", err)
	}

	missing := filepath.Join(root, "missing")
	exactRun(t, missing, 0.1, 0)
	os.Remove(filepath.Join(missing, rundir.FinetunedFile))
	if _, err := rundir.Analyze(context.Background(), missing, rundir.Options{}); err == nil || !strings.Contains(err.Error(), rundir.FinetunedFile) {
		t.Errorf("missing fine-tuned weights: %v", err)
	}

	if _, err := rundir.Analyze(context.Background(), root, rundir.Options{}); err == nil || !strings.Contains(err.Error(), "run.json") {
		t.Errorf("no manifest: %v", err)
	}
	if _, err := rundir.Analyze(context.Background(), good, rundir.Options{Layers: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `no layer "nope"`) {
		t.Errorf("unknown layer: %v", err)
	}
	bad := filepath.Join(root, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, rundir.ManifestFile), []byte(`{"layers": [{"name": "fc"}], "windw": "pissa"}`), 0o644)
	if _, err := rundir.ReadManifest(bad); err == nil || !strings.Contains(err.Error(), "windw") {
		t.Errorf("misspelt field: %v", err)
	}
	os.WriteFile(filepath.Join(bad, rundir.ManifestFile), []byte(`{"layers": [{"name": "fc", "window": {"start": 6, "rank": 4}}]}`), 0o644)
	exactRunFiles(t, good, bad)
	if _, err := rundir.Analyze(context.Background(), bad, rundir.Options{}); err == nil || !strings.Contains(err.Error(), "window [6, 10) exceeds the 8 components") {
		t.Errorf("window too large: %v", err)
	}
}

// exactRunFiles copies the safetensors files of run src into dst.
func exactRunFiles(t *testing.T, src, dst string) {
	t.Helper()
	for _, f := range []string{rundir.PretrainedFile, rundir.FinetunedFile, rundir.SVDFile} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
