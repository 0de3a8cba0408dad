// Package experiments holds the experiment specs that `prism reproduce`
// runs, as readable YAML files (docs/experiments.md explains the format):
//
//	fig1.yaml, fig1-quick.yaml   the Figure-1 analogue: windows across the whole
//	                             spectrum and the baselines, ViT MNIST → Fashion-MNIST
//	fig1-more-seeds.yaml         seeds 3–7 of the middle windows and MiLoRA of fig1.yaml
//	lr.yaml, lr-quick.yaml       learning-rate robustness of windows and baselines
//	text.yaml, text-quick.yaml   a byte-level language model, King James Bible → Jane Austen
//	continual.yaml, continual-quick.yaml
//	                             a task sequence MNIST → Fashion-MNIST → rotated MNIST
//
// `prism sweep experiments/fig1-quick.yaml` runs the same sweep as
// `prism reproduce fig1 --quick` (without the figures and tables).
package experiments

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.yaml
var files embed.FS

// Spec returns the text of the spec file called name (e.g. "fig1-quick.yaml").
func Spec(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("experiments: no spec %q (have %v)", name, Names())
	}
	return b, nil
}

// Names lists the spec files.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}
