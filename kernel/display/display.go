// Package display shows prism's results in a Go notebook: results tables as HTML,
// figures inline, training curves and progress bars that redraw in place while a
// run goes on, and a layer's singular-value spectrum with the chosen window shaded.
//
// It is the only package in prism that imports GoNB's UI packages. Every function
// works anywhere: inside a GoNB cell it sends rich output to the notebook; in any
// other program it writes a plain-text rendering instead (tables and summaries to
// the standard output, progress to the standard error; see SetOutput), so library
// code can call it unconditionally.
//
// One-shot displays (HTML, Markdown, SVG, PNG, Plot, Table.Show, ShowSpectrum)
// wait until GoNB has taken the output, and so do Progress.Done and Curves.Done:
// GoNB drops whatever a cell's program sent but GoNB had not read yet when the
// program exits. Intermediate redraws do not wait; end live displays with Done.
package display

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// Default figure size, in the units gonum/plot uses.
const (
	DefaultWidth  = 6 * vg.Inch
	DefaultHeight = 3.5 * vg.Inch
)

var (
	outMu   sync.Mutex
	stdoutW io.Writer = os.Stdout
	stderrW io.Writer = os.Stderr
)

// InNotebook reports whether the program runs as a GoNB notebook cell, so rich
// output reaches the notebook.
func InNotebook() bool {
	return gonbui.IsNotebook
}

// SetOutput sets where the plain-text renderings go outside a notebook: results
// (tables, figure notes, summaries) to stdout, progress lines to stderr. A nil
// writer discards that stream. It returns a function restoring the previous
// writers.
func SetOutput(stdout, stderr io.Writer) (restore func()) {
	outMu.Lock()
	defer outMu.Unlock()
	prevOut, prevErr := stdoutW, stderrW
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	stdoutW, stderrW = stdout, stderr
	return func() {
		outMu.Lock()
		defer outMu.Unlock()
		stdoutW, stderrW = prevOut, prevErr
	}
}

// printOut writes text to the results stream.
func printOut(format string, args ...any) {
	outMu.Lock()
	w := stdoutW
	outMu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// printErr writes text to the progress stream.
func printErr(format string, args ...any) {
	outMu.Lock()
	w := stderrW
	outMu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// HTML shows an HTML fragment in the notebook; outside one it prints the
// fragment as it is.
func HTML(html string) {
	if InNotebook() {
		gonbui.DisplayHTML(html)
		gonbui.Sync()
		return
	}
	printOut("%s\n", html)
}

// Markdown shows Markdown (with $…$ maths) in the notebook; outside one it prints
// the Markdown source.
func Markdown(markdown string) {
	if InNotebook() {
		gonbui.DisplayMarkdown(markdown)
		gonbui.Sync()
		return
	}
	printOut("%s\n", markdown)
}

// SVG shows an SVG image inline. Outside a notebook it prints a one-line note
// naming the figure (caption may be empty).
func SVG(caption string, svg []byte) {
	if InNotebook() {
		gonbui.DisplayHTML(figureHTML(caption, svg))
		gonbui.Sync()
		return
	}
	printOut("%s\n", figureNote(caption, "SVG", len(svg)))
}

// PNG shows a PNG image inline. Outside a notebook it prints a one-line note
// naming the figure (caption may be empty).
func PNG(caption string, png []byte) {
	if InNotebook() {
		if caption != "" {
			gonbui.DisplayHTML("<div><b>" + escape(caption) + "</b></div>")
		}
		gonbui.DisplayPng(png)
		gonbui.Sync()
		return
	}
	printOut("%s\n", figureNote(caption, "PNG", len(png)))
}

// Plot shows a gonum/plot figure inline, rendered as SVG at the given size (zero
// sizes take DefaultWidth × DefaultHeight). Outside a notebook it prints a
// one-line note naming the plot's title.
func Plot(p *plot.Plot, width, height vg.Length) error {
	svg, err := RenderSVG(p, width, height)
	if err != nil {
		return err
	}
	SVG(p.Title.Text, svg)
	return nil
}

// RenderSVG renders a plot as SVG bytes (zero sizes take the defaults),
// through core/figure like every prism figure (its layout and SVG fixes).
func RenderSVG(p *plot.Plot, width, height vg.Length) ([]byte, error) {
	if width <= 0 {
		width = DefaultWidth
	}
	if height <= 0 {
		height = DefaultHeight
	}
	svg, err := figure.OfPlot(p, figure.Size{Width: width, Height: height}).Render("svg")
	if err != nil {
		return nil, fmt.Errorf("display: rendering plot %q as SVG: %w", p.Title.Text, err)
	}
	return svg, nil
}

// Sync waits until everything sent to the notebook has been displayed; call it
// before a cell's program ends if output might still be in flight. It does
// nothing outside a notebook.
func Sync() {
	if InNotebook() {
		gonbui.Sync()
	}
}

func figureHTML(caption string, svg []byte) string {
	var b bytes.Buffer
	b.WriteString(`<figure class="prism-figure" style="margin:0">`)
	b.Write(stripXMLProlog(svg))
	if caption != "" {
		b.WriteString("<figcaption>" + escape(caption) + "</figcaption>")
	}
	b.WriteString("</figure>")
	return b.String()
}

func figureNote(caption, kind string, n int) string {
	if caption == "" {
		caption = "untitled"
	}
	return fmt.Sprintf("[figure %q: %s, %d bytes; shown only in a notebook]", caption, kind, n)
}

// stripXMLProlog drops the <?xml …?> declaration and comments before the <svg>
// element, which have no place inside HTML.
func stripXMLProlog(svg []byte) []byte {
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		return svg[i:]
	}
	return svg
}
