package figure

import (
	"fmt"
	"image/color"

	"github.com/prism-lora/prism/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure lays out panels in a grid (rows of equal length; a nil panel leaves
// its cell empty) at a paper size, with aligned data areas.
//
// Legend: LegendRight or LegendBelow draw one legend for all panels outside
// the data (entries with the same name are shown once, so give a method the
// same name and series index in every panel). Any other value lets each panel
// place its own legend (Panel.Legend); if a panel asks for LegendAuto and no
// corner is free, the figure falls back to one shared legend outside (right of
// a single panel, below several).
type Figure struct {
	Panels [][]*Panel
	Size   Size
	Legend LegendPlacement
}

// Save writes p alone at one-column size as basePath.svg, .pdf and .png.
func Save(p *plot.Plot, basePath string) error { return OfPlot(p, OneColumn).Save(basePath) }

// OfPlot is a figure of the given size holding p alone, for a plot built
// without a Panel; the plot's own gonum legend, if any, is drawn as it is.
func OfPlot(p *plot.Plot, size Size) *Figure {
	return &Figure{Panels: [][]*Panel{{{Plot: p, Legend: LegendNone}}}, Size: size}
}

// Save writes the panel alone at one-column size (see Figure.Save).
func (p *Panel) Save(basePath string) error { return p.SaveSize(OneColumn, basePath) }

// SaveSize writes the panel alone at the given size (see Figure.Save).
func (p *Panel) SaveSize(size Size, basePath string) error {
	return (&Figure{Panels: [][]*Panel{{p}}, Size: size}).Save(basePath)
}

// Save writes the figure as basePath.svg, basePath.pdf and basePath.png
// (PNGDPI dots per inch), creating the directory; see SaveDrawing.
func (f *Figure) Save(basePath string) error {
	if err := f.check(); err != nil {
		return fmt.Errorf("%s: %w", basePath, err)
	}
	return SaveDrawing(basePath, f.Size, f.Draw)
}

// Render draws the figure in one format ("svg", "pdf" or "png") and returns
// the file's bytes (e.g. for display in a notebook); see RenderDrawing.
func (f *Figure) Render(format string) ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return RenderDrawing(format, f.Size, f.Draw)
}

func (f *Figure) check() error {
	if len(f.Panels) == 0 {
		return fmt.Errorf("figure: no panels")
	}
	cols := len(f.Panels[0])
	for r, row := range f.Panels {
		if len(row) != cols || cols == 0 {
			return fmt.Errorf("figure: panel row %d has %d panels, expected %d (rows of equal, non-zero length)", r, len(row), cols)
		}
	}
	return nil
}

// WriteFileAtomic writes data to path atomically (internal/atomicfile).
func WriteFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	return nil
}

// Layout constants of legends, in points.
const (
	legendThumb  = 16
	legendGap    = 3
	legendColGap = 9
	legendPad    = 3
	panelPadX    = 12
	panelPadY    = 8
)

