package figure

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// outDir is where gallery figures go: $PRISM_FIGURE_DIR when set (to look at
// them), else a temporary directory.
func outDir(t *testing.T) string {
	if d := os.Getenv("PRISM_FIGURE_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

func TestPaletteIsOkabeItoAndDistinct(t *testing.T) {
	want := map[string]bool{"#000000": true, "#E69F00": true, "#56B4E9": true, "#009E73": true,
		"#F0E442": true, "#0072B2": true, "#D55E00": true, "#CC79A7": true}
	seen := map[string]bool{}
	for _, c := range Palette {
		hex := strings.ToUpper(string([]byte{'#'}) + hex2(c.R) + hex2(c.G) + hex2(c.B))
		if !want[hex] {
			t.Errorf("palette colour %s is not an Okabe–Ito colour", hex)
		}
		if seen[hex] {
			t.Errorf("palette colour %s repeated", hex)
		}
		seen[hex] = true
	}
	if len(seen) != 8 {
		t.Errorf("palette has %d colours, want the 8 Okabe–Ito colours", len(seen))
	}
	// Series styles: colour, dash and marker combinations are unique for the
	// first 40 series.
	type key struct {
		c    string
		d, g int
	}
	combos := map[key]int{}
	for i := 0; i < 40; i++ {
		s := SeriesStyle(i)
		k := key{c: hex2(s.Color.R) + hex2(s.Color.G) + hex2(s.Color.B), d: i % len(Dashes), g: i % len(Glyphs)}
		if j, dup := combos[k]; dup {
			t.Fatalf("series %d and %d look the same", j, i)
		}
		combos[k] = i
	}
}

func hex2(b uint8) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func curve(n int, f func(x float64) float64) (xs, ys []float64) {
	for i := 0; i < n; i++ {
		x := float64(i) / float64(n-1)
		xs = append(xs, x)
		ys = append(ys, f(x))
	}
	return
}

func TestSaveWritesAllFormats(t *testing.T) {
	dir := outDir(t)
	p := NewPanel("", "window start s (component index)", "accuracy (%)")
	xs, ys := curve(9, func(x float64) float64 { return 80 + 10*x*(1-x) })
	std := make([]float64, len(xs))
	for i := range std {
		std[i] = 0.5 + 0.5*xs[i]
	}
	if err := p.MeanStd(0, "window", xs, ys, std); err != nil {
		t.Fatal(err)
	}
	if err := p.HLine(1, "LoRA", 79, 0.4); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "single")
	if err := p.Save(base); err != nil {
		t.Fatal(err)
	}
	pngData, err := os.ReadFile(base + ".png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	wantW := int(math.Round((OneColumn.Width.Points() / 72) * PNGDPI))
	wantH := int(math.Round((OneColumn.Height.Points() / 72) * PNGDPI))
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("png is %dx%d px, want %dx%d (3.5 in at %d dpi)", b.Dx(), b.Dy(), wantW, wantH, PNGDPI)
	}
	pdfData, err := os.ReadFile(base + ".pdf")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdfData, []byte("%PDF-")) || !bytes.Contains(pdfData, []byte("%%EOF")) {
		t.Errorf("pdf does not look like a complete PDF (%d bytes)", len(pdfData))
	}
	svgData, err := os.ReadFile(base + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svgData))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("svg is not well-formed XML: %v", err)
			}
			break
		}
	}
	for _, want := range []string{"window", "LoRA", "accuracy (%)"} {
		if !bytes.Contains(svgData, []byte(want)) {
			t.Errorf("svg lacks text %q", want)
		}
	}
	// No temporary files left behind.
	entries, _ := filepath.Glob(filepath.Join(dir, ".single*"))
	if len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	// Rendering is deterministic.
	f := &Figure{Panels: [][]*Panel{{p}}, Size: OneColumn}
	a, err := f.Render("svg")
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Render("svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two renders of the same figure differ")
	}
}

