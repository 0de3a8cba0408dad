// Package plots draws the experiment figures of the paper from plain result
// rows: the two-panel Figure-1 analogue (new-task accuracy and old-task
// forgetting against the window start), the accuracy–forgetting Pareto
// scatter, learning-rate robustness curves and training curves. Every
// function takes []Run — a configuration with its metrics and curves — so a
// notebook can build them by hand or from the results store (FromStore), and
// returns a core/figure Figure to Save or Render.
//
// Statistics: runs that differ only in their seed are one configuration;
// figures show the mean over seeds and ± one sample standard deviation
// (n−1; no band for a single seed).
package plots

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/figure"
)

// Run is one finished run: what every figure function takes.
type Run struct {
	ID      string
	Config  experiment.RunConfig
	Metrics map[string]float64
	Curves  map[string][]experiment.CurvePoint
}

// FromStore loads the done runs matching f, with their curves.
func FromStore(ctx context.Context, st *store.Store, f store.Filter) ([]Run, error) {
	f.Statuses = []experiment.Status{experiment.StatusDone}
	rows, err := st.Query(ctx, f)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	curves, err := st.Curves(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = Run{ID: r.ID, Config: r.Config, Metrics: r.Metrics, Curves: curves[r.ID]}
	}
	return out, nil
}

// Metric labels for axes, with units.
var metricLabels = map[string]string{
	experiment.MetricTaskBAcc:       "new-task accuracy (%)",
	experiment.MetricForgetting:     "old-task forgetting (points)",
	experiment.MetricTaskAAccAfter:  "old-task accuracy after (%)",
	experiment.MetricTaskAAccBefore: "old-task accuracy before (%)",
	experiment.MetricKL:             "KL to base model (nats)",
	"train_loss":                    "training loss",
	"b_loss":                        "new-task test loss",
	"a_loss":                        "old-task test loss",
	// Curves of the finetune run kind (core/experiment/finetune).
	"train_acc": "training accuracy (%)",
	"a_acc":     "old-task accuracy (%)",
	"lr":        "learning rate",
	"step_loss": "training loss (cross-entropy)",
	"step_acc":  "training accuracy (%)",

	// Language models (kind finetune-text): bits per character, lower is better.
	experiment.MetricTaskBBPC:       "new-task bits per character (lower is better)",
	experiment.MetricBPCForgetting:  "old-task forgetting (rise in bits per character)",
	experiment.MetricTaskABPCAfter:  "old-task bits per character after",
	experiment.MetricTaskABPCBefore: "old-task bits per character before",
	"a_bpc":                         "old-task test bits per character",
	"train_bpc":                     "training bits per character",
}

// lowerIsBetter lists the metrics whose smaller values are better on a
// figure's "accuracy" axis (ParetoFront reads it).
var lowerIsBetter = map[string]bool{experiment.MetricTaskBBPC: true}

// LowerIsBetter reports whether smaller values of a metric are better
// (bits per character), unlike accuracies.
func LowerIsBetter(metric string) bool { return lowerIsBetter[metric] }

// MetricLabel is the axis label of a metric or curve: a known label with its
// unit, else the name itself.
func MetricLabel(name string) string {
	if l, ok := metricLabels[name]; ok {
		return l
	}
	return name
}

// MethodDisplay is how a method is named in legends.
var MethodDisplay = map[string]string{
	experiment.MethodWindow: "window", experiment.MethodPiSSA: "PiSSA", experiment.MethodMiLoRA: "MiLoRA",
	experiment.MethodLoRA: "LoRA", experiment.MethodFull: "full FT", experiment.MethodMid: "mid",
	experiment.MethodHead: "head only", experiment.MethodDoRA: "DoRA", experiment.MethodOLoRA: "OLoRA",
}

func display(method string) string {
	if d, ok := MethodDisplay[method]; ok {
		return d
	}
	return method
}

// seriesName is the legend name of a series key (Series()).
func seriesName(series string) string {
	m, rest, _ := strings.Cut(series, " ")
	if rest == "" {
		return display(m)
	}
	return display(m) + " " + rest
}

