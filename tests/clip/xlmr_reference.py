#!/usr/bin/env python3
"""Oracle for filesearch's multilingual (XLM-RoBERTa) CLIP text tower, built from the real libraries.

Builds the models with the libraries that define them, fills their parameters from one seeded
generator with realistic scales, writes each in its published tensor names (taken from the library
models' own state_dict(), so a real checkpoint has the same names), and computes reference embeddings
with the libraries' own forward passes:
  openclip  open_clip.CustomTextCLIP, the class open_clip.create_model builds for
            xlm-roberta-base-ViT-B-32 (here from a local config: the encoder's config.json in the
            folder, no download): image tower visual.*, text tower text.transformer.* + text.proj.*.
            Reference: encode_image / encode_text(normalize=True) on ids padded to 77 with <pad>=1.
  hf        transformers.XLMRobertaModel (with its pooler, as save_pretrained writes it, plus the
            position_ids buffer older transformers versions saved) + proj.0 / proj.2 (OpenCLIP's MLP
            projection). Reference: attention_mask = ids != pad, mean pooling, projection.
  mclip     M-CLIP's MultilingualCLIP: transformer.<XLMRobertaModel> + LinearTransformation (with bias),
            MCLIPConfig extending XLMRobertaConfig. Reference: its mean pooling and linear map.
  openclip-outliers  the openclip model with trained-like outlier channels (add_outliers): a few
            channels 15-30x the rest in the text encoder's embedding LayerNorm and every write into
            its residual stream, and in the image tower's embeddings and residual writes.
Token ids are real XLM-R ids: every case of ../shared/multilingual/xlm-roberta/test-vectors.json
(29 languages and scripts, symbols, emoji, the empty text), truncated to 77 keeping </s> last.

Needs torch (Debian's python3-torch), transformers and open_clip_torch (tests/clip/requirements-xlmr.txt,
installed into .venv-oracle/ by scripts/py-oracle-deps). open_clip's image transforms import
torchvision, which has no wheel for Debian's torch; they are not used here, so a stub stands in.

Outputs in --out/<layout>/:
  model.safetensors + config.json / open_clip_config.json   the model folder filesearch loads
  text_ids.json, text_emb.f32        ids as filesearch gets them (openclip: padded to 77), n x E float32
  pixels.f32, image_emb.f32          (openclip) n x 3 x S x S inputs and n x E embeddings
  text.onnx                          (--onnx) ids [n, L] int64 -> embeddings, mask = ids != pad
Usage: xlmr_reference.py --out DIR [--size small|base] [--layouts openclip,hf,mclip,openclip-outliers]
                         [--vectors FILE]
                         [--images 2] [--onnx]
"""
import argparse
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_reference import write_safetensors  # noqa: E402  (the hand-written safetensors writer)


def stub_torchvision():
    """open_clip imports torchvision.transforms at import time; any attribute is a dummy class."""
    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        pass

    class Meta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Meta(name, (), {"__init__": lambda self, *a, **k: None})

    class Module(types.ModuleType):
        __path__ = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Meta(name, (), {"__init__": lambda self, *a, **k: None})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return Module(spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())


SIZES = {
    # Unit tests: two layers of width 64 (4 heads), the real 250,002-piece vocabulary so that real
    # ids fit; weights std 1/sqrt(width) so each block moves the residual stream visibly.
    "small": dict(hidden=64, layers=2, heads=4, mlp=256, embed=32, w_std=0.125,
                  v_width=64, v_layers=2, v_head_width=32, image_size=64, patch_size=16),
    # xlm-roberta-base-ViT-B-32's real sizes, std 0.02 as transformers initialises BERT models.
    "base": dict(hidden=768, layers=12, heads=12, mlp=3072, embed=512, w_std=0.02,
                 v_width=768, v_layers=12, v_head_width=64, image_size=224, patch_size=32),
}
VOCAB, MAX_POSITIONS, PAD = 250002, 514, 1
CONTEXT = 77  # OpenCLIP's tokenizer length


