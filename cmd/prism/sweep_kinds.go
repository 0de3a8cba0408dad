package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/finetune"
	"github.com/prism-lora/prism/core/experiment/synthetic"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/protocol"
)

// The run kinds `prism sweep` and `prism sweep-task` know. A kind is a
// function from a resolved run configuration to its result (see
// experiment.Kind); register new ones here.
func init() {
	for _, k := range []experiment.Kind{finetune.Kind, synthetic.Kind} {
		if err := experiment.Kinds.Register(k); err != nil {
			panic(fmt.Sprintf("registering run kind %q: %v", k.Name, err))
		}
	}
	registerPluginMethods(host.SearchPath())
}

// registerPluginMethods makes the method plugins installed in dirs usable in
// experiment specs (grid.methods) like built-in adapter methods. It only
// lists the directories (nothing is started or checksummed here); a plugin
// that turns out to be unpinned, missing or broken fails its runs with the
// plugin's fault when they execute.
func registerPluginMethods(dirs []string) {
	prefix := protocol.KindMethod.FilePrefix()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), prefix)
			if !ok || e.IsDir() || name == "" {
				continue
			}
			if _, known := experiment.LookupMethod(name); known {
				continue
			}
			// Names a spec cannot hold are skipped.
			_ = experiment.RegisterMethod(name, experiment.MethodTraits{Adapter: true})
		}
	}
}
