#!/usr/bin/env python3
"""Generates tests/testdata/images/: small JPEG and PNG files and what PIL's
Image.open(f).convert("RGB") decodes them to (torchvision's ImageFolder loader), as uint8 HWC.
    /usr/bin/python3 scripts/testdata/make_image_expected.py tests/testdata/images"""
import json, os, sys
import numpy as np
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(1)
# A smooth gradient plus noise: realistic for a codec, non-trivial for the upsampler.
y, x = np.mgrid[0:23, 0:37]
rgb = np.stack([x * 7, y * 11, (x + y) * 5], -1) + rng.randint(0, 40, (23, 37, 3))
rgb = np.clip(rgb, 0, 255).astype(np.uint8)
cases = []
def save(name, img, **kw):
    path = f"{out}/{name}"
    img.save(path, **kw)
    dec = np.asarray(Image.open(path).convert("RGB"))
    dec.tofile(f"{path}.rgb")
    cases.append({"file": name, "height": dec.shape[0], "width": dec.shape[1]})
save("rgb420.jpg", Image.fromarray(rgb), quality=90)                      # 4:2:0
save("rgb444.jpg", Image.fromarray(rgb), quality=95, subsampling=0)       # 4:4:4
save("gray.jpg", Image.fromarray(rgb[:, :, 0]), quality=90)
save("rgb.png", Image.fromarray(rgb))
rgba = np.concatenate([rgb, rng.randint(0, 256, (23, 37, 1)).astype(np.uint8)], -1)
save("rgba.png", Image.fromarray(rgba, "RGBA"))
save("gray.png", Image.fromarray(rgb[:, :, 1]))
save("palette.png", Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16))
# A larger 4:2:0 JPEG (several MCU rows) for window decoding.
yb, xb = np.mgrid[0:150, 0:200]
big = np.clip(np.stack([xb, yb * 1.5, (xb + yb) * 0.6], -1) + rng.randint(0, 50, (150, 200, 3)), 0, 255).astype(np.uint8)
save("big420.jpg", Image.fromarray(big), quality=85)
json.dump({"cases": cases}, open(f"{out}/manifest.json", "w"), indent=1)
