package figure

import (
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Axis labels are laid out by the figure, not by gonum/plot.
//
// gonum/plot v0.17 reserves an axis label's extent along its axis (the width
// of the text) around the axis' arithmetic mid-value, Norm((min+max)/2), and
// shrinks the data area until that extent fits in the panel. The label itself
// is drawn centred on the data area. On a log axis the mid-value lies close to
// the top (right) end: Norm((0.1+10)/2) = 0.85 on [0.1, 10]. So the y label
// seems to stick out above the panel and the data area is pushed down, leaving
// a gap under the title (on the right, for a log x axis). On a linear axis,
// any label longer than the data area pushes both ends in.
//
// While a figure is drawn, each axis label is replaced by a blank stand-in of
// the same height (so the axes reserve the same room beside the data) and no
// width (so it constrains nothing along the axis); the real label is then
// drawn where gonum/plot draws it, centred on the data area, moved only as
// far as needed to stay inside its panel.

// axisLabels holds a plot's axis labels while blank stand-ins replace them.
type axisLabels struct {
	plot *plot.Plot
	x, y string
}

// blankAxisLabels replaces p's axis labels by blank stand-ins and returns the
// real ones (restore puts them back).
func blankAxisLabels(p *plot.Plot) axisLabels {
	a := axisLabels{plot: p, x: p.X.Label.Text, y: p.Y.Label.Text}
	p.X.Label.Text = blankLabel(p.X.Label.TextStyle.Handler, a.x)
	p.Y.Label.Text = blankLabel(p.Y.Label.TextStyle.Handler, a.y)
	return a
}

// blankLabel is a stand-in for label with as many lines, each a single
// space: the same height, almost no width, nothing drawn.
func blankLabel(h text.Handler, label string) string {
	if label == "" {
		return ""
	}
	if h == nil {
		h = plot.DefaultTextHandler
	}
	return strings.TrimSuffix(strings.Repeat(" \n", len(h.Lines(label))), "\n")
}

func (a axisLabels) restore() {
	a.plot.X.Label.Text, a.plot.Y.Label.Text = a.x, a.y
}

// draw draws the real labels of a plot drawn (with the stand-ins) in cell,
// at the places gonum/plot gives them: the x label under the data area, at
// the bottom of cell; the y label turned a quarter left, beside the data
// area, at the left of cell.
func (a axisLabels) draw(cell draw.Canvas) {
	p := a.plot
	dc := p.DataCanvas(cell)
	if a.x != "" {
		sty := p.X.Label.TextStyle
		half := sty.Width(a.x) / 2
		x := dc.Center().X
		if p.X.Label.Position == draw.PosRight {
			x = dc.Max.X - half
		}
		x = keepInside(x, half, cell.Min.X, cell.Max.X)
		cell.FillText(sty, vg.Point{X: x, Y: cell.Min.Y + sty.FontExtents().Descent}, a.x)
	}
	if a.y != "" {
		sty := p.Y.Label.TextStyle
		half := sty.Width(a.y) / 2
		x := cell.Min.X + sty.Height(a.y) - sty.FontExtents().Descent
		y := dc.Center().Y
		if p.Y.Label.Position == draw.PosTop {
			y = dc.Max.Y - half
		}
		y = keepInside(y, half, cell.Min.Y, cell.Max.Y)
		sty.Rotation += math.Pi / 2
		cell.FillText(sty, vg.Point{X: x, Y: y}, a.y)
	}
}

// keepInside moves the centre c of an extent c ± half into [lo, hi], or to
// the middle when the extent is longer than the interval.
func keepInside(c, half, lo, hi vg.Length) vg.Length {
	switch {
	case 2*half >= hi-lo:
		return (lo + hi) / 2
	case c-half < lo:
		return lo + half
	case c+half > hi:
		return hi - half
	}
	return c
}
