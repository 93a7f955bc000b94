#!/usr/bin/python3
"""Pixel-by-pixel comparison of image::DecodeFile (max_side off) with Pillow's
open -> ImageOps.exif_transpose -> convert('RGB') on every file under a folder.

    tests/pillow_decode_compare.py build/tests/image_decode_dump ../shared/corpus/formats

Prints counts (identical, within one level on >= 99.9% of values, different, different shape, read
by only one side) and one line per file that is not identical. 16-bit greyscale is compared with
its high byte, filesearch's documented choice (Pillow's convert() clips it).
"""
import collections
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from PIL import Image, ImageOps

warnings.simplefilter("ignore")
Image.MAX_IMAGE_PIXELS = 100_000_000  # same limit as DecodeOptions::max_pixels


def pillow_rgb(path):
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            grey = (np.asarray(im).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
            return np.asarray(Image.fromarray(grey, "L").convert("RGB"))
        return np.asarray(im.convert("RGB"))


def main(dump_tool, root):
    skip = ("SHA256SUMS", "LICENSE", "README", "COPYRIGHT")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if not f.startswith(skip) and not f.endswith((".txt", ".md")))
    stats = collections.Counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([dump_tool, out], input="\n".join(files) + "\n", text=True, check=True)
        for i, path in enumerate(files):
            rel = os.path.relpath(path, root)
            ours_path = os.path.join(out, "%d.rgb" % i)
            try:
                theirs = pillow_rgb(path)
            except Exception:
                theirs = None
            if not os.path.exists(ours_path):
                stats["neither" if theirs is None else "pillow_only"] += 1
                if theirs is not None:
                    with open(os.path.join(out, "%d.err" % i)) as f:
                        print("pillow_only", rel, f.read().split(":", 1)[0])
                continue
            if theirs is None:
                stats["ours_only"] += 1
                continue
            with open(ours_path, "rb") as f:
                w, h = map(int, f.readline().split())
                ours = np.frombuffer(f.read(), np.uint8).reshape(h, w, 3)
            if ours.shape != theirs.shape:
                stats["shape_differs"] += 1
                print("shape", rel, ours.shape, theirs.shape)
                continue
            d = np.abs(ours.astype(int) - theirs.astype(int))
            if d.max() == 0:
                stats["identical"] += 1
            elif (d <= 1).mean() >= 0.999:
                stats["within_one_level"] += 1
                print("near", rel, "max", d.max())
            else:
                stats["differs"] += 1
                print("diff", rel, "max", d.max(), "mean %.3f" % d.mean())
    print(dict(stats), "of", len(files), "files")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
