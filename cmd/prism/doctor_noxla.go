//go:build !cgo || noxla

package main

// checkPJRTPlugin is never called without XLA (backend.XLAAvailable is false).
func checkPJRTPlugin(plugin string) doctorCheck {
	return doctorCheck{Name: "PJRT plugin", Status: doctorFail, Detail: errNoXLA.Error(), Fix: backendFix("xla:"+plugin, false)}
}

func pjrtPluginsFound() map[string]string { return nil }

func pjrtSearchDescription() string { return "nothing: XLA is not built in" }
