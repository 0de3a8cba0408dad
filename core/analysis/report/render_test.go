package report

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

func TestFlipVertical(t *testing.T) {
	img := image.NewRGBA(image.Rect(3, 5, 5, 8)) // 2×3 with an offset origin
	red, blue := color.RGBA{R: 255, A: 255}, color.RGBA{B: 255, A: 255}
	for x := 3; x < 5; x++ {
		img.Set(x, 5, red)
		img.Set(x, 7, blue)
	}
	f := flipVertical(img)
	if f.Bounds().Dx() != 2 || f.Bounds().Dy() != 3 || f.At(0, 0) != blue || f.At(1, 2) != red {
		t.Errorf("flipped image: bounds %v, top %v, bottom %v", f.Bounds(), f.At(0, 0), f.At(1, 2))
	}
}

// Every format is written; the SVG's images are declared PNG and fill their
// rectangle; the PDF draws text as outlines, so it has no font to garble.
func TestSaveFormats(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sub", "fig")
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	err := saveFormats(base, figure.OneColumn, func(c draw.Canvas) {
		c.DrawImage(vg.Rectangle{Min: vg.Point{X: 10, Y: 10}, Max: vg.Point{X: 60, Y: 30}}, img)
		c.FillText(draw.TextStyle{Color: color.Black, Font: figure.NewPlot("", "", "").X.Label.TextStyle.Font,
			Handler: figure.NewPlot("", "", "").X.Label.TextStyle.Handler}, vg.Point{X: 20, Y: 50}, "ΔΣ σ")
	})
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(base + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte(`<image preserveAspectRatio="none" x=`)) || !bytes.Contains(svg, []byte("data:image/png;base64,")) ||
		bytes.Contains(svg, []byte("image/jpg")) {
		t.Error("SVG image not fixed")
	}
	pdf, err := os.ReadFile(base + ".pdf")
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("pdf: %v", err)
	}
	if bytes.Contains(pdf, []byte("/FontFile")) {
		t.Error("PDF embeds a font: text was not drawn as outlines")
	}
	if _, err := os.Stat(base + ".png"); err != nil {
		t.Error(err)
	}
}
