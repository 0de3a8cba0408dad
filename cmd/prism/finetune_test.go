package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// tinyModel are flags for a small MLP pretrained on digits in a second.
func tinyModel(cache string) []string {
	return []string{"--model", "mlp", "--mlp-hidden", "24", "--cache-dir", cache, "--quiet"}
}

func TestPretrainCommand(t *testing.T) {
	catalogtest.Open(t, "digits") // skips (or fails under PRISM_REQUIRE_DATA=1) without the data
	cache := t.TempDir()
	args := append([]string{"pretrain", "--task", "digits", "--epochs", "3", "--batch", "32", "--lr", "0.01", "--json"}, tinyModel(cache)...)
	stdout, _, err := runPrism(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Key     string  `json:"key"`
		TestAcc float64 `json:"test_acc"`
		Dir     string  `json:"dir"`
		Curves  []struct {
			Epoch int `json:"epoch"`
		} `json:"curves"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
	}
	if got.TestAcc < 70 || len(got.Curves) != 3 || !strings.HasPrefix(got.Dir, cache) {
		t.Errorf("pretrain result %+v", got)
	}
	if _, err := os.Stat(filepath.Join(got.Dir, "model.safetensors")); err != nil {
		t.Error(err)
	}
	// Again, as a table: the cached model.
	stdout, _, err = runPrism(t, append([]string{"pretrain", "--task", "digits", "--epochs", "3", "--batch", "32", "--lr", "0.01"}, tinyModel(cache)...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"test accuracy", "(cached;", got.Key, "mlp (sizes [64 24])", "train loss"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestFinetuneCommand(t *testing.T) {
	catalogtest.Open(t, "digits")
	cache := t.TempDir()
	runDir := filepath.Join(t.TempDir(), "run")
	args := append([]string{"finetune", "--task", "digits", "--pretrain-task", "digits", "--pretrain-epochs", "2",
		"--pretrain-batch", "32", "--pretrain-lr", "0.01", "--fraction", "0.25", "--rank", "4", "--alpha", "8",
		"--epochs", "2", "--batch", "32", "--lr", "0.01", "--run-dir", runDir}, tinyModel(cache)...)
	stdout, _, err := runPrism(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	// fc1 is 24×64 (k = 24): s = round(0.25·20) = 5.
	for _, want := range []string{"window fraction=0.25 r=4 α=8 (scale 2)", "task B accuracy", "task A accuracy", "forgetting",
		"mean KL on task A", "602 of 2412", "1× s=5 of k=24", "run dir", "b_acc", "a_acc"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "run.json")); err != nil {
		t.Error(err)
	}
	// JSON, another method: the pretrained model comes from the cache.
	args = append([]string{"finetune", "--task", "digits", "--pretrain-task", "digits", "--pretrain-epochs", "2",
		"--pretrain-batch", "32", "--pretrain-lr", "0.01", "--method", "full", "--epochs", "1", "--batch", "32", "--json"}, tinyModel(cache)...)
	stdout, _, err = runPrism(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Method         string             `json:"method"`
		PretrainCached bool               `json:"pretrain_cached"`
		Metrics        map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
	}
	// full: fc1 (24×64 + 24) and the new head (10×24 + 10).
	if res.Method != "full" || !res.PretrainCached || res.Metrics["trainable_params"] != 24*64+24+10*24+10 {
		t.Errorf("full fine-tune result %+v", res)
	}
	for _, k := range []string{"b_acc", "a_acc_before", "a_acc_after", "forgetting", "a_kl", "wall_s"} {
		if _, ok := res.Metrics[k]; !ok {
			t.Errorf("metrics lack %s: %v", k, res.Metrics)
		}
	}
}

// Flag combinations: the window flags select or contradict the method, and
// mistakes name the flag.
func TestFinetuneFlags(t *testing.T) {
	resolve := func(args ...string) (string, lowrank.WindowSpec, error) {
		cmd, ff, p, _ := finetuneCommand()
		if err := cmd.ParseFlags(args); err != nil {
			return "", lowrank.WindowSpec{}, err
		}
		pre, err := p.config(cmd.Flags(), false)
		if err != nil {
			return "", lowrank.WindowSpec{}, err
		}
		c, err := ff.config(cmd.Flags(), pre, false)
		return c.Method, c.Window, err
	}
	if m, w, err := resolve("--start", "3"); err != nil || m != adapter.MethodWindow || w != (lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 3}) {
		t.Errorf("--start 3: method %s window %v, %v", m, w, err)
	}
	if m, w, err := resolve("--fraction", "0.75", "--method", "window"); err != nil || m != adapter.MethodWindow || w.Fraction != 0.75 {
		t.Errorf("--fraction 0.75: method %s window %v, %v", m, w, err)
	}
	if m, _, err := resolve(); err != nil || m != adapter.MethodMid {
		t.Errorf("default method %s, %v", m, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "mid", "--start", "2"}, "--start and --fraction apply to --method window"},
		{[]string{"--start", "2", "--fraction", "0.5"}, "use one"},
		{[]string{"--method", "lorra"}, `--method "lorra" is unknown`},
		{[]string{"--method", "full", "--rank", "4"}, "--rank applies to the adapter methods"},
		{[]string{"--fraction", "1.5"}, "--fraction must be in [0, 1]"},
		{[]string{"--task", "nonesuch"}, `unknown dataset "nonesuch"`},
		{[]string{"--lr", "-1"}, "learning rate"},
		{[]string{"--targets", "blocks.(0"}, "not a regular expression"},
		{[]string{"--run-dir-epochs"}, "--run-dir-epochs needs --run-dir"},
	} {
		if _, _, err := resolve(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to say %q", c.args, err, c.want)
		}
	}
	if _, _, err := runPrism(t, "pretrain", "--model", "resnet"); err == nil || !strings.Contains(err.Error(), `unknown model "resnet"`) {
		t.Errorf("--model resnet: %v", err)
	}
}

func TestTrainingHelp(t *testing.T) {
	for _, path := range [][]string{{"pretrain"}, {"finetune"}} {
		stdout, _, err := runPrism(t, append(path, "--help")...)
		if err != nil {
			t.Fatal(err)
		}
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" || !strings.Contains(stdout, "--"+f.Name) {
				t.Errorf("prism %s --help does not explain --%s", path[0], f.Name)
			}
		})
	}
	stdout, _, _ := runPrism(t, "finetune", "--help")
	for _, want := range []string{"forgetting = before − after", "s = ⌊(k − r)/2⌋", "Wres = W − scale·B·A", "--run-dir", "resumes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("finetune --help does not explain %q", want)
		}
	}
}
