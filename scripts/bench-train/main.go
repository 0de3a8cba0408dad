// Command bench-train times one training step of prism's models on a GoMLX
// backend, for `make bench-train` (scripts/bench-train.sh compares it with
// PyTorch). It prints one JSON object per case: {"case", "ms", "trainable", …}.
//
// Cases (the same as scripts/bench-train-torch.py):
//
//	vit-lora  default ViT, batch 128, 28×28: LoRA matrices (rank r) on every
//	          attention/MLP linear, backbone frozen, new trainable head; AdamW
//	vit-full  the same ViT, every variable trainable; AdamW
//	mlp       784-256-10 MLP, Adam
//
// The optimizer is core/train's (core/train/adamw: β 0.9/0.999, ε 1e-8,
// learning rate 1e-3, weight decay 0.01 for AdamW, no clipping): on the
// pure-Go backend its fused update runs after the graph, and is timed as
// part of the step. -ingraph keeps GoMLX's graph Adam (for comparisons).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/backend/gokernels"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train/adamw"
)

type result struct {
	Case    string `json:"case"`
	Backend string `json:"backend"`
	Kernels string `json:"kernels"`
	// HandedBack counts ops of the timed steps that prism's kernels handed
	// back to simplego's own executors: only non-float32 ones are expected
	// (with -ingraph, the optimizer's int64 step counters, 4 per step; none
	// with the fused update).
	HandedBack int64   `json:"handed_back"`
	Ms         float64 `json:"ms"`
	MinMs      float64 `json:"min_ms"`
	Trainable  int     `json:"trainable"`
	Loss0      float64 `json:"loss_first"`
	LossN      float64 `json:"loss_last"`
}

