#!/usr/bin/env python3
"""Generates tests/testdata/augment/: Pillow's output for det's ColorJitter ops
(torchvision.transforms.functional on PIL images) and timm's RandAugment ops on fixed images.
Run with Debian's python3 (PIL 9.4, numpy, torchvision 0.14; timm is not needed):
    /usr/bin/python3 scripts/testdata/make_augment_expected.py tests/testdata/augment
Writes <input>.bin (uint8 HWC) for each input image, expected.bin (every case's uint8 HWC output,
concatenated) and manifest.json (per case: op, argument, inputs and offset into expected.bin).

timm's op functions (timm/data/auto_augment.py) are re-stated below from their definition: each
is one Pillow call, so the expected outputs are Pillow's."""
import json, math, os, sys
import numpy as np
from PIL import Image, ImageEnhance, ImageOps
import torchvision.transforms.functional as F

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(20240611)

H, W = 23, 37
inputs = {}
inputs["rand"] = rng.randint(0, 256, (H, W, 3), dtype=np.uint8)
# Values that hit the ties and extremes of the HSV and blend arithmetic.
edgy = rng.choice(np.array([0, 1, 2, 63, 64, 127, 128, 129, 191, 253, 254, 255], dtype=np.uint8), (H, W, 3))
edgy[:3] = edgy[:3, :, :1]  # gray rows (r == g == b)
edgy[3:6, :, 1] = edgy[3:6, :, 0]  # r == g rows
inputs["edgy"] = edgy
# A low-contrast image: autocontrast and equalize have room to work.
inputs["dim"] = (rng.randint(0, 60, (H, W, 3)) + np.array([40, 90, 120])).astype(np.uint8)
for k, v in inputs.items():
    v.tofile(f"{out}/{k}.bin")

FILL = (124, 116, 104)
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
cases = []
blob = bytearray()


def case(op, input_name, fn, arg, **extra):
    img = Image.fromarray(inputs[input_name])
    res = np.asarray(fn(img), dtype=np.uint8)
    assert res.shape == inputs[input_name].shape, (op, res.shape)
    cases.append({"op": op, "input": input_name, "arg": arg, "offset": len(blob), **extra})
    blob.extend(res.tobytes())


# ---- torchvision ColorJitter ops --------------------------------------------------------------
JITTER = {  # (rand image factors, edgy image factors)
    "adjust_brightness": ([0.0, 0.37, 1.4, 2.3], [0.6, 1.4]),
    "adjust_contrast": ([0.0, 0.81, 1.9], [0.5, 1.3]),
    "adjust_saturation": ([0.0, 0.93, 2.5], [0.6, 1.4]),
    "adjust_hue": ([-0.5, -0.1, -0.001, 0.07, 0.25, 0.5], [-0.5, -0.03, 0.0, 0.07, 0.25, 0.5]),
}
for fn_name, (rand_factors, edgy_factors) in JITTER.items():
    for name, factors in (("rand", rand_factors), ("edgy", edgy_factors)):
        for f in factors:
            case(fn_name, name, lambda im, f=f, fn=getattr(F, fn_name): fn(im, f), f)
# float32 factors as ColorJitter draws them
for f in [np.float32(0.7312), np.float32(1.2718)]:
    case("adjust_brightness", "rand", lambda im, f=f: F.adjust_brightness(im, float(f)), float(f))

# ---- timm ops (restated from timm/data/auto_augment.py) ----------------------------------------
def affine(im, m, resample):
    return im.transform(im.size, Image.AFFINE, m, resample=RESAMPLE[resample], fillcolor=FILL)

