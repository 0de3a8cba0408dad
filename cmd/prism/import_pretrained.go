package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog"
)

// addPretrainedFlag registers `prism finetune --pretrained MODEL`.
func addPretrainedFlag(f *pflag.FlagSet, p *pretrainFlags) {
	f.StringVar(&p.pretrained, "pretrained", "", "start from this prism model directory (e.g. from 'prism import hf-vit') instead of pretraining; "+
		"--pretrain-task must be the task of its head")
}

// importedConfig is the pretraining configuration of --pretrained: the
// model directory's ViT on task A's images (upsampled and normalised as
// train.ImportedViTNetwork does). The architecture and pretraining flags do
// not apply.
func (p *pretrainFlags) importedConfig(f *pflag.FlagSet) (train.PretrainConfig, error) {
	for _, name := range []string{"model", "vit-patch", "vit-width", "vit-depth", "vit-heads", "vit-mlp", "mlp-hidden",
		p.prefix + "epochs", p.prefix + "batch", p.prefix + "lr", p.prefix + "weight-decay", p.prefix + "warmup",
		p.prefix + "clip", p.prefix + "seed", p.prefix + "train-subset", p.prefix + "test-subset"} {
		if f.Changed(name) {
			return train.PretrainConfig{}, fmt.Errorf("--%s does not apply with --pretrained: the model directory is the pretrained model", name)
		}
	}
	info, err := hfvit.ReadModelInfo(p.pretrained)
	if err != nil {
		return train.PretrainConfig{}, fmt.Errorf("--pretrained: %w", err)
	}
	if info.ViT.Classes == 0 {
		return train.PretrainConfig{}, fmt.Errorf("--pretrained %s: the model has no classification head (a bare ViTModel), so forgetting cannot be measured on task A", p.pretrained)
	}
	entry, err := catalog.Lookup(p.task)
	if err != nil {
		return train.PretrainConfig{}, err
	}
	net, err := train.ImportedViTNetwork(info, entry.Spec().ExampleShape)
	if err != nil {
		return train.PretrainConfig{}, fmt.Errorf("--pretrained %s with task A %s: %w", p.pretrained, p.task, err)
	}
	return train.PretrainConfig{Network: net, Task: p.task, Model: p.pretrained, Hyper: train.DefaultPretrainHyper()}, nil
}
