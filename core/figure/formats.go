package figure

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	imagedraw "image/draw"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	plotfont "gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Formats are the files Save writes, by extension.
var Formats = []string{"svg", "pdf", "png"}

// SaveDrawing writes what drawFn draws on a canvas of the given size as
// basePath.svg, basePath.pdf and basePath.png (PNGDPI dots per inch),
// creating the directory. drawFn is called once per format. Each file is
// written to a temporary name and renamed into place, so readers never see a
// partial file. Every figure prism draws is saved through here (Figure.Save,
// Panel.Save and Save call it), so the three formats agree; see RenderDrawing.
func SaveDrawing(basePath string, size Size, drawFn func(draw.Canvas)) error {
	if err := os.MkdirAll(filepath.Dir(basePath), 0o755); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	for _, ext := range Formats {
		data, err := RenderDrawing(ext, size, drawFn)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", basePath, ext, err)
		}
		if err := WriteFileAtomic(basePath+"."+ext, data); err != nil {
			return err
		}
	}
	return nil
}

// RenderDrawing draws drawFn on a canvas of the given size in one format
// ("svg", "pdf" or "png") and returns the file's bytes.
//
// It works around bugs of gonum/plot v0.17's back-ends, so the three formats
// look alike. The PDF writer encodes text in a single-byte code page, which
// garbles every non-ASCII character (Δ, Σ, σᵢ, ‖, —); draws raster images
// upside down; writes translucent colours with their alpha-premultiplied
// components, so a band of opacity α over white comes out as c·α² + 1 − α
// instead of c·α + 1 − α (too dark); and writes quadratic Bézier segments
// (every TrueType glyph's) as a different cubic. The PDF here gets text as
// filled glyph outlines from the same embedded font the PNG uses (so it
// needs no font), images flipped back, straight colours and exact cubics.
// The SVG writer declares its PNG-encoded images as image/jpg, which strict
// renderers (librsvg, Inkscape) refuse to draw, and leaves SVG's aspect-ratio
// fitting on, which letterboxes an image into a non-square rectangle: images
// are declared image/png and stretched to their rectangle, and the text's
// font gets metric-compatible fallbacks (SVGFontFamily). SVG text stays text
// (searchable, selectable).
func RenderDrawing(format string, size Size, drawFn func(draw.Canvas)) ([]byte, error) {
	w, h := size.Width, size.Height
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("figure: size %v×%v, expected a positive width and height (e.g. figure.OneColumn)", w, h)
	}
	format = strings.ToLower(format)
	var out vg.CanvasWriterTo
	var canvas vg.CanvasSizer
	switch format {
	case "svg":
		c := vgsvg.New(w, h)
		out, canvas = c, c
	case "pdf":
		c := vgpdf.New(w, h)
		out, canvas = c, pdfCanvas{c}
	case "png":
		c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(PNGDPI))}
		out, canvas = c, c
	default:
		return nil, fmt.Errorf("figure: format %q, expected svg, pdf or png", format)
	}
	drawFn(draw.New(canvas))
	var buf bytes.Buffer
	if _, err := out.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("figure: writing %s: %w", format, err)
	}
	if format == "svg" {
		return fixSVG(buf.Bytes()), nil
	}
	return buf.Bytes(), nil
}

// fixSVG declares vgsvg's images (always PNG-encoded) as image/png, turns
// off aspect-ratio fitting, so each image fills its rectangle, and follows
// the Liberation Sans font family with metric-compatible fallbacks.
func fixSVG(svg []byte) []byte {
	svg = bytes.ReplaceAll(svg, []byte("data:image/jpg;base64,iVBOR"), []byte("data:image/png;base64,iVBOR"))
	svg = bytes.ReplaceAll(svg, []byte("<image x="), []byte(`<image preserveAspectRatio="none" x=`))
	return bytes.ReplaceAll(svg, []byte("font-family:Liberation Sans;"), []byte("font-family:"+SVGFontFamily+";"))
}

// SVGFontFamily is the font-family of the SVG's text: Liberation Sans, then
// fonts with the same metrics (Arimo, Arial, Helvetica), so text keeps the
// widths the layout measured, then any sans-serif. (A viewer that lacks a
// named family otherwise falls back to its default, often a serif.)
const SVGFontFamily = "'Liberation Sans',Arimo,Arial,Helvetica,sans-serif"

// pdfCanvas is gonum's PDF canvas with text drawn as glyph outlines, images
// drawn upright and translucent colours right (see RenderDrawing).
type pdfCanvas struct{ *vgpdf.Canvas }

// SetColor sets the stroke and fill colour. vgpdf writes the components that
// clr.RGBA returns, which are premultiplied by alpha, as the PDF colour, and
// the alpha as its opacity; it gets the straight components instead.
func (c pdfCanvas) SetColor(clr color.Color) {
	if clr == nil {
		clr = color.Black
	}
	c.Canvas.SetColor(straightAlpha(color.NRGBA64Model.Convert(clr).(color.NRGBA64)))
}

// straightAlpha is a colour whose RGBA method returns its components without
// premultiplying them by alpha: only for vgpdf's SetColor, which expects that.
type straightAlpha color.NRGBA64

