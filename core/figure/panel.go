package figure

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// LegendPlacement says where a legend goes.
type LegendPlacement int

const (
	// LegendAuto: inside the data area, in the corner covering the fewest data
	// points and lines (none); outside when every corner covers data.
	LegendAuto LegendPlacement = iota
	LegendTopRight
	LegendTopLeft
	LegendBottomRight
	LegendBottomLeft
	// LegendRight is outside, right of the panel(s).
	LegendRight
	// LegendBelow is outside, under the panel(s), in as many columns as fit.
	LegendBelow
	// LegendNone draws no legend.
	LegendNone
)

func (l LegendPlacement) inside() bool { return l >= LegendTopRight && l <= LegendBottomLeft }

func (l LegendPlacement) outside() bool { return l == LegendRight || l == LegendBelow }

// Panel is one set of axes: a styled gonum plot plus the legend entries and the
// data geometry that legend placement avoids. Add series with its methods; the
// underlying Plot can be adjusted directly (axis ranges, ticks, LogX).
type Panel struct {
	Plot   *plot.Plot
	Legend LegendPlacement

	entries []legendEntry
	// avoid holds the data geometry, in data coordinates, that an inside
	// legend must not cover: polylines (a single point is a polyline of one).
	avoid [][]plotter.XY
	// hlines are horizontal reference lines (y and band) spanning the panel.
	hlines []hspan
}

type legendEntry struct {
	name   string
	thumbs []plot.Thumbnailer
}

type hspan struct{ y, lo, hi float64 }

// NewPanel returns an empty panel in prism's style (see NewPlot).
func NewPanel(title, xLabel, yLabel string) *Panel {
	return &Panel{Plot: NewPlot(title, xLabel, yLabel)}
}

func checkSeries(name string, xs []float64, others map[string][]float64) error {
	for what, v := range others {
		if v != nil && len(v) != len(xs) {
			return fmt.Errorf("figure: series %q: %s has %d values, expected %d (one per x)", name, what, len(v), len(xs))
		}
	}
	return nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// xys pairs xs and ys, dropping points where either is NaN or ±Inf (a missing
// value leaves a gap, not a crash).
func xys(xs, ys []float64) plotter.XYs {
	out := make(plotter.XYs, 0, len(xs))
	for i := range xs {
		if finite(xs[i], ys[i]) {
			out = append(out, plotter.XY{X: xs[i], Y: ys[i]})
		}
	}
	return out
}

func (p *Panel) addEntry(name string, thumbs ...plot.Thumbnailer) {
	if name == "" {
		return
	}
	p.entries = append(p.entries, legendEntry{name: name, thumbs: thumbs})
}

// AddEntry adds a legend entry for plotters added directly to p.Plot.
func (p *Panel) AddEntry(name string, thumbs ...plot.Thumbnailer) { p.addEntry(name, thumbs...) }

// Avoid registers a polyline (data coordinates) that an inside legend must not
// cover, for plotters added directly to p.Plot.
func (p *Panel) Avoid(xs, ys []float64) {
	if len(xs) == len(ys) {
		p.avoid = append(p.avoid, xys(xs, ys))
	}
}

// Line draws series i as a line with markers at the data points.
func (p *Panel) Line(i int, name string, xs, ys []float64) error {
	return p.MeanStd(i, name, xs, ys, nil)
}

// MeanStd draws series i as mean ± std: a line with markers through mean and,
// when std is not nil, a shaded band from mean−std to mean+std. Points with a
// NaN mean are left out; a NaN std draws no band there.
func (p *Panel) MeanStd(i int, name string, xs, mean, std []float64) error {
	if err := checkSeries(name, xs, map[string][]float64{"mean": mean, "std": std}); err != nil {
		return err
	}
	s := SeriesStyle(i)
	pts := xys(xs, mean)
	if len(pts) == 0 {
		return nil
	}
	sorted := append(plotter.XYs(nil), pts...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].X < sorted[b].X })
	th := &thumb{style: s, line: true, glyph: true}
	if std != nil {
		var upper, lower plotter.XYs
		for k := range xs {
			if finite(xs[k], mean[k], std[k]) {
				upper = append(upper, plotter.XY{X: xs[k], Y: mean[k] + std[k]})
				lower = append(lower, plotter.XY{X: xs[k], Y: mean[k] - std[k]})
			}
		}
		if len(upper) > 1 {
			sort.SliceStable(upper, func(a, b int) bool { return upper[a].X < upper[b].X })
			sort.SliceStable(lower, func(a, b int) bool { return lower[a].X < lower[b].X })
			ring := append(plotter.XYs(nil), upper...)
			for k := len(lower) - 1; k >= 0; k-- {
				ring = append(ring, lower[k])
			}
			poly, err := plotter.NewPolygon(ring)
			if err != nil {
				return fmt.Errorf("figure: series %q band: %w", name, err)
			}
			poly.Color = s.BandColor()
			poly.LineStyle.Width = 0
			p.Plot.Add(poly)
			p.avoid = append(p.avoid, upper, lower)
			th.band = true
		} else if len(upper) == 1 {
			bars, err := plotter.NewYErrorBars(yErrs{pts: pts, lo: []float64{std[0]}, hi: []float64{std[0]}})
			if err == nil {
				bars.LineStyle = draw.LineStyle{Color: s.Color, Width: vg.Points(0.8)}
				bars.CapWidth = vg.Points(4)
				p.Plot.Add(bars)
			}
		}
	}
	line, err := plotter.NewLine(sorted)
	if err != nil {
		return fmt.Errorf("figure: series %q: %w", name, err)
	}
	line.LineStyle = s.LineStyle()
	marks, err := plotter.NewScatter(sorted)
	if err != nil {
		return fmt.Errorf("figure: series %q: %w", name, err)
	}
	marks.GlyphStyle = s.GlyphStyle()
	p.Plot.Add(line, marks)
	p.avoid = append(p.avoid, sorted)
	p.addEntry(name, th)
	return nil
}

