package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/prism-lora/prism/internal/atomicfile"
	"github.com/prism-lora/prism/plugins/protocol"
)

// EnvPluginPath names the environment variable with the plugin directories
// searched first, colon-separated.
const EnvPluginPath = "PRISM_PLUGIN_PATH"

// ManifestName is the file, in each plugin directory, that pins the SHA-256
// of every plugin binary there.
const ManifestName = "prism-plugins.json"

// SearchPath is where plugins are looked for, in order: the directories in
// $PRISM_PLUGIN_PATH, then DefaultDirs. A plugin found earlier shadows one
// of the same kind and name found later.
func SearchPath() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(EnvPluginPath)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	for _, d := range DefaultDirs() {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// DefaultDirs are the plugin directories searched after $PRISM_PLUGIN_PATH:
// "plugins" beside the running executable (so bin/prism finds what
// `make plugins` put in bin/plugins), then the user's data directory,
// $XDG_DATA_HOME/prism/plugins (default ~/.local/share/prism/plugins).
func DefaultDirs() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dirs = append(dirs, filepath.Join(filepath.Dir(exe), "plugins"))
		}
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		if home, err := os.UserHomeDir(); err == nil {
			data = filepath.Join(home, ".local", "share")
		}
	}
	if data != "" {
		dirs = append(dirs, filepath.Join(data, "prism", "plugins"))
	}
	return dirs
}

// Manifest pins plugin binaries by SHA-256, by file name within its directory.
type Manifest struct {
	Plugins map[string]Pin `json:"plugins"`
}

// Pin is one binary's pinned checksum.
type Pin struct {
	SHA256 string `json:"sha256"` // lower-case hex
}

// ReadManifest reads dir's manifest; a directory without one has an empty
// manifest.
func ReadManifest(dir string) (Manifest, error) {
	m := Manifest{Plugins: map[string]Pin{}}
	path := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", path, err)
	}
	if m.Plugins == nil {
		m.Plugins = map[string]Pin{}
	}
	for file, p := range m.Plugins {
		if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != sha256.Size {
			return m, fmt.Errorf("manifest %s: plugin %q: sha256 %q is not 64 hex digits", path, file, p.SHA256)
		}
		if filepath.Base(file) != file {
			return m, fmt.Errorf("manifest %s: plugin %q: want a bare file name", path, file)
		}
	}
	return m, nil
}

// WriteManifest writes dir's manifest atomically (temporary file + rename).
func WriteManifest(dir string, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ManifestName), append(data, '\n'))
}

// FileSHA256 is the lower-case hex SHA-256 of a file's contents.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PinFiles records the SHA-256 of each plugin binary in the manifest of its
// directory and returns the pins written. Each file must be named
// prism-method-NAME or prism-dataset-NAME.
func PinFiles(paths ...string) (map[string]string, error) {
	byDir := map[string][]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, _, ok := ParseFileName(filepath.Base(abs)); !ok {
			return nil, fmt.Errorf("pin %s: not a plugin file name (want prism-method-NAME or prism-dataset-NAME)", p)
		}
		byDir[filepath.Dir(abs)] = append(byDir[filepath.Dir(abs)], abs)
	}
	pins := map[string]string{}
	for dir, files := range byDir {
		m, err := ReadManifest(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			sum, err := FileSHA256(f)
			if err != nil {
				return nil, fmt.Errorf("pin %s: %w", f, err)
			}
			m.Plugins[filepath.Base(f)] = Pin{SHA256: sum}
			pins[f] = sum
		}
		if err := WriteManifest(dir, m); err != nil {
			return nil, fmt.Errorf("pin: writing the manifest of %s: %w", dir, err)
		}
	}
	return pins, nil
}

// ParseFileName splits a plugin file name prism-KIND-NAME into kind and name.
func ParseFileName(file string) (protocol.Kind, string, bool) {
	for _, k := range protocol.Kinds {
		if name, ok := strings.CutPrefix(file, k.FilePrefix()); ok && name != "" && !strings.ContainsAny(name, " \t/") {
			return k, name, true
		}
	}
	return "", "", false
}

// Status is the state of an installed plugin as seen without running it.
type Status string

// The states of an installed plugin; only StatusOK plugins are started.
const (
	StatusOK            Status = "ok"
	StatusUnpinned      Status = "unpinned"
	StatusMismatch      Status = "checksum-mismatch"
	StatusMissing       Status = "missing"
	StatusNotExecutable Status = "not-executable"
)

// Installed is a plugin found on the search path.
type Installed struct {
	Kind protocol.Kind
	Name string
	// Path is the binary (for a missing one, where its pin says it is).
	Path string
	// Pin is the SHA-256 pinned in the manifest ("" when unpinned); SHA256
	// is the binary's actual checksum ("" when it could not be read).
	Pin, SHA256 string
	Status      Status
	// Shadowed lists binaries of the same kind and name later on the path.
	Shadowed []string
}

// Discover lists the plugins in dirs (in order; missing directories are
// skipped): every file named prism-KIND-NAME, and every manifest entry
// whose binary is absent. The first of a kind and name wins; later ones are
// listed in its Shadowed. Checksums are computed here, so Status tells
// whether the binary matches its pin.
func Discover(dirs []string) ([]Installed, error) {
	type key struct {
		kind protocol.Kind
		name string
	}
	var out []Installed
	index := map[key]int{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("plugin directory %s: %w", dir, err)
		}
		man, err := ReadManifest(dir)
		if err != nil {
			return nil, err
		}
		files := map[string]bool{}
		for _, e := range entries {
			if _, _, ok := ParseFileName(e.Name()); ok && !e.IsDir() {
				files[e.Name()] = true
			}
		}
		for file := range man.Plugins {
			if _, _, ok := ParseFileName(file); ok {
				files[file] = true
			}
		}
		names := make([]string, 0, len(files))
		for f := range files {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, file := range names {
			kind, name, _ := ParseFileName(file)
			path := filepath.Join(dir, file)
			if i, dup := index[key{kind, name}]; dup {
				out[i].Shadowed = append(out[i].Shadowed, path)
				continue
			}
			inst := inspectFile(kind, name, path, man.Plugins[file].SHA256)
			index[key{kind, name}] = len(out)
			out = append(out, inst)
		}
	}
	return out, nil
}

// inspectFile works out an installed plugin's status from its file and pin.
func inspectFile(kind protocol.Kind, name, path, pin string) Installed {
	inst := Installed{Kind: kind, Name: name, Path: path, Pin: pin}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		inst.Status = StatusMissing
		return inst
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		inst.Status = StatusNotExecutable
	}
	if sum, err := FileSHA256(path); err == nil {
		inst.SHA256 = sum
	}
	if inst.Status != "" {
		return inst
	}
	switch {
	case pin == "":
		inst.Status = StatusUnpinned
	case pin != inst.SHA256:
		inst.Status = StatusMismatch
	default:
		inst.Status = StatusOK
	}
	return inst
}