func TestErrors(t *testing.T) {
	p := NewPanel("", "x", "y")
	if err := p.Line(0, "bad", []float64{1, 2}, []float64{1}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("length mismatch: got %v, want an error naming the series", err)
	}
	if err := p.HLine(0, "ref", math.NaN(), 0); err == nil {
		t.Error("NaN reference line accepted")
	}
	f := &Figure{Panels: [][]*Panel{{p}}, Size: OneColumn}
	if _, err := f.Render("gif"); err == nil || !strings.Contains(err.Error(), "svg, pdf or png") {
		t.Errorf("unknown format: got %v", err)
	}
	if _, err := (&Figure{Panels: [][]*Panel{{p}}}).Render("png"); err == nil {
		t.Error("zero size accepted")
	}
	if _, err := (&Figure{Panels: [][]*Panel{{p, p}, {p}}, Size: TwoColumn}).Render("png"); err == nil {
		t.Error("ragged panel grid accepted")
	}
	// NaN data points leave gaps instead of failing.
	if err := p.Line(1, "gappy", []float64{0, 1, 2}, []float64{1, math.NaN(), 3}); err != nil {
		t.Errorf("NaN point: %v", err)
	}
}

// placement renders f once at its size and returns each panel's legend choice.
func placement(p *Panel, size Size) (LegendPlacement, bool) {
	c := vgimg.New(size.Width, size.Height)
	dc := draw.New(c)
	f := &Figure{Panels: [][]*Panel{{p}}, Size: size}
	cells := f.align(dc)
	return p.freeCorner(cells[0][0], measureLegend(p.entries, 0))
}

func TestLegendAvoidsData(t *testing.T) {
	// Data rising to the top right: the legend must go top left.
	p := NewPanel("", "x", "y")
	xs, ys := curve(20, func(x float64) float64 { return x * x })
	if err := p.Line(0, "rising", xs, ys); err != nil {
		t.Fatal(err)
	}
	got, ok := placement(p, OneColumn)
	if !ok || got != LegendTopLeft {
		t.Errorf("rising curve: legend at %v (ok=%v), want top left", got, ok)
	}
	// Falling curve: top right is free.
	q := NewPanel("", "x", "y")
	xs, ys = curve(20, func(x float64) float64 { return (1 - x) * (1 - x) })
	if err := q.Line(0, "falling", xs, ys); err != nil {
		t.Fatal(err)
	}
	if got, ok := placement(q, OneColumn); !ok || got != LegendTopRight {
		t.Errorf("falling curve: legend at %v (ok=%v), want top right", got, ok)
	}
	// A reference line across the top blocks both top corners.
	if err := q.HLine(1, "reference", 0.97, 0.02); err != nil {
		t.Fatal(err)
	}
	if got, ok := placement(q, OneColumn); !ok || (got != LegendBottomLeft && got != LegendBottomRight) {
		t.Errorf("with a top reference line: legend at %v (ok=%v), want a bottom corner", got, ok)
	}
	// Data everywhere: no free corner, the legend goes outside.
	full := NewPanel("", "x", "y")
	var sx, sy []float64
	for i := 0; i <= 12; i++ {
		for j := 0; j <= 12; j++ {
			sx = append(sx, float64(i))
			sy = append(sy, float64(j))
		}
	}
	if err := full.Scatter(0, "grid of points", sx, sy); err != nil {
		t.Fatal(err)
	}
	if _, ok := placement(full, OneColumn); ok {
		t.Error("a panel full of points found a free corner")
	}
	dir := outDir(t)
	if err := full.Save(filepath.Join(dir, "full")); err != nil {
		t.Fatal(err)
	}
}

func TestMeasureLegendColumns(t *testing.T) {
	var entries []legendEntry
	for _, n := range []string{"LoRA", "PiSSA", "MiLoRA", "window", "full FT", "head"} {
		entries = append(entries, legendEntry{name: n})
	}
	one := measureLegend(entries, 0)
	if one.cols != 1 || one.rows != 6 {
		t.Errorf("unbounded legend: %d cols × %d rows, want 1 × 6", one.cols, one.rows)
	}
	wide := measureLegend(entries, TwoColumn.Width)
	if wide.cols != 6 || wide.rows != 1 {
		t.Errorf("two-column-wide legend: %d cols × %d rows, want 6 × 1", wide.cols, wide.rows)
	}
	if wide.w > TwoColumn.Width {
		t.Errorf("legend %v wider than the page %v", wide.w, TwoColumn.Width)
	}
	narrow := measureLegend(entries, 3*wide.colW+2*vg.Points(legendColGap))
	if narrow.cols != 3 || narrow.rows != 2 {
		t.Errorf("three-column legend: %d cols × %d rows, want 3 × 2", narrow.cols, narrow.rows)
	}
}