// styler hands out series indices for one figure: each known method keeps
// its fixed index (so it looks the same in every figure); other series
// (several windows, plugin methods) take the palette slots no present method
// uses, in order, and only then indices past the palette (same colours,
// other dashes and markers).
type styler struct {
	got map[string]int
}

func newStyler(series []string) *styler {
	s := &styler{got: map[string]int{}}
	var names []string
	for _, name := range series {
		if _, dup := s.got[name]; !dup {
			s.got[name] = -1
			names = append(names, name)
		}
	}
	for i, idx := range figure.SeriesIndices(names) {
		s.got[names[i]] = idx
	}
	return s
}

func (s *styler) index(series string) int {
	if i, ok := s.got[series]; ok {
		return i
	}
	i := len(s.got) + len(figure.MethodOrder)
	s.got[series] = i
	return i
}

// stats are the mean and sample standard deviation of finite values (std NaN
// for fewer than two).
func stats(vs []float64) (mean, std float64, n int) {
	var sum float64
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	mean = sum / float64(n)
	if n < 2 {
		return mean, math.NaN(), n
	}
	var ss float64
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			ss += (v - mean) * (v - mean)
		}
	}
	return mean, math.Sqrt(ss / float64(n-1)), n
}

// hyper is the part of a configuration that is neither method, window nor
// seed: runs compared in one figure must agree on it unless it is the x axis.
func hyper(c experiment.RunConfig, without string) string {
	var parts []string
	if without != "rank" && c.Rank > 0 {
		parts = append(parts, fmt.Sprintf("r=%d α=%g", c.Rank, c.Alpha))
	}
	if without != "lr" {
		parts = append(parts, fmt.Sprintf("lr=%g", c.LearningRate))
	}
	parts = append(parts, fmt.Sprintf("ep=%d", c.Epochs), "tasks="+strings.Join(c.Finetune.Tasks, ">"), "model="+c.Model.Name)
	return strings.Join(parts, " ")
}

// checkOneSetting fails when the runs of a method mix hyperparameter
// settings (other than the axis); the figure would silently average them.
func checkOneSetting(runs []Run, axis string) error {
	settings := map[string]map[string]bool{}
	for _, r := range runs {
		m := r.Config.Method
		if settings[m] == nil {
			settings[m] = map[string]bool{}
		}
		settings[m][hyper(r.Config, axis)] = true
	}
	for _, m := range sortedKeys(settings) {
		if len(settings[m]) > 1 {
			return fmt.Errorf("plots: %s runs mix %d settings (%s); filter them to one (e.g. prism results figures --where lr=0.001)",
				m, len(settings[m]), strings.Join(sortedKeys(settings[m]), "; "))
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricOf returns a run's metric, NaN when missing.
func metricOf(r Run, name string) float64 {
	if v, ok := r.Metrics[name]; ok {
		return v
	}
	return math.NaN()
}

// group collects a metric by key.
type group struct {
	keys   []string
	values map[string][]float64
}

func newGroup() *group { return &group{values: map[string][]float64{}} }

func (g *group) add(key string, v float64) {
	if _, ok := g.values[key]; !ok {
		g.keys = append(g.keys, key)
	}
	g.values[key] = append(g.values[key], v)
}

// Options common to the figures.
type Options struct {
	// AccMetric and ForgetMetric name the metrics on the accuracy and
	// forgetting axes (defaults b_acc and forgetting).
	AccMetric, ForgetMetric string
	// Size of the figure (default: two columns for two panels, one column
	// otherwise).
	Size figure.Size
	// Title, if set, heads the first panel.
	Title string
}

func (o *Options) defaults(panels int) {
	if o.AccMetric == "" {
		o.AccMetric = experiment.MetricTaskBAcc
	}
	if o.ForgetMetric == "" {
		o.ForgetMetric = experiment.MetricForgetting
	}
	if o.Size.Width == 0 {
		if panels > 1 {
			o.Size = figure.TwoColumn
		} else {
			o.Size = figure.OneColumn
		}
	}
}
