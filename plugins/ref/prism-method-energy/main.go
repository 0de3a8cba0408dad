// Command prism-method-energy is the energy method plugin: the window where
// the spectrum's cumulative energy crosses a threshold. Run by prism, not by
// hand.
package main

import (
	"github.com/prism-lora/prism/plugins/ref/refmethods"
	"github.com/prism-lora/prism/plugins/sdk"
)

func main() { sdk.ServeMethod(refmethods.Energy{}) }
