package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// tinyTextModel is a byte-level LM small enough to train in a second.
func tinyTextModel() models.LMConfig {
	return models.LMConfig{Vocab: 256, Context: 32, Width: 16, Depth: 1, Heads: 2, MLPDim: 32}
}

// tinyTextPretrain pretrains it on a tiny slice (320 windows of 32 bytes)
// of the real King James Bible.
func tinyTextPretrain() TextPretrainConfig {
	return TextPretrainConfig{
		Model: tinyTextModel(), Task: "kjv",
		Hyper:       Hyper{Epochs: 2, BatchSize: 16, LearningRate: 1e-2, WeightDecay: 0.01, Warmup: 0.1, Clip: 1, Seed: 1},
		TrainSubset: 320, TestSubset: 24, EvalEvery: 10,
	}
}

// tinyTextFinetune fine-tunes it on a tiny slice of Jane Austen.
func tinyTextFinetune(method string) TextFinetuneConfig {
	return TextFinetuneConfig{
		Pretrain: tinyTextPretrain(), Task: "austen", Method: method, Rank: 4, Alpha: 8,
		Window:      lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 6},
		Hyper:       Hyper{Epochs: 1, BatchSize: 16, LearningRate: 1e-2, Warmup: 0.1, Clip: 1, Seed: 3},
		TrainSubset: 96, TestSubset: 24, OldTestSubset: 24, EvalEvery: 2,
		Sample: SampleConfig{Prompt: "And she said, ", Length: 30, Temperature: 0.8, Seed: 5},
	}
}

func textOptions(t testing.TB, cache string) Options {
	return Options{CacheDir: cache, Open: func(_ context.Context, name string) (datasets.InMemory, error) {
		return catalogtest.Open(t, name), nil
	}, Quiet: true, CheckpointEvery: 4}
}

// sharedTextCache is a cache directory shared by the tests of this binary,
// so the tiny language model is pretrained once.
var (
	sharedTextOnce sync.Once
	sharedTextDir  string
)

