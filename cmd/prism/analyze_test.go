package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/analysis/rundir/rundirtest"
	"github.com/prism-lora/prism/core/lowrank"
)

// writeExactRun writes a small float32 run whose fine-tuning adds a rank-2
// change inside the window.
func writeExactRun(t *testing.T, dir, window string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	w0 := lowrank.NewMatrix[float32](20, 12)
	for i := range w0.Data {
		w0.Data[i] = float32(rng.NormFloat64())
	}
	f, err := lowrank.ThinSVD(w0)
	if err != nil {
		t.Fatal(err)
	}
	w1 := w0.Clone()
	for r := 0; r < 20; r++ {
		for c := 0; c < 12; c++ {
			w1.Data[r*12+c] += 0.3*f.U.At(r, 4)*f.V.At(c, 5) + 0.1*f.U.At(r, 5)*f.V.At(c, 5)
		}
	}
	x := lowrank.NewMatrix[float32](40, 12)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	err = rundir.Write(dir, rundir.Manifest{Name: "s=4", Method: "window", Rank: 2, Window: window},
		[]rundir.LayerData[float32]{{Layer: rundir.Layer{Name: "enc.fc"}, Pretrained: w0, Finetuned: w1, SVD: f, Probes: x}}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestAnalyzeCommandWritesTablesAndFigures(t *testing.T) {
	root := t.TempDir()
	writeExactRun(t, filepath.Join(root, "start4"), "start=4")
	writeExactRun(t, filepath.Join(root, "start4b"), "start=4") // same name twice
	out := filepath.Join(root, "out")
	cmd := newRootCmd()
	var log bytes.Buffer
	cmd.SetOut(&log)
	cmd.SetArgs([]string{"analyze", filepath.Join(root, "start4"), filepath.Join(root, "start4b"), "--out", out, "--bands", "3", "--heat-bins", "6"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "layers.csv", "layers.md", "bands.csv", "components.csv", "feature_bands.csv",
		"forgetting.md", "figures/profile_mean.png", "figures/heatmap_mean.pdf", "figures/layers/enc.fc_feature.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(out, "components.csv"))
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(records) != 1+2*12 {
		t.Fatalf("components.csv: %d records, %v", len(records), err)
	}
	// Row of component 5 of the first run: ΔM₅₅ = 0.1 (float32 weights, analysed in float64).
	found := 0
	for _, r := range records[1:] {
		if r[0] == "s=4" && r[2] == "5" {
			found++
			if v, err := strconv.ParseFloat(r[5], 64); err != nil || math.Abs(v-0.1) > 1e-6 {
				t.Errorf("ΔM₅₅ = %s, want 0.1", r[5])
			}
		}
	}
	if found != 1 {
		t.Errorf("found %d rows for component 5 of run s=4", found)
	}
	if !strings.Contains(log.String(), "| s=4 (start4b) |") || !strings.Contains(log.String(), "wrote 11 tables") {
		t.Errorf("log:\n%s", log.String())
	}
	f, _ := os.Open(filepath.Join(out, "figures", "bands.png"))
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("bands.png: %v", err)
	}
}

func TestAnalyzeCommandErrors(t *testing.T) {
	root := t.TempDir()
	err := runAnalyze(context.Background(), analyzeOptions{Runs: []string{root}})
	if err == nil || !strings.Contains(err.Error(), "run.json") {
		t.Errorf("empty dir: %v", err)
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"analyze"})
	cmd.SetOut(new(bytes.Buffer))
	cmd.SetErr(new(bytes.Buffer))
	if err := cmd.Execute(); err == nil {
		t.Error("analyze without runs succeeded")
	}
}

// Real Fashion-MNIST runs (pissa, mid, milora) analysed side by side, with
// the default output directory of a single run.
func TestAnalyzeCommandOnRealRuns(t *testing.T) {
	p := rundirtest.Pretrain(rundirtest.LoadDataOrSkip(t))
	root := t.TempDir()
	if dir := os.Getenv("PRISM_ANALYZE_DEMO"); dir != "" {
		root = dir
	}
	var runs []string
	for _, preset := range []string{"pissa", "mid", "milora"} {
		dir := filepath.Join(root, "runs", preset)
		if err := p.WriteRun(dir, preset, 0.003); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, dir)
	}
	if err := runAnalyze(context.Background(), analyzeOptions{Runs: runs, Out: filepath.Join(root, "analysis"), BandCount: 8,
		HeatBins: 128, Figures: true, PerLayer: true, VerifyBasis: true}); err != nil {
		t.Fatal(err)
	}
	if err := runAnalyze(context.Background(), analyzeOptions{Runs: runs[1:2], BandCount: 10, VerifyBasis: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(runs[1], "analysis", "report.md")); err != nil {
		t.Errorf("default output directory: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(root, "analysis", "forgetting.md"))
	for _, name := range []string{"pissa", "mid", "milora"} {
		if !strings.Contains(string(md), "| "+name+" |") {
			t.Errorf("forgetting.md lacks %s:\n%s", name, md)
		}
	}
}
