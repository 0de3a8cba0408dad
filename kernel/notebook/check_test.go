package notebook

import (
	"encoding/json"
	"strings"
	"testing"
)

// executed builds an executed-notebook JSON whose single code cell has the
// given outputs.
func executed(t *testing.T, outputs ...map[string]any) []byte {
	t.Helper()
	one := 1
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{},
		"cells": []any{
			map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": "# title\npanic: in markdown is not output"},
			map[string]any{"cell_type": "code", "execution_count": one, "metadata": map[string]any{}, "source": []string{"%%\n", "x()"}, "outputs": outputs},
		},
	}
	b, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stream(name string, lines ...string) map[string]any {
	return map[string]any{"output_type": "stream", "name": name, "text": lines}
}

func display(mime, text string) map[string]any {
	return map[string]any{"output_type": "display_data", "metadata": map[string]any{}, "data": map[string]any{mime: text}}
}

func TestCheckFindsEachFailureKind(t *testing.T) {
	cases := []struct {
		name   string
		output map[string]any
		kind   string
	}{
		{"error output", map[string]any{"output_type": "error", "ename": "ERROR", "evalue": "cannot use \"s\" as int", "traceback": []string{"Cell[1]: Line 2"}}, "error"},
		{"go panic", stream("stderr", "panic: boom\n", "\n", "goroutine 1 [running]:\n", "main.main()\n", "exit status 2\n"), "panic"},
		{"goroutine dump only", stream("stderr", "goroutine 7 [chan receive]:\n"), "panic"},
		{"os.Exit(3)", stream("stderr", "exit status 3\n"), "exit"},
		{"fatal error", stream("stderr", "fatal error: all goroutines are asleep - deadlock!\n"), "fatal"},
		{"killed", stream("stderr", "signal: killed\n"), "signal"},
		{"compile error on stderr", stream("stderr", "./main.go:11:13: undefined: foo\n"), "compile"},
		{"GoNB HTML error report", display("text/html", `<div class="gonb-err-location">main.go:3</div>`), "compile"},
		{"python traceback", stream("stdout", "Traceback (most recent call last):\n", "  File \"x\"\n"), "traceback"},
		{"panic in a text/plain result", map[string]any{"output_type": "execute_result", "execution_count": 1, "metadata": map[string]any{}, "data": map[string]any{"text/plain": "panic: runtime error: index out of range"}}, "panic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps, err := Check(executed(t, c.output))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 {
				t.Fatalf("got %d problems %v, want 1 of kind %q", len(ps), ps, c.kind)
			}
			if ps[0].Kind != c.kind || ps[0].Cell != 1 {
				t.Errorf("got %v, want kind %q in cell 1", ps[0], c.kind)
			}
			if ps[0].Excerpt == "" {
				t.Error("empty excerpt")
			}
		})
	}
}

func TestCheckPassesCleanOutputs(t *testing.T) {
	clean := []map[string]any{
		stream("stdout", "step 10: loss 0.25\n", "exit criteria met after 3 epochs\n"),
		stream("stderr", "warning: 2 examples skipped\n", "the goroutine pool has 4 workers\n"),
		display("text/html", "<table><tr><td>panic button</td></tr></table>"),
		display("image/png", "iVBORw0KGgo="), // binary payloads are not scanned
		display("text/markdown", "A **panic** is Go's runtime error."),
	}
	ps, err := Check(executed(t, clean...))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Fatalf("clean notebook flagged: %v", ps)
	}
}

func TestCheckFlagsUnexecutedCells(t *testing.T) {
	nb, err := New(Cell{Markdown: true, Source: "# t"}, Cell{Source: "%%\nfmt.Println(1)\n"}, Cell{Source: ""})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Check(nb)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Kind != "not-executed" || ps[0].Cell != 1 {
		t.Fatalf("got %v, want one not-executed problem in cell 1 (the empty cell is fine)", ps)
	}
}

func TestCheckRejectsNonNotebooks(t *testing.T) {
	for _, doc := range []string{`not json`, `{"nbformat": 3, "cells": []}`, `{"nbformat": 4, "cells": [{"cell_type": "code", "source": 7}]}`} {
		if _, err := Check([]byte(doc)); err == nil {
			t.Errorf("Check(%s) returned no error", doc)
		}
	}
}

func TestNewRoundTrip(t *testing.T) {
	nb, err := New(Cell{Markdown: true, Source: "# Title\ntext"}, Cell{Source: "import \"fmt\"\n\n%%\nfmt.Println(\"hi\")"})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(nb, &doc); err != nil {
		t.Fatal(err)
	}
	cells := doc["cells"].([]any)
	code := cells[1].(map[string]any)
	if _, ok := code["execution_count"]; !ok || code["execution_count"] != nil {
		t.Errorf("code cell execution_count = %v, want present and null", code["execution_count"])
	}
	src := code["source"].([]any)
	if len(src) != 4 || src[0] != "import \"fmt\"\n" || src[3] != "fmt.Println(\"hi\")" {
		t.Errorf("source lines = %q", src)
	}
	if _, ok := cells[0].(map[string]any)["outputs"]; ok {
		t.Error("markdown cell has outputs")
	}
	texts, err := CellTexts(nb)
	if err != nil || len(texts) != 2 || texts[0] != "" || texts[1] != "" {
		t.Errorf("CellTexts = %q, %v", texts, err)
	}
}

func TestExcerptStartsAtTheOffendingLine(t *testing.T) {
	text := "line a\nline b\npanic: boom\n1\n2\n3\n4\n5\n6\n7\n"
	got := excerpt(text, strings.Index(text, "panic"))
	want := "panic: boom\n1\n2\n3\n4\n5\n…"
	if got != want {
		t.Errorf("excerpt = %q, want %q", got, want)
	}
}
