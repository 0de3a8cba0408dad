package plots

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/experiment/synthetic"
	"github.com/prism-lora/prism/core/figure"
)

func TestStats(t *testing.T) {
	m, s, n := stats([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	// mean 5, sum of squares 32, sample variance 32/7.
	if m != 5 || math.Abs(s-math.Sqrt(32.0/7)) > 1e-15 || n != 8 {
		t.Errorf("stats = %v %v %d", m, s, n)
	}
	m, s, n = stats([]float64{3, math.NaN(), math.Inf(1)})
	if m != 3 || !math.IsNaN(s) || n != 1 {
		t.Errorf("one finite value: %v %v %d", m, s, n)
	}
	if m, _, n := stats(nil); !math.IsNaN(m) || n != 0 {
		t.Errorf("empty: %v %d", m, n)
	}
}

func run(method string, w *experiment.Window, lr float64, seed uint64, acc, forget float64) Run {
	c := experiment.RunConfig{Schema: 1, Kind: "k", Model: experiment.ModelConfig{Name: "m"},
		Finetune: experiment.FinetuneConfig{Tasks: []string{"b"}}, Method: method, Window: w,
		LearningRate: lr, Seed: seed, Epochs: 2}
	if method != "full" {
		c.Rank, c.Alpha = 4, 4
	}
	return Run{Config: c, Metrics: map[string]float64{"b_acc": acc, "forgetting": forget}}
}

func TestParetoFront(t *testing.T) {
	runs := []Run{
		run("lora", nil, 1e-3, 0, 80, 10), run("lora", nil, 1e-3, 1, 82, 12), // mean (81, 11)
		run("full", nil, 1e-3, 0, 90, 30),                                    // (90, 30): best accuracy
		run("pissa", &experiment.Window{Preset: "pissa"}, 1e-3, 0, 70, 5),    // (70, 5): least forgetting
		run("milora", &experiment.Window{Preset: "milora"}, 1e-3, 0, 75, 12), // dominated by lora
		run("mid", &experiment.Window{Preset: "mid"}, 1e-3, 0, 81, 11),       // equal to lora: neither dominates
	}
	pts := ParetoFront(runs, "b_acc", "forgetting")
	front := map[string]bool{}
	for _, p := range pts {
		front[p.Series] = p.Front
		if p.Series == "lora" && (p.Acc != 81 || p.Forget != 11 || math.Abs(p.AccStd-math.Sqrt2) > 1e-12) {
			t.Errorf("lora point %+v, want mean (81, 11) with std √2", p)
		}
	}
	want := map[string]bool{"lora": true, "full": true, "pissa": true, "milora": false, "mid": true}
	for s, w := range want {
		if front[s] != w {
			t.Errorf("%s on front = %v, want %v", s, front[s], w)
		}
	}
}

func TestStylerGivesDistinctLooks(t *testing.T) {
	series := []string{"window s=4", "window s=12", "pissa", "milora", "lora", "full", "window s=20", "dora", "plugin-x"}
	s := newStyler(series)
	seen := map[int]string{}
	for _, name := range series {
		i := s.index(name)
		if prev, dup := seen[i]; dup {
			t.Errorf("%s and %s share index %d", prev, name, i)
		}
		seen[i] = name
	}
	if s.index("pissa") != 1 || s.index("lora") != 3 {
		t.Errorf("methods lost their fixed indices: pissa %d lora %d", s.index("pissa"), s.index("lora"))
	}
	// Within the palette's eight colours, no two series of this figure share
	// a colour and dash.
	type look struct {
		c string
		d int
	}
	looks := map[look]string{}
	for _, name := range series {
		st := figure.SeriesStyle(s.index(name))
		k := look{c: string([]byte{st.Color.R, st.Color.G, st.Color.B}), d: s.index(name) % len(figure.Dashes)}
		if prev, dup := looks[k]; dup {
			t.Errorf("%s and %s look the same", prev, name)
		}
		looks[k] = name
	}
}

func TestFigureErrors(t *testing.T) {
	w := func(s int) *experiment.Window { return &experiment.Window{Preset: "start", Start: s} }
	mixed := []Run{run("window", w(0), 1e-3, 0, 1, 1), run("window", w(4), 1e-2, 0, 1, 1)}
	if _, err := Figure1(mixed, Fig1Options{}); err == nil || !strings.Contains(err.Error(), "mix 2 settings") {
		t.Errorf("mixed learning rates: %v", err)
	}
	if _, err := Figure1([]Run{run("lora", nil, 1e-3, 0, 1, 1)}, Fig1Options{}); err == nil || !strings.Contains(err.Error(), "no window runs") {
		t.Errorf("no window runs: %v", err)
	}
	both := []Run{run("window", w(0), 1e-3, 0, 1, 1), run("window", &experiment.Window{Preset: "fraction", Fraction: 0.5}, 1e-3, 0, 1, 1)}
	if _, err := Figure1(both, Fig1Options{}); err == nil || !strings.Contains(err.Error(), "mix starts and fractions") {
		t.Errorf("starts and fractions: %v", err)
	}
	if _, err := Pareto([]Run{{Config: run("lora", nil, 1, 0, 0, 0).Config}}, Options{}); err == nil {
		t.Error("Pareto without metrics accepted")
	}
	if _, err := TrainingCurves(mixed[:1], []string{"loss"}, nil, Options{}); err == nil || !strings.Contains(err.Error(), `no run has a curve "loss"`) {
		t.Errorf("missing curve: %v", err)
	}
	if _, err := LRRobustness(mixed, LROptions{Series: []string{"nothing"}}); err == nil {
		t.Error("empty series selection accepted")
	}
}

// TestFiguresFromARealSweep runs a synthetic sweep over the whole spectrum
// and draws every figure from the store; set PRISM_FIGURE_DIR to keep them.
func TestFiguresFromARealSweep(t *testing.T) {
	spec, err := experiment.ParseSpec("fig.yaml", []byte(`name: fig
kind: synthetic
model: {name: linear, params: {m: 20, n: 16}}
finetune: {task: b}
grid:
  methods: [lora, pissa, milora, mid, window, full]
  window_starts: [0, 3, 6, 9, 12]
  ranks: [4]
  learning_rates: [3e-3, 1e-2, 3e-2]
  seeds: [0, 1, 2]
  epochs: [3]
`))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := spec.Expand()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := runner.Sweep(ctx, st, spec, runs, synthetic.Kind, runner.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	cond, _ := store.ParseCondition("lr=0.01")
	at := func(f store.Filter) []Run {
		rs, err := FromStore(ctx, st, f)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	one := at(store.Filter{Where: []store.Condition{cond}})
	all := at(store.Filter{})
	if len(one) != 3*(1+1+1+1+5+1) || len(all) != 3*len(one) {
		t.Fatalf("%d runs at lr 0.01, %d in all", len(one), len(all))
	}
	if len(one[0].Curves["b_loss"]) != 3 {
		t.Fatalf("curves not loaded: %v", one[0].Curves)
	}
	dir := os.Getenv("PRISM_FIGURE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	figs := map[string]func() (*figure.Figure, error){
		"fig1":   func() (*figure.Figure, error) { return Figure1(one, Fig1Options{}) },
		"pareto": func() (*figure.Figure, error) { return Pareto(all, Options{}) },
		"lr": func() (*figure.Figure, error) {
			return LRRobustness(all, LROptions{Series: []string{"window s=6", "pissa", "milora", "lora", "full"}})
		},
		"curves": func() (*figure.Figure, error) {
			return TrainingCurves(one, []string{"b_loss", "a_loss"}, []string{"pissa", "milora", "window s=6", "lora"}, Options{})
		},
	}
	for name, make := range figs {
		fig, err := make()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		base := filepath.Join(dir, "synthetic-"+name)
		if err := fig.Save(base); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(base + ".png")
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if w := img.Bounds().Dx(); w != int(math.Round(fig.Size.Width.Points()/72*figure.PNGDPI)) {
			t.Errorf("%s: png %d px wide", name, w)
		}
		svg, _ := os.ReadFile(base + ".svg")
		for _, want := range map[string][]string{
			"fig1":   {"window", "PiSSA", "MiLoRA", "mid", "LoRA", "full FT", "window start s"},
			"pareto": {"Pareto front", "old-task forgetting (points)"},
			"lr":     {"window s=6", "learning rate (log scale)", "0.003", "0.03"},
			"curves": {"epoch", "new-task test loss"},
		}[name] {
			if !bytes.Contains(svg, []byte(want)) {
				t.Errorf("%s.svg lacks %q", name, want)
			}
		}
	}
}
