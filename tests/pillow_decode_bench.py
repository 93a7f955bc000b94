#!/usr/bin/python3
"""Pillow's side of tests/image_decode_bench.cpp: open -> exif_transpose -> convert('RGB') ->
CLIP Resize/CenterCrop/ToTensor/Normalize (as in clip_pillow_oracle.py), fastest of 5 runs a file,
in CPU ms per image
(process time: the machine is shared). 'draft' is Pillow's own JPEG shrink-on-load (Image.draft), for comparison."""
import sys
import time

from PIL import Image, ImageOps

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from clip_pillow_oracle import clip_preprocess  # noqa: E402


def run(path, draft):
    t0 = time.process_time()
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", (448, 448))
        im = ImageOps.exif_transpose(im).convert("RGB")
        t1 = time.process_time()
        clip_preprocess(im)
    t2 = time.process_time()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


for draft in (False, True):
    dec = pre = 0.0
    for path in sys.argv[1:]:
        runs = sorted(run(path, draft) for _ in range(5))
        d, p = min(r[0] for r in runs), min(r[1] for r in runs)
        dec += d
        pre += p
    n = len(sys.argv) - 1
    name = "Pillow, draft to >=448" if draft else "Pillow, full decode"
    print("%-34s %12.1f %14.1f %10.1f" % (name, dec / n, pre / n, (dec + pre) / n))
