package figure

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Okabe–Ito colours (Okabe & Ito 2008, "Color Universal Design"): eight
// colours that stay distinguishable under the common colour-vision deficiencies.
var (
	Black         = color.NRGBA{R: 0x00, G: 0x00, B: 0x00, A: 0xff}
	Orange        = color.NRGBA{R: 0xE6, G: 0x9F, B: 0x00, A: 0xff}
	SkyBlue       = color.NRGBA{R: 0x56, G: 0xB4, B: 0xE9, A: 0xff}
	BluishGreen   = color.NRGBA{R: 0x00, G: 0x9E, B: 0x73, A: 0xff}
	Yellow        = color.NRGBA{R: 0xF0, G: 0xE4, B: 0x42, A: 0xff}
	Blue          = color.NRGBA{R: 0x00, G: 0x72, B: 0xB2, A: 0xff}
	Vermillion    = color.NRGBA{R: 0xD5, G: 0x5E, B: 0x00, A: 0xff}
	ReddishPurple = color.NRGBA{R: 0xCC, G: 0x79, B: 0xA7, A: 0xff}
)

// Palette is the series colour order: the Okabe–Ito colours, strongest
// contrast on white first; yellow, hard to see on white, comes last.
var Palette = []color.NRGBA{Blue, Vermillion, BluishGreen, ReddishPurple, Orange, SkyBlue, Black, Yellow}

// Dashes are the line dash patterns by series (nil = solid). Their count (5)
// is coprime with the palette's (8), so colour+dash pairs repeat only after 40
// series.
var Dashes = [][]vg.Length{
	nil,
	{vg.Points(4), vg.Points(2)},
	{vg.Points(1), vg.Points(1.5)},
	{vg.Points(5), vg.Points(1.5), vg.Points(1), vg.Points(1.5)},
	{vg.Points(2), vg.Points(2)},
}

// Glyphs are the marker shapes by series (7 shapes, coprime with the palette).
var Glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{},
	draw.SquareGlyph{},
	draw.TriangleGlyph{},
	draw.PyramidGlyph{},
	draw.RingGlyph{},
	draw.BoxGlyph{},
	draw.CrossGlyph{},
}

// Line widths, marker radius and font sizes, in points, chosen for figures
// printed at their nominal size in a two-column paper (8 pt text, 6.5 pt ticks).
const (
	LineWidth     = 1.1
	RefLineWidth  = 1.0
	AxisLineWidth = 0.6
	GlyphRadius   = 2.0
	TitleSize     = 8.5
	LabelSize     = 8
	TickSize      = 6.5
	LegendSize    = 6.5
	// BandAlpha is the opacity of a mean ± std band (0..255).
	BandAlpha = 0x38
	// PNGDPI is the resolution of the .png Save writes.
	PNGDPI = 200
)

// Font is the typeface of every text element: Liberation Sans (metric
// compatible with Arial/Helvetica), embedded in gonum/plot, so text is
// identical on every machine.
var Font = font.Font{Typeface: "Liberation", Variant: "Sans"}

// Size is a figure's physical size.
type Size struct{ Width, Height vg.Length }

// Paper sizes: a single column of a two-column paper (3.5 in, IEEE/ACM/NeurIPS
// column ≈ 3.25–3.5 in) and the full text width (7.16 in, IEEE two-column).
var (
	OneColumn = Size{Width: 3.5 * vg.Inch, Height: 2.5 * vg.Inch}
	TwoColumn = Size{Width: 7.16 * vg.Inch, Height: 2.6 * vg.Inch}
)

// WithHeight returns s with its height replaced.
func (s Size) WithHeight(h vg.Length) Size { s.Height = h; return s }

// Style is how one series is drawn.
type Style struct {
	Color  color.NRGBA
	Dashes []vg.Length
	Glyph  draw.GlyphDrawer
}

// MethodOrder gives each built-in fine-tuning method a fixed series index
// (its position), so a method has the same colour, dash and marker in every
// prism figure: experiment plots, continual figures and notebook curves.
var MethodOrder = []string{"window", "pissa", "milora", "lora", "full", "mid", "head", "dora", "olora"}

