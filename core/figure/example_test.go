package figure_test

import (
	"fmt"

	"github.com/prism-lora/prism/core/figure"
)

// Series styles cycle through the Okabe–Ito colours, dashes and markers; the
// same index always looks the same.
func ExampleSeriesStyle() {
	for i := 0; i < 3; i++ {
		s := figure.SeriesStyle(i)
		fmt.Printf("series %d: #%02X%02X%02X, %d dash segments, %T\n", i, s.Color.R, s.Color.G, s.Color.B, len(s.Dashes), s.Glyph)
	}
	// Output:
	// series 0: #0072B2, 0 dash segments, draw.CircleGlyph
	// series 1: #D55E00, 2 dash segments, draw.SquareGlyph
	// series 2: #009E73, 2 dash segments, draw.TriangleGlyph
}

// Built-in methods keep their fixed slots (MethodOrder); other series take
// the lowest slots no series of the plot takes.
func ExampleSeriesIndices() {
	fmt.Println(figure.SeriesIndices([]string{"window f=0.3", "window", "pissa", "energy", "mid"}))
	// Output: [2 0 1 3 5]
}
