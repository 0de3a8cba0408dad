package plots

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/figure"
)

// Fig1Options configure Figure1.
type Fig1Options struct {
	Options
	// End is the window start of MiLoRA, k − r, in the x axis' unit (start
	// index); 0: the largest window start among the runs (a sweep over the
	// whole spectrum includes it). With fraction windows the end is 1.
	End float64
}

// Figure1 is the two-panel Figure-1 analogue: (a) new-task accuracy and (b)
// old-task forgetting against the window start s, mean ± std over seeds, for
// the window runs; PiSSA (s = 0), MiLoRA (s = k−r) and mid (s = ⌊(k−r)/2⌋)
// as marked points with error bars; every method without a window (LoRA,
// full fine-tuning, DoRA, OLoRA, head only) as a horizontal reference line
// with its ± std band. The x axis is the component index when the windows
// are given by start, the spectrum fraction when they are given by fraction.
// All runs of a method must share one setting of the other hyperparameters.
func Figure1(runs []Run, opt Fig1Options) (*figure.Figure, error) {
	opt.defaults(2)
	if err := checkOneSetting(runs, ""); err != nil {
		return nil, err
	}
	byFraction, byStart := false, false
	maxStart := 0.0
	for _, r := range runs {
		if w := r.Config.Window; w != nil && r.Config.Method == experiment.MethodWindow {
			switch w.Preset {
			case "fraction":
				byFraction = true
			case "start":
				byStart = true
				maxStart = math.Max(maxStart, float64(w.Start))
			}
		}
	}
	if byFraction && byStart {
		return nil, errors.New("plots: Figure1: window runs mix starts and fractions; filter to one kind (e.g. --where window_start>=0)")
	}
	if !byFraction && !byStart {
		return nil, errors.New("plots: Figure1: no window runs (method window) to plot against the window start")
	}
	end := opt.End
	xlabel := "window start s (singular component index)"
	if byFraction {
		end = 1
		xlabel = "window start (fraction of the spectrum)"
	} else if end == 0 {
		end = maxStart
	}
	presetX := map[string]float64{"pissa": 0, "milora": end, "mid": math.Floor(end / 2)}
	if byFraction {
		presetX["mid"] = 0.5
	}
	xOf := func(w *experiment.Window) float64 {
		switch w.Preset {
		case "start":
			return float64(w.Start)
		case "fraction":
			return w.Fraction
		}
		return presetX[w.Preset]
	}
	var present []string
	for _, r := range runs {
		present = append(present, r.Config.Method)
	}
	sty := newStyler(present)
	acc := figure.NewPanel(opt.Title, xlabel, MetricLabel(opt.AccMetric))
	fgt := figure.NewPanel("", xlabel, MetricLabel(opt.ForgetMetric))
	if opt.Title == "" {
		acc.Plot.Title.Text = "(a) learning the new task"
		fgt.Plot.Title.Text = "(b) forgetting the old task"
	}
	for pi, p := range []*figure.Panel{acc, fgt} {
		metric := opt.AccMetric
		if pi == 1 {
			metric = opt.ForgetMetric
		}
		// Window curve.
		wg := newGroup()
		xs := map[string]float64{}
		for _, r := range runs {
			if r.Config.Method == experiment.MethodWindow && r.Config.Window != nil {
				k := fmt.Sprint(xOf(r.Config.Window))
				wg.add(k, metricOf(r, metric))
				xs[k] = xOf(r.Config.Window)
			}
		}
		sort.Slice(wg.keys, func(i, j int) bool { return xs[wg.keys[i]] < xs[wg.keys[j]] })
		var x, mean, std []float64
		for _, k := range wg.keys {
			m, s, _ := stats(wg.values[k])
			x, mean, std = append(x, xs[k]), append(mean, m), append(std, s)
		}
		if err := p.MeanStd(sty.index(experiment.MethodWindow), "window", x, mean, std); err != nil {
			return nil, err
		}
		// Presets as points, others as reference lines, in a fixed order.
		byMethod := map[string][]float64{}
		for _, r := range runs {
			if r.Config.Method != experiment.MethodWindow {
				byMethod[r.Config.Method] = append(byMethod[r.Config.Method], metricOf(r, metric))
			}
		}
		for _, m := range orderedMethods(byMethod) {
			mean, std, n := stats(byMethod[m])
			if n == 0 {
				continue
			}
			if px, ok := presetX[m]; ok {
				if err := p.Points(sty.index(m), display(m), []float64{px}, []float64{mean}, []float64{std}); err != nil {
					return nil, err
				}
				continue
			}
			if err := p.HLine(sty.index(m), display(m), mean, std); err != nil {
				return nil, err
			}
		}
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{acc, fgt}}, Size: opt.Size, Legend: figure.LegendBelow}, nil
}

