package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/prism-lora/prism/core/safetensors"
)

// runPrism runs the command tree in-process, as main does, and returns
// stdout, stderr and the error.
func runPrism(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestLowrankFlagParsing(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeFixture(t, dir)
	out := filepath.Join(dir, "w.safetensors")
	stdout, _, err := runPrism(t, "lowrank", "init", "--in", in, "--out", out, "--method", "window",
		"--start", "0", "--rank", "2", "--alpha", "4", "--targets", `enc\.q\.weight`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "window start=0, rank 2, alpha 4, scale 2") {
		t.Errorf("report: %s", stdout)
	}
	r, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Metadata(); m["window"] != "start=0" || m["start"] != "0" || m["scale"] != "2" {
		t.Errorf("--start 0 must count as given: metadata %v", m)
	}
	r.Close()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lowrank", "init", "--in", in, "--out", out, "--method", "pissa", "--rank", "2", "--start", "0"}, "--start applies only to --method window"},
		{[]string{"lowrank", "init", "--in", in, "--out", out, "--method", "pissa", "--rank", "two"}, `invalid argument "two" for "--rank"`},
		{[]string{"lowrank", "init", "--in", in, "--out", out, "--method", "pissa", "--rank", "2", "--niter", "3"}, "--niter applies only with --svd randomized"},
		{[]string{"lowrank", "init", "--in", in, "--out", out, "--rank", "2"}, "--method is required"},
		{[]string{"lowrank", "init", "--in", in, "--out", out, "--method", "pissa", "--rank", "2", "extra"}, "unknown command"},
		{[]string{"lowrank", "spectrum", "--in", in, "--top-k", "x"}, `"--top-k"`},
	} {
		_, _, err := runPrism(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to say %q", c.args, err, c.want)
		}
	}
}

// Every command's --help explains every flag.
func TestHelpExplainsEveryFlag(t *testing.T) {
	for _, path := range [][]string{{"lowrank"}, {"lowrank", "init"}, {"lowrank", "spectrum"}, {"demo"}} {
		stdout, _, err := runPrism(t, append(path, "--help")...)
		if err != nil {
			t.Fatalf("%v --help: %v", path, err)
		}
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" {
				t.Errorf("prism %s --%s has no help text", strings.Join(path, " "), f.Name)
			}
			if !strings.Contains(stdout, "--"+f.Name) {
				t.Errorf("prism %s --help does not show --%s", strings.Join(path, " "), f.Name)
			}
		})
	}
	stdout, _, _ := runPrism(t, "lowrank", "init", "--help")
	for _, want := range []string{"NAME.lora_A", "NAME.lora_B", "NAME.base", "Wres = W − scale·B·A", "s = ⌊(k − r)/2⌋", "F16 and BF16", "atomically"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lowrank init --help does not explain %q", want)
		}
	}
}

// The real binary: exit status and stderr on bad input, and a good run.
func TestBinaryEndToEnd(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "prism")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in, _ := writeFixture(t, dir)
	good, _ := os.ReadFile(in)
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	os.WriteFile(corrupt, good[:len(good)/2], 0o644)
	out := filepath.Join(dir, "adapters.safetensors")

	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, stdout.String(), stderr.String()
		case errors.As(err, &exit):
			return exit.ExitCode(), stdout.String(), stderr.String()
		}
		t.Fatalf("running %v: %v", args, err)
		return 0, "", ""
	}

	code, _, stderr := run("lowrank", "init", "--in", corrupt, "--out", out, "--method", "mid", "--rank", "2")
	if code == 0 || !strings.HasPrefix(stderr, "prism: safetensors file "+corrupt+": ") || !strings.Contains(stderr, "truncated") {
		t.Errorf("corrupt input: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed run left an output file")
	}
	code, _, stderr = run("lowrank", "init", "--in", in, "--out", out, "--method", "mid", "--rank", "0")
	if code == 0 || !strings.Contains(stderr, "--rank must be an integer ≥ 1 (got 0)") {
		t.Errorf("--rank 0: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := run("lowrank", "init", "--in", in, "--out", out, "--method", "mid", "--rank", "2")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "wrote 15 tensors for 5 layers") {
		t.Errorf("good run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = run("lowrank", "spectrum", "--in", out, "--targets", `.*\.base`)
	if code != 0 || !strings.Contains(stdout, "enc.q.weight.base") {
		t.Errorf("spectrum of the output: exit %d, %q", code, stdout)
	}
	if code, stdout, _ = run("--help"); code != 0 || !strings.Contains(stdout, "lowrank") || !strings.Contains(stdout, "demo") {
		t.Errorf("prism --help: exit %d, %q", code, stdout)
	}
}
