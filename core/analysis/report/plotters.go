package report

import (
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// windowColor shades the fine-tuned window.
var windowColor = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x40}

// windowSpan shades the x range [lo, hi) over the whole height of the data
// area. It has no DataRange, so it never stretches the axes.
type windowSpan struct{ lo, hi float64 }

func (w windowSpan) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x0, x1 := trX(w.lo), trX(w.hi)
	rect := []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}}
	c.FillPolygon(windowColor, c.ClipPolygonX(rect))
}

// windowThumb is the legend thumbnail of the shaded window.
type windowThumb struct{}

func (windowThumb) Thumbnail(c *draw.Canvas) {
	rect := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x70}, rect)
}

// windowBox outlines the window's rows and columns on a heatmap: dashed
// lines at s and s+r on both axes.
type windowBox struct {
	lo, hi, size float64
	line         draw.LineStyle
}

func (w windowBox) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, v := range []float64{w.lo, w.hi} {
		x, y := trX(v), trY(v)
		c.StrokeLine2(w.line, x, trY(0), x, trY(w.size))
		c.StrokeLine2(w.line, trX(0), y, trX(w.size), y)
	}
}

// matrixImage draws a k×k matrix of colours over data coordinates
// [0, size]×[0, size], row 0 at y = 0 (use an inverted y axis to put it on
// top, as a matrix is read).
type matrixImage struct {
	img  image.Image
	size float64
}

func (m matrixImage) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	x0, x1 := trX(0), trX(m.size)
	y0, y1 := trY(0), trY(m.size)
	rect := vg.Rectangle{Min: vg.Point{X: min(x0, x1), Y: min(y0, y1)}, Max: vg.Point{X: max(x0, x1), Y: max(y0, y1)}}
	c.DrawImage(rect, m.img)
}

func (m matrixImage) DataRange() (xmin, xmax, ymin, ymax float64) { return 0, m.size, 0, m.size }

// binnedImage renders rms (nb×nb over bands) as an image whose pixel rows
// and columns follow the component indices (upscaled so each component
// band has at least a few pixels), colouring log10(value) with cm; values
// ≤ 0 or below the map's minimum take its lowest colour.
func binnedImage(rms [][]float64, bandLo []int, k int, cm palette.ColorMap) image.Image {
	scale := max(1, 512/k)
	px := k * scale
	img := image.NewRGBA(image.Rect(0, 0, px, px))
	bin := make([]int, k)
	for b := range bandLo {
		hi := k
		if b+1 < len(bandLo) {
			hi = bandLo[b+1]
		}
		for i := bandLo[b]; i < hi; i++ {
			bin[i] = b
		}
	}
	nb := len(rms)
	colors := make([]color.Color, nb*nb)
	lo := cm.Min()
	for a := range rms {
		for b, v := range rms[a] {
			lv := lo
			if v > 0 {
				lv = math.Max(lo, math.Min(cm.Max(), math.Log10(v)))
			}
			col, err := cm.At(lv)
			if err != nil {
				col = color.White
			}
			colors[a*nb+b] = col
		}
	}
	for y := 0; y < px; y++ {
		for x := 0; x < px; x++ {
			img.Set(x, y, colors[bin[y/scale]*nb+bin[x/scale]])
		}
	}
	return img
}

// decadeTicks labels a log10-valued axis with powers of ten (10⁻³) at its
// integer values, at most about six labels.
type decadeTicks struct{}

func (decadeTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := int(math.Ceil(min-1e-9)), int(math.Floor(max+1e-9))
	step := max1(1, (hi-lo+5)/6)
	var ticks []plot.Tick
	for e := lo; e <= hi; e++ {
		if (e-lo)%step == 0 {
			ticks = append(ticks, plot.Tick{Value: float64(e), Label: powerOfTen(e)})
		} else {
			ticks = append(ticks, plot.Tick{Value: float64(e)})
		}
	}
	return ticks
}

// logTicks labels a log-scaled axis with powers of ten (10⁻³), minor ticks
// at 2…9 × 10^k when it spans few decades.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	if !(min > 0) || !(max > min) {
		return nil
	}
	lo, hi := int(math.Floor(math.Log10(min)+1e-9)), int(math.Ceil(math.Log10(max)-1e-9))
	step := max1(1, (hi-lo+5)/6)
	var ticks []plot.Tick
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, float64(e))
		if v >= min*(1-1e-9) && v <= max*(1+1e-9) {
			t := plot.Tick{Value: v}
			if (e-lo)%step == 0 {
				t.Label = powerOfTen(e)
			}
			ticks = append(ticks, t)
		}
		if hi-lo <= 4 {
			for m := 2; m <= 9; m++ {
				if w := float64(m) * v; w >= min && w <= max {
					ticks = append(ticks, plot.Tick{Value: w})
				}
			}
		}
	}
	return ticks
}

func max1(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// superscripts maps exponent characters to the superscript glyphs the
// Liberation fonts have; they lack U+207B (superscript minus) and U+2070
// (superscript zero), so a negative sign is the raised macron "¯" (APL's
// high minus) and exponents with a zero fall back to "1e−10".
var superscripts = map[rune]rune{'-': '¯', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵',
	'6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹'}

// powerOfTen formats 10^e for tick labels: "10¯³", "10²", "1".
func powerOfTen(e int) string {
	if e == 0 {
		return "1"
	}
	digits := strconv.Itoa(e)
	out := []rune("10")
	for _, r := range digits {
		s, ok := superscripts[r]
		if !ok {
			return strings.Replace("1e"+digits, "-", "−", 1)
		}
		out = append(out, s)
	}
	return string(out)
}