OPS = {
    "AutoContrast": lambda im, a, r: ImageOps.autocontrast(im),
    "Equalize": lambda im, a, r: ImageOps.equalize(im),
    "Invert": lambda im, a, r: ImageOps.invert(im),
    "Rotate": lambda im, a, r: im.rotate(a, resample=RESAMPLE[r], fillcolor=FILL),
    "PosterizeIncreasing": lambda im, a, r: im if a >= 8 else ImageOps.posterize(im, a),
    "SolarizeIncreasing": lambda im, a, r: ImageOps.solarize(im, a),
    "SolarizeAdd": lambda im, a, r: im.point([min(255, i + a) if i < 128 else i for i in range(256)] * 3),
    "ColorIncreasing": lambda im, a, r: ImageEnhance.Color(im).enhance(a),
    "ContrastIncreasing": lambda im, a, r: ImageEnhance.Contrast(im).enhance(a),
    "BrightnessIncreasing": lambda im, a, r: ImageEnhance.Brightness(im).enhance(a),
    "SharpnessIncreasing": lambda im, a, r: ImageEnhance.Sharpness(im).enhance(a),
    "ShearX": lambda im, a, r: affine(im, (1, a, 0, 0, 1, 0), r),
    "ShearY": lambda im, a, r: affine(im, (1, 0, 0, a, 1, 0), r),
    "TranslateXRel": lambda im, a, r: affine(im, (1, 0, a * im.size[0], 0, 1, 0), r),
    "TranslateYRel": lambda im, a, r: affine(im, (1, 0, 0, 0, 1, a * im.size[1]), r),
}
SIGNED = {"Rotate", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
          "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def level_to_arg(op, m, negate):
    sign = (lambda v: -v) if negate else (lambda v: v)
    if op in ("AutoContrast", "Equalize", "Invert"):
        return None
    if op == "Rotate":
        return sign((m / 10.) * 30.)
    if op == "PosterizeIncreasing":
        return 4 - int((m / 10.) * 4)
    if op == "SolarizeIncreasing":
        return 256 - int((m / 10.) * 256)
    if op == "SolarizeAdd":
        return int((m / 10.) * 110)
    if op.endswith("Increasing"):
        return max(0.1, 1.0 + sign((m / 10.) * .9))
    if op in ("ShearX", "ShearY"):
        return sign((m / 10.) * 0.3)
    if op in ("TranslateXRel", "TranslateYRel"):
        return sign((m / 10.) * 0.45)
    raise KeyError(op)


for op in OPS:
    combos = [(3.7, False), (9.0, False)] + ([(9.0, True)] if op in SIGNED else [])
    if op in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd"):
        combos += [(0.0, False), (10.0, False)]
    for m, negate in combos:
        for r in (["bilinear", "bicubic"] if op in GEOMETRIC else ["none"]):
            a = level_to_arg(op, m, negate)
            inp = "dim" if op in ("AutoContrast", "Equalize") else "rand"
            case(op, inp, lambda im, a=a, r=r, op=op: OPS[op](im, a, r), a, magnitude=m, negate=negate, resample=r)
# Extra arguments: the rotation fast paths and odd angles, posterize at every bit count.
for i, a in enumerate([90.0, 180.0, -90.0, 270.0, 360.0, 12.345, -161.0]):
    for r in [["bilinear", "bicubic"][i % 2]]:
        case("Rotate", "rand", lambda im, a=a, r=r: OPS["Rotate"](im, a, r), a, resample=r)
for a in [0, 1, 2, 3, 8]:
    case("PosterizeIncreasing", "rand", lambda im, a=a: OPS["PosterizeIncreasing"](im, a, None), a, resample="none")
for a in [0, 77, 200, 256]:
    case("SolarizeIncreasing", "rand", lambda im, a=a: OPS["SolarizeIncreasing"](im, a, None), a, resample="none")
for op in ["AutoContrast", "Equalize"]:
    case(op, "rand", lambda im, op=op: OPS[op](im, None, None), None, resample="none")
    case(op, "edgy", lambda im, op=op: OPS[op](im, None, None), None, resample="none")
for a in [0.0, 0.5, 1.7, 2.4]:
    case("SharpnessIncreasing", "edgy", lambda im, a=a: OPS["SharpnessIncreasing"](im, a, None), a, resample="none")

with open(f"{out}/expected.bin", "wb") as f:
    f.write(bytes(blob))
with open(f"{out}/manifest.json", "w") as f:
    json.dump({"height": H, "width": W, "channels": 3, "fill": FILL, "cases": cases}, f, indent=0)
print(f"{len(cases)} cases, {len(blob)} bytes")