// TestGallery draws every kind of element in the sizes papers use; set
// PRISM_FIGURE_DIR to keep the files and look at them.
func TestGallery(t *testing.T) {
	dir := outDir(t)
	acc := NewPanel("(a) task B", "window start s", "accuracy (%)")
	fgt := NewPanel("(b) task A", "window start s", "forgetting (points)")
	var xs, am, as, fm, fs []float64
	for s := 0; s <= 56; s += 8 {
		x := float64(s)
		xs = append(xs, x)
		am = append(am, 84+3*math.Sin(x/56*math.Pi))
		as = append(as, 0.6)
		fm = append(fm, 6+20*math.Pow(x/56-0.5, 2))
		fs = append(fs, 0.8)
	}
	for _, p := range []*Panel{acc, fgt} {
		ys, ss := am, as
		if p == fgt {
			ys, ss = fm, fs
		}
		if err := p.MeanStd(0, "window", xs, ys, ss); err != nil {
			t.Fatal(err)
		}
		if err := p.Points(1, "PiSSA", xs[:1], ys[:1], ss[:1]); err != nil {
			t.Fatal(err)
		}
		if err := p.Points(2, "MiLoRA", xs[len(xs)-1:], ys[len(ys)-1:], ss[:1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := acc.HLine(3, "LoRA", 82, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := acc.HLine(4, "full FT", 88, 0.3); err != nil {
		t.Fatal(err)
	}
	if err := fgt.HLine(3, "LoRA", 9, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := fgt.HLine(4, "full FT", 25, 1); err != nil {
		t.Fatal(err)
	}
	fig := &Figure{Panels: [][]*Panel{{acc, fgt}}, Size: TwoColumn, Legend: LegendBelow}
	if err := fig.Save(filepath.Join(dir, "two-panel")); err != nil {
		t.Fatal(err)
	}
	// Eight series with a legend placed automatically.
	many := NewPanel("eight series", "epoch", "loss")
	for i := 0; i < 8; i++ {
		xs, ys := curve(10, func(x float64) float64 { return 2*math.Exp(-3*x)*(1+0.1*float64(i)) + 0.05*float64(i) })
		if err := many.Line(i, "series "+string(rune('A'+i)), xs, ys); err != nil {
			t.Fatal(err)
		}
	}
	if err := many.Save(filepath.Join(dir, "eight-series")); err != nil {
		t.Fatal(err)
	}
	// Log-x axis with error bars.
	lr := NewPanel("", "learning rate (log scale)", "accuracy (%)")
	LogX(lr.Plot)
	lrs := []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2}
	if err := lr.MeanStd(0, "mid", lrs, []float64{70, 80, 85, 84, 80}, []float64{1, 1, 0.5, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := lr.MeanStd(1, "PiSSA", lrs, []float64{72, 82, 84, 75, 40}, []float64{1, 1, 1, 3, 8}); err != nil {
		t.Fatal(err)
	}
	if err := lr.Save(filepath.Join(dir, "logx")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"two-panel", "eight-series", "logx"} {
		for _, ext := range Formats {
			st, err := os.Stat(filepath.Join(dir, name+"."+ext))
			if err != nil || st.Size() < 500 {
				t.Errorf("%s.%s missing or tiny: %v", name, ext, err)
			}
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		min, max float64
		want     []string
	}{
		{0, 56, []string{"0", "10", "20", "30", "40", "50"}},
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{81.5, 88.5, []string{"82", "83", "84", "85", "86", "87", "88"}},
		{1e-4, 1e-2, []string{"0.002", "0.004", "0.006", "0.008", "0.010"}},
		{-3, 3, []string{"-3", "-2", "-1", "0", "1", "2", "3"}},
		{0, 0.05, []string{"0.00", "0.01", "0.02", "0.03", "0.04", "0.05"}},
		{0, 12, []string{"0.0", "2.5", "5.0", "7.5", "10.0"}},
	} {
		var got []string
		for _, tk := range (NiceTicks{}).Ticks(c.min, c.max) {
			if !tk.IsMinor() {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("ticks on [%v, %v] = %v, want %v", c.min, c.max, got, c.want)
		}
	}
}
