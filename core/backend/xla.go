//go:build cgo && !noxla

package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/stablehlo"
	"github.com/gomlx/gopjrt/pjrt"
)

// XLAAvailable reports whether this binary can create "xla:…" backends: it
// needs cgo and no `noxla` build tag.
const XLAAvailable = true

// newXLA loads the PJRT plugin named by plugin (a name searched on gopjrt's
// path, or an absolute path; ",option" suffixes pass through to GoMLX) and
// returns GoMLX's XLA (stablehlo) backend. A missing plugin is an error that
// says where it looked.
func newXLA(spec, plugin string) (backends.Backend, error) {
	pluginName, _, _ := strings.Cut(plugin, ",")
	if filepath.IsAbs(pluginName) {
		if _, err := os.Stat(pluginName); err != nil {
			return nil, fmt.Errorf("backend %q: PJRT plugin file: %w", spec, err)
		}
	} else if _, ok := pjrt.AvailablePlugins()[pluginName]; !ok {
		// GetPlugin's error lists the directories gopjrt searched.
		_, err := pjrt.GetPlugin(pluginName)
		if err == nil {
			err = fmt.Errorf("plugin %q did not pass gopjrt's check", pluginName)
		}
		return nil, fmt.Errorf("backend %q: no usable PJRT plugin named %q (plugins found: %s); "+
			"set $%s to the directories to search or give the plugin's absolute path (xla:/abs/path/pjrt_c_api_%s_plugin.so): %w",
			spec, pluginName, describePlugins(pjrt.AvailablePlugins()), pjrt.PJRTPluginPathsEnv, pluginName, err)
	}
	b, err := stablehlo.New(plugin)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", spec, err)
	}
	return b, nil
}

func describePlugins(found map[string]string) string {
	if len(found) == 0 {
		return "none"
	}
	var parts []string
	for name, path := range found {
		parts = append(parts, name+"="+path)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
