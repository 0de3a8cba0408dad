package display

import (
	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// newPlot is a plot in prism's figure style (core/figure: fonts, axes, light
// grid) with gonum's legend in the top right corner. Series i takes
// figure.SeriesStyle(i), as in every other prism figure.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := figure.NewPlot(title, xLabel, yLabel)
	p.Legend.Top = true
	p.Legend.Padding = vg.Points(2)
	return p
}
