package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
)

// digitsPretrain is a small pretraining on sklearn's digits.
func digitsPretrain() PretrainConfig {
	return PretrainConfig{
		Network: testMLP([]int{8, 8, 1}, 32, 24),
		Task:    "digits",
		Hyper:   Hyper{Epochs: 4, BatchSize: 32, LearningRate: 3e-3, WeightDecay: 1e-4, Warmup: 0.1, Clip: 1, Seed: 1},
	}
}

// digitsFinetune fine-tunes on transposed digits.
func digitsFinetune(method string) FinetuneConfig {
	return FinetuneConfig{
		Pretrain: digitsPretrain(),
		Task:     "digits-transposed",
		Method:   method,
		Rank:     4, Alpha: 8,
		Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5},
		Hyper:  Hyper{Epochs: 3, BatchSize: 32, LearningRate: 1e-2, WeightDecay: 1e-4, Warmup: 0.1, Clip: 1, Seed: 7},
	}
}

func testOptions(t testing.TB, cache string) Options {
	return Options{CacheDir: cache, Open: testOpen(t), Quiet: true, CheckpointEvery: 10, TracePerEpoch: 4}
}

// sharedCache is a cache directory shared by the tests of this binary, so
// the digits model is pretrained once.
var (
	sharedCacheOnce sync.Once
	sharedCacheDir  string
)

