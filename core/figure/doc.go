// Package figure is the one visual style of every figure prism draws with
// gonum/plot: a colour-blind-safe palette (Okabe–Ito), a distinct line dash and
// marker per series so figures survive greyscale printing, fonts readable at
// paper size, one- and two-column paper sizes, legends that never cover data,
// mean ± std bands and error bars, and Save, which writes .svg, .pdf and .png
// side by side (each atomically: a crash never leaves a half-written file).
//
// A Panel is one set of axes with its series; a Figure lays panels out in a
// grid with an optional shared legend:
//
//	p := figure.NewPanel("", "window start s", "accuracy (%)")
//	p.MeanStd(0, "window", xs, mean, std)  // line + markers + shaded ±std band
//	p.HLine(1, "LoRA", 81.2, 0.4)          // horizontal reference line with band
//	err := p.Save("out/acc")               // out/acc.svg, out/acc.pdf, out/acc.png
//
// Series index i picks Palette[i], Dashes[i] and Glyphs[i] (cycling), so the
// same index means the same method in every panel and every figure.
//
// Legend placement (LegendAuto, the default) puts the legend inside the data
// area in the corner that covers the fewest data points and lines; when every
// corner covers data it moves the legend outside, to the right of a single
// panel or below a multi-panel figure.
package figure
