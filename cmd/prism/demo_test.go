package main

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout bytes.Buffer
	o := demoOptions{Out: dir, Seed: 3, Rank: 8, Layers: 2, Hidden: 48, Stdout: &stdout}
	if err := runDemo(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.safetensors", "results.md", "spectrum.png", "spectrum.svg", "spectrum.pdf",
		"adapters-pissa.safetensors", "adapters-fraction-0.25.safetensors", "adapters-mid.safetensors",
		"adapters-fraction-0.75.safetensors", "adapters-milora.safetensors"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", name, err)
		}
	}

	// The generated weights have the designed spectra.
	model, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	w, err := safetensors.ReadMatrix[float64](model, "vit.encoder.layer.1.intermediate.dense.weight")
	if err != nil {
		t.Fatal(err)
	}
	if w.Rows != 192 || w.Cols != 48 {
		t.Fatalf("MLP weight is %d×%d, want 192×48", w.Rows, w.Cols)
	}
	f, err := lowrank.ThinSVD(w)
	if err != nil {
		t.Fatal(err)
	}
	want := demoSpectrum(48, 0.25+demoLayerBeta, math.Sqrt(48)*0.6, 3)
	for i, s := range f.S {
		if math.Abs(s-want[i]) > 1e-5*want[0] {
			t.Fatalf("σ_%d = %v, designed %v", i, s, want[i])
		}
	}
	if info, err := model.Info("vit.embeddings.patch_embeddings.projection.weight"); err != nil || len(info.Shape) != 4 {
		t.Errorf("patch embedding: %+v, %v", info, err)
	}

	// results.md: one row per window, starts across the spectrum, small
	// identity errors, window energy falling as the window moves down.
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| ([a-z0-9. ]+) \| ` + "`[^`]+`" + ` \| (\d+) \| \d+–\d+ \| ([0-9.]+) % \([0-9.–]+\) \| ([0-9.e+-]+) \| ([0-9.e+-]+) \| [0-9.]+ s \|`)
	rows := row.FindAllStringSubmatch(string(md), -1)
	if len(rows) != 5 {
		t.Fatalf("results.md has %d window rows, want 5:\n%s", len(rows), md)
	}
	wantStarts := []string{"0", "10", "20", "30", "40"}
	prevEnergy := math.Inf(1)
	for i, r := range rows {
		if r[2] != wantStarts[i] {
			t.Errorf("%s: start %s, want %s", r[1], r[2], wantStarts[i])
		}
		energy, _ := strconv.ParseFloat(r[3], 64)
		if !(energy < prevEnergy) {
			t.Errorf("%s: window energy %v%% does not fall below the previous window's %v%%", r[1], energy, prevEnergy)
		}
		prevEnergy = energy
		if id, _ := strconv.ParseFloat(r[4], 64); !(id < 1e-6) {
			t.Errorf("%s: identity error %s", r[1], r[4])
		}
		if se, _ := strconv.ParseFloat(r[5], 64); !(se < 1e-3) {
			t.Errorf("%s: σ error %s", r[1], r[5])
		}
	}
	if !strings.Contains(string(md), "![") || !strings.Contains(stdout.String(), "results.md") {
		t.Error("results.md does not show the figure, or stdout does not name the results")
	}

	// The figure files are real images.
	pf, err := os.Open(filepath.Join(dir, "spectrum.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatalf("spectrum.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 400 {
		t.Errorf("spectrum.png is %d×%d", b.Dx(), b.Dy())
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "spectrum.svg"))
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("milora")) {
		t.Error("spectrum.svg is not an SVG naming the windows")
	}
}

func TestDemoErrors(t *testing.T) {
	for _, c := range []struct {
		opts demoOptions
		want string
	}{
		{demoOptions{}, "--out is required"},
		{demoOptions{Out: t.TempDir(), Hidden: 4, Layers: 1, Rank: 2}, "--hidden must be ≥ 8"},
		{demoOptions{Out: t.TempDir(), Hidden: 16, Layers: 0, Rank: 2}, "--layers must be ≥ 1"},
		{demoOptions{Out: t.TempDir(), Hidden: 16, Layers: 1, Rank: 17}, "--rank must be in [1, --hidden=16]"},
	} {
		if err := runDemo(context.Background(), c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
}

func TestDemoSpectrum(t *testing.T) {
	s := demoSpectrum(100, 0.3, 5, 3)
	var ss float64
	for i, v := range s {
		if i > 0 && !(v < s[i-1]) {
			t.Fatalf("spectrum not strictly decreasing at %d", i)
		}
		ss += v * v
	}
	if math.Abs(math.Sqrt(ss)-5) > 1e-12 {
		t.Fatalf("‖σ‖ = %v, want 5", math.Sqrt(ss))
	}
}