func sharedCache(t testing.TB) string {
	sharedCacheOnce.Do(func() {
		d, err := os.MkdirTemp("", "prism-train-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedCacheDir = d
	})
	return sharedCacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCacheDir != "" {
		os.RemoveAll(sharedCacheDir)
	}
	os.Exit(code)
}

func TestLearningRateSchedule(t *testing.T) {
	const base = 0.1
	// Warmup 4 of 12 steps: base·1/4 … base, then cosine from base towards 0.
	want := []float64{0.025, 0.05, 0.075, 0.1}
	for i, w := range want {
		if got := LearningRate(base, i, 12, 4); math.Abs(got-w) > 1e-15 {
			t.Errorf("lr(%d) = %v, want %v", i, got, w)
		}
	}
	for i := 4; i < 12; i++ {
		w := base * 0.5 * (1 + math.Cos(math.Pi*float64(i-4)/8))
		if got := LearningRate(base, i, 12, 4); math.Abs(got-w) > 1e-15 {
			t.Errorf("lr(%d) = %v, want %v", i, got, w)
		}
	}
	if got := LearningRate(base, 8, 12, 4); math.Abs(got-base/2) > 1e-15 {
		t.Errorf("cosine midpoint lr = %v, want %v", got, base/2)
	}
	if got := LearningRate(base, 0, 10, 0); got != base {
		t.Errorf("no warmup: lr(0) = %v, want %v", got, base)
	}
	if w := WarmupSteps(0.05, 100); w != 5 {
		t.Errorf("WarmupSteps(0.05, 100) = %d", w)
	}
	if w := WarmupSteps(0.001, 100); w != 1 {
		t.Errorf("WarmupSteps(0.001, 100) = %d, want 1", w)
	}
}

func TestMeanKL(t *testing.T) {
	base := []float32{1, 2, 3, 0, 0, 0}
	if kl, err := MeanKL(base, base, 3); err != nil || kl != 0 {
		t.Errorf("KL(p‖p) = %v, %v", kl, err)
	}
	// Row 1: p = softmax(1,2,3), q = uniform: KL = Σ p log p + log 3.
	after := []float32{0, 0, 0, 0, 0, 0}
	var want float64
	z := []float64{1, 2, 3}
	var s float64
	for _, v := range z {
		s += math.Exp(v)
	}
	for _, v := range z {
		p := math.Exp(v) / s
		want += p * (math.Log(p) + math.Log(3))
	}
	want /= 2 // row 2 has KL 0
	if kl, err := MeanKL(base, after, 3); err != nil || math.Abs(kl-want) > 1e-12 {
		t.Errorf("MeanKL = %v, want %v (%v)", kl, want, err)
	}
	if _, err := MeanKL(base, after[:3], 3); err == nil {
		t.Error("MeanKL accepted mismatched lengths")
	}
}

func TestPretrainCachesAndReuses(t *testing.T) {
	cache := t.TempDir()
	cfg := digitsPretrain()
	cfg.Hyper.Epochs = 2
	var trained int
	o := testOptions(t, cache)
	o.afterStep = func(string, int) { trained++ }
	p1, err := Pretrain(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Cached || trained == 0 {
		t.Fatalf("first call: cached=%v, %d steps", p1.Cached, trained)
	}
	if p1.TestAccuracy < 60 {
		t.Errorf("digits test accuracy %.1f%% after 2 epochs, want ≥ 60%%", p1.TestAccuracy)
	}
	if _, err := os.Stat(filepath.Join(cache, "pretrained", p1.Key+".partial")); !os.IsNotExist(err) {
		t.Errorf("partial checkpoint left behind: %v", err)
	}
	trained = 0
	p2, err := Pretrain(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Cached || trained != 0 || p2.Key != p1.Key || p2.TestAccuracy != p1.TestAccuracy {
		t.Errorf("second call: cached=%v steps=%d key %s vs %s", p2.Cached, trained, p2.Key, p1.Key)
	}
	// Any change of the configuration is a different entry.
	for _, change := range []func(*PretrainConfig){
		func(c *PretrainConfig) { c.Hyper.LearningRate *= 2 },
		func(c *PretrainConfig) { c.Hyper.Seed++ },
		func(c *PretrainConfig) { c.TrainSubset = 500 },
		func(c *PretrainConfig) { c.Network = testMLP([]int{8, 8, 1}, 32, 25) },
	} {
		c := cfg
		change(&c)
		key, _, err := pretrainKey(c, p1.Checksum)
		if err != nil || key == p1.Key {
			t.Errorf("changed config keeps key %s (%v)", key, err)
		}
	}
}

// TestPretrainConcurrent: two concurrent callers train once and load the same files.
func TestPretrainConcurrent(t *testing.T) {
	cache := t.TempDir()
	cfg := digitsPretrain()
	cfg.Hyper.Epochs = 1
	var mu sync.Mutex
	steps := 0
	o := testOptions(t, cache)
	o.afterStep = func(string, int) { mu.Lock(); steps++; mu.Unlock() }
	var wg sync.WaitGroup
	results := make([]*Pretrained, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Pretrain(context.Background(), cfg, o)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	spe := 1442 / 32
	if steps != spe {
		t.Errorf("%d training steps for two concurrent callers, want one run of %d", steps, spe)
	}
	if results[0].Cached == results[1].Cached {
		t.Errorf("cached flags %v, %v: want exactly one trained", results[0].Cached, results[1].Cached)
	}
}

func TestFinetuneEveryMethod(t *testing.T) {
	cache := sharedCache(t)
	type outcome struct {
		res Result
		cfg FinetuneConfig
	}
	var results []outcome
	for _, method := range adapter.Methods {
		cfg := digitsFinetune(method)
		res, err := Finetune(context.Background(), cfg, testOptions(t, cache))
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		results = append(results, outcome{res, cfg})
		t.Logf("%-22s b_acc %5.1f%%  a_acc %5.1f%% → %5.1f%%  forgetting %5.2f  KL %.4f  trainable %d/%d  %s",
			res.Label, res.TaskBAccuracy, res.TaskAAccuracyBefore, res.TaskAAccuracyAfter, res.Forgetting, res.MeanKL,
			res.TrainableParams, res.TotalParams, res.TrainTime)
	}
	pre, err := Pretrain(context.Background(), digitsPretrain(), testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	head := 10*24 + 10 // the new head of task B
	for _, o := range results {
		res := o.res
		// Before = the pretrained model's own test accuracy, measured the same way.
		if res.TaskAAccuracyBefore != pre.TestAccuracy {
			t.Errorf("%s: a_acc_before %v, pretrained test accuracy %v", res.Label, res.TaskAAccuracyBefore, pre.TestAccuracy)
		}
		if res.Forgetting != res.TaskAAccuracyBefore-res.TaskAAccuracyAfter {
			t.Errorf("%s: forgetting %v ≠ before − after", res.Label, res.Forgetting)
		}
		// Learned something: well above chance (10%).
		if res.TaskBAccuracy < 50 {
			t.Errorf("%s: task-B accuracy %.1f%% after 3 epochs", res.Label, res.TaskBAccuracy)
		}
		if len(res.Curves) != 3 || res.Curves[2].Eval["a_acc"] != res.TaskAAccuracyAfter {
			t.Errorf("%s: curves %+v", res.Label, res.Curves)
		}
		// Trainable parameters: the adapters (fc1 64→32, fc2 32→24) plus the new head.
		var want int
		switch o.cfg.Method {
		case adapter.MethodHead:
			want = head
		case adapter.MethodFull:
			want = head + 32*64 + 32 + 24*32 + 24
		case adapter.MethodDoRA:
			want = head + 4*(32+64) + 32 + 4*(24+32) + 24
		default:
			want = head + 4*(32+64) + 4*(24+32)
		}
		if res.TrainableParams != want {
			t.Errorf("%s: trainable params %d, want %d", res.Label, res.TrainableParams, want)
		}
		switch o.cfg.Method {
		case adapter.MethodHead:
			// The backbone and the old head are frozen: nothing is forgotten.
			if res.Forgetting != 0 || res.MeanKL != 0 {
				t.Errorf("head-only: forgetting %v, KL %v; want exactly 0", res.Forgetting, res.MeanKL)
			}
		default:
			if !(res.MeanKL > 0) {
				t.Errorf("%s: KL %v: the backbone did not change", res.Label, res.MeanKL)
			}
		}
	}
	// Windows were resolved per layer: mid-spectrum fraction 0.5 on k = 32 and 24, r = 4.
	for _, o := range results {
		if o.cfg.Method != adapter.MethodWindow {
			continue
		}
		starts := []int{o.res.Layers[0].Start, o.res.Layers[1].Start}
		if !slices.Equal(starts, []int{14, 10}) {
			t.Errorf("window starts %v, want [14 10]", starts)
		}
	}
}

// TestFinetuneDeterministic: the same configuration gives the same numbers.
func TestFinetuneDeterministic(t *testing.T) {
	cache := sharedCache(t)
	cfg := digitsFinetune(adapter.MethodMid)
	cfg.Hyper.Epochs = 1
	a, err := Finetune(context.Background(), cfg, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Finetune(context.Background(), cfg, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	if a.TaskBAccuracy != b.TaskBAccuracy || a.TaskAAccuracyAfter != b.TaskAAccuracyAfter || a.MeanKL != b.MeanKL ||
		a.Curves[0].TrainLoss != b.Curves[0].TrainLoss {
		t.Errorf("two identical runs differ: %+v vs %+v", a.Metrics(), b.Metrics())
	}
}

// TestFinetuneResumesAfterCancel: a run stopped mid-epoch continues from its
// checkpoint and ends exactly like an uninterrupted run.
func TestFinetuneResumesAfterCancel(t *testing.T) {
	cache := sharedCache(t)
	cfg := digitsFinetune(adapter.MethodPiSSA)
	cfg.Hyper.Seed = 11
	full, err := Finetune(context.Background(), cfg, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	// Stop at step 57 (checkpoints every 10 steps and each epoch of 45).
	ctx, cancel := context.WithCancel(context.Background())
	o := testOptions(t, cache)
	o.afterStep = func(_ string, step int) {
		if step == 57 {
			cancel()
		}
	}
	if _, err := Finetune(ctx, cfg, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	ckpt := filepath.Join(cache, "runs", full.Fingerprint, "state.safetensors")
	if _, err := os.Stat(ckpt); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}
	var first int
	o = testOptions(t, cache)
	o.afterStep = func(_ string, step int) {
		if first == 0 {
			first = step
		}
	}
	resumed, err := Finetune(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if !resumed.Resumed || first != 58 {
		t.Errorf("resumed=%v, first step after resuming %d, want 58", resumed.Resumed, first)
	}
	if !sameResult(full, resumed) {
		t.Errorf("resumed run differs from the uninterrupted one:\n%+v\n%+v", full.Metrics(), resumed.Metrics())
	}
	if _, err := os.Stat(filepath.Dir(ckpt)); !os.IsNotExist(err) {
		t.Errorf("checkpoint directory left after completion: %v", err)
	}
}

// sameResult compares the numbers of two runs exactly.
func sameResult(a, b Result) bool {
	if a.TaskBAccuracy != b.TaskBAccuracy || a.TaskAAccuracyAfter != b.TaskAAccuracyAfter || a.MeanKL != b.MeanKL ||
		len(a.Curves) != len(b.Curves) || !reflect.DeepEqual(a.Trace, b.Trace) {
		return false
	}
	for i := range a.Curves {
		x, y := a.Curves[i], b.Curves[i]
		if x.TrainLoss != y.TrainLoss || x.TrainAccuracy != y.TrainAccuracy || x.Eval["b_acc"] != y.Eval["b_acc"] ||
			x.Eval["a_acc"] != y.Eval["a_acc"] {
			return false
		}
	}
	return true
}

func TestModelFileRoundTrip(t *testing.T) {
	cache := sharedCache(t)
	p, err := Pretrain(context.Background(), digitsPretrain(), testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"fc1.weight"`, `"fc1.bias"`, `"fc2.weight"`, `"head.weight"`, `"head.bias"`} {
		if !bytes.Contains(data[:4096], []byte(want)) {
			t.Errorf("model file has no tensor %s", want)
		}
	}
}

// TestCallbacks: every step and epoch is reported, in order, with the
// epoch's running loss and accuracy; no bar is drawn when callbacks are set.
func TestCallbacks(t *testing.T) {
	cache := sharedCache(t)
	cfg := digitsFinetune(adapter.MethodLoRA)
	cfg.Hyper.Epochs = 2
	var steps []Progress
	var epochs []EpochStats
	var logs []string
	o := testOptions(t, cache)
	o.Quiet = false
	o.Callbacks = Callbacks{
		// Pretraining (when this test runs first) reports too; keep fine-tuning's.
		Progress: func(p Progress) {
			if p.Phase == "finetune" {
				steps = append(steps, p)
			}
		},
		Epoch: func(phase string, e EpochStats) {
			if phase == "finetune" {
				epochs = append(epochs, e)
			}
		},
		Log: func(line string) { logs = append(logs, line) },
	}
	res, err := Finetune(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	spe := 1442 / 32
	if len(steps) != 2*spe || len(epochs) != 2 {
		t.Fatalf("%d step reports and %d epoch reports, want %d and 2", len(steps), len(epochs), 2*spe)
	}
	for i, p := range steps {
		if p.Phase != "finetune" || p.Step != i+1 || p.Steps != 2*spe || p.Epoch != i/spe+1 || p.Epochs != 2 {
			t.Fatalf("report %d: %+v", i, p)
		}
		if !(p.Loss > 0) || p.Accuracy < 0 || p.Accuracy > 100 || p.ETA < 0 {
			t.Fatalf("report %d: %+v", i, p)
		}
	}
	if last := steps[len(steps)-1]; last.ETA != 0 || !strings.Contains(last.String(), "finetune epoch 2/2 step 90/90 loss") {
		t.Errorf("last report %q (ETA %v)", last, last.ETA)
	}
	// The epoch's mean loss is the running loss at its last step.
	if math.Abs(steps[spe-1].Loss-epochs[0].TrainLoss) > 1e-12 || epochs[1].Eval["b_acc"] != res.TaskBAccuracy {
		t.Errorf("epoch stats %+v vs step report %+v", epochs[0], steps[spe-1])
	}
	if len(logs) == 0 || !strings.Contains(strings.Join(logs, "\n"), "fine-tuning test-mlp on digits-transposed with lora r=4 α=8") {
		t.Errorf("log lines: %q", logs)
	}
}

// TestProgressBar draws the bar into a buffer.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	r := &reporter{bar: &buf, width: 10}
	r.step(Progress{Phase: "pretrain", Epoch: 1, Epochs: 2, Step: 5, Steps: 10, Loss: 0.5, Accuracy: 80, ETA: 3 * time.Second})
	r.epoch("pretrain", EpochStats{Epoch: 1, TrainLoss: 0.5, TrainAccuracy: 80, Eval: map[string]float64{"test_acc": 90}, Seconds: 2})
	r.done()
	out := buf.String()
	for _, want := range []string{"█████░░░░░ pretrain epoch 1/2 step 5/10 loss 0.5000 acc 80.0% ETA 3s", "\r\033[K",
		"pretrain epoch 1: train loss 0.5000 acc 80.00%  test_acc 90.00%"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}
}
