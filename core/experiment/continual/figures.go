package continual

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/prism-lora/prism/core/figure"
)

// ShortTask is a task's name for axis ticks: the dataset without "-mnist",
// a derived task's transform ("fashion-mnist" → "fashion", "mnist/rot90" →
// "rot90").
func ShortTask(name string) string {
	base, transform, ok := strings.Cut(name, "/")
	if ok {
		return transform
	}
	if s := strings.TrimSuffix(base, "-mnist"); s != "" {
		return s
	}
	return base
}

// labelTicks puts one labelled tick at the centre of each cell 0…n−1.
type labelTicks []string

func (t labelTicks) Ticks(float64, float64) []plot.Tick {
	out := make([]plot.Tick, len(t))
	for i, l := range t {
		out[i] = plot.Tick{Value: float64(i) + 0.5, Label: l}
	}
	return out
}

// categoryTicks labels the integer positions 0…n−1.
type categoryTicks []string

func (t categoryTicks) Ticks(float64, float64) []plot.Tick {
	out := make([]plot.Tick, len(t))
	for i, l := range t {
		out[i] = plot.Tick{Value: float64(i), Label: l}
	}
	return out
}

// cells draws a T×T matrix of percentages as coloured cells with their
// values written in, row i at y ∈ [i, i+1] (use an inverted y axis to read
// it as a matrix); NaN cells stay empty.
type cells struct {
	values [][]float64
	cm     palette.ColorMap
}

func (m cells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	// White over the whole data area first: no grid lines through the matrix.
	c.FillPolygon(color.White, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
	style := draw.TextStyle{Font: font.From(figure.Font, vg.Points(figure.TickSize)), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YCenter}
	for i, row := range m.values {
		for j, v := range row {
			if math.IsNaN(v) {
				continue
			}
			col, err := m.cm.At(math.Max(m.cm.Min(), math.Min(m.cm.Max(), v)))
			if err != nil {
				continue
			}
			x0, x1 := trX(float64(j)), trX(float64(j+1))
			y0, y1 := trY(float64(i)), trY(float64(i+1))
			c.FillPolygon(col, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
			style.Color = color.Black
			if luminance(col) < 0.45 {
				style.Color = color.White
			}
			c.FillText(style, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, fmt.Sprintf("%.0f", v))
		}
	}
}

func (m cells) DataRange() (xmin, xmax, ymin, ymax float64) {
	n := float64(len(m.values))
	return 0, n, 0, n
}

// luminance is the relative luminance of c in [0, 1] (sRGB weights, no gamma).
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)) / 0xffff
}

// MatrixFigure is the accuracy matrices of several series side by side
// (mean over seeds, %), on one colour scale from 0 to 100 with a colour bar:
// row i is the model after training task i, column j the task evaluated.
type MatrixFigure struct {
	Series []Series
	// Columns is the number of heatmaps per row (0: up to 5).
	Columns int
}

func (f MatrixFigure) layout() (rows, cols int) {
	cols = f.Columns
	if cols <= 0 {
		cols = min(5, len(f.Series))
	}
	return (len(f.Series) + cols - 1) / cols, cols
}

// size is two columns wide, about 1.9 in per row of heatmaps.
func (f MatrixFigure) size() figure.Size {
	rows, _ := f.layout()
	return figure.TwoColumn.WithHeight(vg.Length(rows)*1.9*vg.Inch + 0.2*vg.Inch)
}

// Save writes the figure as basePath.svg, .pdf and .png.
func (f MatrixFigure) Save(basePath string) error {
	if len(f.Series) == 0 {
		return fmt.Errorf("%s: no series to draw", basePath)
	}
	return figure.SaveDrawing(basePath, f.size(), f.draw)
}

// Render draws the figure in one format ("svg", "pdf" or "png").
func (f MatrixFigure) Render(format string) ([]byte, error) {
	if len(f.Series) == 0 {
		return nil, fmt.Errorf("accuracy matrices: no series to draw")
	}
	return figure.RenderDrawing(format, f.size(), f.draw)
}

func accuracyColorMap() palette.ColorMap {
	cm := moreland.BlackBody()
	cm.SetMin(0)
	cm.SetMax(100)
	return cm
}

