package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/train"
)

// Module naming of `prism export peft --names`.
const (
	namesAuto  = "auto"
	namesPrism = "prism"
	namesHF    = "hf"
)

// exportPEFTOptions are the inputs of `prism export peft`.
type exportPEFTOptions struct {
	Run       string // run directory, or its adapters.safetensors
	Out       string
	Names     string // auto | prism | hf
	BaseModel string // base_model_name_or_path ("" = from the run)
	Float64   bool
	JSON      bool
	Stdout    io.Writer
}

func newExportPEFTCmd() *cobra.Command {
	o := exportPEFTOptions{Names: namesAuto}
	cmd := &cobra.Command{
		Use:   "peft RUN_DIR --out DIR",
		Short: "Export a fine-tuning run's adapters as a HuggingFace PEFT LoRA adapter",
		Long: `Read the trained adapters of a fine-tuning run (RUN_DIR/adapters.safetensors, written by
'prism finetune --run-dir RUN_DIR'; or that file itself) and write a PEFT LoRA adapter to DIR:

  DIR/adapter_model.safetensors   base_model.model.MODULE.lora_A.weight [r, in] and
                                  .lora_B.weight [out, r] per module (DoRA: .lora_magnitude_vector),
                                  and the new classification head (modules_to_save)
  DIR/adapter_config.json         peft_type LORA, r, lora_alpha, target_modules, use_rslora,
                                  use_dora, modules_to_save, base_model_name_or_path, …

PEFT applies it to the ORIGINAL pretrained weights W₀ with scaling = lora_alpha/r (/√r with
use_rslora). lora and dora train on W₀ itself and are exported as they are (rank r). The window
methods (pissa, milora, mid, window) and olora train on Wres = W₀ − s·B·A, so they are exported as
the rank-2r LoRA on W₀ (DESIGN.md §1, PEFT's own conversion of PiSSA/OLoRA):

  ΔW = s·(B′A′ − BA) = s·[B′ | −B]·[A′ ; A],   r′ = 2r,   lora_alpha = s·2r (s·√(2r) with rsLoRA)

so that W₀ + (lora_alpha/r′)·B₂A₂ is the fine-tuned weight. DoRA's magnitude is PEFT's
lora_magnitude_vector (PEFT's DoRA computes m/‖W₀ + s·BA‖_row ⊙ x·(W₀ + s·BA)ᵀ, as prism's).
Full fine-tuning and head-only runs have no adapter (export the model instead).

--names chooses the module names: prism keeps prism's layer names (blocks.0.attn.qkv, …);
hf uses transformers' ViTForImageClassification names (vit.encoder.layer.0.attention.attention.
query, key, value — each a third of blocks.N.attn.qkv's rows —, …output.dense, …intermediate.dense,
vit.embeddings.patch_embeddings.projection as a Conv2d, classifier for the new head); auto is hf
when the run started from an imported HuggingFace model ('prism finetune --pretrained'), else
prism. A ViT pretrained by prism itself can be exported with --names hf together with
'prism export hf-vit' for its base model.`,
		Example: `  prism finetune --pretrained models/vit --pretrain-task mnist --task fashion-mnist --method mid --run-dir runs/mid
  prism export peft runs/mid --out adapters/mid
  prism export peft runs/mid/adapters.safetensors --out adapters/mid-prism --names prism --float64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Run, o.Stdout = args[0], cmd.OutOrStdout()
			return runExportPEFT(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "", "directory to write the PEFT adapter to (required)")
	f.StringVar(&o.Names, "names", o.Names, "module names: auto, prism or hf (transformers' ViT)")
	f.StringVar(&o.BaseModel, "base-model", "", "base_model_name_or_path of adapter_config.json (default: the imported checkpoint's _name_or_path or directory; none for prism's models)")
	f.BoolVar(&o.Float64, "float64", false, "write F64 tensors (default F32, as PEFT saves)")
	f.BoolVar(&o.JSON, "json", false, "print adapter_config.json instead of a summary")
	return cmd
}

func runExportPEFT(o exportPEFTOptions) error {
	if o.Out == "" {
		return fmt.Errorf("--out is required (the directory to write the adapter to)")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	path := o.Run
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, train.RunAdaptersFile)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: no trained adapters (%s is written by 'prism finetune --run-dir' for the adapter methods; full and head runs have none): %w",
			o.Run, train.RunAdaptersFile, err)
	}
	trained, err := peft.ReadTrained(path)
	if err != nil {
		return err
	}
	names := o.Names
	baseDir := trained.Metadata[peft.MetaBaseModel]
	if names == namesAuto {
		names = namesPrism
		if baseDir != "" {
			names = namesHF
		}
	}
	opts := peft.Options{BaseModel: o.BaseModel, Float64: o.Float64}
	switch names {
	case namesPrism:
	case namesHF:
		v, prefix, base, err := runViT(trained, baseDir)
		if err != nil {
			return err
		}
		opts.Naming = hfvit.PEFTNaming(v, prefix)
		if opts.BaseModel == "" {
			opts.BaseModel = base
		}
	default:
		return fmt.Errorf("--names %q: want auto, prism or hf", o.Names)
	}
	cfg, err := peft.Export(o.Out, trained, opts)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(o.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	}
	methods := map[string]bool{}
	for _, l := range trained.Layers {
		methods[l.Method] = true
	}
	var ms []string
	for m := range methods {
		ms = append(ms, m)
	}
	l := trained.Layers[0]
	tw := tabwriter.NewWriter(o.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", path)
	fmt.Fprintf(tw, "method\t%s, rank %d, scale %.6g%s\n", strings.Join(ms, ", "), l.Rank, l.Scale, map[bool]string{true: " (rsLoRA)"}[l.RSLoRA])
	conversion := "as trained (B started at 0)"
	if cfg.R != l.Rank {
		conversion = fmt.Sprintf("rank-%d LoRA on the original weights, ΔW = s·[B′ | −B]·[A′ ; A]", cfg.R)
	}
	fmt.Fprintf(tw, "exported\t%s\n", conversion)
	fmt.Fprintf(tw, "PEFT\tr %d, lora_alpha %.6g, scaling %.6g, use_dora %v, use_rslora %v\n", cfg.R, cfg.LoRAAlpha,
		cfg.Scaling(cfg.TargetModules[0]), cfg.UseDoRA, cfg.UseRSLoRA)
	fmt.Fprintf(tw, "modules\t%d (%s names): %s\n", len(cfg.TargetModules), names, sample(cfg.TargetModules, 3))
	if len(cfg.ModulesToSave) > 0 {
		fmt.Fprintf(tw, "modules to save\t%s\n", strings.Join(cfg.ModulesToSave, ", "))
	}
	if cfg.BaseModelNameOrPath != nil {
		fmt.Fprintf(tw, "base model\t%s\n", *cfg.BaseModelNameOrPath)
	}
	fmt.Fprintf(tw, "written\t%s (%s, %s)\n", o.Out, peft.WeightsFile, peft.ConfigFile)
	return tw.Flush()
}

// runViT finds the ViT a run fine-tuned, for transformers' names: the
// imported model directory's (with its checkpoint's key prefix and name),
// else prism's own ViT from the run's network metadata.
func runViT(t peft.Trained, baseDir string) (models.ViTConfig, string, string, error) {
	if baseDir != "" {
		info, err := hfvit.ReadModelInfo(baseDir)
		if err != nil {
			return models.ViTConfig{}, "", "", fmt.Errorf("the run's base model: %w", err)
		}
		return info.ViT, info.Source.Prefix, info.Source.BaseModelName(), nil
	}
	var net struct {
		Kind   string          `json:"kind"`
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal([]byte(t.Metadata[peft.MetaNetwork]), &net); err != nil || net.Kind != "vit" {
		return models.ViTConfig{}, "", "", fmt.Errorf("--names hf needs a ViT; the run's network is %q", net.Kind)
	}
	var v models.ViTConfig
	if err := json.Unmarshal(net.Config, &v); err != nil {
		return v, "", "", fmt.Errorf("the run's network configuration: %w", err)
	}
	return v, hfvit.Prefix, "", nil
}

// sample lists up to n names and counts the rest.
func sample(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(names[:n], ", "), len(names)-n)
}
