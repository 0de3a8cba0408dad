package continual

import (
	"bytes"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/figure"
	"github.com/prism-lora/prism/core/train"
)

// sequence is a three-task result with a known accuracy matrix (%):
//
//	R = [[90], [70, 80], [60, 50, 85]]
func sequence() train.ContinualResult {
	return train.ContinualResult{
		Method: "mid", Tasks: []string{"mnist", "fashion-mnist", "mnist/rot90"},
		Accuracy: [][]float64{{90}, {70, 80}, {60, 50, 85}},
		Stages: []train.StageResult{
			{Stage: 1, TrainableParams: 123, Curves: []train.EpochStats{
				{Epoch: 1, TrainLoss: 1, Eval: map[string]float64{"acc_t0": 75, "acc_t1": 78}},
				{Epoch: 2, TrainLoss: 0.5, Eval: map[string]float64{"acc_t0": 70, "acc_t1": 80}}}},
			{Stage: 2, TrainableParams: 123, Curves: []train.EpochStats{
				{Epoch: 1, TrainLoss: 0.9, Eval: map[string]float64{"acc_t0": 65, "acc_t1": 55, "acc_t2": 80}},
				{Epoch: 2, TrainLoss: 0.4, Eval: map[string]float64{"acc_t0": 60, "acc_t1": 50, "acc_t2": 85}}}},
		},
		WallTime: 3 * time.Second, TrainTime: 2 * time.Second,
	}
}

