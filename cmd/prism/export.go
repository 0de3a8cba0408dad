package main

import "github.com/spf13/cobra"

func init() { addCommand(newExportCmd) }

// newExportCmd is `prism export`: prism's models and adapters in other tools' formats.
func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write fine-tuned adapters or models in other tools' formats (PEFT, HuggingFace)",
		Long: `Write what prism trained in the formats of other tools.

  prism export peft     a fine-tuning run's adapters as a HuggingFace PEFT LoRA adapter
  prism export hf-vit   a prism ViT (pretrained or imported) as a HuggingFace ViT checkpoint`,
	}
	cmd.AddCommand(newExportPEFTCmd(), newExportHFViTCmd())
	return cmd
}
