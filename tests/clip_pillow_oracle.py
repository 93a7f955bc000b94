#!/usr/bin/python3
"""Reference CLIP preprocessing with Pillow + NumPy, the oracle for tests/clip_pillow_test.cpp.

    clip_pillow_oracle.py generate OUTDIR [NAME...]
                                                 write the edge-case images (or only those NAMEs);
                                                 print one file name a line
    clip_pillow_oracle.py preprocess LIST OUTDIR [round|floor|transformers]
                                                 for line i of LIST (a path), write OUTDIR/<i>.f32
                                                 (float32, 3 x 224 x 224, CHW) or OUTDIR/<i>.err

Pipeline: PIL open -> ImageOps.exif_transpose -> convert('RGB') -> CLIP's torchvision transforms
rewritten with PIL and NumPy (torchvision is not installed): Resize(224, BICUBIC) with torchvision's
size rule, CenterCrop(224) with its round(), ToTensor (/255), Normalize.

"floor" is Hugging Face transformers' CLIPImageProcessor instead (transformers is not installed
either): get_resize_output_image_size (shortest_edge, default_to_square=False) gives the same size
as torchvision, resize() goes through PIL's resize(BICUBIC) the same way, but
image_transforms.center_crop takes top = (orig_height - crop_height) // 2 and
left = (orig_width - crop_width) // 2: rounded down where torchvision rounds half to even.
"transformers" runs transformers' CLIPImageProcessor itself (a Python that has it: .venv-oracle).

One deliberate difference from plain Pillow is reproduced here, because filesearch documents it:
16-bit greyscale (modes I;16*, I) keeps the high byte (v >> 8); Pillow's convert() would clip every
value above 255 to white.
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

SIZE = 224
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def to_rgb(im):
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return im.convert("RGB")


def clip_preprocess(im, rounding="round"):
    w, h = im.size
    if w <= h:
        nw, nh = SIZE, int(SIZE * h / w)
    else:
        nw, nh = int(SIZE * w / h), SIZE
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BICUBIC)
    if rounding == "floor":  # transformers.image_transforms.center_crop
        top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
    else:  # torchvision.transforms.functional.center_crop
        top, left = int(round((nh - SIZE) / 2.0)), int(round((nw - SIZE) / 2.0))
    crop = np.asarray(im.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32) / np.float32(255)
    chw = ((crop - MEAN) / STD).transpose(2, 0, 1)
    return np.ascontiguousarray(chw, dtype=np.float32)


def write_png16_rgb(path, arr):
    """PIL cannot write 16-bit RGB PNGs; write one by hand (colour type 2, depth 16)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def generate(out, only=()):
    rng = np.random.default_rng(7)

    def photo_like(w, h):
        # Smooth gradients plus noise: like a photo, unlike pure noise it has structure to resample.
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
        return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)

    rgb = photo_like(640, 427)
    files = {}
    files["tiny_1x1.png"] = Image.fromarray(np.array([[[200, 30, 90]]], np.uint8), "RGB")
    files["thin_1x4000.png"] = Image.fromarray(photo_like(1, 4000), "RGB")
    if "wide_2572x1740.png" in only:  # over max_side with an odd excess; only when asked for (slow)
        files["wide_2572x1740.png"] = (Image.fromarray(photo_like(2572, 1740), "RGB"), {"compress_level": 1})
    files["thin_700x3.png"] = Image.fromarray(photo_like(700, 3), "RGB")
    files["small_50x30.png"] = Image.fromarray(photo_like(50, 30), "RGB")
    files["grey_L.png"] = Image.fromarray(rgb, "RGB").convert("L")
    files["grey_alpha_LA.png"] = Image.fromarray(rgb, "RGB").convert("LA")
    rgba = np.dstack([rgb, rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)])
    files["alpha_RGBA.png"] = Image.fromarray(rgba, "RGBA")
    pal = Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=64)
    pal.info["transparency"] = 3
    files["palette_trns_P.png"] = pal
    files["palette_P.gif"] = Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=200)
    files["palette_trns.gif"] = (pal, {"transparency": 3})
    grey16 = (np.mgrid[0:300, 0:400][1] * 163 + rng.integers(0, 300, (300, 400))).astype(np.uint16)
    files["grey16_I16.png"] = Image.fromarray(grey16, "I;16")
    files["baseline.jpg"] = Image.fromarray(rgb, "RGB")
    files["progressive.jpg"] = (Image.fromarray(rgb, "RGB"), {"progressive": True, "quality": 90})
    files["cmyk_adobe.jpg"] = (Image.fromarray(rgb, "RGB").convert("CMYK"), {"quality": 95})
    files["grey.jpg"] = Image.fromarray(rgb, "RGB").convert("L")
    exif = Image.Exif()
    exif[0x0112] = 6
    files["exif_orient6.jpg"] = (Image.fromarray(rgb, "RGB"), {"exif": exif.tobytes()})
    files["lossless.webp"] = (Image.fromarray(rgb, "RGB"), {"lossless": True})
    files["lossy_alpha.webp"] = (Image.fromarray(rgba, "RGBA"), {"quality": 80})
    files["rgb.tiff"] = Image.fromarray(rgb, "RGB")
    files["rgb.bmp"] = Image.fromarray(rgb, "RGB")
    names = []
    for name, spec in files.items():
        if only and name not in only:
            continue
        im, kwargs = spec if isinstance(spec, tuple) else (spec, {})
        im.save(os.path.join(out, name), **kwargs)
        names.append(name)
    if not only:
        write_png16_rgb(os.path.join(out, "rgb16.png"),
                        (photo_like(320, 240).astype(np.uint16) * 257 + rng.integers(0, 256, (240, 320, 3))).astype(np.uint16))
    if not only:
        names.append("rgb16.png")
    for name in names:
        print(name)


def transformers_preprocess(im):
    """transformers' own CLIPImageProcessor (openai/clip-vit-base-patch32's preprocessor_config)."""
    from transformers import CLIPImageProcessor
    p = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE},
                           resample=Image.BICUBIC, image_mean=MEAN.tolist(), image_std=STD.tolist())
    return np.ascontiguousarray(p(images=im, return_tensors="np")["pixel_values"][0], dtype=np.float32)


def preprocess(list_path, out, rounding="round"):
    with open(list_path) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                rgb = to_rgb(im)
                (transformers_preprocess(rgb) if rounding == "transformers"
                 else clip_preprocess(rgb, rounding)).tofile(os.path.join(out, "%d.f32" % i))
        except Exception as e:  # the C++ side reports which file the oracle could not read
            with open(os.path.join(out, "%d.err" % i), "w") as f:
                f.write(repr(e))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "generate":
        generate(sys.argv[2], set(sys.argv[3:]))
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "preprocess":
        preprocess(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else "round")
    else:
        sys.exit(__doc__)
