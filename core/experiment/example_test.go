package experiment_test

import (
	"fmt"

	"github.com/prism-lora/prism/core/experiment"
)

// Expand multiplies only the axes that apply: the window starts only for the
// windowed method, rank and alpha only for adapter methods.
func ExampleSpec_Expand() {
	spec, err := experiment.ParseSpec("example.yaml", []byte(`
name: example
model: {name: vit}
finetune: {task: fashion-mnist}
grid:
  methods: [lora, window, full]
  window_starts: [0, 8]
  ranks: [8]
  learning_rates: [1e-3]
  seeds: [0, 1]
  epochs: [3]
  overrides:
    full: {learning_rates: [1e-4], seeds: [0]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	runs, _ := spec.Expand()
	for _, r := range runs {
		fmt.Println(r.Config.Label())
	}
	fmt.Println(experiment.Describe(runs))
	// Output:
	// lora r=8 α=8 lr=0.001 ep=3 seed=0
	// lora r=8 α=8 lr=0.001 ep=3 seed=1
	// window s=0 r=8 α=8 lr=0.001 ep=3 seed=0
	// window s=0 r=8 α=8 lr=0.001 ep=3 seed=1
	// window s=8 r=8 α=8 lr=0.001 ep=3 seed=0
	// window s=8 r=8 α=8 lr=0.001 ep=3 seed=1
	// full lr=0.0001 ep=3 seed=0
	// 7 runs (lora 2, window 4, full 1)
}

// A spec error names the file, line, column and field, and what was expected.
func ExampleParseSpec_error() {
	_, err := experiment.ParseSpec("fig1.yaml", []byte(`name: fig1
model: {name: vit}
finetune: {task: fashion-mnist}
grid:
  methods: [lora]
  ranks: [8]
  learning_rate: [1e-3]
  epochs: [3]
`))
	fmt.Println(err)
	// Output:
	// fig1.yaml:7:3: grid.learning_rate: unknown field "learning_rate"; did you mean "learning_rates"? (expected one of: methods, window_starts, window_fractions, ranks, alphas, learning_rates, seeds, epochs, method_params, overrides)
}
