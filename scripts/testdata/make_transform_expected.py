#!/usr/bin/env python3
"""Generates tests/testdata/transforms/: torchvision's output for det's deterministic transforms
on fixed images. Run with Debian's python3-torchvision:
    /usr/bin/python3 scripts/testdata/make_transform_expected.py tests/testdata/transforms
Each case is <name>.input.bin (uint8 HWC), <name>.expected.bin (float32 CHW) and an entry in
manifest.json with the shapes and the transform's parameters."""
import json, os, sys
import numpy as np
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.functional as F

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(0)
mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
to_tensor_norm = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
cases = []

def case(name, arr, fn, params):
    img = Image.fromarray(arr)
    t = fn(img)
    arr.tofile(f"{out}/{name}.input.bin")
    t.numpy().astype(np.float32).tofile(f"{out}/{name}.expected.bin")
    cases.append({"name": name, "input_shape": list(arr.shape), "output_shape": list(t.shape), **params})

a = rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)
case("normalize", a, to_tensor_norm, {"mean": mean, "std": std})
case("to_tensor", a, T.ToTensor(), {})
b = rng.randint(0, 256, (31, 29, 3), dtype=np.uint8)
case("center_crop_20", b, T.Compose([T.CenterCrop(20), T.ToTensor()]), {"size": 20})
case("center_crop_36", b, T.Compose([T.CenterCrop(36), T.ToTensor()]), {"size": 36})
for (i, j) in [(0, 0), (3, 7), (8, 8)]:
    case(f"pad4_crop_{i}_{j}", a, lambda im, i=i, j=j: F.to_tensor(F.crop(F.pad(im, 4), i, j, 32, 32)),
         {"padding": 4, "top": i, "left": j, "size": 32})
case("hflip", b, lambda im: F.to_tensor(F.hflip(im)), {})
case("vflip", b, lambda im: F.to_tensor(F.vflip(im)), {})
g = rng.randint(0, 256, (28, 28), dtype=np.uint8)
case("gray_normalize", g, T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))]), {"mean": [0.1307], "std": [0.3081]})
json.dump({"cases": cases}, open(f"{out}/manifest.json", "w"), indent=1)
