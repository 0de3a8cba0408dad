package continual

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/plots"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/figure"
)

// Run is one finished sequence: its configuration, metrics and accuracy
// matrix with the metrics of every stage (core/analysis).
type Run struct {
	ID      string
	Config  experiment.RunConfig
	Metrics map[string]float64
	// Continual holds the tasks, R (fractions) and ACC, BWT and mean
	// forgetting after every stage.
	Continual *analysis.Continual
}

// RunOf rebuilds a run's accuracy matrix from its metrics (MatrixMetric).
func RunOf(id string, cfg experiment.RunConfig, metrics map[string]float64) (Run, error) {
	if cfg.Pretrain == nil {
		return Run{}, fmt.Errorf("run %s: no task 0 (pretrain.task) in its configuration", experiment.ShortID(id))
	}
	tasks := append([]string{cfg.Pretrain.Task}, cfg.Finetune.Tasks...)
	lower := make([][]float64, len(tasks))
	for i := range lower {
		for j := 0; j <= i; j++ {
			v, ok := metrics[MatrixMetric(i, j)]
			if !ok {
				return Run{}, fmt.Errorf("run %s: metric %s (accuracy on task %d after stage %d) is missing", experiment.ShortID(id), MatrixMetric(i, j), j, i)
			}
			lower[i] = append(lower[i], v)
		}
	}
	c, err := analysis.NewContinual(tasks, Matrix(lower), nil)
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", experiment.ShortID(id), err)
	}
	return Run{ID: id, Config: cfg, Metrics: metrics, Continual: c}, nil
}

// FromStore loads the done runs of kind continual that match f.
func FromStore(ctx context.Context, st *store.Store, f store.Filter) ([]Run, error) {
	f.Statuses = []experiment.Status{experiment.StatusDone}
	rows, err := st.Query(ctx, f)
	if err != nil {
		return nil, err
	}
	var out []Run
	for _, r := range rows {
		if r.Config.Kind != Name {
			continue
		}
		run, err := RunOf(r.ID, r.Config, r.Metrics)
		if err != nil {
			return nil, err
		}
		out = append(out, run)
	}
	return out, nil
}

// Series is the runs of one configuration over seeds, with the mean and
// sample standard deviation (n−1; 0 for one seed) of their numbers.
type Series struct {
	// Key is the series (method and window, e.g. "window f=0.25"), Name its
	// display name ("window f=0.25", "PiSSA", "full FT").
	Key, Name string
	Method    string
	Runs      []Run
	Tasks     []string
	// Mean is the mean accuracy matrix (fractions, NaN above the diagonal).
	Mean analysis.AccuracyMatrix
	// ACC, BWT and MeanForgetting at the end of the sequence, in % and
	// points; Forgetting[j] is task j's forgetting (points), j < T−1;
	// Final[j] task j's accuracy at the end (%).
	ACC, BWT, MeanForgetting Stat
	Forgetting, Final        []Stat
	// Style is the series' index for figure.SeriesStyle.
	Style int
}

// Stat is a mean and sample standard deviation over seeds.
type Stat struct{ Mean, Std float64 }

func statOf(vs []float64) Stat {
	var s Stat
	same := true
	for _, v := range vs {
		s.Mean += v
		same = same && v == vs[0]
	}
	if same {
		return Stat{Mean: vs[0]} // exactly, without rounding in the sum
	}
	s.Mean /= float64(len(vs))
	if len(vs) > 1 {
		for _, v := range vs {
			s.Std += (v - s.Mean) * (v - s.Mean)
		}
		s.Std = math.Sqrt(s.Std / float64(len(vs)-1))
	}
	return s
}

// String is "m ± s" with the given decimals (just "m" without a spread).
func (s Stat) String(decimals int) string {
	if s.Std == 0 {
		return fmt.Sprintf("%.*f", decimals, s.Mean)
	}
	return fmt.Sprintf("%.*f ± %.*f", decimals, s.Mean, decimals, s.Std)
}

// spectrumPosition orders windowed series along the spectrum: PiSSA (0),
// windows by fraction, mid (0.5), MiLoRA (1); others after, in a fixed
// method order.
func spectrumPosition(c experiment.RunConfig) float64 {
	switch c.Method {
	case experiment.MethodPiSSA:
		return 0
	case experiment.MethodMid:
		return 0.5
	case experiment.MethodMiLoRA:
		return 1
	case experiment.MethodWindow:
		if c.Window != nil && c.Window.Preset == "fraction" {
			return c.Window.Fraction
		}
		if c.Window != nil && c.Window.Preset == "start" {
			return 1.5 + float64(c.Window.Start)/1e6 // after the spectrum-ordered ones, by start
		}
	}
	others := []string{experiment.MethodLoRA, experiment.MethodOLoRA, experiment.MethodDoRA, experiment.MethodFull, experiment.MethodHead}
	for i, m := range others {
		if c.Method == m {
			return 10 + float64(i)
		}
	}
	return 100
}