// MethodSeries is the fixed series index of a built-in method (MethodOrder).
func MethodSeries(method string) (int, bool) {
	for i, m := range MethodOrder {
		if m == method {
			return i, true
		}
	}
	return 0, false
}

// SeriesIndices gives each named series its SeriesStyle index: a built-in
// method (MethodSeries) keeps its fixed index; every other series, and a
// method named again, takes the lowest index no series of the list takes, in
// order — so series that are not methods never borrow a present method's look.
func SeriesIndices(names []string) []int {
	out := make([]int, len(names))
	used := map[int]bool{}
	for i, name := range names {
		out[i] = -1
		if idx, ok := MethodSeries(name); ok && !used[idx] {
			out[i] = idx
			used[idx] = true
		}
	}
	next := 0
	for i := range out {
		if out[i] >= 0 {
			continue
		}
		for used[next] {
			next++
		}
		out[i] = next
		used[next] = true
	}
	return out
}

// SeriesStyle is the style of series i (i ≥ 0; cycles through Palette,
// Dashes and Glyphs). The same i gives the same look in every figure.
func SeriesStyle(i int) Style {
	if i < 0 {
		i = -i
	}
	return Style{
		Color:  Palette[i%len(Palette)],
		Dashes: Dashes[i%len(Dashes)],
		Glyph:  Glyphs[i%len(Glyphs)],
	}
}

// LineStyle is the series' line.
func (s Style) LineStyle() draw.LineStyle {
	return draw.LineStyle{Color: s.Color, Width: vg.Points(LineWidth), Dashes: s.Dashes}
}

// GlyphStyle is the series' marker.
func (s Style) GlyphStyle() draw.GlyphStyle {
	return draw.GlyphStyle{Color: s.Color, Radius: vg.Points(GlyphRadius), Shape: s.Glyph}
}

// BandColor is the series' colour at band opacity, for ± std shading.
func (s Style) BandColor() color.NRGBA {
	c := s.Color
	c.A = BandAlpha
	return c
}

func textStyle(size float64) text.Style {
	return text.Style{
		Color:   color.Black,
		Font:    font.From(Font, vg.Points(size)),
		Handler: plot.DefaultTextHandler,
	}
}

// NewPlot returns a gonum plot in prism's style: fonts, axis lines, light grid.
// Empty strings leave the title or an axis label out. Label axes with units,
// e.g. "learning rate (log scale)" or "accuracy (%)".
func NewPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle = textStyle(TitleSize)
	p.Title.TextStyle.XAlign = draw.XCenter
	p.Title.TextStyle.YAlign = draw.YTop
	p.Title.Padding = vg.Points(3)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.LineStyle.Width = vg.Points(AxisLineWidth)
		ax.Padding = vg.Points(2)
		ax.Tick.LineStyle.Width = vg.Points(AxisLineWidth)
		ax.Tick.Length = vg.Points(3)
		ax.Label.Padding = vg.Points(2)
	}
	p.X.Label.Text = xLabel
	p.X.Label.TextStyle = textStyle(LabelSize)
	p.X.Label.TextStyle.XAlign = draw.XCenter
	p.X.Label.TextStyle.YAlign = draw.YBottom
	p.Y.Label.Text = yLabel
	p.Y.Label.TextStyle = textStyle(LabelSize)
	p.Y.Label.TextStyle.XAlign = draw.XCenter
	p.Y.Label.TextStyle.YAlign = draw.YBottom
	p.X.Tick.Label = textStyle(TickSize)
	p.X.Tick.Label.XAlign = draw.XCenter
	p.X.Tick.Label.YAlign = draw.YTop
	p.Y.Tick.Label = textStyle(TickSize)
	p.Y.Tick.Label.XAlign = draw.XRight
	p.Y.Tick.Label.YAlign = draw.YCenter
	p.Legend.TextStyle = textStyle(LegendSize)
	p.X.Tick.Marker = NiceTicks{}
	p.Y.Tick.Marker = NiceTicks{}

	grid := plotter.NewGrid()
	grid.Vertical = draw.LineStyle{Color: color.Gray{Y: 0xE4}, Width: vg.Points(0.4)}
	grid.Horizontal = grid.Vertical
	p.Add(grid)
	return p
}

// LogX switches p's x axis to a log10 scale with power-of-ten ticks.
func LogX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
}
