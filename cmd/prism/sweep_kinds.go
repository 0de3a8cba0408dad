package main

import (
	"fmt"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/synthetic"
)

// The run kinds `prism sweep` and `prism sweep-task` know. A kind is a
// function from a resolved run configuration to its result (see
// experiment.Kind); register new ones here.
func init() {
	for _, k := range []experiment.Kind{synthetic.Kind} {
		if err := experiment.Kinds.Register(k); err != nil {
			panic(fmt.Sprintf("registering run kind %q: %v", k.Name, err))
		}
	}
}
