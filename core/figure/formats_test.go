package figure

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// nonASCII is text with the characters gonum's PDF writer garbles.
const nonASCII = "ΔΣ σᵢ ‖off ΔM‖ — ω² ≤ 5 %"

// renderBoth renders drawFn as PNG and as PDF, the PDF rasterised at the
// PNG's resolution.
func renderBoth(t *testing.T, size Size, drawFn func(draw.Canvas)) (pngImg image.Image, pdf *pdfRender, pdfData []byte) {
	t.Helper()
	pngData, err := RenderDrawing("png", size, drawFn)
	if err != nil {
		t.Fatal(err)
	}
	if pngImg, err = png.Decode(bytes.NewReader(pngData)); err != nil {
		t.Fatal(err)
	}
	if pdfData, err = RenderDrawing("pdf", size, drawFn); err != nil {
		t.Fatal(err)
	}
	if pdf, err = rasterisePDF(pdfData, PNGDPI); err != nil {
		t.Fatalf("rasterising the PDF: %v", err)
	}
	if pdf.img.Bounds().Size() != pngImg.Bounds().Size() {
		t.Fatalf("PDF page rasterises to %v px, PNG is %v", pdf.img.Bounds().Size(), pngImg.Bounds().Size())
	}
	return pngImg, pdf, pdfData
}

// ink marks the pixels darker than mid-grey.
func ink(img image.Image) []bool {
	b := img.Bounds()
	out := make([]bool, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out = append(out, color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 128)
		}
	}
	return out
}

// inkMatch compares two ink masks of width w: the share of a's ink pixels
// that have ink of b within one pixel (in x and y), and the same for b in a;
// it returns the smaller share and the ink counts. Two renderers rasterise
// the same outline a little differently (anti-aliasing, glyph positions
// snapped to pixels), so exact pixel equality is not expected; different
// glyphs, or glyphs shifted by more than a pixel, match far worse.
func inkMatch(a, b []bool, w int) (match float64, na, nb int) {
	near := func(m []bool, i int) bool {
		x, y, h := i%w, i/w, len(m)/w
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				if xx, yy := x+dx, y+dy; xx >= 0 && xx < w && yy >= 0 && yy < h && m[yy*w+xx] {
					return true
				}
			}
		}
		return false
	}
	var aInB, bInA int
	for i := range a {
		if a[i] {
			na++
			if near(b, i) {
				aInB++
			}
		}
		if b[i] {
			nb++
			if near(a, i) {
				bInA++
			}
		}
	}
	if na == 0 || nb == 0 {
		return 0, na, nb
	}
	return min(float64(aInB)/float64(na), float64(bInA)/float64(nb)), na, nb
}

// The PDF draws non-ASCII text (upright and turned, as y labels are) as
// glyph outlines: it has no text operators and no font, and rendered it
// covers the same pixels as the PNG's text.
func TestPDFTextIsGlyphOutlinesLikeThePNG(t *testing.T) {
	size := Size{Width: 3 * vg.Inch, Height: 1.2 * vg.Inch}
	drawFn := func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		small := textStyle(LabelSize)
		c.FillText(small, vg.Point{X: 30, Y: 70}, nonASCII)
		big := textStyle(16)
		c.FillText(big, vg.Point{X: 30, Y: 40}, "Δ σᵢ — ‖Σ‖")
		turned := textStyle(LabelSize)
		turned.Rotation = math.Pi / 2
		turned.XAlign = draw.XCenter
		c.FillText(turned, vg.Point{X: 15, Y: 45}, "σᵢ (ΔΣ)")
	}
	pngImg, pdf, pdfData := renderBoth(t, size, drawFn)
	if pdf.textOps != 0 || pdf.fontRefs != 0 || bytes.Contains(pdfData, []byte("/FontFile")) {
		t.Errorf("PDF sets text in a font (%d text operators, %d embedded fonts): gonum's PDF writer garbles non-ASCII text", pdf.textOps, pdf.fontRefs)
	}
	if pdf.fills == 0 {
		t.Fatal("PDF has no filled paths: text was not drawn as outlines")
	}
	match, nPNG, nPDF := inkMatch(ink(pngImg), ink(pdf.img), pngImg.Bounds().Dx())
	if nPNG < 2000 || match < 0.99 {
		t.Errorf("PDF text covers %d px, PNG text %d px, matching within a pixel %.3f: want the same glyphs (≥ 0.99)", nPDF, nPNG, match)
	}
	t.Logf("text ink: PNG %d px, PDF %d px, matching within a pixel %.4f", nPNG, nPDF, match)
}

