// Package hfvit converts HuggingFace transformers' Vision Transformer
// checkpoints (ViTForImageClassification, or a bare ViTModel) to prism's ViT
// (core/models) and back, exactly: the imported model's logits are those of
// transformers' model in evaluation mode on the same pixels.
//
// A HuggingFace ViT and prism's compute the same pre-LayerNorm transformer;
// they differ only in how the weights are stored:
//
//	HuggingFace (config.json + model.safetensors)          prism (models.ViT variables)
//	vit.embeddings.cls_token               [1, 1, d]        cls_token               [1, 1, d]
//	vit.embeddings.position_embeddings     [1, 1+N, d]      pos_embed               [1, 1+N, d]
//	vit.embeddings.patch_embeddings.projection.weight       patch_embed.proj.weight [d, ph·pw·C]
//	                                       [d, C, ph, pw]   (kernel axes permuted to (ph, pw, C))
//	vit.encoder.layer.i.layernorm_before   [d]              blocks.i.norm1
//	vit.encoder.layer.i.attention.attention.{query,key,value}.weight [d, d]
//	                                                        blocks.i.attn.qkv.weight [3d, d] (rows q; k; v)
//	vit.encoder.layer.i.attention.output.dense              blocks.i.attn.proj
//	vit.encoder.layer.i.layernorm_after                     blocks.i.norm2
//	vit.encoder.layer.i.intermediate.dense [I, d]           blocks.i.mlp.fc1
//	vit.encoder.layer.i.output.dense       [d, I]           blocks.i.mlp.fc2
//	vit.layernorm                                           norm
//	classifier                             [L, d]           head
//
// Linear weights are out×in in both (y = x·Wᵀ + b). Pixels are [B, C, H, W]
// in transformers and [B, H, W, C] in prism. config.json's layer_norm_eps
// (1e-12 for Google's ViTs), hidden_act (exact "gelu" and the other
// functions models.Activation names), qkv_bias and non-square image and
// patch sizes ([height, width]) are carried over.
//
// Import reads a checkpoint directory and validates it against its
// config.json (missing, unexpected and misshapen tensors are errors naming
// each tensor and its expected shape); Export writes prism's ViT in the same
// layout; WriteModel and ReadModelInfo handle prism's own model directory
// (what `prism import hf-vit` writes and `prism finetune --pretrained`
// reads); SetVariables and Variables move the tensors in and out of a GoMLX
// context.
package hfvit
