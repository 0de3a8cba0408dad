package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train"
)

// runConfig holds the flags shared by pretrain and finetune: both must
// build the same pretraining configuration, so the fine-tune finds the
// pretrained model in the cache.
type runConfig struct {
	data, cache, backend string
	preEpochs, preBatch  int
	preLR                float64
	method               string
	epochs, batch, rank  int
	lr                   float64
	seed                 uint64
	// Subsets of the data files (first N of a fixed permutation; 0: all).
	preTrain, train, test int
}

func (c *runConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "", "folder written by 'gpu-check data'")
	fs.StringVar(&c.cache, "cache", "", "cache folder (pretrained model; fine-tune checkpoints)")
	fs.StringVar(&c.backend, "backend", "go", "backend spec (go, go:OPTIONS, xla:cuda, xla:/abs/plugin.so)")
	fs.IntVar(&c.preEpochs, "pretrain-epochs", 2, "pretraining epochs")
	fs.IntVar(&c.preBatch, "pretrain-batch", 64, "pretraining batch size")
	fs.Float64Var(&c.preLR, "pretrain-lr", 2e-3, "pretraining learning rate")
	fs.StringVar(&c.method, "method", "pissa", "fine-tuning method")
	fs.IntVar(&c.epochs, "epochs", 2, "fine-tuning epochs")
	fs.IntVar(&c.batch, "batch", 64, "fine-tuning batch size")
	fs.IntVar(&c.rank, "rank", 8, "adapter rank")
	fs.Float64Var(&c.lr, "lr", 3e-3, "fine-tuning learning rate")
	fs.Uint64Var(&c.seed, "seed", 1, "fine-tuning seed (data order, adapter initialisation)")
	fs.IntVar(&c.preTrain, "pretrain-train-subset", 0, "pretrain on the first N MNIST images of a fixed permutation (0: all)")
	fs.IntVar(&c.train, "train-subset", 0, "fine-tune on the first N Fashion-MNIST images of a fixed permutation (0: all)")
	fs.IntVar(&c.test, "test-subset", 0, "evaluate on the first N test images of each task (0: all)")
}

// configs builds the pretraining and fine-tuning configurations of the
// default ViT: task A mnist, task B fashion-mnist (the subsets).
func (c *runConfig) configs() (train.PretrainConfig, train.FinetuneConfig, error) {
	if c.data == "" || c.cache == "" {
		return train.PretrainConfig{}, train.FinetuneConfig{}, fmt.Errorf("-data and -cache are required")
	}
	net, err := train.ViTNetwork(models.DefaultViT())
	if err != nil {
		return train.PretrainConfig{}, train.FinetuneConfig{}, err
	}
	pre := train.DefaultPretrain(net, "mnist", false)
	pre.Hyper.Epochs, pre.Hyper.BatchSize, pre.Hyper.LearningRate = c.preEpochs, c.preBatch, c.preLR
	pre.TrainSubset, pre.TestSubset = c.preTrain, c.test
	ft := train.DefaultFinetune(pre, "fashion-mnist", c.method, false)
	ft.Rank, ft.Alpha = c.rank, float64(2*c.rank)
	ft.Hyper.Epochs, ft.Hyper.BatchSize, ft.Hyper.LearningRate, ft.Hyper.Seed = c.epochs, c.batch, c.lr, c.seed
	ft.TrainSubset, ft.TestSubset, ft.OldTestSubset = c.train, c.test, c.test
	return pre, ft, ft.Validate()
}

func (c *runConfig) options() train.Options {
	return train.Options{Backend: c.backend, CacheDir: c.cache, Open: openSubsets(c.data), Quiet: true, CheckpointEvery: -1}
}

func runPretrain(args []string) error {
	fs := flag.NewFlagSet("pretrain", flag.ContinueOnError)
	var c runConfig
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pre, _, err := c.configs()
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := train.Pretrain(context.Background(), pre, c.options())
	if err != nil {
		return err
	}
	n := subsetSize(c.data, "mnist")
	if c.preTrain > 0 {
		n = min(n, c.preTrain)
	}
	fmt.Printf("pretrained the default ViT on %d MNIST images on %s: test accuracy %.2f%% (%s, cached: %v, key %s)\n",
		n, backend.Resolve(c.backend), p.TestAccuracy, time.Since(start).Round(10*time.Millisecond), p.Cached, p.Key[:12])
	return nil
}

func subsetSize(dir, name string) int {
	d, err := openSubsets(dir)(context.Background(), name)
	if err != nil {
		return -1
	}
	n, _ := d.Spec().SplitSize("train")
	return n
}

// curve is one fine-tuning run's record.
type curve struct {
	Label          string             `json:"label"`
	Backend        string             `json:"backend"`
	Kernels        string             `json:"kernels"`
	Pretrained     string             `json:"pretrained"`
	PretrainCached bool               `json:"pretrain_cached"`
	StepLoss       []float64          `json:"step_loss"` // loss of each optimisation step
	Epochs         []train.EpochStats `json:"epochs"`
	BAcc           float64            `json:"b_acc"`
	AAccBefore     float64            `json:"a_acc_before"`
	AAccAfter      float64            `json:"a_acc_after"`
	MeanKL         float64            `json:"a_kl"`
	TrainSeconds   float64            `json:"train_s"`
	WallSeconds    float64            `json:"wall_s"`
}