func sharedTextCache(t testing.TB) string {
	sharedTextOnce.Do(func() {
		d, err := os.MkdirTemp("", "prism-text-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedTextDir = d
	})
	return sharedTextDir
}

func TestTextPretrainLearnsAndCaches(t *testing.T) {
	cache := t.TempDir()
	o := textOptions(t, cache)
	p, err := PretrainText(context.Background(), tinyTextPretrain(), o)
	if err != nil {
		t.Fatal(err)
	}
	// A uniform byte model scores 8 bits per character; even 40 steps learn
	// the byte statistics of English.
	if p.Cached || p.Test.BPC > 5.5 || p.Test.BPC < 1 {
		t.Errorf("pretrained: cached %v, test %.4f bpc (want a fresh model well below 8)", p.Cached, p.Test.BPC)
	}
	if n := len(p.Curves); n != 4 || p.Curves[n-1].Step != 40 || p.Curves[n-1].Eval["test_bpc"] != p.Test.BPC {
		t.Errorf("curves: %d points, last %+v; want 4 (every 10 of 40 steps) ending with the test score %.4f", n, p.Curves[n-1], p.Test.BPC)
	}
	if p.Curves[0].Epoch != 0.5 || p.Curves[0].TrainLoss <= p.Curves[3].TrainLoss {
		t.Errorf("curves %+v: want epoch 0.5 first and a falling training loss", p.Curves)
	}
	again, err := PretrainText(context.Background(), tinyTextPretrain(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Key != p.Key || again.Test != p.Test || again.Dir != filepath.Join(cache, "pretrained", p.Key) {
		t.Errorf("second call: cached %v key %s test %+v, want the cached %s %+v", again.Cached, again.Key, again.Test, p.Key, p.Test)
	}
	// Another configuration is another entry.
	other := tinyTextPretrain()
	other.Hyper.Seed = 2
	o2, err := PretrainText(context.Background(), other, o)
	if err != nil {
		t.Fatal(err)
	}
	if o2.Key == p.Key || o2.Cached || o2.Test == p.Test {
		t.Errorf("seed 2: key %s cached %v test %+v; want a new model", o2.Key, o2.Cached, o2.Test)
	}
}

// TestTextFinetuneMethods fine-tunes with every method and checks what each
// trains and measures.
func TestTextFinetuneMethods(t *testing.T) {
	o := textOptions(t, sharedTextCache(t))
	m := tinyTextModel()
	// Every block linear: qkv 48×16, proj 16×16, fc1 32×16, fc2 16×32.
	var rSum int
	for _, l := range m.LinearLayers() {
		if strings.HasPrefix(l.Name, "blocks.") {
			rSum += 4 * (l.Out + l.In)
		}
	}
	want := map[string]int{
		adapter.MethodFull: m.NumParams(),
		adapter.MethodHead: m.Vocab*m.Width + m.Vocab,
		adapter.MethodDoRA: rSum + 48 + 16 + 32 + 16,
	}
	var before string
	for _, method := range adapter.Methods {
		t.Run(method, func(t *testing.T) {
			res, err := FinetuneText(context.Background(), tinyTextFinetune(method), o)
			if err != nil {
				t.Fatal(err)
			}
			met := res.Metrics()
			if got := met[MetricBPCForgetting]; got != res.TaskAAfter.BPC-res.TaskABefore.BPC || got != met[MetricTaskABPCAfter]-met[MetricTaskABPCBefore] {
				t.Errorf("bpc_forgetting %v ≠ after − before (%v − %v)", got, res.TaskAAfter.BPC, res.TaskABefore.BPC)
			}
			// Task A before fine-tuning is the pretrained model on the same 24 windows.
			if d := math.Abs(res.TaskABefore.BPC - res.PretrainTest.BPC); d > 1e-9 {
				t.Errorf("task A before %.9f, pretrained test %.9f", res.TaskABefore.BPC, res.PretrainTest.BPC)
			}
			if !(res.TaskB.BPC < res.TaskBBefore.BPC) {
				t.Errorf("Austen bpc %.4f → %.4f: fine-tuning did not lower it", res.TaskBBefore.BPC, res.TaskB.BPC)
			}
			if !(res.TaskAAfter.KL > 0) || res.TaskAAfter.KL > 2 {
				t.Errorf("KL %.4f nats: want a small positive divergence", res.TaskAAfter.KL)
			}
			w, ok := want[method]
			if !ok {
				w = rSum
			}
			if res.TrainableParams != w {
				t.Errorf("trainable params %d, want %d", res.TrainableParams, w)
			}
			if method != adapter.MethodFull && method != adapter.MethodHead {
				if res.TotalParams != m.NumParams()+res.TrainableParams {
					t.Errorf("total params %d, want the model's %d plus the adapters' %d", res.TotalParams, m.NumParams(), res.TrainableParams)
				}
				if len(res.Layers) != 4 {
					t.Errorf("%d adapted layers, want the block's 4", len(res.Layers))
				}
			}
			if method == adapter.MethodWindow {
				for _, l := range res.Layers {
					if l.Start != 6 {
						t.Errorf("layer %s window start %d, want 6", l.Name, l.Start)
					}
				}
			}
			// Curves: the base point, then every 2 of the 6 steps.
			cs := res.CurveSeries()
			if b := cs[MetricTaskBBPC]; len(b) != 4 || b[0] != (CurvePoint{0, res.TaskBBefore.BPC}) || b[3] != (CurvePoint{1, res.TaskB.BPC}) {
				t.Errorf("b_bpc curve %v", b)
			}
			if a := cs["a_bpc"]; len(a) != 4 || a[3].Value != res.TaskAAfter.BPC || len(cs["train_bpc"]) != 3 {
				t.Errorf("a_bpc curve %v, train_bpc %v", a, cs["train_bpc"])
			}
			// Samples: the prompt and 30 generated bytes; the same base sample for every method.
			s := res.Sample
			if !strings.HasPrefix(res.SampleBefore, s.Prompt) || len(res.SampleBefore) != len(s.Prompt)+30 ||
				!strings.HasPrefix(res.SampleAfter, s.Prompt) || len(res.SampleAfter) != len(s.Prompt)+30 {
				t.Errorf("samples %q / %q", res.SampleBefore, res.SampleAfter)
			}
			if before == "" {
				before = res.SampleBefore
			} else if res.SampleBefore != before {
				t.Errorf("sample before fine-tuning %q differs from another run's %q", res.SampleBefore, before)
			}
			if _, err := os.Stat(filepath.Join(o.CacheDir, "runs", res.Fingerprint)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("checkpoint directory of the finished run still there (%v)", err)
			}
		})
	}
}

// TestTextStepZeroIdentity: with every method attached (to every linear
// layer, embedding and output layer included), the network computes the
// pretrained model's logits before any training.
func TestTextStepZeroIdentity(t *testing.T) {
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		m := models.LMConfig{Vocab: 40, Context: 12, Width: 24, Depth: 2, Heads: 3, MLPDim: 40, DType: dtype}
		rng := rand.New(rand.NewPCG(4, 4))
		tokens := make([]int32, 3*m.Context)
		for i := range tokens {
			tokens[i] = int32(rng.IntN(m.Vocab))
		}
		x := tensors.FromFlatDataAndDimensions(tokens, 3, m.Context)
		logits := func(ctx *mlctx.Context, linear adapter.LinearFunc) []float64 {
			out, err := mlctx.ExecOnce(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
				return ConvertDType(models.LM(ctx.In(ModelScope), m, models.Run{Linear: linear}, x), dtypes.Float64)
			}, x)
			if err != nil {
				t.Fatal(err)
			}
			return tensors.MustCopyFlatData[float64](out)
		}
		base := mlctx.New()
		models.SetSeed(base.In(ModelScope), 9)
		want := logits(base, models.Dense)
		path := filepath.Join(t.TempDir(), "model.safetensors")
		if err := SaveModel(path, base, nil); err != nil {
			t.Fatal(err)
		}
		tol := 1e-12
		if dtype == dtypes.Float32 {
			tol = 2e-5
		}
		for _, method := range adapter.Methods {
			ctx := mlctx.New()
			if _, err := LoadModel(path, ctx); err != nil {
				t.Fatal(err)
			}
			cfg := adapter.Config{Method: method, Rank: 5, Alpha: 7, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.3}, Seed: 2}
			ad, err := adapter.Attach(context.Background(), ctx.In(ModelScope), adapter.NewPlan(cfg, ".*"), textLayers(m), adapter.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ad.Layers()) != len(m.LinearLayers()) {
				t.Fatalf("%s: %d layers adapted, want all %d", method, len(ad.Layers()), len(m.LinearLayers()))
			}
			got := logits(ctx, ad.Linear(models.Dense))
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(got[i]-want[i])/math.Max(1, math.Abs(want[i])))
			}
			if worst > tol {
				t.Errorf("%s %s: step-0 logits differ from the pretrained model's by %.3g (tolerance %.0g)", dtype, method, worst, tol)
			}
		}
	}
}

