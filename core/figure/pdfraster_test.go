package figure

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/image/vector"
)

// This file is a small PDF renderer for the subset of PDF that gonum's vgpdf
// (through go-pdf/fpdf) writes for one page: filled paths (m l c v y h re,
// f f* B b), the transformation matrix (q Q cm), fill colours (g rg), opacity
// (gs with /ca) and image XObjects (Do, FlateDecode with PNG predictors,
// DeviceRGB or DeviceGray with an /SMask). Strokes are not drawn. It counts
// text operators (BT Tj TJ ...) instead of drawing them, so a test can tell
// text set in a font from text drawn as outlines. Tests use it to look at a
// PDF the way a viewer shows it and compare it with the PNG of the same
// drawing.

// pdfObject is one indirect object: its dictionary text and its decoded
// stream (nil without one).
type pdfObject struct {
	dict   string
	stream []byte
}

// pdfRender is a rasterised PDF page.
type pdfRender struct {
	img      *image.RGBA
	textOps  int // text-showing and text-object operators met
	fills    int // paths filled
	images   int // images drawn
	fontRefs int // /FontFile entries (embedded fonts) in the file
}

var (
	pdfObjRe    = regexp.MustCompile(`(?m)^(\d+) 0 obj\b`)
	pdfLengthRe = regexp.MustCompile(`/Length (\d+)`)
	pdfRefRe    = regexp.MustCompile(`/(\w+) (\d+) 0 R`)
	pdfMediaRe  = regexp.MustCompile(`/MediaBox \[\s*([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)\s*\]`)
	pdfIntRe    = func(key string) *regexp.Regexp { return regexp.MustCompile(`/` + key + ` (\d+)`) }
)

// parsePDFObjects splits a PDF file into its objects, inflating streams.
func parsePDFObjects(data []byte) (map[int]pdfObject, error) {
	objs := map[int]pdfObject{}
	locs := pdfObjRe.FindAllSubmatchIndex(data, -1)
	for i, loc := range locs {
		num, _ := strconv.Atoi(string(data[loc[2]:loc[3]]))
		end := len(data)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body := data[loc[1]:end]
		obj := pdfObject{dict: string(body)}
		if s := bytes.Index(body, []byte("stream")); s >= 0 {
			obj.dict = string(body[:s])
			m := pdfLengthRe.FindStringSubmatch(obj.dict)
			if m == nil {
				return nil, fmt.Errorf("object %d: stream without a direct /Length", num)
			}
			n, _ := strconv.Atoi(m[1])
			start := s + len("stream")
			for start < len(body) && (body[start] == '\r' || body[start] == '\n') {
				start++
			}
			if start+n > len(body) {
				return nil, fmt.Errorf("object %d: /Length %d past the object's end", num, n)
			}
			raw := body[start : start+n]
			if strings.Contains(obj.dict, "/FlateDecode") {
				r, err := zlib.NewReader(bytes.NewReader(raw))
				if err != nil {
					return nil, fmt.Errorf("object %d: %w", num, err)
				}
				if raw, err = io.ReadAll(r); err != nil {
					return nil, fmt.Errorf("object %d: %w", num, err)
				}
			}
			obj.stream = raw
		}
		objs[num] = obj
	}
	return objs, nil
}