// Points draws series i as markers without a line and, when yerr is not nil,
// symmetric error bars y ± yerr (e.g. ± std over seeds).
func (p *Panel) Points(i int, name string, xs, ys, yerr []float64) error {
	if err := checkSeries(name, xs, map[string][]float64{"ys": ys, "yerr": yerr}); err != nil {
		return err
	}
	s := SeriesStyle(i)
	pts := xys(xs, ys)
	if len(pts) == 0 {
		return nil
	}
	if yerr != nil {
		var bp plotter.XYs
		var e []float64
		for k := range xs {
			if finite(xs[k], ys[k], yerr[k]) {
				bp = append(bp, plotter.XY{X: xs[k], Y: ys[k]})
				e = append(e, yerr[k])
				p.avoid = append(p.avoid, []plotter.XY{{X: xs[k], Y: ys[k] - yerr[k]}, {X: xs[k], Y: ys[k] + yerr[k]}})
			}
		}
		if len(bp) > 0 {
			bars, err := plotter.NewYErrorBars(yErrs{pts: bp, lo: e, hi: e})
			if err != nil {
				return fmt.Errorf("figure: series %q error bars: %w", name, err)
			}
			bars.LineStyle = draw.LineStyle{Color: s.Color, Width: vg.Points(0.8)}
			bars.CapWidth = vg.Points(3)
			p.Plot.Add(bars)
		}
	}
	marks, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("figure: series %q: %w", name, err)
	}
	marks.GlyphStyle = s.GlyphStyle()
	p.Plot.Add(marks)
	for _, pt := range pts {
		p.avoid = append(p.avoid, []plotter.XY{pt})
	}
	p.addEntry(name, &thumb{style: s, glyph: true})
	return nil
}

// Scatter draws series i as markers only.
func (p *Panel) Scatter(i int, name string, xs, ys []float64) error {
	return p.Points(i, name, xs, ys, nil)
}

// HLine draws a horizontal reference line at y across the whole panel in
// series i's colour and dash (no marker), with a band y ± std when std > 0.
// Use it for baselines that have no x (plain LoRA, full fine-tuning).
func (p *Panel) HLine(i int, name string, y, std float64) error {
	if !finite(y) {
		return fmt.Errorf("figure: reference line %q: y = %v, expected a finite number", name, y)
	}
	if !finite(std) || std < 0 {
		std = 0
	}
	s := SeriesStyle(i)
	ls := s.LineStyle()
	ls.Width = vg.Points(RefLineWidth)
	if ls.Dashes == nil {
		ls.Dashes = []vg.Length{vg.Points(5), vg.Points(2)}
	}
	h := &hlinePlotter{y: y, lo: y - std, hi: y + std, line: ls}
	th := &thumb{style: s, line: true, lineStyle: &ls}
	if std > 0 {
		h.band = s.BandColor()
		th.band = true
	}
	p.Plot.Add(h)
	p.hlines = append(p.hlines, hspan{y: y, lo: y - std, hi: y + std})
	p.addEntry(name, th)
	return nil
}