// twoBandImage is a w×h image, red in its top half and blue in its bottom
// half.
func twoBandImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{R: 255, A: 255}
			if y >= h/2 {
				c = color.RGBA{B: 255, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// imageRect is where the tests draw twoBandImage: wider than high.
var imageRect = vg.Rectangle{Min: vg.Point{X: 20, Y: 15}, Max: vg.Point{X: 140, Y: 55}}

// pixelAt is the colour of the pixel under the point p (points, y up) of a
// page of height h rendered at PNGDPI.
func pixelAt(img image.Image, h vg.Length, p vg.Point) color.RGBA {
	s := PNGDPI / 72.0
	return color.RGBAModel.Convert(img.At(int(p.X.Points()*s), int((h-p.Y).Points()*s))).(color.RGBA)
}

func isRed(c color.RGBA) bool  { return c.R > 200 && c.G < 60 && c.B < 60 }
func isBlue(c color.RGBA) bool { return c.B > 200 && c.R < 60 && c.G < 60 }

// An image's top row is at the top of its rectangle in the PDF as in the
// PNG.
func TestPDFImagesAreUpright(t *testing.T) {
	size := Size{Width: 2.5 * vg.Inch, Height: 1 * vg.Inch}
	img := twoBandImage(4, 6)
	pngImg, pdf, _ := renderBoth(t, size, func(c draw.Canvas) { c.DrawImage(imageRect, img) })
	if pdf.images != 1 {
		t.Fatalf("PDF draws %d images, want 1", pdf.images)
	}
	r := imageRect
	top := vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: r.Max.Y - 5}
	bottom := vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: r.Min.Y + 5}
	for _, f := range []struct {
		name string
		img  image.Image
	}{{"png", pngImg}, {"pdf", pdf.img}} {
		tc, bc := pixelAt(f.img, size.Height, top), pixelAt(f.img, size.Height, bottom)
		if !isRed(tc) || !isBlue(bc) {
			t.Errorf("%s: image top is %v, bottom %v; want red on top, blue below (upright)", f.name, tc, bc)
		}
	}
	// The image fills its rectangle: red just inside each top corner, blue
	// just inside each bottom corner.
	for _, x := range []vg.Length{r.Min.X + 1, r.Max.X - 1} {
		if c := pixelAt(pdf.img, size.Height, vg.Point{X: x, Y: r.Max.Y - 1}); !isRed(c) {
			t.Errorf("pdf: top corner at x=%v is %v, want red", x, c)
		}
		if c := pixelAt(pdf.img, size.Height, vg.Point{X: x, Y: r.Min.Y + 1}); !isBlue(c) {
			t.Errorf("pdf: bottom corner at x=%v is %v, want blue", x, c)
		}
	}
}