func (s straightAlpha) RGBA() (r, g, b, a uint32) {
	return uint32(s.R), uint32(s.G), uint32(s.B), uint32(s.A)
}

// FillString draws text as filled glyph outlines in the current colour, with
// the font's advances and kerning: pt is the left end of the baseline, as for
// every vg.Canvas. A character the font lacks is drawn as the font's
// missing-glyph box, as in the PNG.
func (c pdfCanvas) FillString(face plotfont.Face, pt vg.Point, text string) {
	if path := textOutline(face, pt, text); len(path) > 0 {
		c.Fill(path)
	}
}

// textOutline is the outline of text set in face with its baseline starting
// at pt, in canvas coordinates (y up).
func textOutline(face plotfont.Face, pt vg.Point, text string) vg.Path {
	f := face.Face
	if f == nil || face.Font.Size == 0 {
		return nil
	}
	var buf sfnt.Buffer
	ppem := fixed.Int26_6(face.Font.Size.Points() * 64)
	length := func(v fixed.Int26_6) vg.Length { return vg.Length(float64(v) / 64) }
	var path vg.Path
	pen := pt.X
	prev, first := sfnt.GlyphIndex(0), true
	for _, r := range text {
		idx, err := f.GlyphIndex(&buf, r)
		if err != nil {
			continue
		}
		if !first {
			if k, err := f.Kern(&buf, prev, idx, ppem, font.HintingNone); err == nil {
				pen += length(k)
			}
		}
		first = false
		if segs, err := f.LoadGlyph(&buf, idx, ppem, nil); err == nil {
			// sfnt's y axis points down; vg's points up.
			at := func(p fixed.Point26_6) vg.Point { return vg.Point{X: pen + length(p.X), Y: pt.Y - length(p.Y)} }
			open := false
			for _, s := range segs {
				switch s.Op {
				case sfnt.SegmentOpMoveTo:
					if open {
						path.Close()
					}
					path.Move(at(s.Args[0]))
					open = true
				case sfnt.SegmentOpLineTo:
					path.Line(at(s.Args[0]))
				case sfnt.SegmentOpQuadTo:
					path.QuadTo(at(s.Args[0]), at(s.Args[1]))
				case sfnt.SegmentOpCubeTo:
					path.CubeTo(at(s.Args[0]), at(s.Args[1]), at(s.Args[2]))
				}
			}
			if open {
				path.Close()
			}
		}
		if adv, err := f.GlyphAdvance(&buf, idx, ppem, font.HintingNone); err == nil {
			pen += length(adv)
		}
		prev = idx
	}
	return path
}

// Fill fills path, with its quadratic Bézier segments written exactly.
func (c pdfCanvas) Fill(path vg.Path) { c.Canvas.Fill(cubicQuads(path)) }

// Stroke strokes path, with its quadratic Bézier segments written exactly.
func (c pdfCanvas) Stroke(path vg.Path) { c.Canvas.Stroke(cubicQuads(path)) }

// cubicQuads returns path with each quadratic Bézier segment (start p0,
// control q, end p2) written as the identical cubic, whose controls are
// p0 + ⅔(q − p0) and p2 + ⅔(q − p2). vgpdf writes a quadratic segment with
// PDF's "v" operator, a cubic whose first control is the start point and
// second control is q: a different, flatter curve (it distorts every
// TrueType glyph outline).
func cubicQuads(path vg.Path) vg.Path {
	out := make(vg.Path, 0, len(path))
	var cur, start vg.Point
	for _, comp := range path {
		switch comp.Type {
		case vg.MoveComp:
			cur, start = comp.Pos, comp.Pos
		case vg.LineComp:
			cur = comp.Pos
		case vg.CloseComp:
			cur = start
		case vg.CurveComp:
			if len(comp.Control) == 1 {
				q := comp.Control[0]
				third := func(a, b vg.Point) vg.Point { return a.Add(b.Sub(a).Scale(2.0 / 3)) }
				comp.Control = []vg.Point{third(cur, q), third(comp.Pos, q)}
			}
			cur = comp.Pos
		case vg.ArcComp:
			end := comp.Start + comp.Angle
			cur = comp.Pos.Add(vg.Point{X: comp.Radius * vg.Length(math.Cos(end)), Y: comp.Radius * vg.Length(math.Sin(end))})
		}
		out = append(out, comp)
	}
	return out
}

// DrawImage draws img upright (gonum's PDF canvas alone would flip it).
func (c pdfCanvas) DrawImage(rect vg.Rectangle, img image.Image) {
	c.Canvas.DrawImage(rect, flipVertical(img))
}

// flipVertical returns a copy of img upside down, with its origin at (0, 0).
func flipVertical(img image.Image) *image.RGBA {
	b := img.Bounds()
	flipped := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		imagedraw.Draw(flipped, image.Rect(0, b.Dy()-1-y, b.Dx(), b.Dy()-y), img, image.Pt(b.Min.X, b.Min.Y+y), imagedraw.Src)
	}
	return flipped
}
