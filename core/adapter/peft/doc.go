// Package peft exports prism's trained adapters in HuggingFace PEFT's LoRA
// format, so that PEFT (PeftModel.from_pretrained) applies them to the
// ORIGINAL pretrained weights and reproduces the fine-tuned layers.
//
// PEFT computes a targeted module as y = base(x) + scaling·B·A·x with
// scaling = lora_alpha/r (lora_alpha/√r with use_rslora) on the unchanged
// base weight W₀. prism's methods differ in what they freeze:
//
//	lora, dora            W₀ itself, B starts at 0        → exported as is (rank r, α unchanged)
//	pissa, milora, mid,   Wres = W₀ − s·B·A               → the rank-2r LoRA on W₀
//	window, olora                                            ΔW = s·(B′A′ − BA) = s·[B′ | −B]·[A′ ; A]
//	                                                         with lora_alpha = s·2r (s·√(2r) with rsLoRA)
//
// (DESIGN.md §1; PEFT's own path_initial_model_for_weight_conversion does
// the same.) DoRA exports lora_magnitude_vector: PEFT's DoRA computes
// (m ⊘ ‖W₀ + s·B·A‖_row) ⊙ (x·(W₀ + s·B·A)ᵀ) + b, exactly prism's.
//
// The trained adapters come from a run directory's adapters.safetensors
// (written by core/train with WriteTrained: trained and initial factors of
// every adapted layer, DoRA's magnitude, the new head), or straight from a
// GoMLX context with FromAdapted. Export writes adapter_model.safetensors
// (base_model.model.MODULE.lora_A.weight / lora_B.weight, the new head as a
// module to save) and adapter_config.json. A Naming maps prism's layer names
// to the base model's modules: PrismNaming keeps them; core/models/hfvit's
// PEFTNaming gives transformers' ViT names (query, key and value split from
// blocks.i.attn.qkv, the patch embedding as a Conv2d).
package peft
