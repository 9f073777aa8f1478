#!/usr/bin/env python3
"""Images per second of torchvision's DataLoader on the same pipelines as bench_loader:
  cifar:       CIFAR-10 train as PIL images (as torchvision.datasets.CIFAR10), RandomCrop(32, 4),
               RandomHorizontalFlip, ToTensor, Normalize, batch 128
  imagefolder: torchvision.datasets.ImageFolder, RandomResizedCrop(224), RandomHorizontalFlip,
               ToTensor, Normalize, batch 64
    /usr/bin/python3 loader_torchvision.py cifar|imagefolder ROOT [workers=2] [batches] [warmup]"""
import gzip, json, sys, time
import numpy as np
import torch
from PIL import Image
import torchvision
import torchvision.transforms as T

mode, root = sys.argv[1], sys.argv[2]
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
cifar = mode == "cifar"
batches = int(sys.argv[4]) if len(sys.argv) > 4 else (200 if cifar else 30)
warmup = int(sys.argv[5]) if len(sys.argv) > 5 else (20 if cifar else 3)

class CifarBinary(torch.utils.data.Dataset):
    def __init__(self, root, transform):
        recs = []
        for i in range(1, 6):
            with gzip.open(f"{root}/cifar10/data_batch_{i}.bin.gz") as f:
                recs.append(np.frombuffer(f.read(), np.uint8).reshape(-1, 3073))
        recs = np.concatenate(recs)
        self.labels = recs[:, 0].astype(np.int64)
        self.images = recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.transform = transform
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

if cifar:
    ds = CifarBinary(root, T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                                      T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))]))
else:
    ds = torchvision.datasets.ImageFolder(root, T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                                                          T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]))
loader = torch.utils.data.DataLoader(ds, batch_size=128 if cifar else 64, shuffle=True, num_workers=workers,
                                     persistent_workers=workers > 0)
it = iter(loader)
images = 0
for i in range(warmup + batches):
    if i == warmup:
        start = time.perf_counter()
    try:
        x, _ = next(it)
    except StopIteration:  # a new epoch, as det's stream repeats
        it = iter(loader)
        x, _ = next(it)
    if i >= warmup:
        images += x.shape[0]
print(json.dumps({"impl": "torchvision", "pipeline": mode, "workers": workers,
                  "images_per_second": images / (time.perf_counter() - start)}))
