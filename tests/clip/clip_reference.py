#!/usr/bin/python3
"""Independent oracle for filesearch's CLIP forward pass.

Generates seeded CLIP weights with realistic scales, writes them as a Hugging Face style model folder
(config.json + model.safetensors, safetensors written by hand below), and computes reference
embeddings with a PyTorch model assembled from torch's own nn.MultiheadAttention and nn.LayerNorm,
following the structure of OpenAI's published CLIP definition (pre-LN residual blocks, QuickGELU,
class token + ln_pre/ln_post for images, causal mask + features at the argmax token for texts).

Outputs in --out:
  config.json, model.safetensors      the model (layout hf or openai, dtype f32/f16/bf16)
  pixels.f32                          n_images x 3 x S x S float32 (little-endian, raw)
  image_emb.f32                       n_images x embed_dim, L2-normalised
  text_ids.json                       list of token-id lists (start and end tokens included)
  text_emb.f32                        n_texts x embed_dim, L2-normalised
  vision.onnx                         (--onnx) the image tower: pixels -> normalised embeddings
Usage: clip_reference.py --out DIR [--size small|b32] [--seed 1] [--dtype f32] [--layout hf]
                         [--images 2] [--texts 3] [--onnx] [--no-reference] [--bench N]
  text.onnx                           (--onnx) the text tower: ids [n, L] int64 -> embeddings
  --bench N                           writes nothing; prints PyTorch's median
                                      {"image_b1_ms", "text_7_ms", "text_77_ms"} over N runs
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
from torch import nn

SIZES = {
    # Tiny shapes for unit tests: two layers, width 64, head size 32 (vision) / 16 (text).
    # Weights std 1/sqrt(width), so that each block changes the residual stream as much as std 0.02
    # does at width 768-3072: errors in attention or the MLP show in the embeddings.
    "small": dict(embed_dim=32, image_size=64, patch_size=16, v_width=64, v_layers=2, v_heads=2,
                  v_mlp=256, context=77, vocab=1000, t_width=64, t_layers=2, t_heads=4, t_mlp=256,
                  w_std=0.125),
    # Tiny towers with CLIP's real vocabulary, so the real tokenizer's ids fit (engine tests).
    "small-vocab": dict(embed_dim=32, image_size=64, patch_size=16, v_width=64, v_layers=2, v_heads=2,
                        v_mlp=256, context=77, vocab=49408, t_width=64, t_layers=2, t_heads=4, t_mlp=256,
                        w_std=0.125),
    # The real openai/clip-vit-base-patch32 shapes.
    "b32": dict(embed_dim=512, image_size=224, patch_size=32, v_width=768, v_layers=12,
                v_heads=12, v_mlp=3072, context=77, vocab=49408, t_width=512, t_layers=12,
                t_heads=8, t_mlp=2048, w_std=0.02),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp, causal_len=0, act="quick_gelu"):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, mlp))
        self.mlp.add_module("gelu", QuickGELU() if act == "quick_gelu" else nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(mlp, width))
        self.ln_2 = nn.LayerNorm(width)
        self.causal = causal_len > 0

    def forward(self, x):  # x: [T, N, W] (sequence first, as nn.MultiheadAttention expects)
        mask = None
        if self.causal:
            t = x.shape[0]
            mask = torch.full((t, t), float("-inf")).triu_(1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class VisionTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["v_width"]
        grid = c["image_size"] // c["patch_size"]
        self.conv1 = nn.Conv2d(3, w, c["patch_size"], c["patch_size"], bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(w, c["v_heads"], c["v_mlp"], act=c.get("act", "quick_gelu"))
             for _ in range(c["v_layers"])])
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, c["embed_dim"]))

    def forward(self, pixels):  # [N, 3, S, S]
        x = self.conv1(pixels)  # [N, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [N, g*g, W]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding  # [N, T, W]
        x = self.ln_pre(x).permute(1, 0, 2)  # [T, N, W]
        for block in self.blocks:
            x = block(x)
        x = self.ln_post(x[0])  # class token: [N, W]
        x = x @ self.proj  # [N, E]
        return x / x.norm(dim=-1, keepdim=True)


class TextTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["t_width"]
        self.token_embedding = nn.Embedding(c["vocab"], w)
        self.positional_embedding = nn.Parameter(torch.zeros(c["context"], w))
        self.blocks = nn.ModuleList([ResidualAttentionBlock(w, c["t_heads"], c["t_mlp"], c["context"],
                                                           act=c.get("act", "quick_gelu"))
                                     for _ in range(c["t_layers"])])
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.zeros(w, c["embed_dim"]))

    def forward(self, ids):  # [N, L] int64, padded to a common length
        t = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:t]  # [N, L, W]
        x = x.permute(1, 0, 2)  # [L, N, W]
        for block in self.blocks:
            x = block(x)
        x = self.ln_final(x.permute(1, 0, 2))  # [N, L, W]
        x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection  # [N, E]
        return x / x.norm(dim=-1, keepdim=True)


def init_weights(vision, text, c, gen):
    def normal(p, std, mean=0.0):
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) * std + mean)

    for tower in (vision, text):
        for name, p in tower.named_parameters():
            if "ln" in name and name.endswith("weight"):
                normal(p, 0.1, 1.0)  # layer-norm gains near 1
            elif name.endswith("bias"):
                normal(p, 0.02)
            else:
                normal(p, c["w_std"])
    normal(vision.class_embedding, c["v_width"] ** -0.5)
    normal(vision.positional_embedding, c["v_width"] ** -0.5)
    normal(vision.proj, c["v_width"] ** -0.5)
    normal(text.positional_embedding, 0.01)
    normal(text.text_projection, c["t_width"] ** -0.5)


def hf_state(vision, text):
    """Maps the reference modules to Hugging Face CLIPModel tensor names."""
    out = {}

    def blocks(prefix, tower):
        for i, b in enumerate(tower.blocks):
            p = f"{prefix}.encoder.layers.{i}."
            q, k, v = b.attn.in_proj_weight.chunk(3)
            qb, kb, vb = b.attn.in_proj_bias.chunk(3)
            out[p + "self_attn.q_proj.weight"], out[p + "self_attn.q_proj.bias"] = q, qb
            out[p + "self_attn.k_proj.weight"], out[p + "self_attn.k_proj.bias"] = k, kb
            out[p + "self_attn.v_proj.weight"], out[p + "self_attn.v_proj.bias"] = v, vb
            out[p + "self_attn.out_proj.weight"] = b.attn.out_proj.weight
            out[p + "self_attn.out_proj.bias"] = b.attn.out_proj.bias
            out[p + "layer_norm1.weight"], out[p + "layer_norm1.bias"] = b.ln_1.weight, b.ln_1.bias
            out[p + "layer_norm2.weight"], out[p + "layer_norm2.bias"] = b.ln_2.weight, b.ln_2.bias
            out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = b.mlp.c_fc.weight, b.mlp.c_fc.bias
            out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = b.mlp.c_proj.weight, b.mlp.c_proj.bias

    v = "vision_model"
    out[f"{v}.embeddings.class_embedding"] = vision.class_embedding
    out[f"{v}.embeddings.patch_embedding.weight"] = vision.conv1.weight
    out[f"{v}.embeddings.position_embedding.weight"] = vision.positional_embedding
    out[f"{v}.embeddings.position_ids"] = torch.arange(vision.positional_embedding.shape[0])[None]
    out[f"{v}.pre_layrnorm.weight"], out[f"{v}.pre_layrnorm.bias"] = vision.ln_pre.weight, vision.ln_pre.bias
    blocks(v, vision)
    out[f"{v}.post_layernorm.weight"] = vision.ln_post.weight
    out[f"{v}.post_layernorm.bias"] = vision.ln_post.bias
    out["visual_projection.weight"] = vision.proj.t()
    t = "text_model"
    out[f"{t}.embeddings.token_embedding.weight"] = text.token_embedding.weight
    out[f"{t}.embeddings.position_embedding.weight"] = text.positional_embedding
    out[f"{t}.embeddings.position_ids"] = torch.arange(text.positional_embedding.shape[0])[None]
    blocks(t, text)
    out[f"{t}.final_layer_norm.weight"] = text.ln_final.weight
    out[f"{t}.final_layer_norm.bias"] = text.ln_final.bias
    out["text_projection.weight"] = text.text_projection.t()
    out["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    return out


def openai_state(vision, text):
    """Maps the reference modules to OpenAI / OpenCLIP state-dict names."""
    out = {}

    def blocks(prefix, tower):
        for i, b in enumerate(tower.blocks):
            p = f"{prefix}transformer.resblocks.{i}."
            out[p + "attn.in_proj_weight"], out[p + "attn.in_proj_bias"] = b.attn.in_proj_weight, b.attn.in_proj_bias
            out[p + "attn.out_proj.weight"], out[p + "attn.out_proj.bias"] = b.attn.out_proj.weight, b.attn.out_proj.bias
            out[p + "ln_1.weight"], out[p + "ln_1.bias"] = b.ln_1.weight, b.ln_1.bias
            out[p + "ln_2.weight"], out[p + "ln_2.bias"] = b.ln_2.weight, b.ln_2.bias
            out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = b.mlp.c_fc.weight, b.mlp.c_fc.bias
            out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = b.mlp.c_proj.weight, b.mlp.c_proj.bias

    out["visual.class_embedding"] = vision.class_embedding
    out["visual.positional_embedding"] = vision.positional_embedding
    out["visual.conv1.weight"] = vision.conv1.weight
    out["visual.ln_pre.weight"], out["visual.ln_pre.bias"] = vision.ln_pre.weight, vision.ln_pre.bias
    blocks("visual.", vision)
    out["visual.ln_post.weight"], out["visual.ln_post.bias"] = vision.ln_post.weight, vision.ln_post.bias
    out["visual.proj"] = vision.proj
    out["token_embedding.weight"] = text.token_embedding.weight
    out["positional_embedding"] = text.positional_embedding
    blocks("", text)
    out["ln_final.weight"], out["ln_final.bias"] = text.ln_final.weight, text.ln_final.bias
    out["text_projection"] = text.text_projection
    out["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    return out


def write_safetensors(path, tensors, dtype):
    """safetensors: u64 little-endian header size, JSON header, then the raw little-endian data."""
    names = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.int64:
            code, data = "I64", t.numpy().astype("<i8").tobytes()
        elif dtype == "bf16":
            code = "BF16"
            bits = t.float().numpy().astype("<f4").view("<u4")
            data = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()  # round to nearest even
        else:
            code, data = names[dtype], t.numpy().astype("<f4" if dtype == "f32" else "<f2").tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def hf_config(c, name):
    return {
        "_name_or_path": name, "architectures": ["CLIPModel"], "model_type": "clip",
        "projection_dim": c["embed_dim"], "logit_scale_init_value": 2.6592,
        "text_config": {"hidden_size": c["t_width"], "intermediate_size": c["t_mlp"],
                        "num_attention_heads": c["t_heads"], "num_hidden_layers": c["t_layers"],
                        "max_position_embeddings": c["context"], "vocab_size": c["vocab"],
                        "hidden_act": c.get("act", "quick_gelu"), "layer_norm_eps": 1e-5,
                        "projection_dim": c["embed_dim"]},
        "vision_config": {"hidden_size": c["v_width"], "intermediate_size": c["v_mlp"],
                          "num_attention_heads": c["v_heads"], "num_hidden_layers": c["v_layers"],
                          "image_size": c["image_size"], "patch_size": c["patch_size"],
                          "hidden_act": c.get("act", "quick_gelu"), "layer_norm_eps": 1e-5,
                          "projection_dim": c["embed_dim"]},
    }


def add_outliers(vision, text, gen, channels=3, scale=20.0):
    """Makes the weights look trained: a few residual-stream channels 15-30x larger than the rest,
    as trained CLIP (and XLM-R) towers have them. Each tower picks `channels` channels; the
    embeddings and every block's writes into the residual stream (attention out_proj and MLP c_proj
    rows) are scaled there, so the LayerNorm outputs that feed qkv and c_fc carry the outliers
    too, which is what per-row int8 activation scales suffer from."""
    with torch.no_grad():
        for tower, embeds in ((vision, (vision.class_embedding, vision.positional_embedding)),
                              (text, (text.token_embedding.weight, text.positional_embedding))):
            width = tower.ln_final.weight.shape[0] if tower is text else tower.ln_post.weight.shape[0]
            picked = torch.randperm(width, generator=gen)[:channels]
            factor = scale * (0.75 + 0.75 * torch.rand(channels, generator=gen))  # 15x .. 30x
            for e in embeds:
                e[..., picked] *= factor
            for b in tower.blocks:
                for lin_w, lin_b in ((b.attn.out_proj.weight, b.attn.out_proj.bias),
                                     (b.mlp.c_proj.weight, b.mlp.c_proj.bias)):
                    lin_w[picked, :] *= factor[:, None]
                    lin_b[picked] *= factor


def round_to_dtype(modules, dtype):
    """The reference must see the same (rounded) weights as the file holds."""
    if dtype == "f32":
        return
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.copy_(p.to(torch.float16 if dtype == "f16" else torch.bfloat16).float())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--size", default="small", choices=SIZES)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--layout", default="hf", choices=["hf", "openai"])
    ap.add_argument("--variants", default="",
                    help="comma list of LAYOUT-DTYPE[-gelu] (hf-f32,openai-f32,hf-f16,hf-f32-gelu,...): "
                         "one sub-folder each, "
                         "same seed, one Python start-up; --onnx applies to the first")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--texts", type=int, default=3)
    ap.add_argument("--onnx", action="store_true")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="also time the reference, N iterations")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.bench:  # time only: the same model, nothing written
        c = SIZES[args.size]
        vision, text = VisionTower(c).eval(), TextTower(c).eval()
        init_weights(vision, text, c, torch.Generator().manual_seed(args.seed))
        with torch.no_grad():
            print(json.dumps(bench(vision, text, c, args.bench)))
        return
    if not args.variants:
        generate(args, args.out, args.layout, args.dtype, args.onnx)
        return
    for i, variant in enumerate(args.variants.split(",")):
        # optional parts: "gelu" (exact GELU MLPs), "outliers" (trained-like outlier channels),
        # "sharp" (q and k weights 8x: attention near argmax, so rounding moves which token wins)
        layout, dtype, *extra = variant.split("-")
        generate(args, os.path.join(args.out, variant), layout, dtype, args.onnx and i == 0,
                 "gelu" if "gelu" in extra else "quick_gelu", "outliers" in extra, "sharp" in extra)


def generate(args, out, layout, dtype, onnx, act="quick_gelu", outliers=False, sharp=False):
    c = dict(SIZES[args.size], act=act)
    gen = torch.Generator().manual_seed(args.seed)
    vision, text = VisionTower(c), TextTower(c)
    init_weights(vision, text, c, gen)
    if outliers:
        add_outliers(vision, text, gen)
    if sharp:
        with torch.no_grad():
            for tower in (vision, text):
                for b in tower.blocks:
                    w = b.attn.in_proj_weight.shape[1]
                    b.attn.in_proj_weight[:2 * w] *= 8.0
    round_to_dtype((vision, text), dtype)
    vision.eval()
    text.eval()
    os.makedirs(out, exist_ok=True)

    state = hf_state(vision, text) if layout == "hf" else openai_state(vision, text)
    write_safetensors(os.path.join(out, "model.safetensors"), state, dtype)
    if layout == "hf":
        name = "openai/clip-vit-base-patch32" if args.size == "b32" else "test/clip-small"
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(hf_config(c, name), f, indent=1)
    elif args.size != "b32":  # OpenCLIP's config; a b32 OpenAI checkpoint is inferred from shapes
        cfg = {"model_cfg": {"embed_dim": c["embed_dim"], "quick_gelu": c["act"] == "quick_gelu",
                             "vision_cfg": {"image_size": c["image_size"], "layers": c["v_layers"],
                                            "width": c["v_width"], "patch_size": c["patch_size"],
                                            "head_width": c["v_width"] // c["v_heads"],
                                            "mlp_ratio": c["v_mlp"] / c["v_width"]},
                             "text_cfg": {"context_length": c["context"], "vocab_size": c["vocab"],
                                          "width": c["t_width"], "heads": c["t_heads"],
                                          "layers": c["t_layers"]}}}
        with open(os.path.join(out, "open_clip_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)

    pixels = torch.randn((args.images, 3, c["image_size"], c["image_size"]), generator=gen)
    pixels.numpy().astype("<f4").tofile(os.path.join(out, "pixels.f32"))
    eot, sot = c["vocab"] - 1, c["vocab"] - 2
    ids = []
    for i in range(args.texts):
        # Lengths 1, 5, 20, ... words and one full 77-token text.
        n = [5, 1, 75, 20, 12][i % 5]
        words = torch.randint(1, c["vocab"] - 2, (n,), generator=gen).tolist()
        ids.append([sot] + words + [eot])
    with open(os.path.join(out, "text_ids.json"), "w") as f:
        json.dump(ids, f)
    if args.no_reference:
        return
    with torch.no_grad():
        if args.images:
            vision(pixels).numpy().astype("<f4").tofile(os.path.join(out, "image_emb.f32"))
        if args.texts:
            length = max(len(x) for x in ids)
            padded = torch.tensor([x + [0] * (length - len(x)) for x in ids], dtype=torch.int64)
            text(padded).numpy().astype("<f4").tofile(os.path.join(out, "text_emb.f32"))
        if onnx:
            torch.onnx.export(vision, pixels[:1], os.path.join(out, "vision.onnx"),
                              input_names=["pixels"], output_names=["embeddings"],
                              dynamic_axes={"pixels": {0: "n"}, "embeddings": {0: "n"}},
                              opset_version=14)
            sample = torch.tensor([ids[0]], dtype=torch.int64)
            torch.onnx.export(text, sample, os.path.join(out, "text.onnx"),
                              input_names=["ids"], output_names=["embeddings"],
                              dynamic_axes={"ids": {0: "n", 1: "length"}, "embeddings": {0: "n"}},
                              opset_version=14)


def bench(vision, text, c, iters):
    """Median wall times of the reference model on this CPU (2 threads), for the benchmark table."""
    import time

    def median(fn):  # median wall ms and mean process CPU ms per run
        fn()
        times = []
        cpu = time.process_time()
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        return sorted(times)[len(times) // 2], (time.process_time() - cpu) * 1e3 / iters

    s = c["image_size"]
    out = {"threads": torch.get_num_threads()}
    out["image_b1_ms"], out["image_b1_cpu_ms"] = median(lambda: vision(torch.randn(1, 3, s, s)))
    for length in (7, 77):
        ids = torch.randint(1, c["vocab"] - 2, (1, length))
        ids[0, -1] = c["vocab"] - 1
        out[f"text_{length}_ms"], out[f"text_{length}_cpu_ms"] = median(lambda: text(ids))
    return out


if __name__ == "__main__":
    main()
