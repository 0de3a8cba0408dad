package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/models/hfvit"
)

// importHFViTOptions are the inputs of `prism import hf-vit`.
type importHFViTOptions struct {
	Dir     string // HuggingFace checkpoint directory
	Out     string // prism model directory to write
	Float64 bool   // store float64 weights
	JSON    bool
	Stdout  io.Writer
}

func newImportHFViTCmd() *cobra.Command {
	var o importHFViTOptions
	cmd := &cobra.Command{
		Use:   "hf-vit DIR --out MODEL",
		Short: "Import a HuggingFace ViT checkpoint (ViTForImageClassification) as a prism model directory",
		Long: `Read a HuggingFace transformers Vision Transformer checkpoint — DIR/config.json and
DIR/model.safetensors (or its shards and model.safetensors.index.json), as save_pretrained or
the hub's "google/vit-base-patch16-224" write them — and write a prism model directory MODEL:

  MODEL/model.safetensors   prism's tensors (blocks.N.attn.qkv.weight, cls_token, head.weight, …)
  MODEL/model.json          the architecture, labels, input normalisation and provenance

The conversion is exact: q, k and v are stacked into blocks.N.attn.qkv (rows q; k; v), the patch
projection's Conv2d kernel [d, C, ph, pw] becomes the patch weight [d, ph·pw·C], and config.json's
layer_norm_eps (1e-12 for Google's ViTs), hidden_act (gelu = exact GELU, gelu_new,
gelu_pytorch_tanh, quick_gelu, relu, silu), qkv_bias and [height, width] image and patch sizes are
kept, so prism's model computes what transformers computes in evaluation mode. Weights stored as
F16 or BF16 are widened exactly. A checkpoint that does not match its config.json (a missing or
unexpected tensor, a wrong shape) is refused with every such tensor and its expected shape.
A bare ViTModel (no "vit." prefix, no classifier) imports without a head; its pooler is ignored.
preprocessor_config.json, when present, gives the input normalisation (image_mean, image_std).

Then fine-tune it: 'prism finetune --pretrained MODEL --pretrain-task A --task B'. Task A must
be the task of the checkpoint's classifier (forgetting is measured with that head), its
images are upsampled to the model's size by an integer factor and normalised.`,
		Example: `  prism import hf-vit ./vit-base-patch16-224 --out models/vit-b16
  prism import hf-vit ./my-vit --out models/my-vit --float64 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir, o.Stdout = args[0], cmd.OutOrStdout()
			return runImportHFViT(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "", "prism model directory to write (required)")
	f.BoolVar(&o.Float64, "float64", false, "store float64 weights (default float32; F64 checkpoints are then rounded)")
	f.BoolVar(&o.JSON, "json", false, "print model.json instead of a summary")
	return cmd
}

func runImportHFViT(o importHFViTOptions) error {
	if o.Out == "" {
		return fmt.Errorf("--out is required (the prism model directory to write)")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	var info hfvit.ModelInfo
	var tensors int
	if o.Float64 {
		ck, err := hfvit.Import[float64](o.Dir)
		if err != nil {
			return err
		}
		info, tensors = ck.Info(o.Dir), len(ck.Params)
		if err := hfvit.WriteModel(o.Out, info, ck.Params); err != nil {
			return err
		}
	} else {
		ck, err := hfvit.Import[float32](o.Dir)
		if err != nil {
			return err
		}
		info, tensors = ck.Info(o.Dir), len(ck.Params)
		if err := hfvit.WriteModel(o.Out, info, ck.Params); err != nil {
			return err
		}
	}
	if o.JSON {
		enc := json.NewEncoder(o.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	v := info.ViT
	tw := tabwriter.NewWriter(o.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "imported\t%s (%s)\n", info.Source.Path, nonEmpty(info.Source.NameOrPath, "no _name_or_path"))
	fmt.Fprintf(tw, "architecture\tViT: %v images, patch %v, width %d, depth %d, heads %d, MLP %d, %s, LayerNorm ε %g\n",
		v.ImageShape(), v.PatchShape(), v.Width, v.Depth, v.Heads, v.MLPDim, nonEmpty(v.Activation, "gelu (exact)"), v.LayerNormEpsilon)
	head := "none (a bare ViTModel)"
	if v.Classes > 0 {
		head = fmt.Sprintf("%d classes", v.Classes)
		if len(info.Labels) > 0 {
			head += fmt.Sprintf(" (%s)", labelSample(info.Labels))
		}
	}
	fmt.Fprintf(tw, "head\t%s\n", head)
	norm := "none"
	if n := info.Normalize; n != nil {
		norm = fmt.Sprintf("(x − %v) / %v per channel", n.Mean, n.Std)
	}
	fmt.Fprintf(tw, "input normalisation\t%s\n", norm)
	fmt.Fprintf(tw, "tensors\t%d prism tensors (%s)\n", tensors, v.DType)
	if len(info.Source.Ignored) > 0 {
		fmt.Fprintf(tw, "ignored\t%s\n", strings.Join(info.Source.Ignored, ", "))
	}
	fmt.Fprintf(tw, "written\t%s\n", o.Out)
	return tw.Flush()
}

func nonEmpty(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// labelSample shows the first few labels.
func labelSample(labels []string) string {
	if len(labels) <= 3 {
		return strings.Join(labels, ", ")
	}
	return strings.Join(labels[:3], ", ") + ", …"
}
