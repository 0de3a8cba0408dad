package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/gomlx/gopjrt/dtypes"
	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/internal/atomicfile"
)

// exportHFViTOptions are the inputs of `prism export hf-vit`.
type exportHFViTOptions struct {
	Model  string // prism model directory or pretrained cache entry
	Out    string
	Stdout io.Writer
}

func newExportHFViTCmd() *cobra.Command {
	var o exportHFViTOptions
	cmd := &cobra.Command{
		Use:   "hf-vit MODEL_DIR --out DIR",
		Short: "Write a prism ViT as a HuggingFace ViTForImageClassification checkpoint",
		Long: `Write a prism ViT as a HuggingFace transformers checkpoint in DIR: config.json,
model.safetensors (ViTForImageClassification's key layout: q, k and v split from
blocks.N.attn.qkv, the patch weight as a Conv2d kernel [d, C, ph, pw], "format": "pt" metadata) and
preprocessor_config.json. MODEL_DIR is a pretrained model in prism's cache
($PRISM_CACHE_DIR/pretrained/KEY, printed by 'prism pretrain') or a model directory from
'prism import hf-vit'. transformers' ViTForImageClassification.from_pretrained(DIR) then computes
the same logits as prism on the same pixels (given as [B, C, H, W]). For prism's own models the
pixels are x = byte/255 with no normalisation, which preprocessor_config.json says
(do_rescale, no do_normalize, no resize); an imported model keeps its normalisation.

Together with 'prism export peft --names hf' this gives transformers and PEFT users a base
model and the adapters fine-tuned on it.`,
		Example: `  prism export hf-vit ~/.cache/prism/pretrained/3f2a… --out vit-mnist
  prism export hf-vit models/vit-b16 --out vit-b16-roundtrip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Model, o.Stdout = args[0], cmd.OutOrStdout()
			return runExportHFViT(o)
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "", "directory to write the HuggingFace checkpoint to (required)")
	return cmd
}

// prismViT is a prism ViT read from a model directory or a cache entry.
type prismViT struct {
	ViT       models.ViTConfig
	Labels    []string
	Normalize *hfvit.Normalization
	Params32  []hfvit.Tensor[float32] // float32 models
	Params64  []hfvit.Tensor[float64] // float64 models
}

func runExportHFViT(o exportHFViTOptions) error {
	if o.Out == "" {
		return fmt.Errorf("--out is required (the directory to write the checkpoint to)")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	m, err := readPrismViT(o.Model)
	if err != nil {
		return err
	}
	if m.ViT.DType == dtypes.Float64 {
		err = hfvit.Export(o.Out, m.ViT, m.Params64, m.Labels)
	} else {
		err = hfvit.Export(o.Out, m.ViT, m.Params32, m.Labels)
	}
	if err != nil {
		return err
	}
	pre := map[string]any{"image_processor_type": "ViTImageProcessor", "do_resize": false, "do_rescale": true,
		"rescale_factor": 1.0 / 255, "do_normalize": false}
	if n := m.Normalize; n != nil {
		pre["do_normalize"], pre["image_mean"], pre["image_std"] = true, n.Mean, n.Std
	}
	data, err := json.MarshalIndent(pre, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(o.Out, hfvit.PreprocessorFile), append(data, '\n')); err != nil {
		return err
	}
	v := m.ViT
	tw := tabwriter.NewWriter(o.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", o.Model)
	fmt.Fprintf(tw, "architecture\tViT: %v images, patch %v, width %d, depth %d, heads %d, MLP %d, %d classes\n",
		v.ImageShape(), v.PatchShape(), v.Width, v.Depth, v.Heads, v.MLPDim, v.Classes)
	fmt.Fprintf(tw, "written\t%s (%s, %s, %s)\n", o.Out, hfvit.ConfigFile, hfvit.WeightsFile, hfvit.PreprocessorFile)
	return tw.Flush()
}

// readPrismViT reads a prism model directory (model.json) or a pretrained
// cache entry (meta.json, whose hashed configuration holds the network).
func readPrismViT(dir string) (prismViT, error) {
	var m prismViT
	if info, err := hfvit.ReadModelInfo(dir); err == nil {
		m.ViT, m.Labels, m.Normalize = info.ViT, info.Labels, info.Normalize
	} else if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	} else {
		data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			return m, fmt.Errorf("%s is neither a prism model directory (%s) nor a pretrained cache entry (meta.json)", dir, hfvit.ModelInfoFile)
		}
		var meta struct {
			Task   string `json:"task"`
			Config struct {
				Network struct {
					Kind   string          `json:"kind"`
					Config json.RawMessage `json:"config"`
				} `json:"network"`
			} `json:"config"`
		}
		if err := json.Unmarshal(data, &meta); err != nil {
			return m, fmt.Errorf("%s/meta.json: %w", dir, err)
		}
		if meta.Config.Network.Kind != "vit" {
			return m, fmt.Errorf("%s: the pretrained network is %q, not a ViT", dir, meta.Config.Network.Kind)
		}
		if err := json.Unmarshal(meta.Config.Network.Config, &m.ViT); err != nil {
			return m, fmt.Errorf("%s/meta.json: network config: %w", dir, err)
		}
		r, err := safetensors.Open(filepath.Join(dir, hfvit.ModelFile))
		if err != nil {
			return m, err
		}
		head, err := r.Info(models.DefaultHead + ".weight")
		r.Close()
		if err != nil {
			return m, err
		}
		m.ViT.Classes = head.Shape[0]
		if entry, err := catalog.Lookup(meta.Task); err == nil && entry.Spec().NumClasses() == m.ViT.Classes {
			m.Labels = entry.Spec().Classes
		}
	}
	r, err := safetensors.Open(filepath.Join(dir, hfvit.ModelFile))
	if err != nil {
		return m, err
	}
	defer r.Close()
	for _, s := range hfvit.PrismSpecs(m.ViT) {
		if m.ViT.DType == dtypes.Float64 {
			data, err := r.Float64s(s.Name)
			if err != nil {
				return m, err
			}
			m.Params64 = append(m.Params64, hfvit.Tensor[float64]{Name: s.Name, Shape: s.Shape, Data: data})
			continue
		}
		data, err := r.Float32s(s.Name)
		if err != nil {
			return m, err
		}
		m.Params32 = append(m.Params32, hfvit.Tensor[float32]{Name: s.Name, Shape: s.Shape, Data: data})
	}
	return m, nil
}
