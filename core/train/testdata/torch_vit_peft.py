"""Independent check with PyTorch's own operators (Debian's python3-torch).

Computes transformers' ViTForImageClassification (evaluation mode) from a
HuggingFace checkpoint directory and, with a PEFT LoRA adapter directory,
what PEFT computes for it on the ORIGINAL weights: every targeted Linear adds
scaling·lora_B(lora_A(x)), the Conv2d patch projection adds
scaling·conv_B(conv_A(x)) (conv_A with the projection's kernel and stride,
conv_B 1×1), DoRA rescales by lora_magnitude_vector/‖W + scaling·ΔW‖ per
output channel, and modules_to_save replace their modules.

usage: torch_vit_peft.py HF_DIR IMAGES_F32 N PEFT_DIR|- …
       → JSON [[N][labels] for each PEFT_DIR ("-": the checkpoint alone)]
IMAGES_F32 holds N images [H, W, C] (prism's layout), float32 little-endian.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": np.float32, "F64": np.float64}[v["dtype"]]
        a, b = v["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtype).reshape(v["shape"]).astype(np.float64))
    return out


def main():
    hf_dir, images_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = json.load(open(hf_dir + "/config.json"))
    W = load(hf_dir + "/model.safetensors")
    print(json.dumps([forward(cfg, W, peft_dir, images_path, n).tolist() for peft_dir in sys.argv[4:]]))


def forward(cfg, W, peft_dir, images_path, n):
    acfg, A = {"target_modules": [], "modules_to_save": []}, {}
    if peft_dir != "-":
        acfg = json.load(open(peft_dir + "/adapter_config.json"))
        A = load(peft_dir + "/adapter_model.safetensors")
    P = "base_model.model."

    def scaling(m):
        r = acfg["rank_pattern"].get(m, acfg["r"])
        alpha = acfg["alpha_pattern"].get(m, acfg["lora_alpha"])
        return alpha / (r ** 0.5 if acfg["use_rslora"] else r)

    def param(name):
        module = name.rsplit(".", 1)[0]
        if module in acfg["modules_to_save"]:
            return A[P + name]
        return W[name]

    def dora_scale(m, weight, delta):
        mag = A[P + m + ".lora_magnitude_vector"]
        norm = (weight + scaling(m) * delta).flatten(1).norm(dim=1)
        return mag.reshape(-1) / norm

    def linear(m, x):
        w, b = param(m + ".weight"), param(m + ".bias") if (m + ".bias") in W or m in acfg["modules_to_save"] else None
        y = F.linear(x, w, b)
        if m in acfg["target_modules"]:
            a, bb = A[P + m + ".lora_A.weight"], A[P + m + ".lora_B.weight"]
            lora = F.linear(F.linear(x, a), bb)
            if acfg["use_dora"]:
                s = dora_scale(m, w, bb @ a)
                base = F.linear(x, w)
                y = y + (s - 1) * base + s * lora * scaling(m)
            else:
                y = y + lora * scaling(m)
        return y

    d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // heads
    eps = cfg["layer_norm_eps"]
    ps = cfg["patch_size"] if isinstance(cfg["patch_size"], list) else [cfg["patch_size"]] * 2
    raw = np.fromfile(images_path, dtype=np.float32).astype(np.float64)
    size = cfg["image_size"] if isinstance(cfg["image_size"], list) else [cfg["image_size"]] * 2
    px = torch.from_numpy(raw.reshape(n, size[0], size[1], cfg["num_channels"])).permute(0, 3, 1, 2)

    m = "vit.embeddings.patch_embeddings.projection"
    k, kb = W[m + ".weight"], W[m + ".bias"]
    emb = F.conv2d(px, k, kb, stride=ps)
    if m in acfg["target_modules"]:
        a, bb = A[P + m + ".lora_A.weight"], A[P + m + ".lora_B.weight"]
        lora = F.conv2d(F.conv2d(px, a, stride=ps), bb)
        if acfg["use_dora"]:
            s = dora_scale(m, k, (bb.flatten(1) @ a.flatten(1)).reshape(k.shape)).reshape(1, -1, 1, 1)
            emb = emb + (s - 1) * F.conv2d(px, k, stride=ps) + s * lora * scaling(m)
        else:
            emb = emb + lora * scaling(m)
    h = emb.flatten(2).transpose(1, 2)
    h = torch.cat([W["vit.embeddings.cls_token"].expand(n, -1, -1), h], dim=1) + W["vit.embeddings.position_embeddings"]
    t = h.shape[1]
    for i in range(cfg["num_hidden_layers"]):
        L = "vit.encoder.layer.%d." % i
        x = F.layer_norm(h, (d,), W[L + "layernorm_before.weight"], W[L + "layernorm_before.bias"], eps)
        q, kk, v = (linear(L + "attention.attention." + p, x).view(n, t, heads, hd).transpose(1, 2) for p in ("query", "key", "value"))
        att = torch.softmax(q @ kk.transpose(-1, -2) * hd ** -0.5, dim=-1) @ v
        h = linear(L + "attention.output.dense", att.transpose(1, 2).reshape(n, t, d)) + h
        x = F.layer_norm(h, (d,), W[L + "layernorm_after.weight"], W[L + "layernorm_after.bias"], eps)
        h = linear(L + "output.dense", F.gelu(linear(L + "intermediate.dense", x))) + h
    h = F.layer_norm(h, (d,), W["vit.layernorm.weight"], W["vit.layernorm.bias"], eps)
    return linear("classifier", h[:, 0])


main()
