// Command prism-method-randwindow is the randwindow method plugin: a window
// of singular components at a seeded random start. Run by prism, not by hand.
package main

import (
	"github.com/prism-lora/prism/plugins/ref/refmethods"
	"github.com/prism-lora/prism/plugins/sdk"
)

func main() { sdk.ServeMethod(refmethods.RandWindow{}) }