// A translucent fill (a ± std band) has the same colour in the PDF as in the
// PNG.
func TestPDFTranslucentColoursMatchThePNG(t *testing.T) {
	size := Size{Width: 2 * vg.Inch, Height: 1 * vg.Inch}
	fills := []color.Color{SeriesStyle(0).BandColor(), SeriesStyle(1).BandColor(), color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x40}, Blue}
	pngImg, pdf, _ := renderBoth(t, size, func(c draw.Canvas) {
		for i, col := range fills {
			x := vg.Length(10 + 35*i)
			c.SetColor(col)
			c.Fill(vg.Rectangle{Min: vg.Point{X: x, Y: 10}, Max: vg.Point{X: x + 30, Y: 60}}.Path())
		}
	})
	for i, col := range fills {
		p := vg.Point{X: vg.Length(25 + 35*i), Y: 35}
		want, got := pixelAt(pngImg, size.Height, p), pixelAt(pdf.img, size.Height, p)
		d := max(absDiff(want.R, got.R), absDiff(want.G, got.G), absDiff(want.B, got.B))
		if d > 3 {
			t.Errorf("fill %v: PDF pixel %v, PNG pixel %v (differ by %d)", col, got, want, d)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// svgImage is an <image> element of an SVG.
type svgImage struct {
	X                   string `xml:"x,attr"`
	Y                   string `xml:"y,attr"`
	Width               string `xml:"width,attr"`
	Height              string `xml:"height,attr"`
	PreserveAspectRatio string `xml:"preserveAspectRatio,attr"`
	Href                string `xml:"http://www.w3.org/1999/xlink href,attr"`
}

func svgImages(t *testing.T, svg []byte) []svgImage {
	t.Helper()
	var out []svgImage
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("svg does not parse: %v", err)
			}
			return out
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "image" {
			var im svgImage
			if err := dec.DecodeElement(&im, &se); err != nil {
				t.Fatal(err)
			}
			out = append(out, im)
		}
	}
}