// orderedMethods returns the keys in figure.MethodOrder, unknown ones after,
// sorted.
func orderedMethods[V any](m map[string]V) []string {
	var out []string
	for _, k := range figure.MethodOrder {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range m {
		if _, known := figure.MethodSeries(k); !known {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// ParetoPoint is one configuration in the accuracy–forgetting plane.
type ParetoPoint struct {
	Series          string // method and window, e.g. "window s=8"
	Setting         string // the other hyperparameters
	Acc, Forget     float64
	AccStd, ForgStd float64
	Front           bool // not dominated by any other point
}

// ParetoFront averages runs over seeds per configuration and marks the
// points no other point dominates (higher or equal accuracy and lower or
// equal forgetting, one of them strictly; for a metric where lower is better,
// such as bits per character, lower or equal instead of higher or equal).
func ParetoFront(runs []Run, accMetric, forgetMetric string) []ParetoPoint {
	type key struct{ series, setting string }
	acc := map[key][]float64{}
	fgt := map[key][]float64{}
	var order []key
	for _, r := range runs {
		k := key{r.Config.Series(), hyper(r.Config, "")}
		if _, ok := acc[k]; !ok {
			order = append(order, k)
		}
		acc[k] = append(acc[k], metricOf(r, accMetric))
		fgt[k] = append(fgt[k], metricOf(r, forgetMetric))
	}
	var pts []ParetoPoint
	for _, k := range order {
		a, as, na := stats(acc[k])
		f, fs, nf := stats(fgt[k])
		if na == 0 || nf == 0 {
			continue
		}
		pts = append(pts, ParetoPoint{Series: k.series, Setting: k.setting, Acc: a, Forget: f, AccStd: as, ForgStd: fs})
	}
	sign := 1.0 // accuracy: higher is better
	if LowerIsBetter(accMetric) {
		sign = -1
	}
	for i := range pts {
		pts[i].Front = true
		for j := range pts {
			ai, aj := sign*pts[i].Acc, sign*pts[j].Acc
			if i != j && aj >= ai && pts[j].Forget <= pts[i].Forget &&
				(aj > ai || pts[j].Forget < pts[i].Forget) {
				pts[i].Front = false
				break
			}
		}
	}
	return pts
}

// Pareto is the accuracy-vs-forgetting scatter of every configuration
// (mean over seeds), coloured by method, with the Pareto front (high
// accuracy, low forgetting) highlighted. Forgetting is on the x axis, so
// the best trade-offs sit top left (bottom left for a metric where lower is
// better, such as bits per character).
func Pareto(runs []Run, opt Options) (*figure.Figure, error) {
	opt.defaults(1)
	pts := ParetoFront(runs, opt.AccMetric, opt.ForgetMetric)
	if len(pts) == 0 {
		return nil, fmt.Errorf("plots: Pareto: no run has both %s and %s", opt.AccMetric, opt.ForgetMetric)
	}
	p := figure.NewPanel(opt.Title, MetricLabel(opt.ForgetMetric), MetricLabel(opt.AccMetric))
	var present []string
	for _, r := range runs {
		present = append(present, r.Config.Method)
	}
	sty := newStyler(present)
	byMethod := map[string][2][]float64{}
	for _, pt := range pts {
		m, _, _ := cutSeries(pt.Series)
		v := byMethod[m]
		v[0] = append(v[0], pt.Forget)
		v[1] = append(v[1], pt.Acc)
		byMethod[m] = v
	}
	for _, m := range orderedMethods(byMethod) {
		if err := p.Scatter(sty.index(m), display(m), byMethod[m][0], byMethod[m][1]); err != nil {
			return nil, err
		}
	}
	var fx, fy []float64
	for _, pt := range pts {
		if pt.Front {
			fx, fy = append(fx, pt.Forget), append(fy, pt.Acc)
		}
	}
	if err := p.Front("Pareto front", fx, fy); err != nil {
		return nil, err
	}
	p.Legend = figure.LegendAuto
	return &figure.Figure{Panels: [][]*figure.Panel{{p}}, Size: opt.Size}, nil
}

func cutSeries(s string) (method, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// LROptions configure LRRobustness.
type LROptions struct {
	Options
	// Series limits the figure to these series (Series() values such as
	// "pissa", "window s=8"); empty: all.
	Series []string
	// Failed are runs that failed (e.g. diverged). With IncludeFailed each
	// counts as accuracy FailedAcc (e.g. chance level) at its learning rate,
	// so a collapse shows in the accuracy panel; otherwise they are left out.
	Failed        []Run
	IncludeFailed bool
	FailedAcc     float64
}

// LRRobustness plots new-task accuracy and old-task forgetting against the
// learning rate (log scale), one curve per series (method and window), mean
// ± std over seeds: the paper's robustness claim is that intermediate windows
// degrade least at high learning rates.
func LRRobustness(runs []Run, opt LROptions) (*figure.Figure, error) {
	opt.defaults(2)
	if err := checkOneSetting(runs, "lr"); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range opt.Series {
		want[s] = true
	}
	all := append([]Run(nil), runs...)
	if opt.IncludeFailed {
		for _, f := range opt.Failed {
			f.Metrics = map[string]float64{opt.AccMetric: opt.FailedAcc}
			all = append(all, f)
		}
	}
	acc := figure.NewPanel(opt.Title, "learning rate (log scale)", MetricLabel(opt.AccMetric))
	fgt := figure.NewPanel("", "learning rate (log scale)", MetricLabel(opt.ForgetMetric))
	figure.LogX(acc.Plot)
	figure.LogX(fgt.Plot)
	if opt.Title == "" {
		acc.Plot.Title.Text = "(a) learning the new task"
		fgt.Plot.Title.Text = "(b) forgetting the old task"
	}
	series := map[string]bool{}
	for _, r := range all {
		if len(want) == 0 || want[r.Config.Series()] {
			series[r.Config.Series()] = true
		}
	}
	if len(series) == 0 {
		return nil, errors.New("plots: LRRobustness: no runs in the requested series")
	}
	names := orderedSeries(series)
	sty := newStyler(names)
	var lrs []float64
	seenLR := map[float64]bool{}
	for _, r := range all {
		if lr := r.Config.LearningRate; lr > 0 && !seenLR[lr] {
			seenLR[lr] = true
			lrs = append(lrs, lr)
		}
	}
	if len(lrs) <= 8 {
		acc.Plot.X.Tick.Marker = figure.TicksAt(lrs...)
		fgt.Plot.X.Tick.Marker = figure.TicksAt(lrs...)
	}
	for pi, p := range []*figure.Panel{acc, fgt} {
		metric := opt.AccMetric
		if pi == 1 {
			metric = opt.ForgetMetric
		}
		for _, s := range names {
			g := newGroup()
			lrs := map[string]float64{}
			for _, r := range all {
				if r.Config.Series() != s || r.Config.LearningRate <= 0 {
					continue
				}
				k := fmt.Sprint(r.Config.LearningRate)
				g.add(k, metricOf(r, metric))
				lrs[k] = r.Config.LearningRate
			}
			sort.Slice(g.keys, func(i, j int) bool { return lrs[g.keys[i]] < lrs[g.keys[j]] })
			var x, mean, std []float64
			for _, k := range g.keys {
				m, sd, _ := stats(g.values[k])
				x, mean, std = append(x, lrs[k]), append(mean, m), append(std, sd)
			}
			if err := p.MeanStd(sty.index(s), seriesName(s), x, mean, std); err != nil {
				return nil, err
			}
		}
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{acc, fgt}}, Size: opt.Size, Legend: figure.LegendBelow}, nil
}

// orderedSeries sorts series keys: methods in figure.MethodOrder, windows by
// start.
func orderedSeries(set map[string]bool) []string {
	var out []string
	for s := range set {
		out = append(out, s)
	}
	rank := func(s string) int {
		m, _, _ := cutSeries(s)
		if i, ok := figure.MethodSeries(m); ok {
			return i
		}
		return len(figure.MethodOrder)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		_, a, _ := cutSeries(out[i])
		_, b, _ := cutSeries(out[j])
		var x, y float64
		if _, err := fmt.Sscanf(a, "s=%g", &x); err == nil {
			if _, err := fmt.Sscanf(b, "s=%g", &y); err == nil {
				return x < y
			}
		}
		return out[i] < out[j]
	})
	return out
}

// TrainingCurves draws one panel per curve name (e.g. "train_loss",
// "b_loss", "a_loss"), value against epoch, one line per series (mean ± std
// over seeds at each epoch). Series limits the lines (empty: all).
func TrainingCurves(runs []Run, curves []string, series []string, opt Options) (*figure.Figure, error) {
	if len(curves) == 0 {
		return nil, errors.New("plots: TrainingCurves: no curve names given")
	}
	opt.defaults(len(curves))
	if err := checkOneSetting(runs, ""); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range series {
		want[s] = true
	}
	set := map[string]bool{}
	for _, r := range runs {
		if len(want) == 0 || want[r.Config.Series()] {
			set[r.Config.Series()] = true
		}
	}
	names := orderedSeries(set)
	sty := newStyler(names)
	var panels []*figure.Panel
	for ci, c := range curves {
		title := ""
		if len(curves) > 1 {
			title = fmt.Sprintf("(%c) %s", 'a'+ci, MetricLabel(c))
		}
		p := figure.NewPanel(title, "epoch", MetricLabel(c))
		drawn := false
		for _, s := range names {
			g := newGroup()
			epochs := map[string]float64{}
			for _, r := range runs {
				if r.Config.Series() != s {
					continue
				}
				for _, pt := range r.Curves[c] {
					k := fmt.Sprint(pt.Epoch)
					g.add(k, pt.Value)
					epochs[k] = pt.Epoch
				}
			}
			if len(g.keys) == 0 {
				continue
			}
			sort.Slice(g.keys, func(i, j int) bool { return epochs[g.keys[i]] < epochs[g.keys[j]] })
			var x, mean, std []float64
			for _, k := range g.keys {
				m, sd, _ := stats(g.values[k])
				x, mean, std = append(x, epochs[k]), append(mean, m), append(std, sd)
			}
			if err := p.MeanStd(sty.index(s), seriesName(s), x, mean, std); err != nil {
				return nil, err
			}
			drawn = true
		}
		if !drawn {
			return nil, fmt.Errorf("plots: TrainingCurves: no run has a curve %q", c)
		}
		panels = append(panels, p)
	}
	legend := figure.LegendBelow
	if len(panels) == 1 {
		legend = figure.LegendAuto
	}
	return &figure.Figure{Panels: [][]*figure.Panel{panels}, Size: opt.Size, Legend: legend}, nil
}
