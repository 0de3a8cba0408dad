package notebook

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Cell is one cell of a notebook to build: Markdown or Go code.
type Cell struct {
	Markdown bool
	Source   string
}

// New returns the JSON of an unexecuted nbformat-4.5 notebook for the prism
// kernel with the given cells.
func New(cells ...Cell) ([]byte, error) {
	list := make([]map[string]any, len(cells))
	for i, c := range cells {
		cell := map[string]any{
			"cell_type": "code",
			"id":        fmt.Sprintf("cell-%d", i),
			"metadata":  map[string]any{},
			"source":    splitLines(c.Source),
		}
		if c.Markdown {
			cell["cell_type"] = "markdown"
		} else {
			cell["execution_count"] = nil
			cell["outputs"] = []any{}
		}
		list[i] = cell
	}
	return json.MarshalIndent(map[string]any{
		"cells": list,
		"metadata": map[string]any{
			"kernelspec":    map[string]string{"name": "prism", "display_name": "Go (prism)", "language": "go"},
			"language_info": map[string]string{"name": "go"},
		},
		"nbformat":       4,
		"nbformat_minor": 5,
	}, "", " ")
}

// splitLines splits source into nbformat's list of lines, each keeping its "\n".
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
