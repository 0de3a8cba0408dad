package train

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/adapter"
)

// Environment of the helper process.
const (
	helperEnv    = "PRISM_TRAIN_KILL_HELPER"
	helperCache  = "PRISM_TRAIN_KILL_CACHE"
	helperResult = "PRISM_TRAIN_KILL_RESULT"
)

// TestKillHelper is the child process of TestSIGKILLResume: it runs one
// fine-tune (pretraining first when the cache lacks the model), printing
// "PHASE STEP" after every step, and writes the result as JSON.
func TestKillHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestSIGKILLResume")
	}
	o := testOptions(t, os.Getenv(helperCache))
	o.afterStep = func(phase string, step int) {
		fmt.Printf("%s %d\n", phase, step)
		time.Sleep(3 * time.Millisecond) // room for the parent to kill mid-run
	}
	res, err := Finetune(context.Background(), killConfig(), o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(helperResult), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func killConfig() FinetuneConfig {
	c := digitsFinetune(adapter.MethodMiLoRA)
	c.Pretrain.Hyper.Seed = 5 // its own pretrained model, not the other tests'
	return c
}

// runHelper starts the helper; when killAt is "PHASE STEP" it SIGKILLs the
// process as soon as it reports that step, else it waits for the result.
func runHelper(t *testing.T, cache, killAt string) (res Result, killed bool, first string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperCache+"="+cache, helperResult+"="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if first == "" {
			first = strings.TrimSpace(sc.Text())
		}
		if killAt != "" && strings.TrimSpace(sc.Text()) == killAt {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
	}
	go func() { // drain
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	if killed {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("helper was not killed by SIGKILL: %v", err)
		}
		return Result{}, true, first
	}
	if err != nil {
		t.Fatalf("helper failed: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return res, false, first
}

// TestSIGKILLResume kills real training processes with SIGKILL — during
// pretraining and twice during fine-tuning, between and right after
// checkpoints — and checks that running again finishes with exactly the
// numbers of a run that was never interrupted.
func TestSIGKILLResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs training subprocesses")
	}
	clean := t.TempDir()
	want, _, _ := runHelper(t, clean, "")
	if want.Resumed || want.PretrainCached {
		t.Fatalf("uninterrupted run: resumed=%v pretrain cached=%v", want.Resumed, want.PretrainCached)
	}

	cache := t.TempDir()
	// Pretraining has 4 epochs of 45 steps, fine-tuning 3; checkpoints
	// every 10 steps and at the end of each epoch. Each run starts after
	// the last checkpoint of the one killed before it.
	kills := []struct{ at, firstStep string }{
		{"pretrain 97", "pretrain 1"},
		{"pretrain 135", "pretrain 91"},
		{"finetune 23", "pretrain 131"},
		{"finetune 50", "finetune 21"},
		{"finetune 91", "finetune 51"},
	}
	for _, k := range kills {
		_, killed, first := runHelper(t, cache, k.at)
		if !killed {
			t.Fatalf("helper finished before step %q", k.at)
		}
		if first != k.firstStep {
			t.Errorf("run killed at %q started at %q, want %q", k.at, first, k.firstStep)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "runs")); err != nil {
		t.Fatalf("no fine-tuning checkpoint after the kills: %v", err)
	}
	got, _, first := runHelper(t, cache, "")
	if !got.Resumed || first != "finetune 91" {
		t.Errorf("the last run: resumed=%v, first step %q, want finetune 91", got.Resumed, first)
	}
	if !sameResult(want, got) || got.Fingerprint != want.Fingerprint || got.Pretrained != want.Pretrained {
		t.Errorf("killed-and-resumed run differs from the uninterrupted one:\n%+v\n%+v", want.Metrics(), got.Metrics())
	}
	// Nothing is left behind: no partial pretraining, no run checkpoint, no temporary files.
	leftovers, _ := filepath.Glob(filepath.Join(cache, "pretrained", "*"))
	for _, p := range leftovers {
		if base := filepath.Base(p); strings.Contains(base, ".partial") || strings.HasPrefix(base, ".tmp") {
			t.Errorf("left behind: %s", p)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "runs")); len(entries) != 0 {
		t.Errorf("run checkpoints left behind: %v", entries)
	}
}
