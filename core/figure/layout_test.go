package figure

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// px converts points to pixels of the PNG.
func px(l vg.Length) float64 { return l.Points() * PNGDPI / 72 }

// rowHasInk reports whether row y of img has a non-white pixel in columns
// [x0, x1).
func rowHasInk(img image.Image, y, x0, x1 int) bool {
	for x := x0; x < x1; x++ {
		if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 245 {
			return true
		}
	}
	return false
}

// titleGap is the number of blank rows, in columns [x0, x1), between the
// title (the first rows with ink) and the next ink below it.
func titleGap(img image.Image, x0, x1 int) (titleEnd, gap int) {
	h := img.Bounds().Dy()
	y := 0
	for y < h && !rowHasInk(img, y, x0, x1) {
		y++
	}
	for y < h && rowHasInk(img, y, x0, x1) {
		y++
	}
	titleEnd = y
	for y < h && !rowHasInk(img, y, x0, x1) {
		y++
	}
	return titleEnd, y - titleEnd
}

// inkBox is the bounding box of the non-white pixels of img in r.
func inkBox(img image.Image, r image.Rectangle) image.Rectangle {
	box := image.Rectangle{Min: r.Max, Max: r.Min}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 128 {
				box.Min.X, box.Min.Y = min(box.Min.X, x), min(box.Min.Y, y)
				box.Max.X, box.Max.Y = max(box.Max.X, x+1), max(box.Max.Y, y+1)
			}
		}
	}
	return box
}

// dataArea is the data rectangle (points, y up) of the figure's panel (0, 0)
// as Figure.Draw lays it out.
func dataArea(f *Figure) vg.Rectangle {
	_, data := panelLayout(f)
	return data
}

// panelLayout is the cell and data rectangle of the figure's panel (0, 0).
func panelLayout(f *Figure) (cell, data vg.Rectangle) {
	p := f.Panels[0][0].Plot
	labels := blankAxisLabels(p)
	defer labels.restore()
	c := f.align(draw.New(vgimg.New(f.Size.Width, f.Size.Height)))[0][0]
	return c.Rectangle, p.DataCanvas(c).Rectangle
}

