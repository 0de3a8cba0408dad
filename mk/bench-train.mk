# bench-train: prism's training step (ViT LoRA, ViT full, MLP) against
# PyTorch 1.13 on OpenBLAS, one table. Included by the top-level Makefile.
.PHONY: bench-train
bench-train:
	scripts/setup.sh bench
	scripts/bench-train.sh
