// Command gpu-check is the Go side of scripts/gpu-check.sh, the prepared
// check of prism's XLA (GPU) path. It is built here with cgo and carried to
// the GPU machine, which has no Go toolchain. Sub-commands:
//
//	data      write small subsets of MNIST and Fashion-MNIST (gzip idx files)
//	pretrain  pretrain the default ViT on the MNIST subset into a cache folder
//	finetune  fine-tune it (PiSSA, rank 8) on the Fashion-MNIST subset on one
//	          backend and write the per-step loss curve as JSON
//	compare   compare two curves within stated tolerances (exit 1 beyond them)
//	step      time one LoRA fine-tuning step of a ViT (ViT-B by default) and
//	          print one JSON line
//	table     print the step timings of prism and PyTorch (JSON lines) as a
//	          table with prism's ratio to each, after checking that they time
//	          the same model (equal parameter counts)
//
// Run `gpu-check SUBCOMMAND -h` for the flags.
package main

import (
	"fmt"
	"os"
)

func main() {
	cmds := map[string]func(args []string) error{
		"data":     runData,
		"pretrain": runPretrain,
		"finetune": runFinetune,
		"compare":  runCompare,
		"step":     runStep,
		"table":    runTable,
	}
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: gpu-check data|pretrain|finetune|compare|step|table [flags] (see scripts/gpu-check.sh)")
		os.Exit(2)
	}
	if err := cmds[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "gpu-check %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
