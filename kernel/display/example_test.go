package display_test

import (
	"os"

	"github.com/prism-lora/prism/kernel/display"
)

// Outside a notebook a table prints as aligned text; in a GoNB cell the same
// call shows an HTML table.
func ExampleTable() {
	defer display.SetOutput(os.Stdout, os.Stderr)()
	display.Table{
		Title:   "rank-8 windows",
		Columns: []string{"preset", "start", "energy share"},
		Rows:    [][]any{{"pissa", 0, 0.93512}, {"mid", 28, 0.0018}, {"milora", 56, 0.00021}},
	}.Show()
	// Output:
	// rank-8 windows
	// preset  start  energy share
	// ------  -----  ------------
	// pissa       0        0.9351
	// mid        28        0.0018
	// milora     56       0.00021
}

// Outside a notebook ShowSpectrum prints a one-line summary of the window.
func ExampleShowSpectrum() {
	defer display.SetOutput(os.Stdout, os.Stderr)()
	s := []float64{8, 4, 2, 1, 0.5, 0.25}
	if err := display.ShowSpectrum("blocks.0.mlp.fc1", s, 2, 2); err != nil {
		panic(err)
	}
	// Output:
	// blocks.0.mlp.fc1: k=6, σ₀=8, σ_last=0.25; window [2, 4): σ from 2 to 1, 5.9% of energy
}
