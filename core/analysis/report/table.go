// Package report turns analysis results (analysis.Run) into the tables and
// figures a paper needs: markdown and CSV tables per layer and averaged over
// layers, and figures in prism's shared style (core/figure) as SVG, PDF and
// PNG. It computes nothing new; every number comes from package analysis.
package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Column is a table column: Key names it in CSV headers (snake_case), Title
// in markdown.
type Column struct {
	Key, Title string
}

// Table is a rectangular table whose cells are strings, ints or float64s
// (NaN for unknown).
type Table struct {
	// Name is the file stem (NAME.md, NAME.csv); Title heads the markdown.
	Name, Title string
	// Note is a markdown paragraph under the title explaining the columns.
	Note    string
	Columns []Column
	Rows    [][]any
}

// WriteMarkdown writes the table as a GitHub-flavoured markdown table with a
// "## Title" heading; floats are shown with 4 significant digits, NaN as "–".
func (t Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "## %s\n\n", t.Title)
	}
	if t.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", t.Note)
	}
	b.WriteString("|")
	for _, c := range t.Columns {
		fmt.Fprintf(&b, " %s |", c.Title)
	}
	b.WriteString("\n|")
	for range t.Columns {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		b.WriteString("|")
		for _, cell := range row {
			fmt.Fprintf(&b, " %s |", strings.ReplaceAll(markdownCell(cell), "|", `\|`))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes the table as CSV with a header of column keys; floats at
// full precision (shortest round-trip form), NaN as "NaN".
func (t Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.Key
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	record := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, cell := range row {
			record[i] = csvCell(cell)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func markdownCell(v any) string {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			return "–"
		}
		return strconv.FormatFloat(x, 'g', 4, 64)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

func csvCell(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
