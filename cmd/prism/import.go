package main

import "github.com/spf13/cobra"

func init() { addCommand(newImportCmd) }

// newImportCmd is `prism import`: checkpoints from other tools.
func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert a checkpoint of another tool into a prism model directory",
		Long: `Convert pretrained checkpoints of other tools into prism model directories, which
'prism finetune --pretrained DIR' fine-tunes (and measures forgetting on) like prism's own models.

  prism import hf-vit   a HuggingFace transformers ViT (config.json + model.safetensors)`,
	}
	cmd.AddCommand(newImportHFViTCmd())
	return cmd
}