// The SVG declares its images as the PNGs they are and stretches each to its
// rectangle.
func TestSVGImagesArePNGAndFillTheirRectangle(t *testing.T) {
	size := Size{Width: 2.5 * vg.Inch, Height: 1 * vg.Inch}
	img := twoBandImage(4, 6)
	drawFn := func(c draw.Canvas) { c.DrawImage(imageRect, img) }
	svg, err := RenderDrawing("svg", size, drawFn)
	if err != nil {
		t.Fatal(err)
	}
	ims := svgImages(t, svg)
	if len(ims) != 1 {
		t.Fatalf("SVG has %d <image> elements, want 1", len(ims))
	}
	im := ims[0]
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(im.Href, prefix) {
		t.Fatalf("image href starts %.30q, want %q", im.Href, prefix)
	}
	if im.PreserveAspectRatio != "none" {
		t.Errorf("preserveAspectRatio=%q, want none (else a non-square image is letterboxed)", im.PreserveAspectRatio)
	}
	w, _ := strconv.ParseFloat(im.Width, 64)
	h, _ := strconv.ParseFloat(im.Height, 64)
	if rs := imageRect.Size(); math.Abs(w-rs.X.Points()) > 1e-6 || math.Abs(h-rs.Y.Points()) > 1e-6 {
		t.Errorf("image is %v×%v pt, want its rectangle %v×%v", w, h, rs.X.Points(), rs.Y.Points())
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(im.Href, prefix))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("image data is not a PNG: %v", err)
	}
	b, ib := dec.Bounds(), img.Bounds()
	if b.Dx() != ib.Dx() || b.Dy() != ib.Dy() {
		t.Fatalf("embedded image is %v, want %v", b.Size(), ib.Size())
	}
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			if g, w := color.RGBAModel.Convert(dec.At(b.Min.X+x, b.Min.Y+y)), img.At(ib.Min.X+x, ib.Min.Y+y); g != w {
				t.Fatalf("embedded pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

func TestFlipVertical(t *testing.T) {
	img := image.NewRGBA(image.Rect(3, 5, 5, 8)) // 2×3 with an offset origin
	red, blue := color.RGBA{R: 255, A: 255}, color.RGBA{B: 255, A: 255}
	for x := 3; x < 5; x++ {
		img.Set(x, 5, red)
		img.Set(x, 7, blue)
	}
	f := flipVertical(img)
	if f.Bounds() != image.Rect(0, 0, 2, 3) || f.At(0, 0) != blue || f.At(1, 0) != blue || f.At(0, 2) != red || f.At(1, 2) != red {
		t.Errorf("flipped image: bounds %v, top %v, bottom %v", f.Bounds(), f.At(0, 0), f.At(1, 2))
	}
}

// With a PDF and an SVG renderer installed (poppler-utils' pdftoppm,
// librsvg2-bin's rsvg-convert), a saved drawing looks the same in all three
// formats: the PDF's text has the PNG's ink, and the image is upright and
// fills its rectangle. (The SVG's text is set in whatever font the viewer
// finds for SVGFontFamily, so its pixels are not compared.) The
// renderer-free tests above check the same properties.
func TestSavedFormatsLookAlikeInRealRenderers(t *testing.T) {
	pdftoppm, err1 := exec.LookPath("pdftoppm")
	rsvg, err2 := exec.LookPath("rsvg-convert")
	if err1 != nil || err2 != nil {
		t.Skip("pdftoppm or rsvg-convert not installed (apt-get install poppler-utils librsvg2-bin)")
	}
	dir := outDir(t)
	base := filepath.Join(dir, "formats")
	img := twoBandImage(4, 6)
	err := SaveDrawing(base, Size{Width: 2.5 * vg.Inch, Height: 1 * vg.Inch}, func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		c.DrawImage(imageRect, img)
		c.FillText(textStyle(LabelSize), vg.Point{X: 20, Y: 62}, nonASCII)
	})
	if err != nil {
		t.Fatal(err)
	}
	dpi := strconv.Itoa(PNGDPI)
	if out, err := exec.Command(pdftoppm, "-r", dpi, "-png", "-singlefile", base+".pdf", filepath.Join(dir, "pdf")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	if out, err := exec.Command(rsvg, "-d", dpi, "-p", dpi, "-b", "white", "-o", filepath.Join(dir, "svg.png"), base+".svg").CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, out)
	}
	ref := readPNG(t, base+".png")
	refInk := ink(ref)
	for _, name := range []string{"pdf.png", "svg.png"} {
		got := readPNG(t, filepath.Join(dir, name))
		if got.Bounds().Size() != ref.Bounds().Size() {
			t.Errorf("%s is %v px, the PNG %v", name, got.Bounds().Size(), ref.Bounds().Size())
			continue
		}
		r := imageRect
		h := vg.Length(72 * float64(ref.Bounds().Dy()) / PNGDPI)
		if c := pixelAt(got, h, vg.Point{X: r.Min.X + 1, Y: r.Max.Y - 1}); !isRed(c) {
			t.Errorf("%s: image's top-left corner is %v, want red", name, c)
		}
		if c := pixelAt(got, h, vg.Point{X: r.Max.X - 1, Y: r.Min.Y + 1}); !isBlue(c) {
			t.Errorf("%s: image's bottom-right corner is %v, want blue", name, c)
		}
		if name == "svg.png" {
			continue
		}
		// Compare the text only: above the image.
		match, _, _ := inkMatch(textRows(refInk, ref, r, h), textRows(ink(got), got, r, h), ref.Bounds().Dx())
		t.Logf("%s: text ink matching the PNG's within a pixel %.4f", name, match)
		if match < 0.97 {
			t.Errorf("%s: text ink matches the PNG's within a pixel by %.3f, want ≥ 0.97", name, match)
		}
	}
}