func (f MatrixFigure) draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	cm := accuracyColorMap()
	rows, cols := f.layout()
	barWidth := vg.Points(46)
	main := draw.Crop(c, 0, -barWidth, 0, 0)
	strip := draw.Crop(c, c.Max.X-c.Min.X-barWidth, 0, 0, 0)
	fig := &figure.Figure{Size: f.size(), Legend: figure.LegendNone}
	var first *plot.Plot
	for r := 0; r < rows; r++ {
		row := make([]*figure.Panel, cols)
		for k := 0; k < cols; k++ {
			idx := r*cols + k
			if idx >= len(f.Series) {
				continue
			}
			s := f.Series[idx]
			xl, yl := "", ""
			if r == rows-1 {
				xl = "accuracy on task"
			}
			if k == 0 {
				yl = "after training"
			}
			p := figure.NewPlot(s.Name, xl, yl)
			T := len(s.Tasks)
			values := make([][]float64, T)
			names := make([]string, T)
			for i := range values {
				values[i] = make([]float64, T)
				for j := range values[i] {
					values[i][j] = 100 * s.Mean[i][j]
				}
				names[i] = ShortTask(s.Tasks[i])
			}
			p.Add(cells{values: values, cm: cm})
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(T), 0, float64(T)
			p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
			p.X.Tick.Marker, p.Y.Tick.Marker = labelTicks(names), labelTicks(names)
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YTop
			if k > 0 {
				p.Y.Tick.Label.Color = color.Transparent
			}
			if first == nil {
				first = p
			}
			row[k] = &figure.Panel{Plot: p, Legend: figure.LegendNone}
		}
		fig.Panels = append(fig.Panels, row)
	}
	fig.Draw(main)

	bar := figure.NewPlot("", "", "accuracy (%)")
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.HideX()
	bar.Y.Min, bar.Y.Max = cm.Min(), cm.Max()
	bar.Y.Tick.Marker = figure.TicksAt(0, 25, 50, 75, 100)
	barCanvas := draw.Crop(strip, vg.Points(6), -vg.Points(2), vg.Points(30), -vg.Points(20))
	bar.Draw(barCanvas)
}

// categoryPanel is a panel with one labelled position per series.
func categoryPanel(title, yLabel string, series []Series) *figure.Panel {
	p := figure.NewPanel(title, "", yLabel)
	p.Legend = figure.LegendNone
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = strings.Replace(s.Name, " ", "\n", 1) // "window\nf=0.25", "full\nFT"
	}
	p.Plot.X.Tick.Marker = categoryTicks(names)
	p.Plot.X.Min, p.Plot.X.Max = -0.6, float64(len(series))-0.4
	return p
}

// zeroLine is a thin grey horizontal line at y = 0 that does not widen the axes.
type zeroLine struct{}

func (zeroLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	if p.Y.Min > 0 || p.Y.Max < 0 {
		return
	}
	c.StrokeLine2(draw.LineStyle{Color: color.Gray{Y: 0x80}, Width: vg.Points(0.6)}, trX(p.X.Min), trY(0), trX(p.X.Max), trY(0))
}

// padY sets p's y range to [lo, hi] of the values (with their ± spreads)
// widened by 8% on each side, so no marker sits on the frame.
func padY(p *figure.Panel, vals ...float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo > hi {
		return
	}
	d := math.Max(0.08*(hi-lo), 0.5)
	p.Plot.Y.Min, p.Plot.Y.Max = lo-d, hi+d
}

// padX is padY for the x axis.
func padX(p *figure.Panel, vals ...float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo > hi {
		return
	}
	d := math.Max(0.08*(hi-lo), 0.5)
	p.Plot.X.Min, p.Plot.X.Max = lo-d, hi+d
}

// TransferFigure shows, per series, the average accuracy over all tasks at
// the end of the sequence (ACC) and the backward transfer (BWT), mean ± std
// over seeds.
func TransferFigure(series []Series) *figure.Figure {
	acc := categoryPanel("average accuracy at the end", "ACC (%)", series)
	bwt := categoryPanel("backward transfer", "BWT (points)", series)
	bwt.Plot.Add(zeroLine{})
	var accs, bwts []float64
	for k, s := range series {
		x := []float64{float64(k)}
		_ = acc.Points(s.Style, s.Name, x, []float64{s.ACC.Mean}, []float64{s.ACC.Std})
		_ = bwt.Points(s.Style, s.Name, x, []float64{s.BWT.Mean}, []float64{s.BWT.Std})
		accs = append(accs, s.ACC.Mean-s.ACC.Std, s.ACC.Mean+s.ACC.Std)
		bwts = append(bwts, s.BWT.Mean-s.BWT.Std, s.BWT.Mean+s.BWT.Std, 0)
	}
	padY(acc, accs...)
	padY(bwt, bwts...)
	return &figure.Figure{Panels: [][]*figure.Panel{{acc}, {bwt}}, Size: figure.TwoColumn.WithHeight(4.4 * vg.Inch), Legend: figure.LegendNone}
}