func renderPNG(t *testing.T, f *Figure, name string) image.Image {
	t.Helper()
	data, err := f.Render("png")
	if err != nil {
		t.Fatal(err)
	}
	if d := outDir(t); d != "" {
		if err := WriteFileAtomic(filepath.Join(d, name+".png"), data); err != nil {
			t.Fatal(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A title sits just above its panel, and an axis label, however long and on
// whatever scale, moves the data area only sideways (y label) or up (x
// label), never along its own axis. gonum/plot alone reserves a y label's
// length around the axis' arithmetic mid-value, which on a log axis is near
// the top: the panel dropped by a quarter of its height under the title.
func TestTitleSitsOnThePanelWhateverTheAxisLabels(t *testing.T) {
	const long = "accuracy on the old task after training (%)"
	cases := []struct {
		name   string
		logY   bool
		logX   bool
		yLabel string
		xLabel string
		size   Size
	}{
		{"log-y", true, false, "singular value σᵢ (log scale)", "component index i", OneColumn},
		{"log-y-wide", true, false, "singular value σᵢ (log scale)", "component index i", TwoColumn.WithHeight(2.8 * vg.Inch)},
		{"long-y-label", false, false, long, "training step", OneColumn},
		{"log-x", false, true, "accuracy (%)", "learning rate (log scale), swept over four decades", OneColumn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			build := func(title, xLabel, yLabel string) *Figure {
				p := NewPanel(title, xLabel, yLabel)
				p.Legend = LegendNone
				xs, ys := []float64{1e-5, 1e-4, 1e-3, 1e-2, 1e-1}, []float64{12, 3, 1, 0.4, 0.12}
				if !tc.logX {
					xs = []float64{0, 10, 20, 30, 40}
				}
				if err := p.Line(0, "s", xs, ys); err != nil {
					t.Fatal(err)
				}
				if tc.logY {
					p.Plot.Y.Scale = plot.LogScale{}
					p.Plot.Y.Tick.Marker = plot.LogTicks{Prec: -1}
				}
				if tc.logX {
					LogX(p.Plot)
				}
				return &Figure{Panels: [][]*Panel{{p}}, Size: tc.size}
			}
			const title = "Title of the panel (g, y: descenders)"
			fig := build(title, tc.xLabel, tc.yLabel)
			bare := dataArea(build("", "", ""))
			withTitle := dataArea(build(title, "", ""))
			full := dataArea(fig)
			titleRoom := bare.Max.Y - withTitle.Max.Y

			// Layout: the title alone lowers the top by its own height; the
			// labels do not lower it further, nor move the right edge, nor
			// (the x label) raise the bottom more than the label's height.
			const eps = 1e-6
			if math.Abs((full.Max.Y - withTitle.Max.Y).Points()) > eps {
				t.Errorf("axis labels move the data area's top from %.2f to %.2f pt", withTitle.Max.Y.Points(), full.Max.Y.Points())
			}
			if math.Abs((full.Max.X - withTitle.Max.X).Points()) > eps {
				t.Errorf("axis labels move the data area's right edge from %.2f to %.2f pt", withTitle.Max.X.Points(), full.Max.X.Points())
			}
			xl := fig.Panels[0][0].Plot.X.Label
			if rise := full.Min.Y - withTitle.Min.Y; math.Abs((rise - xl.TextStyle.Height(tc.xLabel) - xl.Padding).Points()) > eps {
				t.Errorf("x label raises the data area by %.2f pt, want its height + padding %.2f pt", rise.Points(), (xl.TextStyle.Height(tc.xLabel) + xl.Padding).Points())
			}
			yl := fig.Panels[0][0].Plot.Y.Label
			wantShift := yl.TextStyle.Height(tc.yLabel) + yl.TextStyle.FontExtents().Descent + yl.Padding
			if shift := full.Min.X - withTitle.Min.X; math.Abs((shift - wantShift).Points()) > eps {
				t.Errorf("y label moves the data area right by %.2f pt, want its height + descent + padding %.2f pt", shift.Points(), wantShift.Points())
			}
			ttl := fig.Panels[0][0].Plot.Title
			if want := ttl.TextStyle.Height(title) + ttl.Padding; math.Abs((titleRoom - want).Points()) > eps {
				t.Errorf("title takes %.2f pt, want its height + padding %.2f pt", titleRoom.Points(), want.Points())
			}

			// Pixels: right of the y label, the first ink under the title is
			// at most the title's padding and descent plus half a tick label
			// (the top tick's label is centred on the data area's top) below
			// the title's last row of ink.
			img := renderPNG(t, fig, "layout-"+tc.name)
			w := img.Bounds().Dx()
			_, gap := titleGap(img, w/4, w)
			maxGap := int(math.Ceil(px(ttl.Padding + ttl.TextStyle.FontExtents().Descent + vg.Points(TickSize)/2)))
			if gap > maxGap {
				t.Errorf("%d blank px between the title and the panel, want ≤ %d", gap, maxGap)
			}

			// The y label is drawn, centred on the data area (or kept inside
			// the figure), and the x label centred under it.
			h := img.Bounds().Dy()
			cell, _ := panelLayout(fig)
			strip := image.Rect(0, 0, int(px(full.Min.X-withTitle.Min.X)), h)
			yBox := inkBox(img, strip)
			if yBox.Empty() || yBox.Dy() < int(px(yl.TextStyle.Width(tc.yLabel)))-4 {
				t.Fatalf("y label ink %v in the strip %v, want a label %.0f px long", yBox, strip, px(yl.TextStyle.Width(tc.yLabel)))
			}
			wantY := float64(h) - px((full.Min.Y+full.Max.Y)/2)
			half := px(yl.TextStyle.Width(tc.yLabel)) / 2
			wantY = math.Max(float64(h)-px(cell.Max.Y)+half, math.Min(float64(h)-px(cell.Min.Y)-half, wantY))
			if got := float64(yBox.Min.Y+yBox.Max.Y) / 2; math.Abs(got-wantY) > 3 {
				t.Errorf("y label centred at row %.1f, want %.1f", got, wantY)
			}
			if yBox.Min.Y <= 0 || yBox.Max.Y >= h {
				t.Errorf("y label ink %v reaches the figure's edge", yBox)
			}
			xBox := inkBox(img, image.Rect(0, h-int(px(xl.TextStyle.Height(tc.xLabel))), w, h))
			wantX := px((full.Min.X + full.Max.X) / 2)
			halfX := px(xl.TextStyle.Width(tc.xLabel)) / 2
			wantX = math.Max(px(cell.Min.X)+halfX, math.Min(px(cell.Max.X)-halfX, wantX))
			if got := float64(xBox.Min.X+xBox.Max.X) / 2; math.Abs(got-wantX) > 3 {
				t.Errorf("x label centred at column %.1f, want %.1f", got, wantX)
			}
			// Drawing leaves the plot's labels as they were.
			if p := fig.Panels[0][0].Plot; p.X.Label.Text != tc.xLabel || p.Y.Label.Text != tc.yLabel {
				t.Errorf("labels after drawing: %q, %q", p.X.Label.Text, p.Y.Label.Text)
			}
		})
	}
}
