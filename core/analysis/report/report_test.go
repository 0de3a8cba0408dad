package report

import (
	"bytes"
	"encoding/csv"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/lowrank"
	"gonum.org/v1/gonum/mat"
)

// fineTuned simulates training a window adapter: A and B of the window
// initialisation each move by a random step of relative size step, and the
// adapter is merged: W₁ = Wres + scale·B′·A′.
func fineTuned(t testing.TB, rng *rand.Rand, w lowrank.Matrix[float64], f lowrank.Factors[float64], preset string, rank int, step float64) (lowrank.Matrix[float64], lowrank.Adapter[float64]) {
	a, err := lowrank.InitFromSVD("layer", w, f, lowrank.Config{Method: preset, Rank: rank, Alpha: float64(rank)})
	if err != nil {
		t.Fatal(err)
	}
	move := func(m lowrank.Matrix[float64]) *mat.Dense {
		d := mat.NewDense(m.Rows, m.Cols, append([]float64(nil), m.Data...))
		norm := mat.Norm(d, 2) / math.Sqrt(float64(m.Rows*m.Cols))
		for i := range d.RawMatrix().Data {
			d.RawMatrix().Data[i] += step * norm * rng.NormFloat64()
		}
		return d
	}
	b2, a2 := move(a.B), move(a.A)
	var ba mat.Dense
	ba.Mul(b2, a2)
	ba.Scale(a.Scale, &ba)
	ba.Add(&ba, mat.NewDense(w.Rows, w.Cols, a.Base.Data))
	return lowrank.Matrix[float64]{Rows: w.Rows, Cols: w.Cols, Data: ba.RawMatrix().Data}, a
}

