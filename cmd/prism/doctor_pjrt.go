package main

import (
	"sort"
	"strings"
)

// gopjrtVersion is the gopjrt module prism is built with (go.mod), and
// gopjrtPJRTAPI the PJRT C API version of its header (pjrt/pjrt_c_api.h:
// PJRT_API_MAJOR.PJRT_API_MINOR); TestGopjrtHeaderVersion checks both
// against the module.
const (
	gopjrtVersion = "v0.10.0"
	gopjrtPJRTAPI = "0.81"
)

// describePluginMap lists name=path pairs, sorted.
func describePluginMap(found map[string]string) string {
	var parts []string
	for name, path := range found {
		if name == path { // a plugin loaded by its absolute path
			parts = append(parts, path)
		} else {
			parts = append(parts, name+"="+path)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
