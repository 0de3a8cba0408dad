package display

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Table is a results table: named columns and rows of values. Values may be any
// type: numbers are right-aligned and floating-point numbers are printed with
// Precision significant digits; nil prints as an empty cell.
type Table struct {
	Title     string
	Columns   []string
	Rows      [][]any
	Precision int // significant digits for floats; 0 means 4
}

// Tabular is anything that lays itself out as a table, such as a set of results
// from the experiment store.
type Tabular interface {
	TableColumns() []string
	TableRows() [][]any
}

// TableOf builds a Table from a Tabular value.
func TableOf(title string, t Tabular) Table {
	return Table{Title: title, Columns: t.TableColumns(), Rows: t.TableRows()}
}

// Show displays the table as HTML in a notebook, or prints it as aligned text.
func (t Table) Show() {
	if InNotebook() {
		HTML(t.HTML())
		return
	}
	printOut("%s", t.Text())
}

// HTML renders the table as an HTML <table>; every value is escaped.
func (t Table) HTML() string {
	var b strings.Builder
	b.WriteString(`<table class="prism-table">`)
	if t.Title != "" {
		b.WriteString("<caption>" + escape(t.Title) + "</caption>")
	}
	b.WriteString("<thead><tr>")
	for _, c := range t.Columns {
		b.WriteString("<th>" + escape(c) + "</th>")
	}
	b.WriteString("</tr></thead><tbody>")
	for _, row := range t.Rows {
		b.WriteString("<tr>")
		for i := range t.width() {
			v := cellAt(row, i)
			if isNumber(v) {
				b.WriteString(`<td style="text-align:right">`)
			} else {
				b.WriteString(`<td style="text-align:left">`)
			}
			b.WriteString(escape(t.format(v)) + "</td>")
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// Text renders the table as aligned plain text, one row per line, with the title
// (if any) on the first line and a rule under the header.
func (t Table) Text() string {
	n := t.width()
	cells := make([][]string, len(t.Rows))
	widths := make([]int, n)
	for i := range n {
		if i < len(t.Columns) {
			widths[i] = utf8.RuneCountInString(t.Columns[i])
		}
	}
	numeric := make([]bool, n)
	for r, row := range t.Rows {
		cells[r] = make([]string, n)
		for i := range n {
			v := cellAt(row, i)
			s := t.format(v)
			cells[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
			if isNumber(v) {
				numeric[i] = true
			}
		}
	}
	var b strings.Builder
	if t.Title != "" {
		b.WriteString(t.Title + "\n")
	}
	writeRow := func(row []string, rightAlign []bool) {
		for i, s := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(s))
			if rightAlign != nil && rightAlign[i] {
				b.WriteString(pad + s)
			} else if i < len(row)-1 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteString("\n")
	}
	header := make([]string, n)
	copy(header, t.Columns)
	writeRow(header, numeric)
	rule := make([]string, n)
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	writeRow(rule, nil)
	for _, row := range cells {
		writeRow(row, numeric)
	}
	return b.String()
}

// width is the number of columns: the header's, or the longest row's.
func (t Table) width() int {
	n := len(t.Columns)
	for _, r := range t.Rows {
		n = max(n, len(r))
	}
	return n
}

func cellAt(row []any, i int) any {
	if i < len(row) {
		return row[i]
	}
	return nil
}

// format prints one value.
func (t Table) format(v any) string {
	prec := t.Precision
	if prec <= 0 {
		prec = 4
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return formatFloat(x, prec, 64)
	case float32:
		return formatFloat(float64(x), prec, 32)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	default:
		return fmt.Sprint(v)
	}
}

func formatFloat(x float64, prec, bits int) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(x, 'g', prec, bits)
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return true
	}
	return false
}

func escape(s string) string { return html.EscapeString(s) }
