// Command prism-dataset-sklearn-digits is the reference dataset plugin:
// scikit-learn's digits, as prism's built-in loader reads them. Run by
// prism, not by hand.
package main

import (
	"github.com/prism-lora/prism/plugins/ref/refdatasets"
	"github.com/prism-lora/prism/plugins/sdk"
)

func main() { sdk.ServeDataset(&refdatasets.SklearnDigits{}) }