// TradeoffFigure plots each series' average accuracy at the end against its
// backward transfer (mean, with ± std of ACC over seeds as error bars):
// up and to the right is better.
func TradeoffFigure(series []Series) *figure.Figure {
	p := figure.NewPanel("accuracy vs backward transfer", "BWT (points)", "ACC (%)")
	var xs, ys []float64
	for _, s := range series {
		_ = p.Points(s.Style, s.Name, []float64{s.BWT.Mean}, []float64{s.ACC.Mean}, []float64{s.ACC.Std})
		xs = append(xs, s.BWT.Mean)
		ys = append(ys, s.ACC.Mean-s.ACC.Std, s.ACC.Mean+s.ACC.Std)
	}
	padX(p, xs...)
	padY(p, ys...)
	return &figure.Figure{Panels: [][]*figure.Panel{{p}}, Size: figure.OneColumn.WithHeight(3.3 * vg.Inch), Legend: figure.LegendBelow}
}

// StagesFigure follows the accuracy on each task that can be forgotten
// (every task but the last) after every stage from its own on: one panel
// per task, one line per series (mean over seeds).
func StagesFigure(series []Series) *figure.Figure {
	if len(series) == 0 {
		return &figure.Figure{Panels: [][]*figure.Panel{{figure.NewPanel("", "", "")}}, Size: figure.TwoColumn}
	}
	tasks := series[0].Tasks
	T := len(tasks)
	var row []*figure.Panel
	for j := 0; j < max(1, T-1); j++ {
		p := figure.NewPanel(fmt.Sprintf("task %d: %s", j, tasks[j]), "after training task", "accuracy (%)")
		var xs []float64
		var labels []string
		for i := j; i < T; i++ {
			xs = append(xs, float64(i))
			labels = append(labels, fmt.Sprintf("%d %s", i, ShortTask(tasks[i])))
		}
		for _, s := range series {
			var ys []float64
			for i := j; i < T; i++ {
				ys = append(ys, 100*s.Mean[i][j])
			}
			_ = p.Line(s.Style, s.Name, xs, ys)
		}
		p.Plot.X.Tick.Marker = offsetTicks{labels: labels, first: j}
		p.Plot.X.Min, p.Plot.X.Max = float64(j)-0.15, float64(T-1)+0.15
		row = append(row, p)
	}
	return &figure.Figure{Panels: [][]*figure.Panel{row}, Size: figure.TwoColumn.WithHeight(3.0 * vg.Inch), Legend: figure.LegendBelow}
}

// offsetTicks labels integer positions first, first+1, ….
type offsetTicks struct {
	labels []string
	first  int
}

func (t offsetTicks) Ticks(float64, float64) []plot.Tick {
	out := make([]plot.Tick, len(t.labels))
	for i, l := range t.labels {
		out[i] = plot.Tick{Value: float64(t.first + i), Label: l}
	}
	return out
}

// WriteFigures draws every figure of the series into dir and returns the
// base paths written (each as .svg, .pdf and .png):
//
//	accuracy_matrices   the mean accuracy matrix of every series (MatrixFigure)
//	transfer            ACC and BWT per series (TransferFigure)
//	acc_vs_bwt          ACC against BWT (TradeoffFigure)
//	stages              each task's accuracy along the sequence (StagesFigure)
func WriteFigures(dir string, series []Series) ([]string, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("continual figures: no finished runs to draw")
	}
	var written []string
	for _, f := range []struct {
		name string
		fig  interface{ Save(string) error }
	}{
		{"accuracy_matrices", MatrixFigure{Series: series}},
		{"transfer", TransferFigure(series)},
		{"acc_vs_bwt", TradeoffFigure(series)},
		{"stages", StagesFigure(series)},
	} {
		base := filepath.Join(dir, f.name)
		if err := f.fig.Save(base); err != nil {
			return written, fmt.Errorf("figure %s: %w", f.name, err)
		}
		written = append(written, base)
	}
	return written, nil
}