def encoder_config(c):
    return {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "hidden_size": c["hidden"],
            "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
            "intermediate_size": c["mlp"], "hidden_act": "gelu", "vocab_size": VOCAB,
            "max_position_embeddings": MAX_POSITIONS, "pad_token_id": PAD, "bos_token_id": 0,
            "eos_token_id": 2, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
            "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1}


def init_params(module, c, gen):
    """Seeded parameters in name order: LayerNorm gains near 1, small biases, embeddings std 0.1."""
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if ("LayerNorm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:  # weights: [out, in...]; visual.proj is [in, out] (x @ proj)
                fan_in = p.shape[0] if name == "visual.proj" else p[0].numel()
                std = c["w_std"] if fan_in == c["hidden"] else fan_in ** -0.5
                p.copy_(std * torch.randn(p.shape, generator=gen))


def read_texts(path):
    """(text, ids) of every case in test-vectors.json, ids truncated to CONTEXT keeping </s>."""
    with open(path) as f:
        vectors = json.load(f)
    out = []
    for group, cases in vectors.items():
        if not isinstance(cases, list) or "without_special" in group:
            continue
        for case in cases:
            ids = case["ids"]
            if len(ids) > CONTEXT:
                ids = ids[:CONTEXT - 1] + [2]
            out.append((case["text"], ids))
    return out


def pad_batch(ids, length=None):
    length = length or max(len(x) for x in ids)
    return torch.tensor([x + [PAD] * (length - len(x)) for x in ids], dtype=torch.int64)


def mean_pool(hidden, mask):  # OpenCLIP's MeanPooler and M-CLIP's pooling
    mask = mask.to(hidden.dtype)
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(-1, keepdim=True)


class HfTextTower(nn.Module):
    """XLMRobertaModel + mean pooling + OpenCLIP's projection MLP, in Hugging Face names."""

    def __init__(self, config, embed):
        super().__init__()
        from transformers import XLMRobertaModel
        self.encoder = XLMRobertaModel(config)  # with its pooler, as save_pretrained writes it
        hidden = (config.hidden_size + embed) // 2
        self.proj = nn.Sequential(nn.Linear(config.hidden_size, hidden, bias=False), nn.GELU(),
                                  nn.Linear(hidden, embed, bias=False))

    def forward(self, ids):
        mask = (ids != PAD).long()
        x = mean_pool(self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        x = self.proj(x)
        return x / x.norm(dim=-1, keepdim=True)

    def state(self):
        out = dict(self.encoder.state_dict())
        # transformers < 4.31 saved this buffer; real checkpoints of that age carry it.
        out["embeddings.position_ids"] = torch.arange(MAX_POSITIONS)[None]
        out.update({"proj." + k: v for k, v in self.proj.state_dict().items()})
        return out


class MClipTextTower(nn.Module):
    """M-CLIP's MultilingualCLIP: transformer (XLMRobertaModel) + LinearTransformation."""

    def __init__(self, config, embed):
        super().__init__()
        from transformers import XLMRobertaModel
        self.transformer = XLMRobertaModel(config)
        self.LinearTransformation = nn.Linear(config.hidden_size, embed)

    def forward(self, ids):
        mask = (ids != PAD).long()
        embs = mean_pool(self.transformer(input_ids=ids, attention_mask=mask)[0], mask)
        x = self.LinearTransformation(embs)
        return x / x.norm(dim=-1, keepdim=True)

    def state(self):
        return dict(self.state_dict())


class OpenClipTextTower(nn.Module):
    """The text half of an open_clip CustomTextCLIP, normalised (for ONNX export and timing)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model.encode_text(ids, normalize=True)


def add_outliers(model, gen, channels=3, scale=20.0):
    """Trained-like outliers in an open_clip CustomTextCLIP, as trained XLM-R and CLIP have them: in
    the post-LN encoder, `channels` channels of the embedding LayerNorm's gain and bias and of every
    attention-output and MLP-output row (the writes into the residual, which each block's LayerNorm
    then carries on) scaled 15-30x; in the pre-LN image tower, the same channels of the class and
    position embeddings and of every residual write (clip_reference.add_outliers)."""
    with torch.no_grad():
        enc = model.text.transformer
        width = enc.config.hidden_size
        picked = torch.randperm(width, generator=gen)[:channels]
        factor = scale * (0.75 + 0.75 * torch.rand(channels, generator=gen))
        enc.embeddings.LayerNorm.weight[picked] *= factor
        enc.embeddings.LayerNorm.bias[picked] *= factor
        for layer in enc.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight[picked, :] *= factor[:, None]
                dense.bias[picked] *= factor
        visual = model.visual
        width = visual.class_embedding.shape[0]
        picked = torch.randperm(width, generator=gen)[:channels]
        factor = scale * (0.75 + 0.75 * torch.rand(channels, generator=gen))
        visual.class_embedding[picked] *= factor
        visual.positional_embedding[:, picked] *= factor
        for block in visual.transformer.resblocks:
            for lin in (block.attn.out_proj, block.mlp.c_proj):
                lin.weight[picked, :] *= factor[:, None]
                lin.bias[picked] *= factor


def build(layout, c, folder, gen):
    """Builds the library model of `layout`, seeds it, writes its folder; returns the text tower."""
    from transformers import XLMRobertaConfig
    os.makedirs(folder, exist_ok=True)
    outliers = layout.endswith("-outliers")
    layout = layout.removesuffix("-outliers")
    enc = encoder_config(c)
    if layout == "openclip":
        stub_torchvision()
        from open_clip import CustomTextCLIP
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(enc, f, indent=1)
        vision_cfg = dict(image_size=c["image_size"], layers=c["v_layers"], width=c["v_width"],
                          patch_size=c["patch_size"], head_width=c["v_head_width"])
        text_cfg = dict(hf_model_name=folder, hf_tokenizer_name="xlm-roberta-base", hf_model_pretrained=False,
                        hf_proj_type="mlp", hf_pooler_type="mean_pooler")
        model = CustomTextCLIP(embed_dim=c["embed"], vision_cfg=vision_cfg, text_cfg=text_cfg).eval()
        init_params(model, c, gen)
        if outliers:
            add_outliers(model, gen)
        cfg = {"model_cfg": {"embed_dim": c["embed"], "vision_cfg": vision_cfg,
                             "text_cfg": dict(text_cfg, hf_model_name="xlm-roberta-base")},
               "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                  "std": [0.26862954, 0.26130258, 0.27577711]}}
        del cfg["model_cfg"]["text_cfg"]["hf_model_pretrained"]
        with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        write_safetensors(os.path.join(folder, "model.safetensors"), dict(model.state_dict()), "f32")
        return model, OpenClipTextTower(model)
    config = XLMRobertaConfig(**{k: v for k, v in enc.items() if k not in ("architectures", "model_type")})
    if layout == "hf":
        tower = HfTextTower(config, c["embed"]).eval()
        cfg = dict(enc, projection_dim=c["embed"], projection_type="mlp", _name_or_path="test/xlmr-hf")
    else:
        tower = MClipTextTower(config, c["embed"]).eval()
        cfg = dict(enc, architectures=["MultilingualCLIP"], model_type="M-CLIP", modelBase="xlm-roberta-base",
                   transformerDimensions=c["hidden"], numDims=c["embed"], _name_or_path="test/xlmr-mclip")
    init_params(tower, c, gen)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(folder, "model.safetensors"), tower.state(), "f32")
    return None, tower


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="small", choices=SIZES)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layouts", default="openclip,hf,mclip,openclip-outliers")
    ap.add_argument("--vectors", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "../../../shared/multilingual/xlm-roberta/test-vectors.json"))
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--onnx", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = SIZES[args.size]
    texts = read_texts(args.vectors)
    for layout in args.layouts.split(","):
        folder = os.path.join(args.out, layout)
        gen = torch.Generator().manual_seed(args.seed)
        model, tower = build(layout, c, folder, gen)
        ids = [x for _, x in texts]
        with torch.no_grad():
            if layout.startswith("openclip"):  # exactly what OpenCLIP's tokenizer hands the model
                ids = [x + [PAD] * (CONTEXT - len(x)) for x in ids]
            if layout.startswith("openclip") and args.images:
                pixels = torch.randn((args.images, 3, c["image_size"], c["image_size"]), generator=gen)
                pixels.numpy().astype("<f4").tofile(os.path.join(folder, "pixels.f32"))
                model.encode_image(pixels, normalize=True).numpy().astype("<f4").tofile(
                    os.path.join(folder, "image_emb.f32"))
            # One padded batch: the reference sees padding and masks it, filesearch drops it.
            tower(pad_batch(ids)).numpy().astype("<f4").tofile(os.path.join(folder, "text_emb.f32"))
            with open(os.path.join(folder, "text_ids.json"), "w") as f:
                json.dump(ids, f)
            with open(os.path.join(folder, "texts.json"), "w") as f:
                json.dump([t for t, _ in texts], f, ensure_ascii=False)
            if args.onnx:
                torch.onnx.export(tower, pad_batch(ids[:2]), os.path.join(folder, "text.onnx"),
                                  input_names=["ids"], output_names=["embeddings"],
                                  dynamic_axes={"ids": {0: "n", 1: "length"}, "embeddings": {0: "n"}},
                                  opset_version=14)


if __name__ == "__main__":
    main()
