package train_test

import (
	"fmt"

	"github.com/prism-lora/prism/core/train"
)

// Ten steps, two of warmup: the rate climbs linearly to its peak, then
// follows half a cosine towards zero.
func ExampleLearningRate() {
	for t := 0; t < 10; t++ {
		fmt.Printf("%.4f ", train.LearningRate(1e-3, t, 10, 2))
	}
	fmt.Println()
	// Output:
	// 0.0005 0.0010 0.0010 0.0010 0.0009 0.0007 0.0005 0.0003 0.0001 0.0000
}
