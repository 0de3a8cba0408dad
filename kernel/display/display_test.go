package display

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/figure"
)

// capture redirects the text renderings for one test.
func capture(t *testing.T) (stdout, stderr *bytes.Buffer) {
	t.Helper()
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	restore := SetOutput(stdout, stderr)
	t.Cleanup(restore)
	if InNotebook() {
		t.Fatal("tests must not run inside a notebook")
	}
	return stdout, stderr
}

func TestTableTextAlignsColumns(t *testing.T) {
	tab := Table{
		Title:   "windows",
		Columns: []string{"method", "start", "accuracy"},
		Rows: [][]any{
			{"pissa", 0, 0.912345678},
			{"milora", 56, float32(0.5)},
			{"mid", 28}, // short row: empty cell
		},
	}
	want := "windows\n" +
		"method  start  accuracy\n" +
		"------  -----  --------\n" +
		"pissa       0    0.9123\n" +
		"milora     56       0.5\n" +
		"mid        28          \n"
	if got := tab.Text(); got != want {
		t.Errorf("Text() =\n%s\nwant\n%s", got, want)
	}
}

func TestTableHTMLEscapesAndAligns(t *testing.T) {
	tab := Table{Title: "a<b", Columns: []string{"name", "x"}, Rows: [][]any{{"<script>alert(1)</script>", math.NaN()}, {"ok", math.Inf(-1)}}}
	h := tab.HTML()
	for _, want := range []string{
		"<caption>a&lt;b</caption>",
		`<td style="text-align:left">&lt;script&gt;alert(1)&lt;/script&gt;</td>`,
		`<td style="text-align:right">NaN</td>`,
		`<td style="text-align:right">-Inf</td>`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "<script>") {
		t.Error("HTML contains an unescaped <script>")
	}
}