// Draw draws the figure onto c. While it runs, the panels' axis labels are
// replaced by blank stand-ins (see axislabels.go), so a figure must not be
// drawn from two goroutines at once (gonum's Plot.Draw is not safe for that
// either).
func (f *Figure) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	labels := map[*plot.Plot]axisLabels{}
	for _, row := range f.Panels {
		for _, p := range row {
			if p != nil && p.Plot != nil {
				if _, done := labels[p.Plot]; !done {
					labels[p.Plot] = blankAxisLabels(p.Plot)
				}
			}
		}
	}
	defer func() {
		for _, l := range labels {
			l.restore()
		}
	}()
	drawPanel := func(p *Panel, cell draw.Canvas) {
		p.Plot.Draw(cell)
		labels[p.Plot].draw(cell)
	}

	rows, cols := len(f.Panels), len(f.Panels[0])
	mode := f.Legend
	shared := mode.outside()
	var inside map[*Panel]LegendPlacement
	if !shared {
		cells := f.align(c)
		inside = map[*Panel]LegendPlacement{}
		for r, row := range f.Panels {
			for k, p := range row {
				if p == nil || len(p.entries) == 0 || p.Legend == LegendNone {
					continue
				}
				if p.Legend.outside() {
					shared, mode = true, p.Legend
					break
				}
				box := measureLegend(p.entries, 0)
				place := p.Legend
				if place == LegendAuto {
					var ok bool
					if place, ok = p.freeCorner(cells[r][k], box); !ok {
						shared = true
						mode = LegendBelow
						if rows*cols == 1 {
							mode = LegendRight
						}
					}
				}
				inside[p] = place
			}
		}
	}
	if !shared {
		cells := f.align(c)
		for r, row := range f.Panels {
			for k, p := range row {
				if p == nil {
					continue
				}
				drawPanel(p, cells[r][k])
				if place, ok := inside[p]; ok {
					box := measureLegend(p.entries, 0)
					box.drawInside(p.Plot.DataCanvas(cells[r][k]), place)
				}
			}
		}
		return
	}

	entries := f.sharedEntries()
	area := c
	var box legendBox
	if len(entries) > 0 {
		switch mode {
		case LegendBelow:
			box = measureLegend(entries, c.Max.X-c.Min.X-2*vg.Points(legendPad))
			area = draw.Crop(c, 0, 0, box.h+vg.Points(legendPad), 0)
		case LegendRight:
			box = measureLegend(entries, 0)
			area = draw.Crop(c, 0, -(box.w + vg.Points(legendPad)), 0, 0)
		}
	}
	cells := f.align(area)
	for r, row := range f.Panels {
		for k, p := range row {
			if p != nil {
				drawPanel(p, cells[r][k])
			}
		}
	}
	if len(entries) == 0 {
		return
	}
	switch mode {
	case LegendBelow:
		x := (c.Min.X+c.Max.X)/2 - box.w/2
		box.draw(c, vg.Point{X: x, Y: c.Min.Y + box.h + vg.Points(legendPad)/2}, false)
	case LegendRight:
		y := (area.Min.Y+area.Max.Y)/2 + box.h/2
		box.draw(c, vg.Point{X: c.Max.X - box.w - vg.Points(legendPad)/2, Y: y}, false)
	}
}

// align returns the aligned canvas of each cell.
func (f *Figure) align(c draw.Canvas) [][]draw.Canvas {
	rows, cols := len(f.Panels), len(f.Panels[0])
	plots := make([][]*plot.Plot, rows)
	for r, row := range f.Panels {
		plots[r] = make([]*plot.Plot, cols)
		for k, p := range row {
			if p != nil {
				plots[r][k] = p.Plot
			}
		}
	}
	tiles := draw.Tiles{
		Rows: rows, Cols: cols,
		PadX: vg.Points(panelPadX), PadY: vg.Points(panelPadY),
		PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(4),
	}
	return plot.Align(plots, tiles, c)
}

