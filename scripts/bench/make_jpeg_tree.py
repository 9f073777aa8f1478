#!/usr/bin/env python3
"""Writes an ImageNet-like JPEG tree for the loader benchmark (not committed: it is generated):
CLASSES class directories of PER_CLASS images, each a CIFAR-10 training image upscaled
(bicubic) to 500x375 and saved as JPEG quality 90 (about ImageNet's typical size and quality).
    /usr/bin/python3 make_jpeg_tree.py DATA_DIR OUT [CLASSES=10] [PER_CLASS=250]"""
import gzip, os, sys
import numpy as np
from PIL import Image

data, out = sys.argv[1], sys.argv[2]
classes = int(sys.argv[3]) if len(sys.argv) > 3 else 10
per_class = int(sys.argv[4]) if len(sys.argv) > 4 else 250
with gzip.open(f"{data}/cifar10/data_batch_1.bin.gz") as f:
    recs = np.frombuffer(f.read(), np.uint8).reshape(-1, 3073)
images = recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
k = 0
for c in range(classes):
    d = f"{out}/class_{c:03d}"
    os.makedirs(d, exist_ok=True)
    for i in range(per_class):
        Image.fromarray(images[k % len(images)]).resize((500, 375), Image.BICUBIC).save(f"{d}/img_{i:05d}.jpg", quality=90)
        k += 1