// Group collects runs that differ only in their seed into series, ordered
// along the spectrum (PiSSA, windows by position, mid, MiLoRA) and then
// LoRA, OLoRA, DoRA, full fine-tuning, head only.
func Group(runs []Run) ([]Series, error) {
	byKey := map[string]*Series{}
	var order []string
	for _, r := range runs {
		c := r.Config
		c.Seed = 0
		key, err := c.ID()
		if err != nil {
			return nil, err
		}
		s, ok := byKey[key]
		if !ok {
			s = &Series{Key: r.Config.Series(), Method: r.Config.Method, Tasks: r.Continual.Tasks}
			byKey[key] = s
			order = append(order, key)
		}
		if len(r.Continual.Tasks) != len(s.Tasks) {
			return nil, fmt.Errorf("series %s: runs with %d and %d tasks", s.Key, len(s.Tasks), len(r.Continual.Tasks))
		}
		s.Runs = append(s.Runs, r)
	}
	out := make([]Series, 0, len(order))
	names := map[string]int{}
	for _, k := range order {
		s := byKey[k]
		s.summarise()
		names[s.Key]++
		out = append(out, *s)
	}
	// Series that share a key differ in hyperparameters: name them fully.
	for i := range out {
		s := &out[i]
		s.Name = displayName(s.Key)
		if names[s.Key] > 1 {
			c := s.Runs[0].Config
			s.Name += fmt.Sprintf(" r=%d lr=%g ep=%d", c.Rank, c.LearningRate, c.Epochs)
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		return spectrumPosition(out[a].Runs[0].Config) < spectrumPosition(out[b].Runs[0].Config)
	})
	// Styles: each method its fixed index; further series of one method
	// (several windows) take free indices whose colour is the least likely
	// to be confused: black, yellow, then the rest (core/figure has eight
	// colours for nine methods, so some colour repeats with another marker
	// and dash).
	used := map[int]bool{}
	taken := map[string]bool{}
	for i := range out {
		if idx, known := figure.MethodSeries(out[i].Method); known && !taken[out[i].Method] {
			out[i].Style = idx
			used[idx] = true
			taken[out[i].Method] = true
			continue
		}
		out[i].Style = -1
	}
	slots := []int{6, 7, 3, 4, 5, 2, 1, 0}
	next := 0
	for i := range out {
		if out[i].Style >= 0 {
			continue
		}
		for {
			idx := slots[next%len(slots)] + 8*(1+next/len(slots))
			next++
			if !used[idx] {
				used[idx] = true
				out[i].Style = idx
				break
			}
		}
	}
	return out, nil
}

// displayName is a series key with the method's display name.
func displayName(key string) string {
	m, rest, _ := strings.Cut(key, " ")
	if d, ok := plots.MethodDisplay[m]; ok {
		m = d
	}
	if rest == "" {
		return m
	}
	return m + " " + rest
}

// summarise fills the statistics from the runs.
func (s *Series) summarise() {
	T := len(s.Tasks)
	s.Mean = make(analysis.AccuracyMatrix, T)
	for i := range s.Mean {
		s.Mean[i] = make([]float64, T)
		for j := range s.Mean[i] {
			var vs []float64
			for _, r := range s.Runs {
				vs = append(vs, r.Continual.Accuracy[i][j])
			}
			s.Mean[i][j] = statOf(vs).Mean
		}
	}
	var acc, bwt, mf []float64
	forget := make([][]float64, T-1)
	final := make([][]float64, T)
	for _, r := range s.Runs {
		last := r.Continual.Stages[T-1]
		acc = append(acc, 100*last.AverageAccuracy)
		bwt = append(bwt, 100*last.BackwardTransfer)
		mf = append(mf, 100*last.MeanForgetting)
		f, _ := r.Continual.Accuracy.Forgetting(T - 1)
		for j, v := range f {
			forget[j] = append(forget[j], 100*v)
		}
		for j := 0; j < T; j++ {
			final[j] = append(final[j], 100*r.Continual.Accuracy[T-1][j])
		}
	}
	s.ACC, s.BWT, s.MeanForgetting = statOf(acc), statOf(bwt), statOf(mf)
	s.Forgetting, s.Final = nil, nil
	for _, f := range forget {
		s.Forgetting = append(s.Forgetting, statOf(f))
	}
	for _, f := range final {
		s.Final = append(s.Final, statOf(f))
	}
}