func main() {
	var (
		cases      = flag.String("cases", "vit-lora,vit-full,mlp", "comma-separated cases to time")
		spec       = flag.String("backend", "", "backend spec (default $PRISM_BACKEND, else go)")
		batch      = flag.Int("batch", 128, "batch size")
		iters      = flag.Int("iters", 20, "timed steps per case")
		warmup     = flag.Int("warmup", 3, "untimed steps per case (the first compiles the graph)")
		rank       = flag.Int("rank", 8, "LoRA rank for vit-lora")
		alpha      = flag.Float64("alpha", 16, "LoRA alpha for vit-lora")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the timed steps to this file")
		width      = flag.Int("width", 64, "ViT width")
		depth      = flag.Int("depth", 4, "ViT depth")
		heads      = flag.Int("heads", 4, "ViT heads")
		mlpDim     = flag.Int("mlp", 128, "ViT MLP hidden width")
		patch      = flag.Int("patch", 7, "ViT patch size")
		inGraph    = flag.Bool("ingraph", false, "update with GoMLX's graph Adam instead of the fused update")
	)
	flag.Parse()
	b, err := backend.New(*spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-train:", err)
		os.Exit(1)
	}
	vit := models.DefaultViT()
	vit.Width, vit.Depth, vit.Heads, vit.MLPDim, vit.PatchSize = *width, *depth, *heads, *mlpDim, *patch
	rng := rand.New(rand.NewPCG(1, 2))
	images := make([]float32, *batch*28*28)
	for i := range images {
		images[i] = rng.Float32()
	}
	labels := make([]int32, *batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
	}
	imagesT := tensors.FromFlatDataAndDimensions(images, *batch, 28, 28, 1)
	labelsT := tensors.FromFlatDataAndDimensions(labels, *batch)
	flatT := tensors.FromFlatDataAndDimensions(images, *batch, 784)

	var prof *os.File
	if *cpuprofile != "" {
		if prof, err = os.Create(*cpuprofile); err != nil {
			fmt.Fprintln(os.Stderr, "bench-train:", err)
			os.Exit(1)
		}
	}
	for _, c := range strings.Split(*cases, ",") {
		ctx := context.New()
		models.SetSeed(ctx, 1)
		var (
			model  func(ctx *context.Context, x *Node) *Node
			opt    adamw.Config
			frozen func(scope string) bool // nil: all trainable
			input  = imagesT
		)
		switch c {
		case "vit-lora":
			run := models.Run{Linear: loraLinear(regexp.MustCompile(`^blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])$`), *rank, *alpha)}
			model = func(ctx *context.Context, x *Node) *Node {
				return models.Head(ctx, run, "head_taskB", models.ViTFeatures(ctx, vit, run, x), 10)
			}
			frozen = func(scope string) bool {
				return !strings.HasSuffix(scope, "/lora") && !strings.HasPrefix(scope, "/head_taskB")
			}
			opt = adamw.Config{LearningRate: 1e-3, WeightDecay: 0.01}
		case "vit-full":
			model = func(ctx *context.Context, x *Node) *Node { return models.ViT(ctx, vit, models.Run{}, x) }
			opt = adamw.Config{LearningRate: 1e-3, WeightDecay: 0.01}
		case "mlp":
			model = func(ctx *context.Context, x *Node) *Node {
				return models.MLP(ctx, models.DefaultMLP(), models.Run{}, x)
			}
			opt = adamw.Config{LearningRate: 1e-3}
			input = flatT
		default:
			fmt.Fprintf(os.Stderr, "bench-train: unknown case %q (want vit-lora, vit-full or mlp)\n", c)
			os.Exit(2)
		}
		trainable := 0
		opt.InGraph = *inGraph
		optimizer := adamw.New(b, opt)
		step := context.MustNewExec(b, ctx, func(ctx *context.Context, x, y *Node) []*Node {
			loss := models.SoftmaxCrossEntropy(model(ctx, x), y)
			trainable = 0
			for v := range ctx.IterVariables() {
				if frozen != nil && frozen(v.Scope()) {
					v.SetTrainable(false)
				}
				if v.Trainable {
					trainable += v.Shape().Size()
				}
			}
			return append([]*Node{loss}, optimizer.UpdateGraph(ctx, loss, nil)...)
		})
		var losses []float64
		runStep := func() {
			out, err := step.Exec(input, labelsT)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench-train:", err)
				os.Exit(1)
			}
			if err := optimizer.Apply(out[1:], 1e-3); err != nil {
				fmt.Fprintln(os.Stderr, "bench-train:", err)
				os.Exit(1)
			}
			losses = append(losses, float64(tensors.MustCopyFlatData[float32](out[0])[0]))
		}
		for range *warmup {
			runStep()
		}
		if prof != nil {
			_ = pprof.StartCPUProfile(prof)
		}
		_, back0 := gokernels.Calls()
		times := make([]float64, *iters)
		for i := range times {
			t0 := time.Now()
			runStep()
			times[i] = float64(time.Since(t0).Microseconds()) / 1000
		}
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil
		}
		slices.Sort(times)
		_, back1 := gokernels.Calls()
		r := result{Case: c, Backend: backend.Resolve(*spec), Kernels: backend.Kernels(), HandedBack: back1 - back0,
			Ms: times[len(times)/2], MinMs: times[0], Trainable: trainable, Loss0: losses[0], LossN: losses[len(losses)-1]}
		if math.IsNaN(r.LossN) {
			fmt.Fprintf(os.Stderr, "bench-train: %s: loss is NaN\n", c)
			os.Exit(1)
		}
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
	}
}

// loraLinear is the bench's minimal LoRA layer for the layers matching target:
// y = x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ, W, b frozen (Dense's variables), A: r×in and
// B: out×r trainable in scope <layer>/lora, scale = α/r. B starts non-zero so
// the step does the work of a window-initialised adapter.
func loraLinear(target *regexp.Regexp, rank int, alpha float64) models.Linear {
	return func(ctx *context.Context, name string, x *Node, outDim int) *Node {
		y := models.Dense(ctx, name, x, outDim)
		if !target.MatchString(name) {
			return y
		}
		in := x.Shape().Dimensions[x.Rank()-1]
		scope := ctx.In(name).In("lora")
		a := models.Param(scope, "A", x.DType(), []int{rank, in}, models.UniformInit(1/math.Sqrt(float64(in))))
		bb := models.Param(scope, "B", x.DType(), []int{outDim, rank}, models.NormalInit(0.01))
		g := x.Graph()
		// scale·(x·Aᵀ)·Bᵀ with the scale applied to the small B, not the output.
		scaledB := MulScalar(bb.ValueGraph(g), alpha/float64(rank))
		return Add(y, models.DenseWith(models.DenseWith(x, a.ValueGraph(g), nil), scaledB, nil))
	}
}