// rasterisePDF draws the first page of a one-page PDF at dpi dots per inch
// on white.
func rasterisePDF(data []byte, dpi float64) (*pdfRender, error) {
	objs, err := parsePDFObjects(data)
	if err != nil {
		return nil, err
	}
	var page, pages pdfObject
	for _, o := range objs {
		if strings.Contains(o.dict, "/Type /Page\n") || strings.Contains(o.dict, "/Type /Page ") {
			page = o
		}
		if strings.Contains(o.dict, "/Type /Pages") {
			pages = o
		}
	}
	mb := pdfMediaRe.FindStringSubmatch(pages.dict + page.dict)
	if mb == nil {
		return nil, fmt.Errorf("no /MediaBox")
	}
	pw, _ := strconv.ParseFloat(mb[3], 64)
	ph, _ := strconv.ParseFloat(mb[4], 64)
	refs := map[string]int{}
	for _, o := range objs {
		for _, m := range pdfRefRe.FindAllStringSubmatch(o.dict, -1) {
			n, _ := strconv.Atoi(m[2])
			if _, dup := refs[m[1]]; !dup {
				refs[m[1]] = n
			}
		}
	}
	content, ok := objs[refs["Contents"]]
	if !ok {
		return nil, fmt.Errorf("no page /Contents")
	}
	scale := dpi / 72
	img := image.NewRGBA(image.Rect(0, 0, int(math.Round(pw*scale)), int(math.Round(ph*scale))))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	r := &pdfRender{img: img, fontRefs: strings.Count(string(data), "/FontFile")}
	in := pdfInterpreter{out: r, objs: objs, refs: refs, scale: scale, height: ph, ctm: identity, alpha: 1, fill: color.NRGBA{A: 255}}
	if err := in.run(content.stream); err != nil {
		return nil, err
	}
	return r, nil
}

