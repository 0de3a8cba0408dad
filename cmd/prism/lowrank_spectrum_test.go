package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/safetensors"
)

func TestLowrankSpectrum(t *testing.T) {
	dir := t.TempDir()
	in, weights := writeFixture(t, dir)
	// Add a rank-deficient F64 matrix: 10×8 of rank 3.
	rng := rand.New(rand.NewPCG(21, 22))
	lowRank := matrixWithSpectrum(rng, 10, 8, []float64{4, 2, 1})
	r0, err := safetensors.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []safetensors.Tensor
	for _, info := range r0.Tensors() {
		raw, _ := r0.Raw(info.Name)
		tensors = append(tensors, safetensors.FromRaw(info.Name, info.DType, info.Shape, raw))
	}
	r0.Close()
	tensors = append(tensors, safetensors.FromFloats("lowrank.weight", []int{10, 8}, lowRank))
	in = filepath.Join(dir, "with-lowrank.safetensors")
	if err := safetensors.WriteFile(in, tensors, nil); err != nil {
		t.Fatal(err)
	}
	weights["lowrank.weight"] = fixtureWeight{m: 10, n: 8, dtype: safetensors.F64,
		sigma: []float64{4, 2, 1, 0, 0, 0, 0, 0}}
	weights["head.weight"] = fixtureWeight{m: 3, n: 16, dtype: safetensors.F32, sigma: []float64{3, 2, 1}}

	csvPath := filepath.Join(dir, "spectra.csv")
	var stdout, stderr bytes.Buffer
	o := lowrankSpectrumOptions{In: in, CSV: csvPath, TopK: []int{1, 4}, Stdout: &stdout, Stderr: &stderr}
	if err := runLowrankSpectrum(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr not clean: %q", stderr.String())
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "tensor,rows,cols,index,singular_value,cumulative_energy" {
		t.Fatalf("CSV header %v", rows[0])
	}
	values := map[string][]float64{}
	cumulative := map[string]float64{}
	for _, row := range rows[1:] {
		v, _ := strconv.ParseFloat(row[4], 64)
		values[row[0]] = append(values[row[0]], v)
		cumulative[row[0]], _ = strconv.ParseFloat(row[5], 64)
		if idx, _ := strconv.Atoi(row[3]); idx != len(values[row[0]])-1 {
			t.Fatalf("CSV indices out of order for %s", row[0])
		}
	}
	if len(values) != len(weights) {
		t.Fatalf("CSV has %d tensors, want %d", len(values), len(weights))
	}
	for name, w := range weights {
		got := values[name]
		if len(got) != min(w.m, w.n) {
			t.Fatalf("%s: %d values, want %d", name, len(got), min(w.m, w.n))
		}
		for i, want := range w.sigma {
			tol := 1e-5 * w.sigma[0]
			if w.dtype == safetensors.F64 {
				tol = 1e-12 * w.sigma[0]
			}
			if math.Abs(got[i]-want) > tol {
				t.Errorf("%s: σ_%d = %v, want %v", name, i, got[i], want)
			}
		}
		if math.Abs(cumulative[name]-1) > 1e-12 {
			t.Errorf("%s: cumulative energy ends at %v", name, cumulative[name])
		}
	}
	// The table: numerical rank 3 for the rank-3 matrix, full for the others,
	// E@1 = σ₁²/Σσ² for it.
	out := stdout.String()
	line := lineWith(out, "lowrank.weight")
	fields := strings.Fields(line)
	// tensor shape dtype k rank σmax σmin median cond E@1 E@4
	if len(fields) != 11 || fields[3] != "8" || fields[4] != "3" {
		t.Fatalf("rank-3 row: %q", line)
	}
	if cond, _ := strconv.ParseFloat(fields[8], 64); !(cond > 1e14) {
		t.Errorf("rank-3 matrix: condition %v, want ≥ 1e14 (σmin is rounding noise)", fields[8])
	}
	if e1, _ := strconv.ParseFloat(fields[9], 64); math.Abs(e1-16.0/21) > 1e-4 {
		t.Errorf("E@1 = %v, want %.4f", e1, 16.0/21)
	}
	if f := strings.Fields(lineWith(out, "enc.wide.weight")); len(f) != 11 || f[3] != "12" || f[4] != "12" {
		t.Errorf("full-rank row: %q", f)
	}
	for _, want := range []string{"rank = #σ > max(m,n)·ε·σmax", "skipped 3 tensors", "enc.q.bias: not 2-D", "ids: dtype I64 is not a float type", "wrote every singular value to " + csvPath} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}

func lineWith(text, substr string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

func TestLowrankSpectrumErrors(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeFixture(t, dir)
	for name, c := range map[string]struct {
		opts lowrankSpectrumOptions
		want string
	}{
		"no in":        {lowrankSpectrumOptions{}, "--in is required"},
		"csv is in":    {lowrankSpectrumOptions{In: in, CSV: in}, "--csv"},
		"bad top-k":    {lowrankSpectrumOptions{In: in, TopK: []int{0}}, "--top-k values must be ≥ 1 (got 0)"},
		"bad targets":  {lowrankSpectrumOptions{In: in, Targets: "("}, "--targets"},
		"explicit 3-D": {lowrankSpectrumOptions{In: in, Targets: "embed.pos"}, `"embed.pos"`},
		"missing file": {lowrankSpectrumOptions{In: filepath.Join(dir, "none")}, "none"},
		"bad csv dir":  {lowrankSpectrumOptions{In: in, CSV: filepath.Join(dir, "no", "x.csv")}, "--csv"},
		"progress":     {lowrankSpectrumOptions{In: in, Progress: "x"}, "--progress"},
	} {
		err := runLowrankSpectrum(context.Background(), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, c.want)
		}
	}
}