// stepLosses turns the loop's running epoch means into per-step losses:
// with m_k the mean of the first k steps of an epoch, l_k = k·m_k − (k−1)·m_{k−1}.
type stepLosses struct {
	losses   []float64
	prevMean float64
	epoch    int
	k        int
}

func (s *stepLosses) add(p train.Progress) {
	if p.Epoch != s.epoch {
		s.epoch, s.k, s.prevMean = p.Epoch, 0, 0
	}
	s.k++
	k := float64(s.k)
	s.losses = append(s.losses, k*p.Loss-(k-1)*s.prevMean)
	s.prevMean = p.Loss
}

func runFinetune(args []string) error {
	fs := flag.NewFlagSet("finetune", flag.ContinueOnError)
	var c runConfig
	c.register(fs)
	out := fs.String("out", "", "JSON file for the curve (default: stdout)")
	label := fs.String("label", "", "name of the run in the comparison table (default: the backend spec)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, ft, err := c.configs()
	if err != nil {
		return err
	}
	var steps stepLosses
	o := c.options()
	o.Callbacks.Progress = steps.add
	o.Callbacks.Log = func(string) {}
	start := time.Now()
	res, err := train.Finetune(context.Background(), ft, o)
	if err != nil {
		return err
	}
	if *label == "" {
		*label = backend.Resolve(c.backend)
	}
	cv := curve{
		Label: *label, Backend: backend.Resolve(c.backend), Kernels: backend.Kernels(), Pretrained: res.Pretrained, PretrainCached: res.PretrainCached,
		StepLoss: steps.losses, Epochs: res.Curves, BAcc: res.TaskBAccuracy, AAccBefore: res.TaskAAccuracyBefore,
		AAccAfter: res.TaskAAccuracyAfter, MeanKL: res.MeanKL, TrainSeconds: res.TrainTime.Seconds(), WallSeconds: time.Since(start).Seconds(),
	}
	b, err := json.MarshalIndent(cv, "", " ")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gpu-check finetune: %s (%s): %d steps, task B %.2f%%, task A %.2f%% → %.2f%%, train %.1fs, wall %.1fs\n",
		cv.Label, cv.Backend, len(cv.StepLoss), cv.BAcc, cv.AAccBefore, cv.AAccAfter, cv.TrainSeconds, cv.WallSeconds)
	if *out == "" {
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// tolerances bound the differences between two curves of the same run.
type tolerances struct {
	Step  float64 // |Δ loss| of any single step
	Epoch float64 // |Δ mean training loss| of any epoch
	Acc   float64 // |Δ accuracy| in points (task B after, task A before and after)
	KL    float64 // |Δ mean KL| in nats
}

// defaultTolerances are the bounds compare uses unless told otherwise (see docs/gpu.md for how they were chosen).
var defaultTolerances = tolerances{Step: 0.02, Epoch: 0.005, Acc: 1.0, KL: 0.01}

// mismatchError reports curves that differ beyond the tolerances.
type mismatchError struct{ what []string }

func (e mismatchError) Error() string {
	return "curves differ beyond the tolerances: " + strings.Join(e.what, "; ")
}

// comparison is what compareCurves measured.
type comparison struct {
	MaxStep, MeanStep, MaxEpoch    float64
	MaxStepAt                      int
	DBAcc, DAAccBefore, DAAccAfter float64
	DKL                            float64
}

// compareCurves measures a against b and checks the tolerances; the error
// is a mismatchError when a bound is exceeded, another error when the two
// runs are not comparable.
func compareCurves(a, b curve, tol tolerances) (comparison, error) {
	var c comparison
	switch {
	case !a.PretrainCached || !b.PretrainCached || a.Pretrained != b.Pretrained:
		return c, fmt.Errorf("the runs do not start from the same cached pretrained model (%s cached %v, %s cached %v)",
			a.Pretrained, a.PretrainCached, b.Pretrained, b.PretrainCached)
	case len(a.StepLoss) != len(b.StepLoss) || len(a.StepLoss) == 0:
		return c, fmt.Errorf("the runs have %d and %d steps", len(a.StepLoss), len(b.StepLoss))
	case len(a.Epochs) != len(b.Epochs):
		return c, fmt.Errorf("the runs have %d and %d epochs", len(a.Epochs), len(b.Epochs))
	}
	for i := range a.StepLoss {
		d := math.Abs(a.StepLoss[i] - b.StepLoss[i])
		c.MeanStep += d / float64(len(a.StepLoss))
		if d > c.MaxStep || math.IsNaN(d) {
			c.MaxStep, c.MaxStepAt = d, i+1
		}
	}
	for i := range a.Epochs {
		c.MaxEpoch = math.Max(c.MaxEpoch, math.Abs(a.Epochs[i].TrainLoss-b.Epochs[i].TrainLoss))
	}
	c.DBAcc = math.Abs(a.BAcc - b.BAcc)
	c.DAAccBefore = math.Abs(a.AAccBefore - b.AAccBefore)
	c.DAAccAfter = math.Abs(a.AAccAfter - b.AAccAfter)
	c.DKL = math.Abs(a.MeanKL - b.MeanKL)
	var bad []string
	check := func(name string, got, bound float64) {
		if !(got <= bound) {
			bad = append(bad, fmt.Sprintf("%s %.3g > %.3g", name, got, bound))
		}
	}
	check(fmt.Sprintf("step %d loss", c.MaxStepAt), c.MaxStep, tol.Step)
	check("epoch mean loss", c.MaxEpoch, tol.Epoch)
	check("task B accuracy", c.DBAcc, tol.Acc)
	check("task A accuracy before", c.DAAccBefore, tol.Acc)
	check("task A accuracy after", c.DAAccAfter, tol.Acc)
	check("mean KL", c.DKL, tol.KL)
	if len(bad) > 0 {
		return c, mismatchError{bad}
	}
	return c, nil
}

// writeComparison prints the two curves side by side (every every-th step)
// and the summary.
func writeComparison(w io.Writer, a, b curve, c comparison, tol tolerances, every int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "step\t%s\t%s\t|Δ|\t\n", a.Label, b.Label)
	for i := range a.StepLoss {
		if i%every == 0 || i == len(a.StepLoss)-1 {
			fmt.Fprintf(tw, "%d\t%.5f\t%.5f\t%.2e\t\n", i+1, a.StepLoss[i], b.StepLoss[i], math.Abs(a.StepLoss[i]-b.StepLoss[i]))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\t%s\t%s\t|Δ|\ttolerance\n", a.Label, b.Label)
	for i := range a.Epochs {
		fmt.Fprintf(tw, "epoch %d mean loss\t%.5f\t%.5f\t%.2e\t%.2g\n", i+1, a.Epochs[i].TrainLoss, b.Epochs[i].TrainLoss,
			math.Abs(a.Epochs[i].TrainLoss-b.Epochs[i].TrainLoss), tol.Epoch)
	}
	fmt.Fprintf(tw, "largest step |Δ loss| (step %d)\t\t\t%.2e\t%.2g\n", c.MaxStepAt, c.MaxStep, tol.Step)
	fmt.Fprintf(tw, "mean step |Δ loss|\t\t\t%.2e\t\n", c.MeanStep)
	fmt.Fprintf(tw, "task B accuracy (%%)\t%.2f\t%.2f\t%.2f\t%.2g\n", a.BAcc, b.BAcc, c.DBAcc, tol.Acc)
	fmt.Fprintf(tw, "task A accuracy before (%%)\t%.2f\t%.2f\t%.2f\t%.2g\n", a.AAccBefore, b.AAccBefore, c.DAAccBefore, tol.Acc)
	fmt.Fprintf(tw, "task A accuracy after (%%)\t%.2f\t%.2f\t%.2f\t%.2g\n", a.AAccAfter, b.AAccAfter, c.DAAccAfter, tol.Acc)
	fmt.Fprintf(tw, "mean KL (nats)\t%.5f\t%.5f\t%.2e\t%.2g\n", a.MeanKL, b.MeanKL, c.DKL, tol.KL)
	fmt.Fprintf(tw, "training time (s)\t%.1f\t%.1f\t\t\n", a.TrainSeconds, b.TrainSeconds)
	tw.Flush()
}

func readCurve(path string) (curve, error) {
	var c curve
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	var tol tolerances
	fs.Float64Var(&tol.Step, "tol-step", defaultTolerances.Step, "bound on |Δ loss| of any single step")
	fs.Float64Var(&tol.Epoch, "tol-epoch", defaultTolerances.Epoch, "bound on |Δ mean training loss| of any epoch")
	fs.Float64Var(&tol.Acc, "tol-acc", defaultTolerances.Acc, "bound on |Δ accuracy| in points")
	fs.Float64Var(&tol.KL, "tol-kl", defaultTolerances.KL, "bound on |Δ mean KL| in nats")
	every := fs.Int("every", 16, "print every this many steps")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("want two curve files (A.json B.json)")
	}
	a, err := readCurve(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := readCurve(fs.Arg(1))
	if err != nil {
		return err
	}
	c, err := compareCurves(a, b, tol)
	if _, ok := err.(mismatchError); err != nil && !ok {
		return err
	}
	writeComparison(os.Stdout, a, b, c, tol, max(1, *every))
	if err != nil {
		return err
	}
	fmt.Printf("curves agree within the tolerances (step %.2g, epoch %.2g, accuracy %.2g points, KL %.2g)\n", tol.Step, tol.Epoch, tol.Acc, tol.KL)
	return nil
}