// syntheticRuns analyses pissa, mid and milora fine-tunings of the same two
// random layers (one tall, one square) with probes.
func syntheticRuns(t testing.TB) []analysis.Run {
	rng := rand.New(rand.NewPCG(7, 7))
	shapes := []struct {
		name string
		m, n int
	}{{"blocks.0.mlp.fc1", 96, 48}, {"blocks.0.attn.proj", 48, 48}}
	type layer struct {
		w lowrank.Matrix[float64]
		f lowrank.Factors[float64]
		x *mat.Dense
	}
	var layers []layer
	for _, s := range shapes {
		w := lowrank.NewMatrix[float64](s.m, s.n)
		for i := range w.Data {
			w.Data[i] = rng.NormFloat64() / math.Sqrt(float64(s.n))
		}
		f, err := lowrank.ThinSVD(w)
		if err != nil {
			t.Fatal(err)
		}
		x := mat.NewDense(200, s.n, nil)
		for i := 0; i < 200; i++ {
			for j := 0; j < s.n; j++ {
				x.Set(i, j, rng.NormFloat64()*math.Exp(-float64(j)/12))
			}
		}
		layers = append(layers, layer{w, f, x})
	}
	var runs []analysis.Run
	for r, preset := range []string{"pissa", "mid", "milora"} {
		run := analysis.Run{Name: preset, Method: preset, Forgetting: analysis.UnknownForgetting()}
		run.Forgetting.AccuracyBefore = 0.98
		run.Forgetting.AccuracyAfter = 0.9 + 0.02*float64(r%2)
		run.Forgetting.AccuracyDrop = analysis.AccuracyDrop(run.Forgetting.AccuracyBefore, run.Forgetting.AccuracyAfter)
		run.Forgetting.MeanKL = 0.1 * float64(r+1)
		for li, l := range layers {
			w1, a := fineTuned(t, rng, l.w, l.f, preset, 6, 0.3)
			basis, err := analysis.BasisOf(l.f)
			if err != nil {
				t.Fatal(err)
			}
			w0v, _ := analysis.MatrixOf(l.w)
			w1v, _ := analysis.MatrixOf(w1)
			wc, err := analysis.WeightSpace(w1v, basis, analysis.WeightOptions{W0: w0v,
				Split: analysis.SplitOptions{Window: analysis.Window{Start: a.Start, Rank: a.Rank}, HeatBins: 32}})
			if err != nil {
				t.Fatal(err)
			}
			fc, err := analysis.FeatureSpace(l.x, w0v, w1v, analysis.FeatureOptions{Split: analysis.SplitOptions{HeatBins: 32}})
			if err != nil {
				t.Fatal(err)
			}
			run.Layers = append(run.Layers, analysis.Layer{Name: shapes[li].name, Weight: wc, Feature: &fc})
		}
		nan := math.NaN()
		drop := 0.05 * float64(r+1)
		cont, err := analysis.NewContinual([]string{"A", "B", "C"}, analysis.AccuracyMatrix{
			{0.95, nan, nan}, {0.95 - drop, 0.9, nan}, {0.95 - 2*drop, 0.9 - drop, 0.92}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		run.Continual = cont
		for step := 0; step <= 300; step += 100 {
			d, o := analysis.SummarizeLayers(run.Layers)
			frac := float64(step) / 300
			f := run.Forgetting
			f.AccuracyAfter = f.AccuracyBefore - frac*(f.AccuracyBefore-f.AccuracyAfter)
			f.AccuracyDrop = analysis.AccuracyDrop(f.AccuracyBefore, f.AccuracyAfter)
			f.MeanKL *= frac
			run.Checkpoints = append(run.Checkpoints, analysis.CheckpointSummary{Step: step, Forgetting: f, DiagNorm: d * frac, OffNorm: o * frac * frac})
		}
		runs = append(runs, run)
	}
	return runs
}

func outDir(t *testing.T) string {
	if d := os.Getenv("PRISM_REPORT_OUT"); d != "" {
		return d
	}
	return t.TempDir()
}

func TestTablesAreCompleteAndParse(t *testing.T) {
	runs := syntheticRuns(t)
	md, csvs := Tables(runs)
	if len(md) < 4 || len(csvs) < 6 {
		t.Fatalf("%d markdown and %d CSV tables", len(md), len(csvs))
	}
	for _, tab := range csvs {
		var buf bytes.Buffer
		if err := tab.WriteCSV(&buf); err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("%s.csv does not parse: %v", tab.Name, err)
		}
		if len(records) != len(tab.Rows)+1 {
			t.Errorf("%s.csv has %d records, want %d", tab.Name, len(records), len(tab.Rows)+1)
		}
		for i, rec := range records {
			if len(rec) != len(tab.Columns) {
				t.Errorf("%s.csv record %d has %d fields, want %d", tab.Name, i, len(rec), len(tab.Columns))
			}
		}
	}
	layers := LayerTable(runs)
	// Two layers and a mean row per run.
	if len(layers.Rows) != 3*3 {
		t.Fatalf("layer table has %d rows, want 9", len(layers.Rows))
	}
	// The mean row is the mean of the layer rows.
	col := 8 // diag_norm
	if layers.Columns[col].Key != "diag_norm" {
		t.Fatalf("column %d is %s", col, layers.Columns[col].Key)
	}
	want := (layers.Rows[0][col].(float64) + layers.Rows[1][col].(float64)) / 2
	if got := layers.Rows[2][col].(float64); layers.Rows[2][1] != MeanLayer || math.Abs(got-want) > 1e-15 {
		t.Errorf("mean row %v: diag_norm %g, want %g", layers.Rows[2][1], got, want)
	}
	// Components: one row per component of every layer of every run.
	if n := len(ComponentTable(runs).Rows); n != 3*(48+48) {
		t.Errorf("component table has %d rows, want %d", n, 3*96)
	}
	// mid, stage 2: ACC = (0.75+0.80+0.92)/3, BWT = ((0.75−0.95)+(0.80−0.90))/2, forgetting (0.2+0.1)/2.
	if c := ContinualTable(runs); len(c.Rows) != 9 || !strings.Contains(c.String(), "| mid | 2 | C | 82.33 | -15 | 15 | – |") {
		t.Errorf("continual table:\n%s", c)
	}
	s := ForgettingTable(runs).String()
	if !strings.Contains(s, "| pissa | pissa | 98 | 90 | 8 |") {
		t.Errorf("forgetting table:\n%s", s)
	}
	t.Log("\n" + LayerTable(runs[:1]).String() + BandTable(runs, false).String())
}

// The window adapters' change lands where the window is: most of ‖ΔM‖²
// lies in the rows and columns of the window.
func TestSyntheticRunsPutEnergyInTheirWindow(t *testing.T) {
	for _, run := range syntheticRuns(t) {
		for _, l := range run.Layers {
			e := l.Weight.WindowEnergy
			in := e.DiagIn + e.OffInIn + e.OffInOut + e.OffOutIn
			if share := in / e.Total(); share < 0.9 {
				t.Errorf("%s %s: only %.2f of the energy touches the window %v", run.Name, l.Name, share, l.Weight.Window)
			}
		}
	}
}

func TestWriteFiguresProducesReadableFiles(t *testing.T) {
	runs := syntheticRuns(t)
	dir := outDir(t)
	written, err := WriteFigures(dir, runs, FigureOptions{PerLayer: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"profile_mean", "heatmap_mean", "bands", "feature_mean", "feature_heatmap_mean", "checkpoints", "continual",
		"layers/blocks.0.mlp.fc1_profile", "layers/blocks.0.mlp.fc1_heatmap", "layers/blocks.0.attn.proj_feature"}
	have := map[string]bool{}
	for _, w := range written {
		rel, _ := filepath.Rel(dir, w)
		have[rel] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("figure %s not written (have %v)", w, written)
		}
	}
	for _, base := range written {
		svg, err := os.ReadFile(base + ".svg")
		if err != nil || !bytes.Contains(svg[:min(len(svg), 400)], []byte("<svg")) {
			t.Errorf("%s.svg: %v", base, err)
		}
		pdf, err := os.ReadFile(base + ".pdf")
		if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
			t.Errorf("%s.pdf: %v", base, err)
		}
		f, err := os.Open(base + ".png")
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s.png: %v", base, err)
		}
		// At most two-column width (7.16 in at 200 dpi).
		if w := img.Bounds().Dx(); w < 600 || w > 1440 {
			t.Errorf("%s.png is %d px wide", base, w)
		}
	}
	tables, err := WriteTables(dir, runs)
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables %v: %v", tables, err)
	}
}
