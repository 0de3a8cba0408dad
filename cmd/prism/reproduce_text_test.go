package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// tinyTextSpec is the text reproduction at toy size: a 16-wide one-block
// model on slices of the real corpora, five methods, one window.
const tinyTextSpec = `name: text-tiny
kind: finetune-text
description: tiny end-to-end check
model:
  name: lm
  params: {width: 16, depth: 1, heads: 2, mlp_dim: 32, context: 32}
pretrain:
  task: kjv
  epochs: 1
  learning_rate: 1e-2
  batch_size: 16
  seed: 1
  params: {train_subset: 320, test_subset: 16, eval_every: 10}
finetune:
  task: austen
  batch_size: 16
  params: {train_subset: 64, test_subset: 16, old_test_subset: 16, eval_every: 2, sample_length: 30}
grid:
  methods: [lora, pissa, milora, window, full, head]
  window_starts: [6]
  ranks: [4]
  learning_rates: [1e-2]
  seeds: [1]
  epochs: [1]
`

// TestReproduceTextEndToEnd runs `prism reproduce text` on the tiny spec and
// checks what a user gets: the database, the report with its table and
// samples, and the three figures in three formats; then runs it again,
// which resumes (nothing to train) and writes the same report.
func TestReproduceTextEndToEnd(t *testing.T) {
	catalogtest.Open(t, "kjv")
	catalogtest.Open(t, "austen")
	dir := t.TempDir()
	specFile := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(specFile, []byte(tinyTextSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	live := false
	var log bytes.Buffer
	o := reproduceTextOptions{SpecFile: specFile, OutDir: out, CacheDir: filepath.Join(dir, "cache"), Out: &log, Live: &live}
	if err := runReproduceText(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	report, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(report)
	for _, want := range []string{
		"# Text reproduction: text-tiny", "6 of 6 runs done",
		"| pissa r=4 α=4 | 0 |", "| window s=6 r=4 α=4 | 6 |", "| milora r=4 α=4 | 12 |", "| lora r=4 α=4 | — |", "| full | — | 11,232 |", "| head | — | 4,352 |",
		"![fig1](figures/fig1.png)", "![pareto](figures/pareto.png)", "![curves](figures/curves.png)",
		"## Generated text", "**Before fine-tuning** (the model pretrained on kjv)", "    When she came to the house, ",
		"Forgetting along the spectrum (window start: bpc rise): s=0: ", "--spec " + specFile,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
	// Table rows appear in spectrum order: pissa, window s=6, milora, then the rest.
	if i, j, k := strings.Index(md, "| pissa"), strings.Index(md, "| window s=6"), strings.Index(md, "| milora"); !(i < j && j < k) {
		t.Errorf("rows not ordered by window start: pissa %d, window %d, milora %d", i, j, k)
	}
	for _, name := range []string{"fig1", "pareto", "curves"} {
		for _, ext := range []string{".svg", ".pdf"} {
			if fi, err := os.Stat(filepath.Join(out, "figures", name+ext)); err != nil || fi.Size() < 1000 {
				t.Errorf("figure %s%s: %v", name, ext, err)
			}
		}
		f, err := os.Open(filepath.Join(out, "figures", name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 {
			t.Errorf("figure %s.png: %v (%v)", name, err, img)
		}
	}
	if spec, err := os.ReadFile(filepath.Join(out, "spec.yaml")); err != nil || string(spec) != tinyTextSpec {
		t.Errorf("spec.yaml: %v", err)
	}
	st, err := store.Open(filepath.Join(out, "results.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Query(context.Background(), store.Filter{Spec: "text-tiny", Statuses: []experiment.Status{experiment.StatusDone}})
	st.Close()
	if err != nil || len(rows) != 6 {
		t.Fatalf("database: %d done runs (%v), want 6", len(rows), err)
	}

	// Again: every run is already done, the report is rebuilt from the database.
	log.Reset()
	if err := runReproduceText(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "6 already finished") {
		t.Errorf("second run did not resume:\n%s", log.String())
	}
	again, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s string) string { // the elapsed time differs
		i := strings.Index(s, "this command took")
		j := strings.Index(s[i:], "\n")
		return s[:i] + s[i+j:]
	}
	if strip(string(again)) != strip(md) {
		t.Errorf("the report of the resumed command differs:\n%s\n---\n%s", again, md)
	}
}

func TestReproduceTextErrors(t *testing.T) {
	dir := t.TempDir()
	if err := runReproduceText(context.Background(), reproduceTextOptions{Quick: true, SpecFile: "x.yaml"}); err == nil {
		t.Error("--quick with --spec accepted")
	}
	other := filepath.Join(dir, "synthetic.yaml")
	src := strings.Replace(tinyTextSpec, "kind: finetune-text", "kind: synthetic", 1)
	if err := os.WriteFile(other, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runReproduceText(context.Background(), reproduceTextOptions{SpecFile: other, OutDir: dir})
	if err == nil || !strings.Contains(err.Error(), `runs specs of kind "finetune-text"`) {
		t.Errorf("a synthetic spec: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(tinyTextSpec, "window_starts: [6]", "window_starts: [14]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	err = runReproduceText(context.Background(), reproduceTextOptions{SpecFile: bad, OutDir: dir})
	if err == nil || !strings.Contains(err.Error(), "grid.window_starts") {
		t.Errorf("a window past the spectrum: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "results.db")); err == nil {
		t.Error("a rejected spec created a database")
	}
}

func TestReproduceTextHelp(t *testing.T) {
	stdout, _, err := runPrism(t, "reproduce", "text", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--quick", "--out", "--spec", "--workers", "--cache-dir", "--analysis", "bpc_forgetting", "figures/fig1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestReproduceTextAnalysis: with --analysis every run writes its analysis
// directory and prism analyze runs over them.
func TestReproduceTextAnalysis(t *testing.T) {
	catalogtest.Open(t, "kjv")
	catalogtest.Open(t, "austen")
	dir := t.TempDir()
	specFile := filepath.Join(dir, "tiny.yaml")
	src := strings.Replace(tinyTextSpec, "methods: [lora, pissa, milora, window, full, head]", "methods: [pissa, window]", 1)
	if err := os.WriteFile(specFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	live := false
	var log bytes.Buffer
	o := reproduceTextOptions{SpecFile: specFile, OutDir: out, CacheDir: filepath.Join(dir, "cache"), Out: &log, Live: &live, Analysis: true}
	if err := runReproduceText(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	analysisReport, err := os.ReadFile(filepath.Join(out, "analysis", "report.md"))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{"pissa r=4 α=4", "window start=6 r=4 α=4", "blocks.0.attn.qkv", "blocks.0.mlp.fc2"} {
		if !strings.Contains(string(analysisReport), want) {
			t.Errorf("analysis/report.md lacks %q", want)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "analysis", "figures", "profile_mean.png")); err != nil || fi.Size() < 1000 {
		t.Errorf("analysis figure: %v", err)
	}
	runs, err := os.ReadDir(filepath.Join(out, "runs"))
	if err != nil || len(runs) != 2 {
		t.Errorf("run directories: %d (%v), want 2", len(runs), err)
	}
}
