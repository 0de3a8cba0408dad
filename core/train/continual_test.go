package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/datasets/dense"
)

// TestDerivedTaskTransforms checks every transform on a 3×3 two-channel
// image against the hand-written result (rot90 as numpy's np.rot90).
func TestDerivedTaskTransforms(t *testing.T) {
	// Channel 0 holds 0…8 row-major, channel 1 holds 10…18.
	img := make([]float32, 18)
	for p := 0; p < 9; p++ {
		img[2*p], img[2*p+1] = float32(p), float32(10+p)
	}
	spec := datasets.Spec{Name: "tiny", Task: datasets.Classification, Splits: []datasets.Split{{Name: "train", Size: 1}, {Name: "test", Size: 1}},
		ExampleShape: []int{3, 3, 2}, DType: datasets.Float32, Classes: []string{"a", "b"}, Checksum: "abc"}
	base, err := dense.New(spec, dense.Split{Name: "train", Inputs: img, Labels: []int32{1}}, dense.Split{Name: "test", Inputs: img, Labels: []int32{0}})
	if err != nil {
		t.Fatal(err)
	}
	open := func(_ context.Context, name string) (datasets.InMemory, error) {
		if name != "tiny" {
			return nil, errors.New("unknown " + name)
		}
		return base, nil
	}
	perm := dense.Permutation(9, 5)
	want := map[string][]int{
		"rot90":     {2, 5, 8, 1, 4, 7, 0, 3, 6},
		"rot180":    {8, 7, 6, 5, 4, 3, 2, 1, 0},
		"rot270":    {6, 3, 0, 7, 4, 1, 8, 5, 2},
		"transpose": {0, 3, 6, 1, 4, 7, 2, 5, 8},
		"permute-5": {int(perm[0]), int(perm[1]), int(perm[2]), int(perm[3]), int(perm[4]), int(perm[5]), int(perm[6]), int(perm[7]), int(perm[8])},
	}
	sums := map[string]bool{}
	for transform, src := range want {
		d, err := OpenTask(context.Background(), "tiny/"+transform, open)
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec().Name != "tiny/"+transform || d.Spec().Checksum == "" || d.Spec().Checksum == "abc" || sums[d.Spec().Checksum] {
			t.Errorf("%s: spec name %q checksum %q (must be new and distinct)", transform, d.Spec().Name, d.Spec().Checksum)
		}
		sums[d.Spec().Checksum] = true
		for _, split := range []string{"train", "test"} {
			a, err := d.Arrays(split)
			if err != nil {
				t.Fatal(err)
			}
			for p, q := range src {
				if a.Inputs[2*p] != float32(q) || a.Inputs[2*p+1] != float32(10+q) {
					t.Fatalf("%s %s: pixel %d = (%v, %v), want (%d, %d)", transform, split, p, a.Inputs[2*p], a.Inputs[2*p+1], q, 10+q)
				}
			}
		}
		if a, _ := d.Arrays("train"); a.Labels[0] != 1 {
			t.Errorf("%s: label changed", transform)
		}
	}
	if img[2] != 1 {
		t.Error("the base dataset's arrays were modified")
	}
	for _, bad := range []string{"tiny/rot45", "tiny/permute-x", "/rot90"} {
		if _, err := OpenTask(context.Background(), bad, open); err == nil {
			t.Errorf("OpenTask(%q) succeeded", bad)
		}
	}
	// Real data: four quarter turns of digits give the digits back.
	d := catalogtest.Open(t, "digits")
	rot, err := OpenTask(context.Background(), "digits/rot90", func(context.Context, string) (datasets.InMemory, error) { return d, nil })
	if err != nil {
		t.Fatal(err)
	}
	r := rot
	for range 3 {
		r, err = OpenTask(context.Background(), "x/rot90", func(context.Context, string) (datasets.InMemory, error) { return r, nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	a0, _ := d.Arrays("test")
	a1, _ := rot.Arrays("test")
	a4, _ := r.Arrays("test")
	if !slices.Equal(a0.Inputs, a4.Inputs) || slices.Equal(a0.Inputs, a1.Inputs) {
		t.Error("rot90 applied four times is not the identity on digits (or once is)")
	}
}

// digitsNet is a small MLP backbone (64 → 32 → 24, ReLU) for 8×8 digits.
func digitsNet(t testing.TB, dtype dtypes.DType) Network {
	net, err := MLPNetwork(models.MLPConfig{Sizes: []int{64, 32, 24, 1}, DType: dtype}, []int{8, 8, 1})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// digitsContinual is a three-task sequence on sklearn's digits: the digits,
// then the digits rotated by 90°, then transposed.
func digitsContinual(t testing.TB, method string, dtype dtypes.DType) ContinualConfig {
	return ContinualConfig{
		Pretrain: PretrainConfig{Network: digitsNet(t, dtype), Task: "digits",
			Hyper: Hyper{Epochs: 4, BatchSize: 32, LearningRate: 3e-3, WeightDecay: 1e-4, Warmup: 0.1, Clip: 1, Seed: 1}},
		Tasks:  []string{"digits/rot90", "digits/transpose"},
		Method: method, Rank: 4, Alpha: 8,
		Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5},
		Hyper:  Hyper{Epochs: 2, BatchSize: 32, LearningRate: 1e-2, WeightDecay: 1e-4, Warmup: 0.1, Clip: 1, Seed: 7},
	}
}

func continualOptions(t testing.TB, cache string) Options {
	return Options{CacheDir: cache, Open: testOpen(t), Quiet: true, CheckpointEvery: 10}
}

// logits64 evaluates head on all of data in one batch, in float64.
func logits64(t *testing.T, r *continualRun, ctx *mlctx.Context, linear adapter.LinearFunc, task int) []float64 {
	t.Helper()
	tk := r.tasks[task]
	exec, err := mlctx.NewExec(r.backend, ctx, func(ctx *mlctx.Context, x *Node) *Node {
		return ConvertDType(r.net.logits(ctx.In(ModelScope), linear, x, tk.head, tk.classes), dtypes.Float64)
	})
	if err != nil {
		t.Fatal(err)
	}
	order := make([]int, tk.test.Len())
	for i := range order {
		order[i] = i
	}
	x, _ := tk.test.batch(order, len(order))
	out, err := exec.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out[0])
}

// maxRelDiff is max|a−b| / max|a|.
func maxRelDiff(a, b []float64) float64 {
	var d, s float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(a[i]))
	}
	return d / s
}

