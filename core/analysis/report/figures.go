package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Decades is how many powers of ten below the largest value the log-scaled
// axes and colour scales show; smaller values are drawn at the bottom.
const Decades = 6

// FigureOptions configure WriteFigures.
type FigureOptions struct {
	// PerLayer also draws every layer's figures (in a "layers" sub-directory);
	// otherwise only figures averaged over layers are drawn.
	PerLayer bool
}

// series names of the profile figures (same index = same style everywhere).
const (
	seriesDiag   = 0
	seriesOffRow = 1
	seriesOffCol = 2
)

// profilePanel is one run's change along the component index.
type profilePanel struct {
	run     string
	profile analysis.Profile
	window  analysis.Window
}

// profileFigure draws, for each run side by side, the diagonal change |D_ii|
// and the off-diagonal row and column norms along the component index on a
// log scale, with the fine-tuned window shaded. xLabel names the index and
// symbol the matrix (ΔM or ΔΣ).
func profileFigure(title, xLabel, symbol string, panels []profilePanel) (*figure.Figure, error) {
	if len(panels) == 0 {
		return nil, fmt.Errorf("no runs to draw")
	}
	top := 0.0
	for _, p := range panels {
		for _, vs := range [][]float64{p.profile.Diag, p.profile.OffRow, p.profile.OffCol} {
			for _, v := range vs {
				top = math.Max(top, v)
			}
		}
	}
	if top == 0 || math.IsNaN(top) {
		top = 1
	}
	lo, hi := top*math.Pow(10, -Decades), top*1.5
	var cells []*figure.Panel
	for _, p := range panels {
		k := len(p.profile.Diag)
		name := p.run
		if title != "" {
			name = p.run + " — " + title
		}
		panel := figure.NewPanel(name, xLabel, "|"+symbol+"|")
		if !p.window.Empty() {
			panel.Plot.Add(windowSpan{float64(p.window.Start) - 0.5, float64(p.window.End()) - 0.5})
			panel.AddEntry("fine-tuned window", windowThumb{})
		}
		xs := make([]float64, k)
		for i := range xs {
			xs[i] = float64(i)
		}
		for _, s := range []struct {
			i    int
			name string
			ys   []float64
		}{
			{seriesDiag, "diagonal |" + symbol + "_ii|", p.profile.Diag},
			{seriesOffRow, "off-diagonal, row i", p.profile.OffRow},
			{seriesOffCol, "off-diagonal, column i", p.profile.OffCol},
		} {
			if err := addCurve(panel, s.i, s.name, xs, s.ys, lo); err != nil {
				return nil, err
			}
		}
		panel.Plot.X.Min, panel.Plot.X.Max = -0.5, float64(k)-0.5
		panel.Plot.Y.Scale = plot.LogScale{}
		panel.Plot.Y.Tick.Marker = logTicks{}
		panel.Plot.Y.Min, panel.Plot.Y.Max = lo, hi
		cells = append(cells, panel)
	}
	return gridFigure(cells), nil
}

// addCurve draws a dense curve (no markers) in series i's style, clipping
// values below floor to floor (log axes).
func addCurve(p *figure.Panel, i int, name string, xs, ys []float64, floor float64) error {
	pts := make(plotter.XYs, 0, len(xs))
	for k := range xs {
		y := ys[k]
		if math.IsNaN(y) {
			continue
		}
		pts = append(pts, plotter.XY{X: xs[k], Y: math.Max(y, floor)})
	}
	if len(pts) == 0 {
		return nil
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("series %q: %w", name, err)
	}
	line.LineStyle = figure.SeriesStyle(i).LineStyle()
	line.LineStyle.Width = vg.Points(0.9)
	p.Plot.Add(line)
	p.AddEntry(name, line)
	return nil
}

// gridFigure lays panels out side by side (at most three per row) at
// two-column width (one-column for a single panel), legend below.
func gridFigure(cells []*figure.Panel) *figure.Figure {
	cols := min(len(cells), 3)
	rows := (len(cells) + cols - 1) / cols
	grid := make([][]*figure.Panel, rows)
	for r := range grid {
		grid[r] = make([]*figure.Panel, cols)
		for c := 0; c < cols && r*cols+c < len(cells); c++ {
			grid[r][c] = cells[r*cols+c]
		}
	}
	size := figure.TwoColumn.WithHeight(vg.Length(rows)*2.1*vg.Inch + 0.35*vg.Inch)
	if len(cells) == 1 {
		size = figure.OneColumn.WithHeight(2.8 * vg.Inch)
	}
	return &figure.Figure{Panels: grid, Size: size, Legend: figure.LegendBelow}
}

