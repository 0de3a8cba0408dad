//go:build cgo && !noxla

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gopjrt/pjrt"
)

// checkPJRTPlugin loads the PJRT plugin named by plugin (a name on gopjrt's
// search path or an absolute path; ",options" are ignored) without creating
// a client, and reports its path and the PJRT C API version it implements
// against the version of the header gopjrt was built with.
func checkPJRTPlugin(plugin string) doctorCheck {
	name, _, _ := strings.Cut(plugin, ",")
	const check = "PJRT plugin"
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return doctorCheck{Name: check, Status: doctorFail, Detail: err.Error(), Fix: backendFix("xla:"+name, false)}
		}
	}
	p, err := loadPJRTPlugin(name)
	if err != nil {
		detail := fmt.Sprintf("loading %q: %v", name, err)
		if gpus, _ := filepath.Glob("/dev/nvidia*"); len(gpus) == 0 && !filepath.IsAbs(name) && strings.Contains(strings.ToLower(name), "cuda") {
			detail += "\n(gopjrt skips CUDA plugins found by name when no NVIDIA device is visible: /dev/nvidia* is absent here)"
		}
		return doctorCheck{Name: check, Status: doctorFail, Detail: detail, Fix: backendFix("xla:"+name, false)}
	}
	major, minor := p.Version()
	detail := fmt.Sprintf("%s: PJRT C API %d.%d (prism's gopjrt %s was built against %s)", p.Path(), major, minor, gopjrtVersion, gopjrtPJRTAPI)
	if attrs := describeAttributes(p.Attributes()); attrs != "" {
		detail += "; " + attrs
	}
	var wantMajor, wantMinor int
	fmt.Sscanf(gopjrtPJRTAPI, "%d.%d", &wantMajor, &wantMinor)
	switch {
	case major != wantMajor:
		return doctorCheck{Name: check, Status: doctorFail, Detail: detail + ": a different major version is incompatible",
			Fix: "use a PJRT plugin of C API major version " + fmt.Sprint(wantMajor)}
	case minor != wantMinor:
		detail += fmt.Sprintf(": same major version, minor %d vs %d (compatible by the C API's versioning rules; this pair is untested)", minor, wantMinor)
	}
	return doctorCheck{Name: check, Status: doctorOK, Detail: detail}
}

// loadPJRTPlugin is pjrt.GetPlugin with panics turned into errors.
func loadPJRTPlugin(name string) (p *pjrt.Plugin, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return pjrt.GetPlugin(name)
}

// describeAttributes lists a plugin's attributes, shortest first, within a line.
func describeAttributes(attrs pjrt.NamedValuesMap) string {
	var parts []string
	for k, v := range attrs {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	s := strings.Join(parts, ", ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// pjrtPluginsFound lists the PJRT plugins gopjrt can load (name → path).
func pjrtPluginsFound() map[string]string { return pjrt.AvailablePlugins() }

// pjrtSearchDescription says where gopjrt looks for plugins.
func pjrtSearchDescription() string {
	if v, ok := os.LookupEnv(pjrt.PJRTPluginPathsEnv); ok {
		return "$" + pjrt.PJRTPluginPathsEnv + "=" + v
	}
	return "$" + pjrt.PJRTPluginPathsEnv + " (unset: ~/.local/lib/gomlx/pjrt, /usr/local/lib/gomlx/pjrt, $LD_LIBRARY_PATH and /etc/ld.so.conf's directories)"
}
