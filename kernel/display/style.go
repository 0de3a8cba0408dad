package display

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// palette is the Okabe–Ito colour-blind-safe palette (black first omitted).
// TODO(figure): take the colours from core/figure once it lands in main.
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xff}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xff}, // bluish green
	color.RGBA{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	color.RGBA{0xE6, 0x9F, 0x00, 0xff}, // orange
	color.RGBA{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	color.RGBA{0xF0, 0xE4, 0x42, 0xff}, // yellow
	color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
}

// colour returns the i-th palette colour, cycling.
func colour(i int) color.Color { return palette[i%len(palette)] }

// newPlot is a plot with prism's common styling.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Padding = vg.Points(2)
	p.Add(gridLines())
	return p
}

// gridLines is a light grid behind the data.
func gridLines() plot.Plotter {
	g := plotter.NewGrid()
	light := color.Gray{Y: 0xdd}
	g.Vertical.Color = light
	g.Horizontal.Color = light
	return g
}
