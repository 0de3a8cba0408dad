package report

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"os"
	"path/filepath"

	"github.com/prism-lora/prism/core/figure"
	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	plotfont "gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// saveFormats draws a figure with drawFn once per format in figure.Formats
// and writes basePath.svg, .pdf and .png (each atomically).
//
// The PDF goes through pdfCanvas: gonum/plot v0.17's PDF back-end writes text
// bytes in a single-byte code page, so Greek letters (Δ, Σ, σ) and other
// non-ASCII labels come out garbled, and it draws raster images upside down.
// pdfCanvas draws text as glyph outlines from the same embedded font the PNG
// uses, and flips images, so the three formats agree. SVG images get their
// right media type and fill their rectangle.
func saveFormats(basePath string, size figure.Size, drawFn func(vgdraw.Canvas)) error {
	if err := os.MkdirAll(filepath.Dir(basePath), 0o755); err != nil {
		return err
	}
	for _, ext := range figure.Formats {
		var out vg.CanvasWriterTo
		var canvas vg.CanvasSizer
		switch ext {
		case "svg":
			c := vgsvg.New(size.Width, size.Height)
			out, canvas = c, c
		case "pdf":
			c := vgpdf.New(size.Width, size.Height)
			out, canvas = c, pdfCanvas{c}
		case "png":
			c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(size.Width, size.Height), vgimg.UseDPI(figure.PNGDPI))}
			out, canvas = c, c
		default:
			return fmt.Errorf("unknown figure format %q", ext)
		}
		drawFn(vgdraw.New(canvas))
		var buf bytes.Buffer
		if _, err := out.WriteTo(&buf); err != nil {
			return fmt.Errorf("writing %s.%s: %w", basePath, ext, err)
		}
		data := buf.Bytes()
		if ext == "svg" {
			// vgsvg labels its PNG-encoded images image/jpg, which strict
			// renderers (librsvg, Inkscape) refuse to draw, and leaves SVG's
			// default aspect-ratio fitting on, which letterboxes an image
			// whose rectangle is not square.
			data = bytes.ReplaceAll(data, []byte("data:image/jpg;base64,iVBOR"), []byte("data:image/png;base64,iVBOR"))
			data = bytes.ReplaceAll(data, []byte("<image x="), []byte(`<image preserveAspectRatio="none" x=`))
		}
		if err := figure.WriteFileAtomic(basePath+"."+ext, data); err != nil {
			return err
		}
	}
	return nil
}

// pdfCanvas fixes text and images of gonum's PDF canvas (see saveFormats).
type pdfCanvas struct{ *vgpdf.Canvas }

// FillString draws text as filled glyph outlines with the current colour:
// pt is the left end of the baseline, as for every vg.Canvas.
func (c pdfCanvas) FillString(face plotfont.Face, pt vg.Point, text string) {
	f := face.Face
	if f == nil || face.Font.Size == 0 {
		return
	}
	var buf sfnt.Buffer
	size := face.Font.Size.Points()
	ppem := fixed.Int26_6(size * 64)
	toX := func(v fixed.Int26_6) vg.Length { return vg.Length(float64(v) / 64) }
	var path vg.Path
	pen := pt.X
	prev := sfnt.GlyphIndex(0)
	for i, r := range text {
		idx, err := f.GlyphIndex(&buf, r)
		if err != nil {
			continue
		}
		if i > 0 {
			if k, err := f.Kern(&buf, prev, idx, ppem, font.HintingNone); err == nil {
				pen += toX(k)
			}
		}
		segs, err := f.LoadGlyph(&buf, idx, ppem, nil)
		if err == nil {
			// sfnt's y axis points down; vg's points up.
			at := func(p fixed.Point26_6) vg.Point { return vg.Point{X: pen + toX(p.X), Y: pt.Y - toX(p.Y)} }
			started := false
			for _, s := range segs {
				switch s.Op {
				case sfnt.SegmentOpMoveTo:
					if started {
						path.Close()
					}
					path.Move(at(s.Args[0]))
					started = true
				case sfnt.SegmentOpLineTo:
					path.Line(at(s.Args[0]))
				case sfnt.SegmentOpQuadTo:
					path.QuadTo(at(s.Args[0]), at(s.Args[1]))
				case sfnt.SegmentOpCubeTo:
					path.CubeTo(at(s.Args[0]), at(s.Args[1]), at(s.Args[2]))
				}
			}
			if started {
				path.Close()
			}
		}
		if adv, err := f.GlyphAdvance(&buf, idx, ppem, font.HintingNone); err == nil {
			pen += toX(adv)
		}
		prev = idx
	}
	if len(path) > 0 {
		c.Fill(path)
	}
}

// DrawImage draws img upright (gonum's PDF back-end would flip it).
func (c pdfCanvas) DrawImage(rect vg.Rectangle, img image.Image) {
	c.Canvas.DrawImage(rect, flipVertical(img))
}

// flipVertical returns a copy of img upside down.
func flipVertical(img image.Image) *image.RGBA {
	b := img.Bounds()
	flipped := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		draw.Draw(flipped, image.Rect(0, b.Dy()-1-y, b.Dx(), b.Dy()-y), img, image.Pt(b.Min.X, b.Min.Y+y), draw.Src)
	}
	return flipped
}
