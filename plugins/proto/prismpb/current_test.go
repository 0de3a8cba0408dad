package prismpb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvRequireProto names the variable that turns a missing protoc from a
// skip into a failure (CI sets it after `scripts/setup.sh proto`).
const EnvRequireProto = "PRISM_REQUIRE_PROTO"

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto with
// the pinned generators (scripts/protoc.sh) into a temporary directory and
// compares it with the committed files byte for byte.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv(EnvRequireProto) != "" {
			t.Fatalf("protoc not found and $%s is set: run scripts/setup.sh proto", EnvRequireProto)
		}
		t.Skipf("protoc not found (scripts/setup.sh proto installs it; set $%s to make this a failure)", EnvRequireProto)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "protoc.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/protoc.sh: %v\n%s", err, b)
	}
	gen := filepath.Join(out, "plugins", "proto", "prismpb")
	files, err := filepath.Glob(filepath.Join(gen, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated files in %s (%v)", gen, err)
	}
	committed, _ := filepath.Glob("*.pb.go")
	if len(committed) != len(files) {
		t.Errorf("%d committed .pb.go files, the generator makes %d", len(committed), len(files))
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Base(f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("plugins/proto/prismpb/%s is not what the .proto generates: run `make proto` and commit", filepath.Base(f))
		}
	}
}
