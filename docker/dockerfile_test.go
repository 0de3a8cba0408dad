package docker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// tb is the part of testing.TB the checker uses (a recorder stands in for
// it in TestCheckerCatches).
type tb interface {
	Helper()
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
}

// recorder collects the checker's complaints instead of failing the test.
type recorder struct {
	*testing.T
	log strings.Builder
}

func (r *recorder) Errorf(format string, args ...any) { fmt.Fprintf(&r.log, format+"\n", args...) }

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, …
	Args string
}

func parseDockerfile(t tb, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: the last instruction ends with a continuation", path)
	}
	return out
}

// repo facts the Dockerfiles are checked against.
type repo struct {
	root    string
	parts   map[string]bool // scripts/setup.sh parts
	targets map[string]bool // make targets
	goMin   string          // go.mod's go directive, e.g. "go1.26.0"
	prism   string          // a prism binary built from this checkout
}

func loadRepo(t tb) *repo {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	r := &repo{root: root, parts: map[string]bool{}, targets: map[string]bool{}}
	setup, err := os.ReadFile(filepath.Join(root, "scripts", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^part_([a-z]+)\(\)`).FindAllSubmatch(setup, -1) {
		r.parts[string(m[1])] = true
	}
	r.parts["all"] = strings.Contains(string(setup), "\tall) ")
	makefiles, _ := filepath.Glob(filepath.Join(root, "mk", "*.mk"))
	for _, mf := range append([]string{filepath.Join(root, "Makefile")}, makefiles...) {
		b, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+)\s*:([^=]|$)`).FindAllSubmatch(b, -1) {
			r.targets[string(m[1])] = true
		}
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(\.\d+)?)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	r.goMin = "go" + string(m[1])
	return r
}

// prismBinary builds cmd/prism once (to check the commands the images run).
func (r *repo) prismBinary(t tb) string {
	t.Helper()
	if r.prism == "" {
		r.prism = filepath.Join(t.TempDir(), "prism")
		cmd := exec.Command("go", "build", "-o", r.prism, "./cmd/prism")
		cmd.Dir = r.root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building prism: %v\n%s", err, b)
		}
	}
	return r.prism
}