// sharedEntries are the legend entries of all panels, each name once.
func (f *Figure) sharedEntries() []legendEntry {
	seen := map[string]bool{}
	var out []legendEntry
	for _, row := range f.Panels {
		for _, p := range row {
			if p == nil || p.Legend == LegendNone {
				continue
			}
			for _, e := range p.entries {
				if !seen[e.name] {
					seen[e.name] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// legendBox is a measured legend: entries in columns (filled row by row).
type legendBox struct {
	entries    []legendEntry
	cols, rows int
	colW       vg.Length
	rowH       vg.Length
	w, h       vg.Length
	sty        text.Style
}

// measureLegend lays entries out in as many columns as fit maxWidth (0: one
// column).
func measureLegend(entries []legendEntry, maxWidth vg.Length) legendBox {
	sty := textStyle(LegendSize)
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YCenter
	b := legendBox{entries: entries, sty: sty}
	if len(entries) == 0 {
		return b
	}
	var textW vg.Length
	for _, e := range entries {
		if w := sty.Rectangle(e.name).Max.X; w > textW {
			textW = w
		}
	}
	b.colW = vg.Points(legendThumb+legendGap) + textW
	b.rowH = sty.FontExtents().Height * 1.2
	b.cols = 1
	if maxWidth > 0 {
		for b.cols < len(entries) && vg.Length(b.cols+1)*b.colW+vg.Length(b.cols)*vg.Points(legendColGap) <= maxWidth {
			b.cols++
		}
	}
	b.rows = (len(entries) + b.cols - 1) / b.cols
	// Balance columns: as few columns as give the same number of rows.
	for b.cols > 1 && (len(entries)+b.cols-2)/(b.cols-1) == b.rows {
		b.cols--
	}
	b.w = vg.Length(b.cols)*b.colW + vg.Length(b.cols-1)*vg.Points(legendColGap)
	b.h = vg.Length(b.rows) * b.rowH
	return b
}

// draw draws the legend with its top-left corner at topLeft; framed draws a
// translucent white box with a thin border behind it.
func (b legendBox) draw(c draw.Canvas, topLeft vg.Point, framed bool) {
	if framed {
		pad := vg.Points(legendPad)
		r := vg.Rectangle{
			Min: vg.Point{X: topLeft.X - pad, Y: topLeft.Y - b.h - pad},
			Max: vg.Point{X: topLeft.X + b.w + pad, Y: topLeft.Y + pad},
		}
		c.SetColor(color.NRGBA{R: 255, G: 255, B: 255, A: 0xE0})
		c.Fill(r.Path())
		c.SetLineStyle(draw.LineStyle{Color: color.Gray{Y: 0xB0}, Width: vg.Points(0.4)})
		c.Stroke(r.Path())
	}
	for n, e := range b.entries {
		row, col := n/b.cols, n%b.cols
		x := topLeft.X + vg.Length(col)*(b.colW+vg.Points(legendColGap))
		yTop := topLeft.Y - vg.Length(row)*b.rowH
		icon := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: yTop - b.rowH*0.85},
			Max: vg.Point{X: x + vg.Points(legendThumb), Y: yTop - b.rowH*0.15},
		}}
		for _, t := range e.thumbs {
			t.Thumbnail(&icon)
		}
		c.FillText(b.sty, vg.Point{X: x + vg.Points(legendThumb+legendGap), Y: yTop - b.rowH/2}, e.name)
	}
}

// insideRect is where an inside legend goes in the data canvas dc.
func (b legendBox) insideRect(dc draw.Canvas, place LegendPlacement) vg.Rectangle {
	inset := vg.Points(legendPad + 3)
	var r vg.Rectangle
	switch place {
	case LegendTopLeft, LegendBottomLeft:
		r.Min.X = dc.Min.X + inset
	default:
		r.Min.X = dc.Max.X - inset - b.w
	}
	switch place {
	case LegendBottomLeft, LegendBottomRight:
		r.Min.Y = dc.Min.Y + inset
	default:
		r.Min.Y = dc.Max.Y - inset - b.h
	}
	r.Max = vg.Point{X: r.Min.X + b.w, Y: r.Min.Y + b.h}
	return r
}

func (b legendBox) drawInside(dc draw.Canvas, place LegendPlacement) {
	r := b.insideRect(dc, place)
	b.draw(dc, vg.Point{X: r.Min.X, Y: r.Max.Y}, true)
}

// freeCorner returns the inside corner whose legend rectangle (grown by the
// frame padding) covers none of the panel's data, in the order top right, top
// left, bottom right, bottom left; ok is false when every corner covers data.
func (p *Panel) freeCorner(cell draw.Canvas, b legendBox) (place LegendPlacement, ok bool) {
	dc := p.Plot.DataCanvas(cell)
	trX, trY := p.Plot.Transforms(&dc)
	pad := vg.Points(legendPad + 1)
	for _, place := range []LegendPlacement{LegendTopRight, LegendTopLeft, LegendBottomRight, LegendBottomLeft} {
		r := b.insideRect(dc, place)
		r.Min.X -= pad
		r.Min.Y -= pad
		r.Max.X += pad
		r.Max.Y += pad
		if !p.covers(r, dc, trX, trY) {
			return place, true
		}
	}
	return LegendAuto, false
}

// covers reports whether rectangle r (canvas coordinates) touches any data.
func (p *Panel) covers(r vg.Rectangle, dc draw.Canvas, trX, trY func(float64) vg.Length) bool {
	in := func(pt vg.Point) bool {
		return pt.X >= r.Min.X && pt.X <= r.Max.X && pt.Y >= r.Min.Y && pt.Y <= r.Max.Y
	}
	for _, h := range p.hlines {
		lo, hi := trY(h.lo), trY(h.hi)
		if hi >= r.Min.Y && lo <= r.Max.Y {
			return true
		}
	}
	for _, line := range p.avoid {
		for k := range line {
			a := vg.Point{X: trX(line[k].X), Y: trY(line[k].Y)}
			if in(a) {
				return true
			}
			if k == 0 {
				continue
			}
			prev := vg.Point{X: trX(line[k-1].X), Y: trY(line[k-1].Y)}
			// Sample the segment about every half point.
			dx, dy := a.X-prev.X, a.Y-prev.Y
			n := int((abs(dx)+abs(dy))/vg.Points(0.5)) + 1
			for s := 1; s < n; s++ {
				t := vg.Length(float64(s) / float64(n))
				if in(vg.Point{X: prev.X + t*dx, Y: prev.Y + t*dy}) {
					return true
				}
			}
		}
	}
	return false
}

func abs(v vg.Length) vg.Length {
	if v < 0 {
		return -v
	}
	return v
}