func TestTableFormatsValues(t *testing.T) {
	tab := Table{Precision: 3}
	cases := []struct {
		v    any
		want string
	}{
		{nil, ""}, {"s", "s"}, {1.23456, "1.23"}, {float32(1.0 / 3), "0.333"}, {1e-9, "1e-09"},
		{42, "42"}, {uint8(7), "7"}, {1500 * time.Millisecond, "1.5s"}, {math.Inf(1), "+Inf"},
	}
	for _, c := range cases {
		if got := tab.format(c.v); got != c.want {
			t.Errorf("format(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

type results struct{}

func (results) TableColumns() []string { return []string{"lr", "acc"} }
func (results) TableRows() [][]any     { return [][]any{{1e-3, 0.9}} }

func TestShowPrintsTextOutsideANotebook(t *testing.T) {
	out, _ := capture(t)
	TableOf("sweep", results{}).Show()
	if want := "sweep\n   lr  acc\n-----  ---\n0.001  0.9\n"; out.String() != want {
		t.Errorf("Show printed %q, want %q", out.String(), want)
	}
	out.Reset()
	SVG("spectrum", []byte("<svg></svg>"))
	PNG("", []byte{1, 2, 3})
	HTML("<b>x</b>")
	Markdown("**y**")
	want := "[figure \"spectrum\": SVG, 11 bytes; shown only in a notebook]\n" +
		"[figure \"untitled\": PNG, 3 bytes; shown only in a notebook]\n" +
		"<b>x</b>\n**y**\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestWindowEnergy(t *testing.T) {
	s := []float64{3, 2, 1, 0}
	cases := []struct {
		start, rank int
		want        float64
	}{
		{0, 1, 9.0 / 14}, {1, 1, 4.0 / 14}, {1, 2, 5.0 / 14}, {0, 4, 1}, {3, 1, 0},
	}
	for _, c := range cases {
		got, err := windowEnergy(s, c.start, c.rank)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.want) > 1e-15 {
			t.Errorf("windowEnergy(start=%d, rank=%d) = %v, want %v", c.start, c.rank, got, c.want)
		}
	}
	if e, err := windowEnergy([]float64{0, 0}, 0, 1); err != nil || e != 0 {
		t.Errorf("all-zero spectrum: %v, %v; want 0, nil", e, err)
	}
	for _, bad := range []struct {
		s           []float64
		start, rank int
	}{
		{s, -1, 1}, {s, 0, 0}, {s, 3, 2}, {nil, 0, 1}, {[]float64{1, math.NaN()}, 0, 1}, {[]float64{1, -1}, 0, 1},
	} {
		if _, err := windowEnergy(bad.s, bad.start, bad.rank); err == nil {
			t.Errorf("windowEnergy(%v, %d, %d) accepted an invalid window", bad.s, bad.start, bad.rank)
		}
	}
}

func TestSpectrumPlotShadesTheWindow(t *testing.T) {
	s := make([]float64, 32)
	for i := range s {
		s[i] = math.Exp(-float64(i) / 4)
	}
	p, err := SpectrumPlot("enc.0.q", s, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Title.Text, "enc.0.q: window [8, 12) of k=32, ") {
		t.Errorf("title %q", p.Title.Text)
	}
	svg, err := RenderSVG(p, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`fill:#D5[0-9A-F]{4}`).Match(svg) { // vermillion, up to alpha rounding
		t.Error("rendered spectrum has no shaded window (vermillion fill)")
	}
	if _, err := SpectrumPlot("x", s, 30, 4); err == nil || !strings.Contains(err.Error(), `layer "x"`) {
		t.Errorf("window past the end: err = %v, want an error naming the layer", err)
	}
	// A zero singular value switches the axis to linear instead of failing.
	s[31] = 0
	if _, err := SpectrumPlot("rank-deficient", s, 0, 4); err != nil {
		t.Errorf("rank-deficient spectrum: %v", err)
	}
}

func TestShowSpectrumOutsideANotebook(t *testing.T) {
	out, _ := capture(t)
	if err := ShowSpectrum("fc1", []float64{4, 2, 1, 1}, 1, 2); err != nil {
		t.Fatal(err)
	}
	want := "fc1: k=4, σ₀=4, σ_last=1; window [1, 3): σ from 2 to 1, 22.7% of energy\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestCurvesSummaryAndNonFinitePoints(t *testing.T) {
	out, _ := capture(t)
	c := NewCurves("fine-tune", "step", "loss")
	c.LogY = true
	for i, y := range []float64{2, 1, 0.5, math.NaN(), 0} {
		c.Add("train", float64(i+1), y)
	}
	c.Add("eval", 5, 0.75)
	p, err := c.Plot()
	if err != nil {
		t.Fatal(err)
	}
	if want := "fine-tune (2 non-finite or non-positive points not drawn)"; p.Title.Text != want {
		t.Errorf("title %q, want %q", p.Title.Text, want)
	}
	if _, err := RenderSVG(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Done(); err != nil {
		t.Fatal(err)
	}
	if err := c.Done(); err != nil { // a second Done prints nothing more
		t.Fatal(err)
	}
	want := "fine-tune:\n" +
		"  train: 5 points, last step=5 loss=0, min 0 at step=5\n" +
		"  eval: 1 points, last step=5 loss=0.75, min 0.75 at step=5\n"
	if out.String() != want {
		t.Errorf("Done printed\n%q\nwant\n%q", out.String(), want)
	}
}

func TestProgressPrintsEachTenthOutsideANotebook(t *testing.T) {
	_, errOut := capture(t)
	clock := time.Unix(0, 0)
	p := NewProgress("epochs", 20)
	p.now = func() time.Time { return clock }
	p.start = clock
	for i := 0; i < 20; i++ {
		clock = clock.Add(time.Second)
		p.Add(1)
		if i == 9 {
			p.SetStatus("loss 0.5")
		}
	}
	p.Done()
	p.Add(5) // ignored after Done
	p.Done()
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("got %d lines, want 10 tenths + done:\n%s", len(lines), errOut.String())
	}
	if want := "epochs: 2/20 (10%), 2s, ETA 18s"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if want := "epochs: 12/20 (60%), 12s, ETA 8s, loss 0.5"; lines[5] != want {
		t.Errorf("sixth line %q, want %q", lines[5], want)
	}
	if want := "epochs: done 20/20 (100%), 20s, loss 0.5"; lines[10] != want {
		t.Errorf("last line %q, want %q", lines[10], want)
	}
}

func TestProgressHTML(t *testing.T) {
	p := &Progress{label: "a<b", total: 4, done: 3, now: time.Now}
	p.start = p.now()
	h := p.htmlLocked()
	if !strings.Contains(h, `<progress max="4" value="3"`) || !strings.Contains(h, "<b>a&lt;b</b>") || !strings.Contains(h, "3/4 (75%)") {
		t.Errorf("progress HTML: %s", h)
	}
	unknown := &Progress{label: "n", total: 0, done: 7, now: time.Now}
	if h := unknown.htmlLocked(); !strings.Contains(h, `<progress max="1" value="0"`) || !strings.Contains(h, "> 7, ") {
		t.Errorf("unknown-total progress HTML: %s", h)
	}
}

func TestFigureHTMLDropsTheXMLProlog(t *testing.T) {
	got := figureHTML("cap", []byte("<?xml version=\"1.0\"?>\n<!-- gen -->\n<svg>x</svg>"))
	want := `<figure class="prism-figure" style="margin:0"><svg>x</svg><figcaption>cap</figcaption></figure>`
	if got != want {
		t.Errorf("figureHTML = %q, want %q", got, want)
	}
}

// Curves take prism's series styles (core/figure): series i is drawn in
// figure.Palette[i], and the SVG is core/figure's (fonts with fallbacks).
func TestCurvesUseTheFigureStyle(t *testing.T) {
	c := NewCurves("loss", "step", "loss (nats)")
	for i := 1; i <= 3; i++ {
		c.Add("train", float64(i), 1/float64(i))
		c.Add("eval", float64(i), 2/float64(i))
	}
	p, err := c.Plot()
	if err != nil {
		t.Fatal(err)
	}
	svg, err := RenderSVG(p, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		col := figure.Palette[i]
		want := fmt.Sprintf("stroke:#%02X%02X%02X", col.R, col.G, col.B)
		if !strings.Contains(string(svg), want) {
			t.Errorf("series %d: no %s line in the SVG", i, want)
		}
	}
	if !strings.Contains(string(svg), "font-family:"+figure.SVGFontFamily) {
		t.Error("SVG not rendered by core/figure (no font fallbacks)")
	}
}

// A series named after a built-in method keeps that method's style, as in
// every prism figure; other series fill the free slots in order.
func TestCurvesMethodStyles(t *testing.T) {
	var series []*curve
	for _, name := range []string{"train", "pissa", "eval", "mid", "pissa"} {
		series = append(series, &curve{name: name})
	}
	got := seriesStyles(series)
	want := []int{0, 1, 2, 5, 3} // a repeated method name takes a free slot
	if !slices.Equal(got, want) {
		t.Errorf("styles %v, want %v", got, want)
	}
}