var (
	// image[:tag][@sha256:digest]
	reImage   = regexp.MustCompile(`^([a-z0-9][a-z0-9._/-]*)(?::([A-Za-z0-9._-]+))?(?:@(sha256:[0-9a-f]{64}))?$`)
	reVersion = regexp.MustCompile(`^(\d+\.\d+\.\d+)(-[a-z0-9.-]+)?$`) // an exact x.y.z, then a variant
	reEnvSet  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// checkFrom requires an exact version tag or a digest; for golang images
// the Go version must satisfy go.mod.
func (r *repo) checkFrom(t tb, where, args string) {
	fields := strings.Fields(args)
	if len(fields) == 0 {
		t.Errorf("%s: FROM without an image", where)
		return
	}
	m := reImage.FindStringSubmatch(fields[0])
	if m == nil {
		t.Errorf("%s: FROM %q is not an image reference", where, fields[0])
		return
	}
	image, tag, digest := m[1], m[2], m[3]
	if digest != "" {
		return
	}
	v := reVersion.FindStringSubmatch(tag)
	if tag == "" || tag == "latest" || v == nil {
		t.Errorf("%s: FROM %s is not pinned: want an exact x.y.z version tag or an @sha256 digest", where, fields[0])
		return
	}
	if image == "golang" && version.Compare("go"+v[1], r.goMin) < 0 {
		t.Errorf("%s: FROM %s has Go %s, go.mod needs %s", where, fields[0], v[1], r.goMin)
	}
}

// checkPath requires a repository path (relative to the repo, or under the
// image's WORKDIR where the repository is copied) to exist.
func (r *repo) checkPath(t tb, where, workdir, p string, executable bool) {
	rel := p
	if workdir != "" && strings.HasPrefix(p, workdir+"/") {
		rel = strings.TrimPrefix(p, workdir+"/")
	} else if filepath.IsAbs(p) {
		return // outside the repository
	}
	fi, err := os.Stat(filepath.Join(r.root, rel))
	switch {
	case err != nil:
		t.Errorf("%s: %s is not in the repository: %v", where, p, err)
	case executable && fi.Mode().Perm()&0o111 == 0:
		t.Errorf("%s: %s is not executable", where, p)
	}
}

// checkCommand checks one simple shell command of a RUN (or an exec-form
// CMD/ENTRYPOINT): repository scripts exist, setup.sh parts and make targets
// are defined, prism sub-commands exist.
func (r *repo) checkCommand(t tb, where, workdir string, words []string) {
	for len(words) > 0 && reEnvSet.MatchString(words[0]) {
		words = words[1:] // VAR=value prefixes
	}
	if len(words) == 0 {
		return
	}
	name := words[0]
	switch {
	case strings.HasPrefix(name, "scripts/") || strings.HasPrefix(name, "docker/") || (workdir != "" && strings.HasPrefix(name, workdir+"/")):
		r.checkPath(t, where, workdir, name, true)
		if filepath.Base(name) == "setup.sh" {
			for _, part := range words[1:] {
				if !r.parts[part] {
					t.Errorf("%s: scripts/setup.sh has no part %q", where, part)
				}
			}
		}
	case name == "make":
		for _, target := range words[1:] {
			if !strings.HasPrefix(target, "-") && !strings.Contains(target, "=") && !r.targets[target] {
				t.Errorf("%s: no make target %q in Makefile or mk/*.mk", where, target)
			}
		}
	case name == "prism" || strings.HasSuffix(name, "/prism"):
		var sub []string
		for _, w := range words[1:] {
			if strings.HasPrefix(w, "-") {
				break
			}
			sub = append(sub, w)
		}
		out, err := exec.Command(r.prismBinary(t), append(sub, "--help")...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "unknown command") {
			t.Errorf("%s: `prism %s` is not a prism command: %v\n%s", where, strings.Join(sub, " "), err, out)
		}
	}
	for _, w := range words[1:] {
		if workdir != "" && strings.Contains(w, workdir+"/") {
			r.checkPath(t, where, workdir, w[strings.Index(w, workdir+"/"):], false)
		}
	}
}

// splitShell cuts a RUN line into simple commands at &&, ||, ; and |.
func splitShell(s string) [][]string {
	var cmds [][]string
	for _, part := range regexp.MustCompile(`&&|\|\||;|\|`).Split(s, -1) {
		if words := strings.Fields(part); len(words) > 0 {
			cmds = append(cmds, words)
		}
	}
	return cmds
}

func checkDockerfile(t tb, r *repo, name string) {
	ins := parseDockerfile(t, name)
	workdir := ""
	froms := 0
	for _, in := range ins {
		where := name + ":" + itoa(in.Line)
		switch in.Cmd {
		case "FROM":
			froms++
			r.checkFrom(t, where, in.Args)
		case "WORKDIR":
			workdir = strings.TrimSuffix(in.Args, "/")
		case "COPY", "ADD":
			fields := strings.Fields(in.Args)
			for _, src := range fields[:max(0, len(fields)-1)] {
				if !strings.HasPrefix(src, "--") {
					r.checkPath(t, where, "", src, false)
				}
			}
		case "RUN":
			for _, words := range splitShell(in.Args) {
				r.checkCommand(t, where, workdir, words)
			}
		case "CMD", "ENTRYPOINT":
			var argv []string
			if err := json.Unmarshal([]byte(in.Args), &argv); err != nil {
				t.Errorf("%s: %s is not in exec (JSON) form: %v", where, in.Cmd, err)
				continue
			}
			r.checkCommand(t, where, workdir, argv)
		}
	}
	if froms == 0 {
		t.Errorf("%s: no FROM", name)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDockerfiles(t *testing.T) {
	r := loadRepo(t)
	r.prismBinary(t) // in this test's temporary folder, which outlives the sub-tests
	files, _ := filepath.Glob("*.Dockerfile")
	for _, want := range []string{"cpu.Dockerfile", "cuda.Dockerfile"} {
		found := false
		for _, f := range files {
			found = found || f == want
		}
		if !found {
			t.Errorf("docker/%s is missing", want)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) { checkDockerfile(t, r, f) })
	}
}

// TestCheckerCatches feeds the checker a Dockerfile with every kind of
// mistake it exists for, and requires each to be reported.
func TestCheckerCatches(t *testing.T) {
	r := loadRepo(t)
	bad := filepath.Join(t.TempDir(), "bad.Dockerfile")
	content := `FROM golang:latest
FROM debian
FROM golang:1.20.1-bookworm
FROM nvidia/cuda:13.0-runtime
WORKDIR /src
COPY missing-dir .
RUN scripts/setup.sh build gpu \
 && scripts/no-such-script.sh \
 && make build no-such-target \
 && prism no-such-command --flag
CMD ["/src/docker/no-entrypoint.sh"]
`
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{T: t}
	checkDockerfile(rec, r, bad)
	for _, w := range []string{
		"FROM golang:latest is not pinned", "FROM debian is not pinned", "has Go 1.20.1, go.mod needs go1.26",
		"FROM nvidia/cuda:13.0-runtime is not pinned", "missing-dir is not in the repository",
		`no part "gpu"`, "scripts/no-such-script.sh is not in the repository", `no make target "no-such-target"`,
		"`prism no-such-command` is not a prism command", "/src/docker/no-entrypoint.sh is not in the repository",
	} {
		if !strings.Contains(rec.log.String(), w) {
			t.Errorf("the checker did not report %q; it said:\n%s", w, rec.log.String())
		}
	}
}
