#!/usr/bin/env python3
"""Images per second of torchvision's DataLoader on the CIFAR-10 training pipeline:
RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize, batch 128, shuffled,
N worker processes. The dataset reads the binary files into memory and returns PIL images, as
torchvision.datasets.CIFAR10 does.
    /usr/bin/python3 cifar_loader_torchvision.py DATA_DIR [workers=2] [batches=200] [warmup=20]"""
import gzip, json, sys, time
import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T

data_dir = sys.argv[1]
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 200
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 20

class CifarBinary(torch.utils.data.Dataset):
    def __init__(self, root, transform):
        recs = []
        for i in range(1, 6):
            with gzip.open(f"{root}/cifar10/data_batch_{i}.bin.gz") as f:
                recs.append(np.frombuffer(f.read(), np.uint8).reshape(-1, 3073))
        recs = np.concatenate(recs)
        self.labels = recs[:, 0].astype(np.int64)
        self.images = recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # HWC as torchvision
        self.transform = transform
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
loader = torch.utils.data.DataLoader(CifarBinary(data_dir, tf), batch_size=128, shuffle=True,
                                     num_workers=workers, persistent_workers=workers > 0)
it = iter(loader)
images = 0
for i in range(warmup + batches):
    if i == warmup:
        start = time.perf_counter()
    x, y = next(it)
    if i >= warmup:
        images += x.shape[0]
elapsed = time.perf_counter() - start
print(json.dumps({"impl": "torchvision", "workers": workers, "images_per_second": images / elapsed}))
