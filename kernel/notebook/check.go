// Package notebook checks executed Jupyter notebooks for failures and runs them
// headless. `jupyter nbconvert --execute` exits 0 when a GoNB cell panics or
// calls os.Exit with a non-zero status, so the executed notebook itself must be
// inspected: Check reads every cell's outputs and reports error outputs, Go
// panics and fatal errors, non-zero exit statuses, compile errors and Python
// tracebacks, and code cells that never ran.
package notebook

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Problem is one failure found in an executed notebook.
type Problem struct {
	Cell    int    // index of the cell in the notebook (0-based, all cell kinds counted)
	Kind    string // "error", "panic", "fatal", "exit", "signal", "compile", "traceback", "not-executed"
	Excerpt string // the offending output, shortened
}

func (p Problem) String() string {
	return fmt.Sprintf("cell %d: %s: %s", p.Cell, p.Kind, p.Excerpt)
}

// textPatterns are matched against every text output (streams, and text/plain,
// text/html and text/markdown display data). Each names the kind of failure.
var textPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"panic", regexp.MustCompile(`(?m)^\s*panic: `)},
	{"panic", regexp.MustCompile(`(?m)^goroutine \d+ \[[a-z]`)},
	{"fatal", regexp.MustCompile(`(?m)^fatal error: `)},
	{"exit", regexp.MustCompile(`(?m)exit status \d+`)},
	{"signal", regexp.MustCompile(`(?m)^signal: [a-z]`)},
	{"compile", regexp.MustCompile(`(?m)\.go:\d+:\d+: `)},
	{"compile", regexp.MustCompile(`class="gonb-err`)}, // GoNB's HTML error report (kernel without --raw_error)
	{"traceback", regexp.MustCompile(`Traceback \(most recent call last\)`)},
}

// document is the part of the .ipynb format the checker reads.
type document struct {
	Cells []struct {
		CellType       string          `json:"cell_type"`
		ExecutionCount *int            `json:"execution_count"`
		Source         json.RawMessage `json:"source"`
		Outputs        []output        `json:"outputs"`
	} `json:"cells"`
	NBFormat int `json:"nbformat"`
}

type output struct {
	OutputType string                     `json:"output_type"`
	Name       string                     `json:"name"`
	Text       json.RawMessage            `json:"text"`
	Data       map[string]json.RawMessage `json:"data"`
	EName      string                     `json:"ename"`
	EValue     string                     `json:"evalue"`
	Traceback  []string                   `json:"traceback"`
}

// CheckFile reads and checks an executed notebook.
func CheckFile(path string) ([]Problem, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ps, err := Check(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// Check inspects the JSON of an executed notebook and returns its problems (nil
// when it is clean). An error means the document is not a notebook.
func Check(ipynb []byte) ([]Problem, error) {
	var doc document
	if err := json.Unmarshal(ipynb, &doc); err != nil {
		return nil, fmt.Errorf("not a Jupyter notebook: %w", err)
	}
	if doc.NBFormat != 4 {
		return nil, fmt.Errorf("nbformat %d, expected 4", doc.NBFormat)
	}
	var problems []Problem
	for i, c := range doc.Cells {
		if c.CellType != "code" {
			continue
		}
		src, err := multiline(c.Source)
		if err != nil {
			return nil, fmt.Errorf("cell %d source: %w", i, err)
		}
		if c.ExecutionCount == nil && strings.TrimSpace(src) != "" && len(c.Outputs) == 0 {
			problems = append(problems, Problem{Cell: i, Kind: "not-executed", Excerpt: "code cell has no execution count and no outputs"})
		}
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				text := o.EName + ": " + o.EValue
				if len(o.Traceback) > 0 {
					text += "\n" + strings.Join(o.Traceback, "\n")
				}
				problems = append(problems, Problem{Cell: i, Kind: "error", Excerpt: excerpt(text, 0)})
				continue
			}
			texts, err := outputTexts(o)
			if err != nil {
				return nil, fmt.Errorf("cell %d: %w", i, err)
			}
			for _, t := range texts {
				for _, p := range textPatterns {
					if loc := p.re.FindStringIndex(t); loc != nil {
						problems = append(problems, Problem{Cell: i, Kind: p.kind, Excerpt: excerpt(t, loc[0])})
						break
					}
				}
			}
		}
	}
	return problems, nil
}

// outputTexts returns the text of a stream output or of the textual MIME
// bundles of a display/result output.
func outputTexts(o output) ([]string, error) {
	var texts []string
	if o.OutputType == "stream" {
		t, err := multiline(o.Text)
		if err != nil {
			return nil, fmt.Errorf("%s stream: %w", o.Name, err)
		}
		texts = append(texts, t)
	}
	for mime, raw := range o.Data {
		if !strings.HasPrefix(mime, "text/") {
			continue
		}
		t, err := multiline(raw)
		if err != nil {
			return nil, fmt.Errorf("%s output: %w", mime, err)
		}
		texts = append(texts, t)
	}
	return texts, nil
}

// multiline decodes nbformat's multiline strings: a string or a list of strings.
func multiline(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("expected a string or a list of strings: %w", err)
	}
	return strings.Join(parts, ""), nil
}

// excerpt returns up to 6 lines of text starting at the line holding offset.
func excerpt(text string, offset int) string {
	start := strings.LastIndexByte(text[:offset], '\n') + 1
	lines := strings.Split(strings.TrimRight(text[start:], "\n"), "\n")
	if len(lines) > 6 {
		lines = append(lines[:6], "…")
	}
	return strings.Join(lines, "\n")
}

// CellTexts returns, for every cell of a notebook (markdown cells included, as
// ""), the concatenation of its text outputs: streams, error names and values,
// and text/* display data.
func CellTexts(ipynb []byte) ([]string, error) {
	var doc document
	if err := json.Unmarshal(ipynb, &doc); err != nil {
		return nil, fmt.Errorf("not a Jupyter notebook: %w", err)
	}
	texts := make([]string, len(doc.Cells))
	for i, c := range doc.Cells {
		var b strings.Builder
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				b.WriteString(o.EName + ": " + o.EValue + "\n")
				continue
			}
			ts, err := outputTexts(o)
			if err != nil {
				return nil, fmt.Errorf("cell %d: %w", i, err)
			}
			for _, t := range ts {
				b.WriteString(t)
			}
		}
		texts[i] = b.String()
	}
	return texts, nil
}
