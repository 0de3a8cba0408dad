// Package adapter holds the LoRA-family adapter layers of prism as GoMLX graph
// code: lora, pissa, milora, mid and any window (start or fraction), olora,
// dora, full fine-tuning and head-only training (DESIGN.md §1).
//
// Notation follows HuggingFace PEFT: a linear layer computes y = x·Wᵀ + b with
// W of shape out×in (m×n); an adapter adds scale·B·A with B: m×r, A: r×n and
// scale = α/r (α/√r with rsLoRA).
//
// # Layers
//
// The maths is stateless (functions of graph nodes only):
//
//	Dense:  y = x·Wᵀ + b
//	LoRA:   y = x·Wresᵀ + scale·(x·Aᵀ)·Bᵀ + b
//	DoRA:   y = (m ⊘ ‖W′‖_row) ⊙ (x·W′ᵀ) + b,   W′ = W + scale·B·A
//
// where ‖W′‖_row is the L2 norm of each output row of W′ (PEFT's weight norm,
// over the input dimension; treated as a constant in the backward pass, as the
// DoRA paper §4.3 and PEFT do, unless DoRAOptions.NormGradient is set).
//
// # Variables
//
// A layer called NAME keeps its variables in the context scope NAME (the
// layout of prism's models): "weight" (m×n, out×in) and "bias" (m). Attach
// initialises adapters from the pretrained "weight" of every layer a Plan
// targets (core/lowrank computes the SVD once per layer and keeps it for the
// analysis), replaces "weight" with the frozen residual Wres = W − scale·B·A,
// freezes "bias", and creates the trainable "lora_A" (r×n), "lora_B" (m×r)
// and, for DoRA, "lora_magnitude" (m). Full fine-tuning marks "weight" and
// "bias" trainable; head-only training freezes them.
//
// # Merging
//
// The merged weight of a trained layer is W₁ = Wres + scale·B·A, or for DoRA
// W₁ = diag(m ⊘ ‖W′‖_row)·W′, so that y = x·W₁ᵀ + b; Merged computes it on
// the host (in float64) for the analysis and for export.
package adapter