// Front highlights the points of a Pareto front: a large open ring around
// each and a thin black staircase through them in x order (from each point
// horizontally to the next point's x, then vertically to it) — the boundary
// of the region the front dominates when x is minimised and y maximised (or
// x maximised and y minimised).
func (p *Panel) Front(name string, xs, ys []float64) error {
	if err := checkSeries(name, xs, map[string][]float64{"ys": ys}); err != nil {
		return err
	}
	marks := xys(xs, ys)
	if len(marks) == 0 {
		return nil
	}
	sort.SliceStable(marks, func(a, b int) bool { return marks[a].X < marks[b].X })
	pts := plotter.XYs{marks[0]}
	for i := 1; i < len(marks); i++ {
		pts = append(pts, plotter.XY{X: marks[i].X, Y: marks[i-1].Y}, marks[i])
	}
	ls := draw.LineStyle{Color: color.NRGBA{A: 0xB0}, Width: vg.Points(0.7)}
	gs := draw.GlyphStyle{Color: Black, Radius: vg.Points(GlyphRadius + 2), Shape: draw.RingGlyph{}}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("figure: front %q: %w", name, err)
	}
	line.LineStyle = ls
	rings, err := plotter.NewScatter(marks)
	if err != nil {
		return fmt.Errorf("figure: front %q: %w", name, err)
	}
	rings.GlyphStyle = gs
	p.Plot.Add(line, rings)
	p.avoid = append(p.avoid, pts)
	p.addEntry(name, &thumb{line: true, lineStyle: &ls, glyph: true, glyphStyle: &gs})
	return nil
}

// yErrs adapts points with asymmetric errors to plotter.YErrorBars.
type yErrs struct {
	pts    plotter.XYs
	lo, hi []float64
}

func (e yErrs) Len() int                        { return len(e.pts) }
func (e yErrs) XY(i int) (float64, float64)     { return e.pts[i].X, e.pts[i].Y }
func (e yErrs) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

// hlinePlotter draws a horizontal line (and optional band) across the whole
// data area. It widens the y range only.
type hlinePlotter struct {
	y, lo, hi float64
	line      draw.LineStyle
	band      color.Color
}

func (h *hlinePlotter) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	if h.band != nil {
		lo, hi := trY(h.lo), trY(h.hi)
		rect := []vg.Point{{X: c.Min.X, Y: lo}, {X: c.Max.X, Y: lo}, {X: c.Max.X, Y: hi}, {X: c.Min.X, Y: hi}}
		c.FillPolygon(h.band, c.ClipPolygonY(rect))
	}
	y := trY(h.y)
	if y >= c.Min.Y && y <= c.Max.Y {
		c.StrokeLine2(h.line, c.Min.X, y, c.Max.X, y)
	}
}

func (h *hlinePlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), h.lo, h.hi
}

// thumb is a legend thumbnail: optional band, line and marker of a style.
type thumb struct {
	style      Style
	band       bool
	line       bool
	glyph      bool
	lineStyle  *draw.LineStyle
	glyphStyle *draw.GlyphStyle
}

func (t *thumb) Thumbnail(c *draw.Canvas) {
	mid := c.Center()
	if t.band {
		h := (c.Max.Y - c.Min.Y) * 0.45
		rect := []vg.Point{{X: c.Min.X, Y: mid.Y - h}, {X: c.Max.X, Y: mid.Y - h}, {X: c.Max.X, Y: mid.Y + h}, {X: c.Min.X, Y: mid.Y + h}}
		c.FillPolygon(t.style.BandColor(), rect)
	}
	if t.line {
		ls := t.style.LineStyle()
		if t.lineStyle != nil {
			ls = *t.lineStyle
		}
		c.StrokeLine2(ls, c.Min.X, mid.Y, c.Max.X, mid.Y)
	}
	if t.glyph {
		gs := t.style.GlyphStyle()
		if t.glyphStyle != nil {
			gs = *t.glyphStyle
		}
		c.DrawGlyphNoClip(gs, mid)
	}
}
