// Command builtinplugin serves prism's built-in "mid" window method as a
// plugin that asks the host for the SVD, so that the benchmark compares the
// same computation in-process and across the plugin boundary.
package main

import (
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/plugins/sdk"
)

type viaPlugin struct{ builtin.Method }

func (m viaPlugin) Metadata() method.Metadata {
	md := m.Method.Metadata()
	md.Name, md.Version, md.NeedsSVD = "midplugin", "bench", true
	return md
}

func main() {
	m, err := builtin.New("mid")
	if err != nil {
		panic(err)
	}
	sdk.ServeMethod(viaPlugin{m})
}