// textRows keeps the ink above the image rectangle r.
func textRows(mask []bool, img image.Image, r vg.Rectangle, h vg.Length) []bool {
	w := img.Bounds().Dx()
	limit := int((h-r.Max.Y).Points()*PNGDPI/72) - 2
	out := append([]bool(nil), mask...)
	for i := limit * w; i < len(out); i++ {
		out[i] = false
	}
	return out
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// cubicQuads writes each quadratic segment as the same curve: at every t
// the cubic B₃(t) equals the quadratic B₂(t), also after an arc and a close.
func TestCubicQuadsIsTheSameCurve(t *testing.T) {
	var path vg.Path
	path.Move(vg.Point{X: 1, Y: 2})
	path.QuadTo(vg.Point{X: 7, Y: 9}, vg.Point{X: 10, Y: 1})
	path.Arc(vg.Point{X: 20, Y: 5}, 3, 0.5, 1.2)
	path.QuadTo(vg.Point{X: 30, Y: 30}, vg.Point{X: 25, Y: -4})
	path.Close()
	path.QuadTo(vg.Point{X: -5, Y: 3}, vg.Point{X: 0, Y: 0})
	arcEnd := vg.Point{X: 20 + 3*vg.Length(math.Cos(1.7)), Y: 5 + 3*vg.Length(math.Sin(1.7))}
	starts := []vg.Point{{X: 1, Y: 2}, arcEnd, {X: 1, Y: 2}}
	out := cubicQuads(path)
	if len(out) != len(path) {
		t.Fatalf("%d components, want %d", len(out), len(path))
	}
	k := 0
	for i, comp := range out {
		if comp.Type != vg.CurveComp {
			if !reflectEqualComp(comp, path[i]) {
				t.Errorf("component %d changed: %+v → %+v", i, path[i], comp)
			}
			continue
		}
		if len(comp.Control) != 2 {
			t.Fatalf("component %d has %d controls, want a cubic", i, len(comp.Control))
		}
		p0, q, p2 := starts[k], path[i].Control[0], path[i].Pos
		c1, c2 := comp.Control[0], comp.Control[1]
		for _, tt := range []float64{0, 0.1, 0.25, 0.5, 0.8, 1} {
			s := 1 - tt
			quad := func(a, b, c vg.Length) float64 {
				return s*s*float64(a) + 2*s*tt*float64(b) + tt*tt*float64(c)
			}
			cubic := func(a, b, c, d vg.Length) float64 {
				return s*s*s*float64(a) + 3*s*s*tt*float64(b) + 3*s*tt*tt*float64(c) + tt*tt*tt*float64(d)
			}
			dx := quad(p0.X, q.X, p2.X) - cubic(p0.X, c1.X, c2.X, p2.X)
			dy := quad(p0.Y, q.Y, p2.Y) - cubic(p0.Y, c1.Y, c2.Y, p2.Y)
			if math.Hypot(dx, dy) > 1e-9 {
				t.Errorf("segment %d at t=%v: cubic is %.3g pt off the quadratic", k, tt, math.Hypot(dx, dy))
			}
		}
		k++
	}
	if k != 3 {
		t.Errorf("%d curves checked, want 3", k)
	}
}

func reflectEqualComp(a, b vg.PathComp) bool {
	return a.Type == b.Type && a.Pos == b.Pos && a.Radius == b.Radius && a.Start == b.Start && a.Angle == b.Angle && len(a.Control) == len(b.Control)
}

// The SVG keeps text as text (searchable), in Liberation Sans with
// metric-compatible fallbacks.
func TestSVGTextHasFallbackFonts(t *testing.T) {
	svg, err := RenderDrawing("svg", OneColumn, func(c draw.Canvas) {
		c.FillText(textStyle(LabelSize), vg.Point{X: 20, Y: 50}, nonASCII)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte(">"+nonASCII+"</text>")) {
		t.Errorf("SVG lacks the text %q", nonASCII)
	}
	if n, m := bytes.Count(svg, []byte("font-family:")), bytes.Count(svg, []byte("font-family:"+SVGFontFamily+";")); n == 0 || n != m {
		t.Errorf("%d of %d font-family declarations have the fallbacks %q", m, n, SVGFontFamily)
	}
}