// TestTextScoreExact checks bits per character and KL on cases with known
// answers: an output layer of zeros predicts the uniform distribution (8
// bits per byte, arg-max byte 0), and a model's KL from itself is 0.
func TestTextScoreExact(t *testing.T) {
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	m := tinyTextModel()
	data, err := loadTextSplit(catalogtest.Open(t, "kjv"), datasets.Test, m.Context, 40)
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	models.SetSeed(ctx.In(ModelScope), 1)
	var exec *mlctx.Exec
	s, z, err := scoreText(b, ctx, m, models.Dense, data, 7, &exec, nil, true) // 7 does not divide 40: a padded batch
	if err != nil {
		t.Fatal(err)
	}
	if len(z) != 40*32*256 || s.KL != 0 {
		t.Fatalf("%d logits, KL %v", len(z), s.KL)
	}
	self, _, err := scoreText(b, ctx, m, models.Dense, data, 16, &exec, z, false)
	if err != nil {
		t.Fatal(err)
	}
	if self.KL != 0 || math.Abs(self.BPC-s.BPC) > 1e-12 {
		t.Errorf("against its own logits: KL %g, bpc %.12f vs %.12f", self.KL, self.BPC, s.BPC)
	}
	for v := range ctx.In(ModelScope).In(models.LMHead).IterVariables() {
		val, _ := v.Value()
		if err := v.SetValue(tensors.FromShape(val.Shape())); err != nil {
			t.Fatal(err)
		}
	}
	exec = nil
	u, _, err := scoreText(b, ctx, m, models.Dense, data, 16, &exec, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	zeros := 0
	for i := range data.Len() {
		_, y := data.window(i)
		for _, c := range y {
			if c == 0 {
				zeros++
			}
		}
	}
	if math.Abs(u.BPC-8) > 1e-6 || math.Abs(u.Accuracy-100*float64(zeros)/float64(data.Tokens())) > 1e-9 {
		t.Errorf("uniform model: %.9f bpc (want 8), accuracy %.4f%%", u.BPC, u.Accuracy)
	}
}

// TestTextResumeAfterInterruption stops pretraining and then fine-tuning
// after a few steps (as a cancelled or killed run would, after its last
// checkpoint) and checks that the resumed runs end with exactly the numbers,
// curves and samples of uninterrupted ones.
func TestTextResumeAfterInterruption(t *testing.T) {
	cfg := tinyTextFinetune(adapter.MethodMid)
	straight, err := FinetuneText(context.Background(), cfg, textOptions(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	o := textOptions(t, cache)
	interrupted := errors.New("interrupted")
	first := map[string]int{} // the first step each phase took in the current call
	for _, stop := range []struct {
		phase string
		step  int
	}{{"pretrain", 13}, {"finetune", 3}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		clear(first)
		o.afterStep = func(phase string, step int) {
			if _, ok := first[phase]; !ok {
				first[phase] = step
			}
			if phase == stop.phase && step == stop.step {
				cancel(interrupted)
			}
		}
		if _, err := FinetuneText(ctx, cfg, o); !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped in %s at step %d: err = %v, want the cancellation", stop.phase, stop.step, err)
		}
		cancel(nil)
		if stop.phase == "finetune" && first["pretrain"] != 14 {
			t.Errorf("the second call started pretraining at step %d, want 14 (after the checkpoint of step 13)", first["pretrain"])
		}
	}
	clear(first)
	o.afterStep = func(phase string, step int) {
		if _, ok := first[phase]; !ok {
			first[phase] = step
		}
	}
	resumed, err := FinetuneText(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first["pretrain"]; ok || first["finetune"] != 4 {
		t.Errorf("the last call's first steps: %v; want no pretraining and fine-tuning from step 4", first)
	}
	// The second call resumed the pretraining and finished it; this one
	// finds it in the cache and resumes the fine-tuning.
	if !resumed.Resumed || !resumed.PretrainCached {
		t.Errorf("resumed run: Resumed %v, PretrainCached %v; want a resumed fine-tune of the cached model", resumed.Resumed, resumed.PretrainCached)
	}
	for _, c := range [][2]any{
		{resumed.Metrics()[MetricTaskBBPC], straight.Metrics()[MetricTaskBBPC]},
		{resumed.TaskAAfter, straight.TaskAAfter},
		{resumed.PretrainTest, straight.PretrainTest},
		{resumed.SampleAfter, straight.SampleAfter},
		{resumed.Pretrained, straight.Pretrained},
	} {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("resumed %v, uninterrupted %v", c[0], c[1])
		}
	}
	rs, ss := resumed.CurveSeries(), straight.CurveSeries()
	for _, k := range []string{"train_loss", MetricTaskBBPC, "a_bpc", MetricKL, "lr"} {
		if !reflect.DeepEqual(rs[k], ss[k]) {
			t.Errorf("curve %s: resumed %v, uninterrupted %v", k, rs[k], ss[k])
		}
	}
}

func TestGenerateText(t *testing.T) {
	b, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	m := models.LMConfig{Vocab: 128, Context: 8, Width: 16, Depth: 1, Heads: 2, MLPDim: 16}
	ctx := mlctx.New()
	models.SetSeed(ctx.In(ModelScope), 2)
	gen := func(s SampleConfig) string {
		out, err := GenerateText(b, ctx, m, models.Dense, s)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// Longer than the context: the window slides.
	s := SampleConfig{Prompt: "abc", Length: 20, Temperature: 1, Seed: 1}
	a, a2 := gen(s), gen(s)
	s.Seed = 2
	c := gen(s)
	if len(a) != 23 || !strings.HasPrefix(a, "abc") || a != a2 || a == c {
		t.Errorf("samples %q, %q (same seed), %q (seed 2)", a, a2, c)
	}
	// Greedy: every step is the arg-max of the logits at the last position
	// of the last 8 bytes, checked against the model run on that window alone.
	s = SampleConfig{Prompt: "hello world", Length: 5}
	g := gen(s)
	exec := mlctx.MustNewExec(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
		return models.LM(ctx.In(ModelScope), m, models.Run{}, x)
	})
	for i := len(s.Prompt); i < len(g); i++ {
		w := []byte(g[i-m.Context : i])
		tok := make([]int32, len(w))
		for j, c := range w {
			tok[j] = int32(c)
		}
		z := tensors.MustCopyFlatData[float32](exec.MustExec(tensors.FromFlatDataAndDimensions(tok, 1, len(tok)))[0])
		last := z[(len(tok)-1)*m.Vocab:]
		best := 0
		for v := range last {
			if last[v] > last[best] {
				best = v
			}
		}
		if int(g[i]) != best {
			t.Errorf("greedy byte %d is %d, the arg-max is %d", i, g[i], best)
		}
	}
	if _, err := GenerateText(b, ctx, m, models.Dense, SampleConfig{Prompt: "é", Length: 1}); err == nil {
		t.Error("a prompt byte outside a 128-token vocabulary was accepted")
	}
	if _, err := GenerateText(b, ctx, m, models.Dense, SampleConfig{Prompt: "", Length: 1}); err == nil {
		t.Error("an empty prompt was accepted")
	}
}

func TestTextConfigErrors(t *testing.T) {
	cases := map[string]func(c *TextFinetuneConfig){
		"window": func(c *TextFinetuneConfig) {
			c.Method, c.Window = adapter.MethodWindow, lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 14}
		},
		"rank":      func(c *TextFinetuneConfig) { c.Rank = 17 },
		"target":    func(c *TextFinetuneConfig) { c.Targets = []string{"blocks.9.attn.qkv"} },
		"task":      func(c *TextFinetuneConfig) { c.Task = "" },
		"sample":    func(c *TextFinetuneConfig) { c.Sample.Temperature = -1 },
		"subset":    func(c *TextFinetuneConfig) { c.TestSubset = -1 },
		"positions": func(c *TextFinetuneConfig) { c.Pretrain.Model.Positions = "rotary" },
	}
	for name, mutate := range cases {
		c := tinyTextFinetune(adapter.MethodLoRA)
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
	if err := tinyTextFinetune(adapter.MethodLoRA).Validate(); err != nil {
		t.Error(err)
	}
	// A context that does not divide the dataset's windows.
	d := catalogtest.Open(t, "austen")
	if _, err := loadTextSplit(d, datasets.Test, 100, 0); err == nil || !strings.Contains(err.Error(), "must divide 256") {
		t.Errorf("context 100: err = %v", err)
	}
	if _, err := loadTextSplit(catalogtest.Open(t, "digits"), datasets.Test, 32, 0); err == nil {
		t.Error("digits accepted as language-modelling data")
	}
}

// The windows of a split are its examples cut in pieces: window w of
// context T is tokens [w·T, (w+1)·T) of the split's stream, labels the next
// bytes.
func TestTextWindows(t *testing.T) {
	d := catalogtest.Open(t, "kjv")
	a, err := d.Arrays(datasets.Test)
	if err != nil {
		t.Fatal(err)
	}
	w, err := loadTextSplit(d, datasets.Test, 64, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 4*a.Size {
		t.Fatalf("%d windows of 64 from %d examples of 256", w.Len(), a.Size)
	}
	x, y := w.window(9) // example 2, bytes 64…127
	for i := range x {
		if x[i] != a.Tokens[2*256+64+i] || y[i] != a.Labels[2*256+64+i] {
			t.Fatalf("window 9 position %d: token %d label %d, example 2 has %d, %d", i, x[i], y[i], a.Tokens[2*256+64+i], a.Labels[2*256+64+i])
		}
		if i+1 < len(x) && y[i] != x[i+1] {
			t.Fatalf("label %d is not the next token", i)
		}
	}
	sub, err := loadTextSplit(d, datasets.Test, 64, 100)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Len() != 100 || sub.Tokens() != 6400 {
		t.Errorf("subset: %d windows, %d tokens", sub.Len(), sub.Tokens())
	}
}

func ExamplePrintable() {
	fmt.Printf("%+q\n", Printable("thou\x01 art\tthe\nman\xff"))
	// Output: "thou\ufffd art\tthe\nman\ufffd"
}

// TestTextRunDir: a text run directory is what core/analysis reads; the
// analysis of it decomposes every adapted layer and recomputes the
// forgetting in bits per character from the stored logits, equal to the
// run's own measurement on the same windows.
func TestTextRunDir(t *testing.T) {
	cfg := tinyTextFinetune(adapter.MethodMid)
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	cfg.ProbeWindows = cfg.OldTestSubset // the stored logits cover the whole old test subset
	res, err := FinetuneText(context.Background(), cfg, textOptions(t, sharedTextCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	if res.RunDir != cfg.RunDir {
		t.Errorf("RunDir %q", res.RunDir)
	}
	run, err := rundir.Analyze(context.Background(), cfg.RunDir, rundir.Options{VerifyBasis: true})
	if err != nil {
		t.Fatal(err)
	}
	if run.Method != "mid" || len(run.Layers) != 4 {
		t.Fatalf("analysis: method %q, %d layers", run.Method, len(run.Layers))
	}
	for _, l := range run.Layers {
		w := l.Weight
		if !(w.DeltaWNorm > 0) || w.BasisResidual > 1e-9 || l.Feature == nil {
			t.Errorf("layer %s: ‖ΔW‖ %g, basis residual %g, feature analysis %v", l.Name, w.DeltaWNorm, w.BasisResidual, l.Feature != nil)
		}
	}
	fg := run.Forgetting
	if math.Abs(fg.BPCBefore-res.TaskABefore.BPC) > 1e-9 || math.Abs(fg.BPCAfter-res.TaskAAfter.BPC) > 1e-9 || fg.MeanKL != res.TaskAAfter.KL {
		t.Errorf("analysis forgetting %+v; the run measured bpc %.9f → %.9f, KL %.9f", fg, res.TaskABefore.BPC, res.TaskAAfter.BPC, res.TaskAAfter.KL)
	}
	m, err := rundir.ReadManifest(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.Window == nil || l.Window.Rank != 4 || l.Window.Start != 6 { // mid of k = 16, r = 4
			t.Errorf("layer %s window %+v, want start 6 rank 4", l.Name, l.Window)
		}
	}
}
