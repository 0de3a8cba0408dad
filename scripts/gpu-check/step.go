package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/core/train/adamw"
)

// stepResult is one line of `gpu-check step` (and of gpu-check-torch.py).
type stepResult struct {
	Impl        string  `json:"impl"` // "prism"
	Variant     string  `json:"variant"`
	Backend     string  `json:"backend"`
	Image       int     `json:"image"`
	Channels    int     `json:"channels"`
	Patch       int     `json:"patch"`
	Width       int     `json:"width"`
	Depth       int     `json:"depth"`
	Heads       int     `json:"heads"`
	MLP         int     `json:"mlp"`
	Batch       int     `json:"batch"`
	Rank        int     `json:"rank"`
	DType       string  `json:"dtype"`
	Trainable   int     `json:"trainable"`
	Params      int     `json:"params"`
	FirstStepS  float64 `json:"first_step_s"` // includes compilation
	Ms          float64 `json:"ms"`           // median of the timed steps
	MinMs       float64 `json:"min_ms"`
	MeanMs      float64 `json:"mean_ms"`
	Iters       int     `json:"iters"`
	LossFirst   float64 `json:"loss_first"`
	LossLast    float64 `json:"loss_last"`
	SetupS      float64 `json:"setup_s"`
	Description string  `json:"description,omitempty"`
}

// loraTargets are the linears that get adapters: every attention and MLP
// linear of every block (the patch embedding and the heads do not).
const loraTargets = `blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])`

// stepConfig sizes the timed step.
type stepConfig struct {
	vit                   models.ViTConfig
	batch, rank           int
	alpha, lr             float64
	iters, warmup         int
	variants              []string // "device" (batch kept on the device) and/or "host" (uploaded every step)
	backendSpec, initSpec string
}

func runStep(args []string) error {
	fs := flag.NewFlagSet("step", flag.ContinueOnError)
	var c stepConfig
	fs.StringVar(&c.backendSpec, "backend", "", "backend spec of the timed step (default $PRISM_BACKEND, else go)")
	fs.StringVar(&c.initSpec, "init-backend", "go", "backend that initialises the weights (one forward pass)")
	fs.IntVar(&c.vit.ImageSize, "image", 224, "image side")
	fs.IntVar(&c.vit.Channels, "channels", 3, "image channels")
	fs.IntVar(&c.vit.PatchSize, "patch", 16, "patch side")
	fs.IntVar(&c.vit.Width, "width", 768, "token width")
	fs.IntVar(&c.vit.Depth, "depth", 12, "blocks")
	fs.IntVar(&c.vit.Heads, "heads", 12, "attention heads")
	fs.IntVar(&c.vit.MLPDim, "mlp", 3072, "MLP hidden width")
	fs.IntVar(&c.vit.Classes, "classes", 10, "classes of the new head")
	fs.IntVar(&c.batch, "batch", 64, "batch size")
	fs.IntVar(&c.rank, "rank", 8, "LoRA rank")
	fs.Float64Var(&c.alpha, "alpha", 16, "LoRA alpha")
	fs.Float64Var(&c.lr, "lr", 1e-3, "AdamW learning rate")
	fs.IntVar(&c.iters, "iters", 20, "timed steps")
	fs.IntVar(&c.warmup, "warmup", 3, "untimed steps first (the first compiles)")
	variants := fs.String("variants", "device", `comma-separated: "device" keeps the batch on the device, "host" uploads it from host memory every step (as prism's training loop does); one compiled step times both`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.variants = strings.Split(*variants, ",")
	for _, v := range c.variants {
		if v != "device" && v != "host" {
			return fmt.Errorf("-variants: unknown %q (want device, host)", v)
		}
	}
	rs, err := timeStep(c)
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
	}
	return err
}