// heatPanel is one run's binned |D|.
type heatPanel struct {
	run    string
	k      int
	bandLo []int
	rms    [][]float64
	window analysis.Window
}

func heatPanelOf(run string, s analysis.Split) heatPanel {
	h := heatPanel{run: run, k: s.K, window: s.Window}
	if s.HeatRMS == nil {
		return h
	}
	nb := len(s.HeatBands)
	h.rms = make([][]float64, nb)
	for a := range h.rms {
		h.rms[a] = make([]float64, nb)
		for b := range h.rms[a] {
			h.rms[a][b] = s.HeatRMS.At(a, b)
		}
		h.bandLo = append(h.bandLo, s.HeatBands[a].Lo)
	}
	return h
}

// Heatmap axis labels: ΔM's rows are output-side components (u_i), its
// columns input-side ones (v_j); ΔΣ is symmetric in feature directions.
const (
	weightX, weightY   = "input component j", "output component i"
	featureX, featureY = "feature direction j", "feature direction i"
)

// heatmap is a figure of binned |D| heatmaps side by side on one log colour
// scale, with a colour bar.
type heatmap struct {
	title, xLabel, yLabel, symbol string
	panels                        []heatPanel
}

// Save writes the heatmap as basePath.svg, .pdf and .png.
func (h heatmap) Save(basePath string) error {
	n := len(h.panels)
	size := figure.TwoColumn.WithHeight(2.7 * vg.Inch)
	if n == 1 {
		size = figure.OneColumn.WithHeight(3.0 * vg.Inch)
	} else if n == 2 {
		size = figure.TwoColumn.WithHeight(3.3 * vg.Inch)
	}
	cm := h.colorMap()
	images := make([]image.Image, n)
	for k, p := range h.panels {
		if p.rms != nil {
			images[k] = binnedImage(p.rms, p.bandLo, p.k, cm)
		}
	}
	return saveFormats(basePath, size, func(c draw.Canvas) { h.draw(c, cm, images) })
}

// colorMap is the log10 colour scale shared by the panels: Decades decades
// below the largest value's decade.
func (h heatmap) colorMap() palette.ColorMap {
	top := 0.0
	for _, p := range h.panels {
		for _, row := range p.rms {
			for _, v := range row {
				top = math.Max(top, v)
			}
		}
	}
	if top == 0 || math.IsNaN(top) {
		top = 1
	}
	cm := moreland.ExtendedBlackBody()
	cm.SetMax(math.Ceil(math.Log10(top)))
	cm.SetMin(cm.Max() - Decades)
	return cm
}

// paper is a figure.Figure saved through saveFormats.
type paper struct{ *figure.Figure }

// Save writes the figure as basePath.svg, .pdf and .png.
func (p paper) Save(basePath string) error { return saveFormats(basePath, p.Size, p.Draw) }

func (h heatmap) draw(c draw.Canvas, cm palette.ColorMap, images []image.Image) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	barWidth := vg.Points(50)
	main := draw.Crop(c, 0, -barWidth, 0, 0)
	strip := draw.Crop(c, c.Max.X-c.Min.X-barWidth, 0, 0, 0)
	plots := make([][]*plot.Plot, 1)
	for k, p := range h.panels {
		title := p.run
		if h.title != "" {
			title = p.run + " — " + h.title
		}
		pl := figure.NewPlot(title, h.xLabel, h.yLabel)
		plots[0] = append(plots[0], pl)
		if p.rms == nil {
			continue
		}
		size := float64(p.k)
		pl.Add(matrixImage{img: images[k], size: size})
		if !p.window.Empty() {
			pl.Add(windowBox{lo: float64(p.window.Start), hi: float64(p.window.End()), size: size,
				line: draw.LineStyle{Color: figure.SkyBlue, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(3), vg.Points(1.5)}}})
		}
		pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, size, 0, size
		pl.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(h.panels), PadX: vg.Points(10), PadTop: vg.Points(2),
		PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(2)}
	cells := plot.Align(plots, tiles, main)
	for k, pl := range plots[0] {
		pl.Draw(cells[0][k])
	}

	bar := figure.NewPlot("", "", "RMS |"+h.symbol+"|")
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.HideX()
	bar.Y.Tick.Marker = decadeTicks{}
	bar.Y.Min, bar.Y.Max = cm.Min(), cm.Max()
	// Align the bar's height with the heatmaps' data area.
	da := plots[0][0].DataCanvas(cells[0][0])
	barCanvas := strip
	barCanvas.Min.Y, barCanvas.Max.Y = da.Min.Y-vg.Points(1), da.Max.Y+vg.Points(1)
	barCanvas = draw.Crop(barCanvas, vg.Points(4), -vg.Points(2), 0, 0)
	bar.Draw(barCanvas)
}

