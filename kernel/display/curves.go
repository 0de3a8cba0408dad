package display

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/prism-lora/prism/core/figure"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curves is a live figure of training curves (for example training loss and
// evaluation loss against the step) that redraws in place in a notebook while
// the run goes on: at most every Every, and always on Flush and Done. Outside a
// notebook nothing is drawn; Done prints a summary of each series instead.
// Points whose x or y is not finite (a diverged run's NaN loss), or whose y ≤ 0
// on a LogY figure, are kept for the summary but left out of the figure.
// It is safe for concurrent use.
type Curves struct {
	Title, XLabel, YLabel string
	LogY                  bool          // logarithmic y axis
	Every                 time.Duration // minimum time between redraws (default 500 ms)
	Width, Height         vg.Length     // figure size (defaults DefaultWidth × DefaultHeight)

	mu       sync.Mutex
	series   []*curve
	id       string
	lastDraw time.Time
	err      error
	done     bool
	now      func() time.Time
}

// curve is one named series of points in the order they were added.
type curve struct {
	name string
	x, y []float64
}

// NewCurves makes an empty live figure.
func NewCurves(title, xLabel, yLabel string) *Curves {
	c := &Curves{Title: title, XLabel: xLabel, YLabel: yLabel, now: time.Now}
	if InNotebook() {
		c.id = "prism-curves-" + gonbui.UniqueId()
	}
	return c
}

// Add appends the point (x, y) to the named series (created on first use) and
// redraws if the last redraw is old enough.
func (c *Curves) Add(series string, x, y float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.curveLocked(series)
	s.x = append(s.x, x)
	s.y = append(s.y, y)
	c.drawLocked(false)
}

// Flush redraws now.
func (c *Curves) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawLocked(true)
	return c.err
}

// Done draws the final figure (in a notebook) or prints the summary (outside
// one). It returns the first rendering error met during the run, if any.
func (c *Curves) Done() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.done = true
		if c.id != "" {
			c.drawLocked(true)
			gonbui.Sync()
		} else {
			printOut("%s", c.summaryLocked())
		}
	}
	return c.err
}

// Plot returns a snapshot of the figure as a gonum/plot plot.
func (c *Curves) Plot() (*plot.Plot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plotLocked()
}

// Summary is the plain-text description Done prints outside a notebook: per
// series the number of points, the last point and the minimum.
func (c *Curves) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.summaryLocked()
}

func (c *Curves) curveLocked(name string) *curve {
	for _, s := range c.series {
		if s.name == name {
			return s
		}
	}
	s := &curve{name: name}
	c.series = append(c.series, s)
	return s
}

func (c *Curves) drawLocked(force bool) {
	if c.id == "" {
		return
	}
	every := c.Every
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	now := c.now()
	if !force && now.Sub(c.lastDraw) < every {
		return
	}
	c.lastDraw = now
	p, err := c.plotLocked()
	var svg []byte
	if err == nil {
		svg, err = RenderSVG(p, c.Width, c.Height)
	}
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		gonbui.UpdateHTML(c.id, "<pre>"+escape(err.Error())+"</pre>")
		return
	}
	gonbui.UpdateHTML(c.id, figureHTML("", svg))
}

func (c *Curves) plotLocked() (*plot.Plot, error) {
	p := newPlot(c.Title, c.XLabel, c.YLabel)
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	omitted := 0
	styles := seriesStyles(c.series)
	for i, s := range c.series {
		xy := make(plotter.XYs, 0, len(s.x))
		for j := range s.x {
			x, y := s.x[j], s.y[j]
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) || (c.LogY && y <= 0) {
				omitted++
				continue
			}
			xy = append(xy, plotter.XY{X: x, Y: y})
		}
		if len(xy) == 0 {
			continue
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("display: curves %q, series %q: %w", c.Title, s.name, err)
		}
		line.LineStyle = figure.SeriesStyle(styles[i]).LineStyle()
		p.Add(line)
		p.Legend.Add(s.name, line)
	}
	if omitted > 0 {
		p.Title.Text += fmt.Sprintf(" (%d non-finite or non-positive points not drawn)", omitted)
	}
	return p, nil
}

// seriesStyles is figure.SeriesIndices of the series' names.
func seriesStyles(series []*curve) []int {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.name
	}
	return figure.SeriesIndices(names)
}

func (c *Curves) summaryLocked() string {
	var b strings.Builder
	title := c.Title
	if title == "" {
		title = "curves"
	}
	if len(c.series) == 0 {
		fmt.Fprintf(&b, "%s: no points\n", title)
		return b.String()
	}
	fmt.Fprintf(&b, "%s:\n", title)
	for _, s := range c.series {
		n := len(s.x)
		minI := -1
		for j, y := range s.y {
			if !math.IsNaN(y) && (minI < 0 || y < s.y[minI]) {
				minI = j
			}
		}
		fmt.Fprintf(&b, "  %s: %d points, last %s=%.4g %s=%.4g", s.name, n, axisName(c.XLabel, "x"), s.x[n-1], axisName(c.YLabel, "y"), s.y[n-1])
		if minI >= 0 {
			fmt.Fprintf(&b, ", min %.4g at %s=%.4g", s.y[minI], axisName(c.XLabel, "x"), s.x[minI])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func axisName(label, fallback string) string {
	if label == "" {
		return fallback
	}
	return label
}
