// Package kernel installs and checks prism's Jupyter kernel: GoNB built from the
// repository's pinned tools modules, registered as the kernelspec "prism"
// ("Go (prism)") whose environment puts go, gonb, goimports and gopls on PATH,
// whose go.work makes the repository's packages importable from any notebook in
// any directory, and whose cells report compile errors as Jupyter errors.
//
// Sub-packages: display (rich notebook output), jupyter (the Jupyter CLI),
// notebook (headless execution and the output checker), toolchain (building and
// caching the tools).
package kernel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prism-lora/prism/kernel/toolchain"
)

// ModulePath is prism's Go module path.
const ModulePath = "github.com/prism-lora/prism"

// Name and DisplayName of the kernelspec.
const (
	Name        = "prism"
	DisplayName = "Go (prism)"
)

// FindRepoRoot returns the nearest directory at or above dir whose go.mod
// declares prism's module.
func FindRepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if isPrismModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no prism checkout at or above %s (looked for a go.mod declaring module %s); run from the repository or pass --repo", dir, ModulePath)
		}
		d = parent
	}
}

// isPrismModule reports whether the go.mod at path declares prism's module.
func isPrismModule(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == ModulePath
		}
	}
	return false
}

// Spec is the kernel.json prism installs.
type Spec struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode"`
	Env           map[string]string `json:"env"`
	Metadata      map[string]any    `json:"metadata"`
}

// GoNB flags the kernel runs with.
const (
	// goWorkFlag makes GoNB start every notebook's module with a go.work that
	// uses the repository, so `import "github.com/prism-lora/prism/..."` resolves
	// locally (a bare replace directive fails against the module proxy).
	goWorkFlag = "--go_work="
	// rawErrorFlag makes compile errors Jupyter error outputs (not HTML), so
	// headless runs and the checker see them as errors.
	rawErrorFlag = "--raw_error"
)

// NewSpec builds the kernel.json for tools built from repoRoot's pins. PATH in
// its env puts the tools' bin directory and Go's first, ahead of the launching
// environment's PATH (jupyter_client ≥ 7 substitutes ${PATH}).
func NewSpec(repoRoot string, t toolchain.Tools) Spec {
	return Spec{
		Argv: []string{
			t.Path(toolchain.GoNB), "--kernel", "{connection_file}",
			goWorkFlag + repoRoot, rawErrorFlag,
			// GoNB logs every start, cell and shutdown to stderr at info level
			// (with stack traces), and a spurious "Error message" line on every
			// start; keep only fatal errors. Cell failures still reach the notebook.
			"--logtostderr=false", "--stderrthreshold=FATAL", "--log_file=" + os.DevNull,
		},
		DisplayName:   DisplayName,
		Language:      "go",
		InterruptMode: "message",
		Env: map[string]string{
			"PATH": t.Bin + string(os.PathListSeparator) + t.Go.Bin() + string(os.PathListSeparator) + "${PATH}",
		},
		Metadata: map[string]any{
			"prism": map[string]any{
				"repo":       repoRoot,
				"tools_key":  t.Key,
				"go_version": t.Go.Version,
				"gonb":       toolchain.GoNBVersion,
				"gopls":      toolchain.GoPLSVersion,
			},
		},
	}
}

// Marshal returns the kernel.json bytes (indented, newline-terminated).
func (s Spec) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// GoWork returns the repository the spec's --go_work flag points at ("" if none).
func GoWork(argv []string) string {
	for _, a := range argv {
		if v, ok := strings.CutPrefix(a, goWorkFlag); ok {
			return v
		}
		if v, ok := strings.CutPrefix(a, "-go_work="); ok {
			return v
		}
	}
	return ""
}

// hasRawError reports whether argv turns on GoNB's raw (textual) errors.
func hasRawError(argv []string) bool {
	for _, a := range argv {
		switch a {
		case "--raw_error", "-raw_error", "--raw_error=true", "-raw_error=true":
			return true
		}
	}
	return false
}

// specPATH returns the directories an installed spec's PATH puts first (before ${PATH}).
func specPATH(env map[string]string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(env["PATH"]) {
		if strings.Contains(d, "${PATH}") || strings.Contains(d, "$PATH") {
			break
		}
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// lookIn finds program in dirs.
func lookIn(dirs []string, program string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(program + " is not in the kernel's PATH (" + strings.Join(dirs, string(os.PathListSeparator)) + ")")
}