// WriteFigures draws the figures of runs into dir and returns their base
// paths (each written as .svg, .pdf and .png):
//
//	profile_mean      ΔM diagonal vs off-diagonal along the component index, mean over layers
//	heatmap_mean      |ΔM| binned, log colour scale, mean over layers
//	feature_mean      ΔΣ_Y diagonal vs off-diagonal along the feature direction (runs with probes)
//	bands             ‖diag‖ and ‖off‖ by band of components, every run on one axis
//	checkpoints       forgetting and weight change along training (runs with checkpoints)
//	continual         average accuracy and backward transfer over a task sequence
//	layers/LAYER_profile, LAYER_heatmap, LAYER_feature   the same per layer (PerLayer)
//
// Layers are averaged only with layers of the same size q as the run's most
// common one; runs side by side share their axes and colour scale.
func WriteFigures(dir string, runs []analysis.Run, o FigureOptions) ([]string, error) {
	var written []string
	save := func(name string, s interface{ Save(string) error }) error {
		if f, ok := s.(*figure.Figure); ok {
			s = paper{f}
		}
		base := filepath.Join(dir, name)
		if err := s.Save(base); err != nil {
			return fmt.Errorf("figure %s: %w", name, err)
		}
		written = append(written, base)
		return nil
	}
	var profiles, features []profilePanel
	var heats []heatPanel
	var featureHeats []heatPanel
	for _, run := range runs {
		ws, fs := runSplits(run)
		if len(ws) > 0 {
			p, w, note, err := meanPanel(ws)
			if err != nil {
				return written, fmt.Errorf("run %s: %w", run.Name, err)
			}
			profiles = append(profiles, profilePanel{run: run.Name + note, profile: p, window: w})
			heats = append(heats, meanHeat(run.Name+note, ws, w))
		}
		if len(fs) > 0 {
			p, _, note, err := meanPanel(fs)
			if err != nil {
				return written, fmt.Errorf("run %s: %w", run.Name, err)
			}
			features = append(features, profilePanel{run: run.Name + note, profile: p})
			featureHeats = append(featureHeats, meanHeat(run.Name+note, fs, analysis.Window{}))
		}
	}
	if len(profiles) > 0 {
		f, err := profileFigure("", "component i (0 = largest σ)", "ΔM", profiles)
		if err != nil {
			return written, err
		}
		if err := save("profile_mean", f); err != nil {
			return written, err
		}
		if err := save("heatmap_mean", heatmap{xLabel: weightX, yLabel: weightY, symbol: "ΔM", panels: heats}); err != nil {
			return written, err
		}
		if err := save("bands", bandsFigure(runs)); err != nil {
			return written, err
		}
	}
	if len(features) > 0 {
		f, err := profileFigure("", "feature direction i (0 = most variance)", "ΔΣ", features)
		if err != nil {
			return written, err
		}
		if err := save("feature_mean", f); err != nil {
			return written, err
		}
		if err := save("feature_heatmap_mean", heatmap{xLabel: featureX, yLabel: featureY, symbol: "ΔΣ", panels: featureHeats}); err != nil {
			return written, err
		}
	}
	if hasCheckpoints(runs) {
		if err := save("checkpoints", checkpointFigure(runs)); err != nil {
			return written, err
		}
	}
	if hasContinual(runs) {
		if err := save("continual", continualFigure(runs)); err != nil {
			return written, err
		}
	}
	if !o.PerLayer {
		return written, nil
	}
	for _, layer := range layerNames(runs) {
		var prof, feat []profilePanel
		var heat []heatPanel
		for _, run := range runs {
			l, ok := findLayer(run, layer)
			if !ok {
				continue
			}
			prof = append(prof, profilePanel{run: run.Name, profile: l.Weight.Profile(), window: l.Weight.Window})
			heat = append(heat, heatPanelOf(run.Name, l.Weight.Split))
			if l.Feature != nil {
				feat = append(feat, profilePanel{run: run.Name, profile: l.Feature.Profile()})
			}
		}
		stem := filepath.Join("layers", fileSafe(layer))
		f, err := profileFigure(layer, "component i (0 = largest σ)", "ΔM", prof)
		if err != nil {
			return written, err
		}
		if err := save(stem+"_profile", f); err != nil {
			return written, err
		}
		if err := save(stem+"_heatmap", heatmap{title: layer, xLabel: weightX, yLabel: weightY, symbol: "ΔM", panels: heat}); err != nil {
			return written, err
		}
		if len(feat) > 0 {
			f, err := profileFigure(layer, "feature direction i (0 = most variance)", "ΔΣ", feat)
			if err != nil {
				return written, err
			}
			if err := save(stem+"_feature", f); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// runSplits returns the weight and feature splits of a run's layers.
func runSplits(run analysis.Run) (weight, feature []analysis.Split) {
	for _, l := range run.Layers {
		weight = append(weight, l.Weight.Split)
		if l.Feature != nil {
			feature = append(feature, l.Feature.Split)
		}
	}
	return weight, feature
}

// commonK returns the splits whose K is the most common (ties: largest K).
func commonK(splits []analysis.Split) []analysis.Split {
	count := map[int]int{}
	for _, s := range splits {
		count[s.K]++
	}
	best := -1
	for k, c := range count {
		if best < 0 || c > count[best] || (c == count[best] && k > best) {
			best = k
		}
	}
	var out []analysis.Split
	for _, s := range splits {
		if s.K == best {
			out = append(out, s)
		}
	}
	return out
}

// meanPanel averages the splits of the most common size; the window is kept
// when every averaged layer has the same one. note describes the average.
func meanPanel(splits []analysis.Split) (analysis.Profile, analysis.Window, string, error) {
	same := commonK(splits)
	p, err := analysis.MeanProfile(same)
	if err != nil {
		return analysis.Profile{}, analysis.Window{}, "", err
	}
	w := same[0].Window
	for _, s := range same {
		if s.Window != w {
			w = analysis.Window{}
		}
	}
	note := fmt.Sprintf(" (mean of %d layers)", len(same))
	if len(same) == 1 {
		note = ""
	}
	if len(same) < len(splits) {
		note = fmt.Sprintf(" (mean of %d layers with q=%d)", len(same), same[0].K)
	}
	return p, w, note, nil
}

// meanHeat averages the binned maps of the most common size as RMS.
func meanHeat(run string, splits []analysis.Split, w analysis.Window) heatPanel {
	same := commonK(splits)
	h := heatPanelOf(run, same[0])
	h.window = w
	if h.rms == nil {
		return h
	}
	nb := len(h.rms)
	acc := make([][]float64, nb)
	for a := range acc {
		acc[a] = make([]float64, nb)
	}
	used := 0
	for _, s := range same {
		if s.HeatRMS == nil || len(s.HeatBands) != nb {
			continue
		}
		used++
		for a := 0; a < nb; a++ {
			for b := 0; b < nb; b++ {
				v := s.HeatRMS.At(a, b)
				acc[a][b] += v * v
			}
		}
	}
	for a := range acc {
		for b := range acc[a] {
			acc[a][b] = math.Sqrt(acc[a][b] / float64(used))
		}
	}
	h.rms = acc
	return h
}

// bandsFigure compares runs band by band: ‖diag ΔM‖ and ‖off ΔM‖ (rows) per
// band of components, averaged over layers, one series per run.
func bandsFigure(runs []analysis.Run) *figure.Figure {
	diag := figure.NewPanel("diagonal ‖diag ΔM‖ (strength)", "band centre (fraction of spectrum)", "norm per band")
	off := figure.NewPanel("off-diagonal ‖off ΔM‖ by row (mixing)", "band centre (fraction of spectrum)", "norm per band")
	for i, run := range runs {
		ws, _ := runSplits(run)
		if len(ws) == 0 {
			continue
		}
		mb, err := analysis.MeanBands(ws)
		if err != nil {
			continue
		}
		xs := make([]float64, len(mb))
		d := make([]float64, len(mb))
		o := make([]float64, len(mb))
		for b, m := range mb {
			xs[b] = (m.Lo + m.Hi) / 2
			d[b] = m.DiagNorm
			o[b] = m.OffRowNorm
		}
		name := run.Name
		if w := ws[0].Window; !w.Empty() {
			name = fmt.Sprintf("%s, window %v of %d", run.Name, w, ws[0].K)
		}
		_ = diag.Line(i, name, xs, d)
		_ = off.Line(i, name, xs, o)
	}
	for _, p := range []*figure.Panel{diag, off} {
		p.Plot.X.Min, p.Plot.X.Max = 0, 1
		p.Plot.Y.Min = 0
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{diag, off}}, Size: figure.TwoColumn.WithHeight(2.9 * vg.Inch), Legend: figure.LegendBelow}
}

// checkpointFigure follows runs along training: accuracy drop, KL and the
// off/diagonal ratio of the weight change.
func checkpointFigure(runs []analysis.Run) *figure.Figure {
	drop := figure.NewPanel("old-task forgetting", "training step", "drop (points)")
	kl := figure.NewPanel("drift from the base model", "training step", "KL (nats)")
	mix := figure.NewPanel("weight change ‖off ΔM‖/‖diag ΔM‖", "training step", "ratio")
	for i, run := range runs {
		if len(run.Checkpoints) == 0 {
			continue
		}
		cs := append([]analysis.CheckpointSummary(nil), run.Checkpoints...)
		sort.Slice(cs, func(a, b int) bool { return cs[a].Step < cs[b].Step })
		var xs, d, k, r []float64
		for _, c := range cs {
			xs = append(xs, float64(c.Step))
			d = append(d, c.AccuracyDrop)
			k = append(k, c.MeanKL)
			r = append(r, ratio(c.OffNorm, c.DiagNorm))
		}
		_ = drop.Line(i, run.Name, xs, d)
		_ = kl.Line(i, run.Name, xs, k)
		_ = mix.Line(i, run.Name, xs, r)
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{drop, kl, mix}}, Size: figure.TwoColumn.WithHeight(2.6 * vg.Inch), Legend: figure.LegendBelow}
}

// continualFigure follows runs over a task sequence: average accuracy and
// backward transfer after each stage.
func continualFigure(runs []analysis.Run) *figure.Figure {
	acc := figure.NewPanel("average accuracy on tasks seen", "tasks trained", "ACC (%)")
	bwt := figure.NewPanel("backward transfer", "tasks trained", "BWT (points)")
	var stages []float64
	for i, run := range runs {
		c := run.Continual
		if c == nil {
			continue
		}
		for len(stages) < len(c.Stages) {
			stages = append(stages, float64(len(stages)+1))
		}
		var xs, a, b []float64
		for _, st := range c.Stages {
			xs = append(xs, float64(st.Stage+1))
			a = append(a, 100*st.AverageAccuracy)
			b = append(b, 100*st.BackwardTransfer)
		}
		_ = acc.Line(i, run.Name, xs, a)
		_ = bwt.Line(i, run.Name, xs, b)
	}
	for _, p := range []*figure.Panel{acc, bwt} {
		p.Plot.X.Tick.Marker = figure.TicksAt(stages...)
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{acc, bwt}}, Size: figure.TwoColumn.WithHeight(2.6 * vg.Inch), Legend: figure.LegendBelow}
}

func layerNames(runs []analysis.Run) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range runs {
		for _, l := range r.Layers {
			if !seen[l.Name] {
				seen[l.Name] = true
				names = append(names, l.Name)
			}
		}
	}
	return names
}

func findLayer(run analysis.Run, name string) (analysis.Layer, bool) {
	for _, l := range run.Layers {
		if l.Name == name {
			return l, true
		}
	}
	return analysis.Layer{}, false
}

// fileSafe maps a layer name to a file name stem.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}