func TestResultMetricsByHand(t *testing.T) {
	res, err := resultOf(sequence())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		MetricACC:            (60 + 50 + 85) / 3.0,
		MetricBWT:            ((60 - 90) + (50 - 80)) / 2.0,
		MetricMeanForgetting: ((90 - 60) + (80 - 50)) / 2.0,
		ForgettingMetric(0):  30, ForgettingMetric(1): 30,
		MatrixMetric(0, 0): 90, MatrixMetric(1, 0): 70, MatrixMetric(1, 1): 80,
		MatrixMetric(2, 0): 60, MatrixMetric(2, 1): 50, MatrixMetric(2, 2): 85,
		experiment.MetricTaskAAccBefore: 90, experiment.MetricTaskAAccAfter: 60, experiment.MetricForgetting: 30,
		experiment.MetricTaskBAcc: 85, experiment.MetricTrainableParams: 123,
		experiment.MetricWallSeconds: 3, MetricTrainSeconds: 2,
	}
	for k, v := range want {
		if got, ok := res.Metrics[k]; !ok || math.Abs(got-v) > 1e-12 {
			t.Errorf("metric %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(res.Metrics) != len(want) {
		t.Errorf("%d metrics, want %d: %v", len(res.Metrics), len(want), res.Metrics)
	}
	// Curves over the whole sequence: stage 2's epochs are 3 and 4.
	c := res.Curves["acc_t0"]
	if len(c) != 4 || c[2].Epoch != 3 || c[2].Value != 65 || c[3].Epoch != 4 || c[3].Value != 60 {
		t.Errorf("acc_t0 curve %v", c)
	}
	if c := res.Curves["acc_t2"]; len(c) != 2 || c[0].Epoch != 3 {
		t.Errorf("acc_t2 curve %v", c)
	}

	// Back from the metrics, the matrix and its analysis.
	cfg := experiment.RunConfig{Kind: Name, Method: "mid", Pretrain: &experiment.PretrainConfig{Task: "mnist"},
		Finetune: experiment.FinetuneConfig{Tasks: []string{"fashion-mnist", "mnist/rot90"}}}
	run, err := RunOf("abc", cfg, res.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Continual.Stages[2].BackwardTransfer; math.Abs(got+0.30) > 1e-12 {
		t.Errorf("BWT from the stored matrix %v, want −0.30", got)
	}
	if !math.IsNaN(run.Continual.Accuracy[0][1]) {
		t.Error("entry above the diagonal is not NaN")
	}
	delete(res.Metrics, MatrixMetric(2, 1))
	if _, err := RunOf("abc", cfg, res.Metrics); err == nil || !strings.Contains(err.Error(), MatrixMetric(2, 1)) {
		t.Errorf("missing matrix entry: %v", err)
	}
}

// runWith is a stored run of method (and window fraction) with seed and
// final accuracies shifted by d.
func runWith(t *testing.T, method string, fraction float64, seed uint64, d float64) Run {
	t.Helper()
	seq := sequence()
	for i := range seq.Accuracy {
		for j := range seq.Accuracy[i] {
			if i > j {
				seq.Accuracy[i][j] += d
			}
		}
	}
	res, err := resultOf(seq)
	if err != nil {
		t.Fatal(err)
	}
	cfg := experiment.RunConfig{Schema: experiment.RunSchema, Kind: Name, Method: method, Seed: seed, Rank: 8, Alpha: 16,
		LearningRate: 1e-3, Epochs: 2, Model: experiment.ModelConfig{Name: "vit"},
		Pretrain: &experiment.PretrainConfig{Task: "mnist"}, Finetune: experiment.FinetuneConfig{Tasks: []string{"fashion-mnist", "mnist/rot90"}}}
	switch method {
	case experiment.MethodWindow:
		cfg.Window = &experiment.Window{Preset: "fraction", Fraction: fraction}
	case experiment.MethodPiSSA, experiment.MethodMiLoRA, experiment.MethodMid:
		cfg.Window = &experiment.Window{Preset: method}
	case experiment.MethodFull, experiment.MethodHead:
		cfg.Rank, cfg.Alpha = 0, 0
	}
	run, err := RunOf(cfg.MustID(), cfg, res.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func testSeries(t *testing.T) []Series {
	var runs []Run
	for _, m := range []struct {
		method string
		f      float64
	}{{"full", 0}, {"milora", 0}, {"window", 0.75}, {"lora", 0}, {"pissa", 0}, {"window", 0.25}, {"mid", 0}, {"head", 0}} {
		runs = append(runs, runWith(t, m.method, m.f, 0, 0), runWith(t, m.method, m.f, 1, 2))
	}
	series, err := Group(runs)
	if err != nil {
		t.Fatal(err)
	}
	return series
}

func TestGroupOrdersAlongTheSpectrumAndAveragesSeeds(t *testing.T) {
	series := testSeries(t)
	var names []string
	for _, s := range series {
		names = append(names, s.Name)
	}
	want := "PiSSA|window f=0.25|mid|window f=0.75|MiLoRA|LoRA|full FT|head only"
	if got := strings.Join(names, "|"); got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	s := series[2] // mid, seeds with offsets 0 and 2 below the diagonal
	if len(s.Runs) != 2 {
		t.Fatalf("mid has %d runs, want 2", len(s.Runs))
	}
	// BWT per seed: −30 and −28 → mean −29, sample std √2.
	if math.Abs(s.BWT.Mean+29) > 1e-9 || math.Abs(s.BWT.Std-math.Sqrt2) > 1e-9 {
		t.Errorf("BWT %+v, want −29 ± √2", s.BWT)
	}
	if math.Abs(s.Mean[2][0]-0.61) > 1e-12 || math.Abs(s.Mean[1][1]-0.80) > 1e-12 || !math.IsNaN(s.Mean[0][2]) {
		t.Errorf("mean matrix %v", s.Mean)
	}
	if st := statOf([]float64{89.4, 89.4, 89.4}); st != (Stat{Mean: 89.4}) || st.String(2) != "89.40" {
		t.Errorf("equal values: %+v %q, want exactly 89.4 ± 0", st, st.String(2))
	}
	seen := map[int]bool{}
	for _, s := range series {
		if seen[s.Style] {
			t.Errorf("series %s shares style %d", s.Name, s.Style)
		}
		seen[s.Style] = true
	}
	pissa, _ := figure.MethodSeries("pissa")
	window, _ := figure.MethodSeries("window")
	if series[0].Style != pissa || series[1].Style != window {
		t.Errorf("PiSSA style %d, first window %d: want the methods' fixed indices", series[0].Style, series[1].Style)
	}
}

func TestFiguresAndTables(t *testing.T) {
	series := testSeries(t)
	dir := t.TempDir()
	written, err := WriteFigures(dir, series)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 4 {
		t.Errorf("wrote %v", written)
	}
	for _, base := range written {
		for _, ext := range []string{".svg", ".pdf", ".png"} {
			info, err := os.Stat(base + ext)
			if err != nil || info.Size() < 1000 {
				t.Errorf("%s%s: %v (%v bytes)", base, ext, err, info)
			}
		}
		f, err := os.Open(base + ".png")
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 {
			t.Errorf("%s.png: %v", base, err)
		}
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, series); err != nil {
		t.Fatal(err)
	}
	text := md.String()
	for _, want := range []string{"0 mnist → 1 fashion-mnist → 2 mnist/rot90", "| mid | 65.67 ± 0.94 | -29.00 ± 1.41 |",
		"| head only |", "| PiSSA | 0 mnist | 90.00 |  |  |", "|  | 2 rot90 | 61.00 | 51.00 | 85.00 |"} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q:\n%s", want, text)
		}
	}
	var csv bytes.Buffer
	if err := WriteCSV(&csv, series); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	if len(lines) != 1+16 || !strings.HasPrefix(lines[0], "id,series,method,seed,lr,rank,acc,bwt,mean_forgetting,") {
		t.Errorf("csv: %d lines, header %s", len(lines), lines[0])
	}
	if _, err := WriteFigures(dir, nil); err == nil {
		t.Error("figures of no series succeeded")
	}
}

func TestValidateNamesTheField(t *testing.T) {
	base := experiment.RunConfig{Kind: Name, Method: "mid", Rank: 8, Alpha: 16, LearningRate: 1e-3, Epochs: 1,
		Model: experiment.ModelConfig{Name: "vit"}, Pretrain: &experiment.PretrainConfig{Task: "mnist"},
		Finetune: experiment.FinetuneConfig{Tasks: []string{"fashion-mnist", "mnist/rot90"}}, Window: &experiment.Window{Preset: "mid"}}
	if err := Validate(base); err != nil {
		t.Fatalf("valid configuration rejected: %v", err)
	}
	cases := []struct {
		field string
		edit  func(c *experiment.RunConfig)
	}{
		{"pretrain.task", func(c *experiment.RunConfig) { c.Pretrain = nil }},
		{"model.params.depht", func(c *experiment.RunConfig) { c.Model.Params = map[string]any{"depht": 2.0} }},
		{"model.params.width", func(c *experiment.RunConfig) { c.Model.Params = map[string]any{"width": 1.5} }},
		{"model.name", func(c *experiment.RunConfig) { c.Model.Name = "resnet" }},
		{"finetune.params.warmup", func(c *experiment.RunConfig) { c.Finetune.Params = map[string]any{"warmup": 2.0} }},
		{"finetune.tasks", func(c *experiment.RunConfig) { c.Finetune.Tasks = nil }},
		{"finetune.tasks[1]", func(c *experiment.RunConfig) { c.Finetune.Tasks = []string{"fashion-mnist", "mnist/rot90/rot90"} }},
		{"grid.methods", func(c *experiment.RunConfig) { c.Method = "magic" }},
		{"grid", func(c *experiment.RunConfig) { c.Epochs = 0 }},
		{"pretrain.checkpoint", func(c *experiment.RunConfig) { c.Pretrain.Checkpoint = "/x.safetensors" }},
	}
	for _, c := range cases {
		cfg := base
		p := *base.Pretrain
		cfg.Pretrain = &p
		c.edit(&cfg)
		err := Validate(cfg)
		var fe *experiment.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v, want a field error at %s", c.field, err, c.field)
		}
	}
}

func TestRunDirName(t *testing.T) {
	c := experiment.RunConfig{Kind: Name, Method: "window", Window: &experiment.Window{Preset: "fraction", Fraction: 0.25}}
	name := RunDirName(c)
	if !strings.HasPrefix(name, "window-f-0.25-") || len(name) != len("window-f-0.25-")+12 || filepath.Base(name) != name {
		t.Errorf("RunDirName = %q", name)
	}
}
