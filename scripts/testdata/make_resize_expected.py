#!/usr/bin/env python3
"""Generates tests/testdata/resize/: what PIL's Image.resize (torchvision's Resize and
RandomResizedCrop on PIL images) gives for fixed images, as uint8 HWC.
    /usr/bin/python3 scripts/testdata/make_resize_expected.py tests/testdata/resize"""
import json, os, sys
import numpy as np
from PIL import Image
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode as IM

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(2)
y, x = np.mgrid[0:23, 0:37]
rgb = np.clip(np.stack([x * 7, y * 11, (x + y) * 5], -1) + rng.randint(0, 60, (23, 37, 3)), 0, 255).astype(np.uint8)
rgb.tofile(f"{out}/input.rgb")
big = rng.randint(0, 256, (150, 200, 3)).astype(np.uint8)
big.tofile(f"{out}/big.rgb")
cases = []
def case(name, src, src_name, fn, **params):
    res = np.asarray(fn(Image.fromarray(src)))
    res.tofile(f"{out}/{name}.rgb")
    cases.append({"name": name, "input": src_name, "input_shape": list(src.shape), "output_shape": list(res.shape), **params})
for interp, mode in [("bilinear", IM.BILINEAR), ("bicubic", IM.BICUBIC)]:
    for (h, w) in [(10, 16), (61, 50), (11, 37), (23, 90), (7, 5)]:
        case(f"{interp}_{h}x{w}", rgb, "input", lambda im, h=h, w=w, mode=mode: F.resize(im, [h, w], mode),
             interpolation=interp, height=h, width=w)
    case(f"{interp}_short_side_16", rgb, "input", lambda im, mode=mode: F.resize(im, 16, mode), interpolation=interp, size=16)
    case(f"{interp}_crop_64", big, "big", lambda im, mode=mode: F.resized_crop(im, 31, 47, 101, 130, [64, 64], mode),
         interpolation=interp, top=31, left=47, height=101, width=130, size=64)
json.dump({"cases": cases}, open(f"{out}/manifest.json", "w"), indent=1)