// loadPlain loads a model file into a fresh context.
func loadPlain(t *testing.T, path string) *mlctx.Context {
	t.Helper()
	ctx := mlctx.New()
	if _, err := LoadModel(path, ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestContinualMergeThenReSVD checks the stage boundary: after stage 1 the
// adapted network, the merged plain network and stage 2's freshly attached
// adapter (window from the SVD of the merged weights) compute the same
// function on every task's head, and stage 2's window is the window of the
// merged weights' own SVD.
func TestContinualMergeThenReSVD(t *testing.T) {
	cache := t.TempDir()
	goctx := context.Background()
	cases := []struct {
		method string
		dtype  dtypes.DType
		tol    float64
	}{
		{adapter.MethodMid, dtypes.Float64, 1e-11},
		{adapter.MethodPiSSA, dtypes.Float64, 1e-11},
		{adapter.MethodMiLoRA, dtypes.Float64, 1e-11},
		{adapter.MethodLoRA, dtypes.Float64, 1e-11},
		{adapter.MethodOLoRA, dtypes.Float64, 1e-11},
		{adapter.MethodDoRA, dtypes.Float64, 1e-11},
		{adapter.MethodFull, dtypes.Float64, 1e-11},
		{adapter.MethodMid, dtypes.Float32, 2e-5},
	}
	for _, c := range cases {
		t.Run(c.method+"/"+c.dtype.String(), func(t *testing.T) {
			cfg := digitsContinual(t, c.method, c.dtype)
			cfg.Hyper.Epochs = 1
			r, err := newContinualRun(goctx, cfg, continualOptions(t, cache))
			if err != nil {
				t.Fatal(err)
			}
			ctx1, ad1, rec, _, err := r.train(goctx, 1, r.pre.ModelPath)
			if err != nil {
				t.Fatal(err)
			}
			merged, err := mergedModel(ctx1, ad1)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "merged.safetensors")
			if err := safetensors.WriteFile(path, merged, nil); err != nil {
				t.Fatal(err)
			}
			for _, tensor := range merged {
				if n := tensor.Name; filepath.Ext(n) == "."+adapter.LoRAAName || filepath.Ext(n) == "."+adapter.LoRABName || filepath.Ext(n) == "."+adapter.MagnitudeName {
					t.Errorf("merged model holds adapter variable %s", n)
				}
			}
			plain := loadPlain(t, path)
			ctx2, ad2, err := r.attach(goctx, 2, path, true)
			if err != nil {
				t.Fatal(err)
			}
			for task := 0; task <= 1; task++ {
				adapted := logits64(t, r, ctx1, ad1.Linear(r.net.Dense), task)
				mergedOut := logits64(t, r, plain, r.net.Dense, task)
				reinit := logits64(t, r, ctx2, ad2.Linear(r.net.Dense), task)
				t.Logf("task %d: adapted vs merged %.2g, merged vs re-initialised %.2g", task, maxRelDiff(adapted, mergedOut), maxRelDiff(mergedOut, reinit))
				if d := maxRelDiff(adapted, mergedOut); d > c.tol {
					t.Errorf("task %d: adapted vs merged network: max rel diff %.3g > %g", task, d, c.tol)
				}
				if d := maxRelDiff(mergedOut, reinit); d > c.tol {
					t.Errorf("task %d: merged vs re-initialised network: max rel diff %.3g > %g", task, d, c.tol)
				}
			}
			// Stage 2 started from the merged weights, and a window method's
			// factors are the window of their SVD (computed here independently).
			rd, err := safetensors.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			for i, st := range ad2.Layers() {
				w, err := safetensors.ReadMatrix[float64](rd, st.Name+".weight")
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(st.Pretrained.Data, w.Data) {
					t.Errorf("layer %s: stage 2 attached to other weights than the merged ones", st.Name)
				}
				if !st.Config.IsWindow() {
					continue
				}
				if st.Start != rec.Layers[i].Start {
					t.Errorf("layer %s: stage 2 window starts at %d, stage 1 at %d (same shape, same preset)", st.Name, st.Start, rec.Layers[i].Start)
				}
				f, err := lowrank.ThinSVD(w)
				if err != nil {
					t.Fatal(err)
				}
				var diff, norm float64
				for a := 0; a < st.Out; a++ {
					for b := 0; b < st.In; b++ {
						var ba, win float64
						for k := 0; k < st.Config.Rank; k++ {
							ba += st.InitB.Data[a*st.Config.Rank+k] * st.InitA.Data[k*st.In+b]
							s := st.Start + k
							win += f.U.Data[a*f.U.Cols+s] * f.S[s] * f.V.Data[b*f.V.Cols+s]
						}
						diff = math.Max(diff, math.Abs(st.Scale*ba-win))
						norm = math.Max(norm, math.Abs(win))
					}
				}
				t.Logf("layer %s: |scale·B·A − window| = %.2g (max |window| %.2g)", st.Name, diff, norm)
				if diff > 1e-6*norm {
					t.Errorf("layer %s: scale·B·A differs from the merged weights' SVD window [%d, %d) by %.3g (max %.3g)",
						st.Name, st.Start, st.Start+st.Config.Rank, diff, norm)
				}
			}
		})
	}
}

// runStages runs the stages of cfg one by one, keeping their directories.
func runStages(t *testing.T, cfg ContinualConfig, o Options) (*continualRun, []stageRecord) {
	t.Helper()
	goctx := context.Background()
	r, err := newContinualRun(goctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	model := r.pre.ModelPath
	var recs []stageRecord
	for i := 1; i < len(r.tasks); i++ {
		rec, err := r.stage(goctx, i, model)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		model = rec.model()
	}
	return r, recs
}

// readAll reads every tensor of a model file as float64 values.
func readAll(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]float64{}
	for _, n := range r.Names() {
		v, err := r.Float64s(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = v
	}
	return out
}

// TestContinualHeadsAndMatrix runs a sequence stage by stage and checks that
// earlier heads are unchanged bit for bit, that the backbone changed, and
// that every recorded accuracy equals an independent evaluation of the
// stage's merged model with the task's head.
func TestContinualHeadsAndMatrix(t *testing.T) {
	cache := t.TempDir()
	cfg := digitsContinual(t, adapter.MethodMid, dtypes.Float32)
	r, recs := runStages(t, cfg, continualOptions(t, cache))
	models := []map[string][]float64{readAll(t, r.pre.ModelPath)}
	for _, rec := range recs {
		models = append(models, readAll(t, rec.model()))
	}
	for i := 1; i < len(models); i++ {
		for j := 0; j < i; j++ {
			for _, v := range []string{"weight", "bias"} {
				name := ContinualHead(j) + "." + v
				if !slices.Equal(models[j][name], models[i][name]) {
					t.Errorf("head of task %d (%s) changed in stage %d", j, name, i)
				}
			}
		}
		if _, ok := models[i][ContinualHead(i)+".weight"]; !ok {
			t.Errorf("stage %d stored no head %s", i, ContinualHead(i))
		}
		if slices.Equal(models[i-1]["fc1.weight"], models[i]["fc1.weight"]) {
			t.Errorf("stage %d did not change the backbone", i)
		}
	}
	// Independent evaluation of R[i][j]: the merged model of stage i, plain
	// layers, head j.
	for i, rec := range recs {
		stage := i + 1
		plain := loadPlain(t, rec.model())
		if len(rec.Accuracy) != stage+1 {
			t.Fatalf("stage %d recorded %d accuracies, want %d", stage, len(rec.Accuracy), stage+1)
		}
		for j := 0; j <= stage; j++ {
			tk := r.tasks[j]
			z, err := evalLogits(r.backend, plain, r.net, r.net.Dense, tk.head, tk.classes, tk.test, 500, nil)
			if err != nil {
				t.Fatal(err)
			}
			if acc := accuracy(z, tk.classes, tk.test); acc != rec.Accuracy[j] {
				t.Errorf("R[%d][%d] = %.4f recorded, %.4f from the merged model", stage, j, rec.Accuracy[j], acc)
			}
		}
	}
	if recs[1].Accuracy[2] < 50 {
		t.Errorf("stage 2 learned little: %.1f%% on %s", recs[1].Accuracy[2], recs[1].Task)
	}
}

// matrixOf converts a result's lower-triangular percentages to fractions
// with NaN above the diagonal.
func matrixOf(res ContinualResult) analysis.AccuracyMatrix {
	T := len(res.Accuracy)
	r := make(analysis.AccuracyMatrix, T)
	for i := range r {
		r[i] = make([]float64, T)
		for j := range r[i] {
			r[i][j] = math.NaN()
			if j <= i {
				r[i][j] = res.Accuracy[i][j] / 100
			}
		}
	}
	return r
}

// TestContinualResultDeterminismAndResume checks the public entry point: the
// accuracy matrix's shape, BWT and forgetting against a hand computation,
// two runs giving identical numbers, and a run cancelled in stage 2 and
// started again ending with the same numbers; the run directory is what
// `prism analyze` reads, with the continual section.
func TestContinualResultDeterminismAndResume(t *testing.T) {
	cfg := digitsContinual(t, adapter.MethodMid, dtypes.Float32)
	cache := t.TempDir()
	goctx := context.Background()
	runDir := filepath.Join(t.TempDir(), "run")
	cfg.RunDir = runDir
	res, err := Continual(goctx, cfg, continualOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Tasks, []string{"digits", "digits/rot90", "digits/transpose"}) || len(res.Accuracy) != 3 || len(res.Stages) != 2 {
		t.Fatalf("tasks %v, %d accuracy rows, %d stages", res.Tasks, len(res.Accuracy), len(res.Stages))
	}
	for i, row := range res.Accuracy {
		if len(row) != i+1 {
			t.Errorf("accuracy row %d has %d entries, want %d", i, len(row), i+1)
		}
	}
	R := res.Accuracy
	t.Logf("accuracy matrix (%%): %v", R)
	cont, err := analysis.NewContinual(res.Tasks, matrixOf(res), nil)
	if err != nil {
		t.Fatal(err)
	}
	final := cont.Stages[2]
	bwt := ((R[2][0] - R[0][0]) + (R[2][1] - R[1][1])) / 2 / 100
	acc := (R[2][0] + R[2][1] + R[2][2]) / 3 / 100
	forget1 := (math.Max(R[0][0], R[1][0]) - R[2][0]) / 100
	if math.Abs(final.BackwardTransfer-bwt) > 1e-12 || math.Abs(final.AverageAccuracy-acc) > 1e-12 {
		t.Errorf("BWT %v ACC %v, by hand %v %v", final.BackwardTransfer, final.AverageAccuracy, bwt, acc)
	}
	f, _ := cont.Accuracy.Forgetting(2)
	if math.Abs(f[0]-forget1) > 1e-12 || math.Abs(f[1]-(R[1][1]-R[2][1])/100) > 1e-12 {
		t.Errorf("forgetting %v, by hand [%v %v]", f, forget1, (R[1][1]-R[2][1])/100)
	}
	if _, err := os.Stat(filepath.Join(cache, "runs", res.Fingerprint)); !os.IsNotExist(err) {
		t.Errorf("the finished sequence left its state directory: %v", err)
	}

	// Determinism: a second run in a fresh cache.
	cfg2 := cfg
	cfg2.RunDir = ""
	again, err := Continual(goctx, cfg2, continualOptions(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Accuracy, res.Accuracy) || again.Fingerprint != res.Fingerprint {
		t.Errorf("two runs differ: %v vs %v", again.Accuracy, res.Accuracy)
	}

	// Resume: cancel at step 3 of stage 2, start again.
	o := continualOptions(t, cache)
	ctx, cancel := context.WithCancel(goctx)
	o.afterStep = func(phase string, step int) {
		if phase == "stage 2/2" && step == 13 {
			cancel()
		}
	}
	if _, err := Continual(ctx, cfg2, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	resumed, err := Continual(goctx, cfg2, continualOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resumed.Accuracy, res.Accuracy) {
		t.Errorf("resumed run %v, uninterrupted %v", resumed.Accuracy, res.Accuracy)
	}
	if !resumed.Stages[0].Cached || !resumed.Stages[1].Resumed {
		t.Errorf("resumed run: stage 1 cached %v, stage 2 resumed %v", resumed.Stages[0].Cached, resumed.Stages[1].Resumed)
	}

	// The run directory.
	run, err := rundir.Analyze(goctx, runDir, rundir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Continual == nil || !reflect.DeepEqual(run.Continual.Tasks, res.Tasks) {
		t.Fatalf("analysis of the run directory has continual %+v", run.Continual)
	}
	if got := run.Continual.Stages[2].BackwardTransfer; math.Abs(got-bwt) > 1e-12 {
		t.Errorf("analysis BWT %v, want %v", got, bwt)
	}
	if math.Abs(run.Forgetting.AccuracyBefore-R[0][0]/100) > 1e-12 || math.Abs(run.Forgetting.AccuracyAfter-R[2][0]/100) > 1e-12 {
		t.Errorf("analysis forgetting %+v, R column 0 %v %v", run.Forgetting, R[0][0], R[2][0])
	}
	if len(run.Checkpoints) != 2 || len(run.Layers) != 2 {
		t.Errorf("analysis: %d checkpoints, %d layers; want 2 and 2", len(run.Checkpoints), len(run.Layers))
	}
}

// TestContinualHeadOnlyHasNoBackwardTransfer: with the backbone frozen and
// every earlier head frozen, no earlier task's accuracy can move.
func TestContinualHeadOnlyHasNoBackwardTransfer(t *testing.T) {
	cfg := digitsContinual(t, adapter.MethodHead, dtypes.Float32)
	cfg.Hyper.Epochs = 1
	res, err := Continual(context.Background(), cfg, continualOptions(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Accuracy {
		for j := 0; j < i; j++ {
			if res.Accuracy[i][j] != res.Accuracy[j][j] {
				t.Errorf("head only: R[%d][%d] = %v, R[%d][%d] = %v", i, j, res.Accuracy[i][j], j, j, res.Accuracy[j][j])
			}
		}
	}
	if res.Stages[0].TrainableParams != 24*10+10 {
		t.Errorf("head only trains %d values, want the head's 250", res.Stages[0].TrainableParams)
	}
}