// matrix is a PDF matrix [a b c d e f]: (x, y) ↦ (a·x + c·y + e, b·x + d·y + f).
type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul is m then n (PDF's m × n).
func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

func (m matrix) apply(x, y float64) (float64, float64) {
	return m[0]*x + m[2]*y + m[4], m[1]*x + m[3]*y + m[5]
}

type pdfState struct {
	ctm   matrix
	fill  color.NRGBA
	alpha float64
}

type pdfInterpreter struct {
	out    *pdfRender
	objs   map[int]pdfObject
	refs   map[string]int
	scale  float64
	height float64
	ctm    matrix
	fill   color.NRGBA
	alpha  float64
	stack  []pdfState
	// path in device pixels, as rasteriser commands
	path   []func(z *vector.Rasterizer)
	cx, cy float64 // current point, user space
	sx, sy float64 // subpath start, user space
}

// dev maps user space to image pixels (y down).
func (in *pdfInterpreter) dev(x, y float64) (float32, float32) {
	x, y = in.ctm.apply(x, y)
	return float32(x * in.scale), float32((in.height - y) * in.scale)
}

func (in *pdfInterpreter) run(content []byte) error {
	var operands []string
	toks := tokenisePDF(string(content))
	num := func(k int) float64 {
		v, _ := strconv.ParseFloat(operands[len(operands)-k], 64)
		return v
	}
	for _, tok := range toks {
		c := tok[0]
		if c == '/' || c == '(' || c == '[' || c == '-' || c == '.' || (c >= '0' && c <= '9') {
			operands = append(operands, tok)
			continue
		}
		switch tok {
		case "q":
			in.stack = append(in.stack, pdfState{ctm: in.ctm, fill: in.fill, alpha: in.alpha})
		case "Q":
			if len(in.stack) == 0 {
				return fmt.Errorf("Q without q")
			}
			s := in.stack[len(in.stack)-1]
			in.stack = in.stack[:len(in.stack)-1]
			in.ctm, in.fill, in.alpha = s.ctm, s.fill, s.alpha
		case "cm":
			in.ctm = matrix{num(6), num(5), num(4), num(3), num(2), num(1)}.mul(in.ctm)
		case "g":
			v := uint8(math.Round(num(1) * 255))
			in.fill = color.NRGBA{R: v, G: v, B: v, A: 255}
		case "rg":
			in.fill = color.NRGBA{R: uint8(math.Round(num(3) * 255)), G: uint8(math.Round(num(2) * 255)), B: uint8(math.Round(num(1) * 255)), A: 255}
		case "gs":
			gs := in.objs[in.refs[strings.TrimPrefix(operands[len(operands)-1], "/")]]
			if m := regexp.MustCompile(`/ca ([\d.]+)`).FindStringSubmatch(gs.dict); m != nil {
				in.alpha, _ = strconv.ParseFloat(m[1], 64)
			}
		case "m":
			in.cx, in.cy = num(2), num(1)
			in.sx, in.sy = in.cx, in.cy
			x, y := in.dev(in.cx, in.cy)
			in.path = append(in.path, func(z *vector.Rasterizer) { z.MoveTo(x, y) })
		case "l":
			in.cx, in.cy = num(2), num(1)
			x, y := in.dev(in.cx, in.cy)
			in.path = append(in.path, func(z *vector.Rasterizer) { z.LineTo(x, y) })
		case "c", "v", "y":
			var x1, y1, x2, y2, x3, y3 float64
			switch tok {
			case "c":
				x1, y1, x2, y2, x3, y3 = num(6), num(5), num(4), num(3), num(2), num(1)
			case "v":
				x1, y1, x2, y2, x3, y3 = in.cx, in.cy, num(4), num(3), num(2), num(1)
			case "y":
				x1, y1, x2, y2, x3, y3 = num(4), num(3), num(2), num(1), num(2), num(1)
			}
			in.cx, in.cy = x3, y3
			ax, ay := in.dev(x1, y1)
			bx, by := in.dev(x2, y2)
			ex, ey := in.dev(x3, y3)
			in.path = append(in.path, func(z *vector.Rasterizer) { z.CubeTo(ax, ay, bx, by, ex, ey) })
		case "h":
			x, y := in.dev(in.sx, in.sy)
			in.path = append(in.path, func(z *vector.Rasterizer) { z.LineTo(x, y) })
			in.cx, in.cy = in.sx, in.sy
		case "re":
			x, y, w, h := num(4), num(3), num(2), num(1)
			pts := [][2]float64{{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}}
			for k, p := range pts {
				px, py := in.dev(p[0], p[1])
				if k == 0 {
					in.path = append(in.path, func(z *vector.Rasterizer) { z.MoveTo(px, py) })
				} else {
					in.path = append(in.path, func(z *vector.Rasterizer) { z.LineTo(px, py) })
				}
			}
			in.sx, in.sy = x, y
		case "f", "F", "f*", "B", "B*", "b", "b*":
			in.fillPath()
		case "S", "s", "n":
			in.path = nil
		case "Do":
			if err := in.drawImage(strings.TrimPrefix(operands[len(operands)-1], "/")); err != nil {
				return err
			}
		case "BT", "ET", "Tj", "TJ", "'", "\"", "Tf":
			in.out.textOps++
		}
		operands = operands[:0]
	}
	return nil
}

// tokenisePDF splits a content stream into operands and operators.
func tokenisePDF(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
			i++
		case c == '(':
			depth, j := 0, i
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, s[i:i+j+1])
			i += j + 1
		default:
			j := i + 1
			for j < len(s) && !strings.ContainsRune(" \n\r\t([/", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func (in *pdfInterpreter) fillPath() {
	if len(in.path) == 0 {
		return
	}
	b := in.out.img.Bounds()
	z := vector.NewRasterizer(b.Dx(), b.Dy())
	for _, cmd := range in.path {
		cmd(z)
	}
	col := in.fill
	col.A = uint8(math.Round(in.alpha * 255))
	z.Draw(in.out.img, b, image.NewUniform(col), image.Point{})
	in.path = nil
	in.out.fills++
}

// drawImage paints image XObject name into the unit square mapped by the CTM.
func (in *pdfInterpreter) drawImage(name string) error {
	obj, ok := in.objs[in.refs[name]]
	if !ok {
		return fmt.Errorf("image %s: not found", name)
	}
	src, err := decodePDFImage(obj, in.objs)
	if err != nil {
		return fmt.Errorf("image %s: %w", name, err)
	}
	in.out.images++
	inv, ok := invert(in.ctm)
	if !ok {
		return nil
	}
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dst := in.out.img
	b := dst.Bounds()
	for py := b.Min.Y; py < b.Max.Y; py++ {
		for px := b.Min.X; px < b.Max.X; px++ {
			// pixel centre → user space → unit square
			ux, uy := (float64(px)+0.5)/in.scale, in.height-(float64(py)+0.5)/in.scale
			u, v := inv.apply(ux, uy)
			if u < 0 || u >= 1 || v <= 0 || v > 1 {
				continue
			}
			// Row 0 of the image is at v = 1 (PDF image space).
			sx, sy := int(u*float64(w)), int((1-v)*float64(h))
			c := color.NRGBAModel.Convert(src.At(sx, sy)).(color.NRGBA)
			c.A = uint8(float64(c.A) * in.alpha)
			draw.Draw(dst, image.Rect(px, py, px+1, py+1), image.NewUniform(c), image.Point{}, draw.Over)
		}
	}
	return nil
}

func invert(m matrix) (matrix, bool) {
	det := m[0]*m[3] - m[1]*m[2]
	if det == 0 {
		return matrix{}, false
	}
	a, b, c, d := m[3]/det, -m[1]/det, -m[2]/det, m[0]/det
	return matrix{a, b, c, d, -(m[4]*a + m[5]*c), -(m[4]*b + m[5]*d)}, true
}

// decodePDFImage decodes an 8-bit DeviceRGB or DeviceGray image XObject,
// with PNG predictors and an optional soft mask.
func decodePDFImage(obj pdfObject, objs map[int]pdfObject) (*image.NRGBA, error) {
	get := func(dict, key string) int {
		m := pdfIntRe(key).FindStringSubmatch(dict)
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	w, h := get(obj.dict, "Width"), get(obj.dict, "Height")
	if get(obj.dict, "BitsPerComponent") != 8 || w == 0 || h == 0 {
		return nil, fmt.Errorf("unsupported image %q", obj.dict)
	}
	colors := 3
	if strings.Contains(obj.dict, "/DeviceGray") {
		colors = 1
	}
	pix, err := unpredict(obj.stream, w, h, colors, strings.Contains(obj.dict, "/Predictor"))
	if err != nil {
		return nil, err
	}
	var alpha []byte
	if m := regexp.MustCompile(`/SMask (\d+) 0 R`).FindStringSubmatch(obj.dict); m != nil {
		n, _ := strconv.Atoi(m[1])
		mask := objs[n]
		if alpha, err = unpredict(mask.stream, w, h, 1, strings.Contains(mask.dict, "/Predictor")); err != nil {
			return nil, fmt.Errorf("soft mask: %w", err)
		}
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		r, g, b := pix[i*colors], pix[i*colors], pix[i*colors]
		if colors == 3 {
			g, b = pix[i*3+1], pix[i*3+2]
		}
		a := uint8(255)
		if alpha != nil {
			a = alpha[i]
		}
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = r, g, b, a
	}
	return img, nil
}

// unpredict undoes PNG row filters (PDF /Predictor ≥ 10): each row starts
// with its filter type.
func unpredict(data []byte, w, h, bpp int, predicted bool) ([]byte, error) {
	stride := w * bpp
	if !predicted {
		if len(data) < stride*h {
			return nil, fmt.Errorf("%d bytes, want %d", len(data), stride*h)
		}
		return data[:stride*h], nil
	}
	if len(data) < (stride+1)*h {
		return nil, fmt.Errorf("%d bytes, want %d", len(data), (stride+1)*h)
	}
	out := make([]byte, stride*h)
	prev := make([]byte, stride)
	for y := 0; y < h; y++ {
		row := data[y*(stride+1)+1 : (y+1)*(stride+1)]
		cur := out[y*stride : (y+1)*stride]
		for x := 0; x < stride; x++ {
			var left, upLeft byte
			if x >= bpp {
				left, upLeft = cur[x-bpp], prev[x-bpp]
			}
			up := prev[x]
			var p byte
			switch data[y*(stride+1)] {
			case 0:
			case 1:
				p = left
			case 2:
				p = up
			case 3:
				p = byte((int(left) + int(up)) / 2)
			case 4:
				p = paeth(left, up, upLeft)
			default:
				return nil, fmt.Errorf("row %d: PNG filter %d", y, data[y*(stride+1)])
			}
			cur[x] = row[x] + p
		}
		prev = cur
	}
	return out, nil
}

func paeth(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	dist := func(v byte) int {
		if d := p - int(v); d >= 0 {
			return d
		} else {
			return -d
		}
	}
	pa, pb, pc := dist(a), dist(b), dist(c)
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}
