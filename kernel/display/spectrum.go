package display

import (
	"fmt"
	"image/color"
	"math"

	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SpectrumPlot plots a layer's singular values σ_i against the component index
// i = 0…k−1 (S as ThinSVD returns it, descending) and shades the window of rank
// components starting at start, i.e. indices start…start+rank−1 — the components
// a window-initialised adapter trains (PiSSA: start = 0; MiLoRA: start = k−rank).
// The y axis is logarithmic when every σ_i > 0. The title gives the layer, the
// window and its share of the spectral energy Σ_window σ_i² / Σ σ_i².
func SpectrumPlot(layer string, s []float64, start, rank int) (*plot.Plot, error) {
	energy, err := windowEnergy(s, start, rank)
	if err != nil {
		return nil, fmt.Errorf("display: spectrum of layer %q: %w", layer, err)
	}
	title := fmt.Sprintf("%s: window [%d, %d) of k=%d, %.1f%% of energy", layer, start, start+rank, len(s), 100*energy)
	p := newPlot(title, "component index i", "singular value σᵢ")
	logY := true
	for _, v := range s {
		if !(v > 0) || math.IsInf(v, 0) {
			logY = false
		}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	xy := make(plotter.XYs, len(s))
	for i, v := range s {
		xy[i] = plotter.XY{X: float64(i), Y: v}
	}
	line, err := plotter.NewLine(xy)
	if err != nil {
		return nil, fmt.Errorf("display: spectrum of layer %q: %w", layer, err)
	}
	line.LineStyle = figure.SeriesStyle(0).LineStyle()
	shade := figure.Vermillion
	shade.A = 0x55
	band := &windowBand{lo: float64(start) - 0.5, hi: float64(start+rank) - 0.5, fill: shade}
	p.Add(band, line)
	p.Legend.Add("σᵢ", line)
	p.Legend.Add(fmt.Sprintf("window (r=%d)", rank), band)
	p.X.Min = -0.5
	p.X.Max = float64(len(s)) - 0.5
	return p, nil
}

// ShowSpectrum displays SpectrumPlot in a notebook; outside one it prints a
// one-line summary: k, the window, σ at its edges and its energy share.
func ShowSpectrum(layer string, s []float64, start, rank int) error {
	if InNotebook() {
		p, err := SpectrumPlot(layer, s, start, rank)
		if err != nil {
			return err
		}
		return Plot(p, 0, 0)
	}
	summary, err := SpectrumSummary(layer, s, start, rank)
	if err != nil {
		return err
	}
	printOut("%s\n", summary)
	return nil
}

// SpectrumSummary describes a layer's window in one line of text.
func SpectrumSummary(layer string, s []float64, start, rank int) (string, error) {
	energy, err := windowEnergy(s, start, rank)
	if err != nil {
		return "", fmt.Errorf("display: spectrum of layer %q: %w", layer, err)
	}
	return fmt.Sprintf("%s: k=%d, σ₀=%.4g, σ_last=%.4g; window [%d, %d): σ from %.4g to %.4g, %.1f%% of energy",
		layer, len(s), s[0], s[len(s)-1], start, start+rank, s[start], s[start+rank-1], 100*energy), nil
}

// windowEnergy is Σ_{i∈[start,start+rank)} σ_i² / Σ_i σ_i² (0 when S is all zero).
func windowEnergy(s []float64, start, rank int) (float64, error) {
	if len(s) == 0 {
		return 0, fmt.Errorf("no singular values")
	}
	if rank < 1 || start < 0 || start+rank > len(s) {
		return 0, fmt.Errorf("window start %d, rank %d does not fit in k=%d components (need 0 ≤ start, 1 ≤ rank, start+rank ≤ k)", start, rank, len(s))
	}
	var total, window float64
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("singular value σ_%d = %v is not a finite non-negative number", i, v)
		}
		total += v * v
		if i >= start && i < start+rank {
			window += v * v
		}
	}
	if total == 0 {
		return 0, nil
	}
	return window / total, nil
}

// windowBand shades the x interval [lo, hi] over the whole height of the plot.
type windowBand struct {
	lo, hi float64
	fill   color.Color
}

// Plot implements plot.Plotter.
func (w *windowBand) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, _ := plt.Transforms(&c)
	x0, x1 := trX(w.lo), trX(w.hi)
	pts := []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}}
	c.FillPolygon(w.fill, c.ClipPolygonXY(pts))
}

// Thumbnail implements plot.Thumbnailer, for the legend.
func (w *windowBand) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(w.fill, pts)
}