// timeStep builds the LoRA fine-tuning step of prism's ViT — core/models'
// ViT, core/adapter's LoRA on every attention/MLP linear (backbone frozen),
// a new trainable head, cross-entropy, global gradient-norm clipping at 1
// and AdamW (GoMLX's Adam with decoupled weight decay), as core/train's loop
// builds it — and times it once per variant (the first step, which
// compiles, is reported apart as FirstStepS).
func timeStep(c stepConfig) ([]stepResult, error) {
	setup := time.Now()
	net, err := train.ViTNetwork(c.vit)
	if err != nil {
		return nil, err
	}
	ctx, err := initialisedViT(net, c.initSpec)
	if err != nil {
		return nil, err
	}
	mctx := ctx.In(train.ModelScope)
	params := 0
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
		params += v.Shape().Size()
	}
	plan := adapter.NewPlan(adapter.Config{Method: adapter.MethodLoRA, Rank: c.rank, Alpha: c.alpha, Seed: 1}, loraTargets)
	adapted, err := adapter.Attach(context.Background(), mctx, plan, net.Layers, adapter.Options{})
	if err != nil {
		return nil, err
	}
	linear := adapted.Linear(net.Dense)

	b, err := backend.New(c.backendSpec)
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	opt := optimizers.Adam().LearningRate(c.lr).Epsilon(1e-8).WeightDecay(0.01).Done().(interface {
		UpdateGraphWithGradients(ctx *mlctx.Context, grads []*Node, lossDType dtypes.DType)
	})
	trainable := 0
	step, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, x, labels *Node) *Node {
		m := ctx.In(train.ModelScope)
		logits := linear(m, train.HeadB, net.Features(m, linear, x), c.vit.Classes)
		loss := models.SoftmaxCrossEntropy(logits, labels)
		var names []string
		trainable = 0
		ctx.EnumerateVariables(func(v *mlctx.Variable) {
			if v.Trainable && v.InUseByGraph(x.Graph()) {
				names = append(names, v.ScopeAndName())
				trainable += v.Shape().Size()
			}
		})
		grads := adamw.ClipGlobalNorm(ctx.BuildTrainableVariablesGradientsGraph(loss), names, 1)
		opt.UpdateGraphWithGradients(ctx, grads, loss.DType())
		return loss
	})
	if err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(1, 2))
	n := c.batch * c.vit.ImageSize * c.vit.ImageSize * c.vit.Channels
	images := make([]float32, n)
	for i := range images {
		images[i] = rng.Float32()
	}
	labels := make([]int32, c.batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(c.vit.Classes))
	}
	dims := []int{c.batch, c.vit.ImageSize, c.vit.ImageSize, c.vit.Channels}
	x, y := tensors.FromFlatDataAndDimensions(images, dims...), tensors.FromFlatDataAndDimensions(labels, c.batch)
	var losses []float64
	run := func(host bool) error {
		if host {
			x, y = tensors.FromFlatDataAndDimensions(images, dims...), tensors.FromFlatDataAndDimensions(labels, c.batch)
		}
		out, err := step.Exec(x, y)
		if err != nil {
			return err
		}
		// Reading the loss waits for the step (and copies 4 bytes back).
		l := float64(tensors.MustCopyFlatData[float32](out[0])[0])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("step %d: loss %v", len(losses)+1, l)
		}
		losses = append(losses, l)
		return nil
	}
	setupS := time.Since(setup).Seconds()
	t0 := time.Now()
	if err := run(false); err != nil {
		return nil, err
	}
	first := time.Since(t0).Seconds()
	var results []stepResult
	for vi, variant := range c.variants {
		host := variant == "host"
		for i := 0; i < c.warmup-1 || (vi > 0 && i < 1); i++ {
			if err := run(host); err != nil {
				return results, err
			}
		}
		times := make([]float64, c.iters)
		lossFirst := len(losses)
		for i := range times {
			t := time.Now()
			if err := run(host); err != nil {
				return results, err
			}
			times[i] = float64(time.Since(t).Microseconds()) / 1000
		}
		mean := 0.0
		for _, t := range times {
			mean += t / float64(len(times))
		}
		sorted := slices.Clone(times)
		sort.Float64s(sorted)
		name := "batch on device"
		if host {
			name = "batch from host"
		}
		results = append(results, stepResult{
			Impl: "prism", Variant: name, Backend: backend.Resolve(c.backendSpec), Description: b.Description(),
			Image: c.vit.ImageSize, Channels: c.vit.Channels, Patch: c.vit.PatchSize, Width: c.vit.Width, Depth: c.vit.Depth,
			Heads: c.vit.Heads, MLP: c.vit.MLPDim, Batch: c.batch, Rank: c.rank, DType: "float32",
			Trainable: trainable, Params: params + trainable, FirstStepS: first,
			Ms: sorted[len(sorted)/2], MinMs: sorted[0], MeanMs: mean, Iters: c.iters,
			LossFirst: losses[lossFirst], LossLast: losses[len(losses)-1], SetupS: setupS,
		})
	}
	return results, nil
}

// initialisedViT returns a context holding the ViT's initial weights in
// its model scope, as prism's fine-tuning has them after loading a
// pretrained checkpoint: one forward pass on the init backend creates and
// initialises the variables, which go through a model file (SaveModel /
// LoadModel) into a fresh context, so none of them is tied to that backend.
func initialisedViT(net train.Network, initSpec string) (*mlctx.Context, error) {
	b, err := backend.New(initSpec)
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	ctx0 := mlctx.New()
	net.Seed(ctx0.In(train.ModelScope), 1)
	shape := append([]int{1}, net.InputShape...)
	size := 1
	for _, d := range shape {
		size *= d
	}
	forward, err := mlctx.NewExec(b, ctx0, func(ctx *mlctx.Context, x *Node) *Node {
		return net.Features(ctx.In(train.ModelScope), net.Dense, x)
	})
	if err != nil {
		return nil, err
	}
	if _, err := forward.Exec(tensors.FromFlatDataAndDimensions(make([]float32, size), shape...)); err != nil {
		return nil, fmt.Errorf("initialising the ViT: %w", err)
	}
	dir, err := os.MkdirTemp("", "gpu-check-vit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	if err := train.SaveModel(path, ctx0, nil); err != nil {
		return nil, err
	}
	ctx := mlctx.New()
	if _, err := train.LoadModel(path, ctx); err != nil {
		return nil, err
	}
	return ctx, nil
}
