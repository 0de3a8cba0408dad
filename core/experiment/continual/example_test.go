package continual_test

import (
	"fmt"

	"github.com/prism-lora/prism/core/experiment/continual"
)

// The accuracy matrix of a three-task sequence (%, row i after training task
// i) and its metrics at the end: ACC = (60 + 50 + 85)/3, BWT = ((60 − 90) +
// (50 − 80))/2.
func ExampleMatrix() {
	r := continual.Matrix([][]float64{{90}, {70, 80}, {60, 50, 85}})
	acc, _ := r.AverageAccuracy(2)
	bwt, _ := r.BackwardTransfer(2)
	f, _ := r.Forgetting(2)
	fmt.Printf("ACC %.2f%%, BWT %.1f points, forgetting %.0f and %.0f points\n", 100*acc, 100*bwt, 100*f[0], 100*f[1])
	// Output: ACC 65.00%, BWT -30.0 points, forgetting 30 and 30 points
}
