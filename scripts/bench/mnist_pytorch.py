#!/usr/bin/env python3
"""The MNIST CNN of configs/mnist/const.yaml in Python PyTorch (Debian's python3-torch, the same
LibTorch underneath): batch 64, Adadelta, data in memory, same thread count. Prints steady-state
batches/s as JSON.   /usr/bin/python3 mnist_pytorch.py DATA_DIR [timed] [warmup]"""
import gzip, json, sys, time, warnings
import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore")  # Dropout2d on a 2-D input, as in the example
data_dir = sys.argv[1]
timed = int(sys.argv[2]) if len(sys.argv) > 2 else 300
warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 50
with gzip.open(f"{data_dir}/mnist/train-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
with gzip.open(f"{data_dir}/mnist/train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
x_all = torch.from_numpy(images.copy()).float().div(255).sub(0.1307).div(0.3081)
y_all = torch.from_numpy(labels.astype(np.int64))

class Flatten(nn.Module):
    def forward(self, x):
        return x.contiguous().view(x.size(0), -1)

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Dropout2d(0.25), Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout2d(0.5),
                      nn.Linear(128, 10), nn.LogSoftmax())
opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
loss_fn = nn.NLLLoss()
model.train()
bs = 64
for i in range(warmup + timed):
    if i == warmup:
        start = time.perf_counter()
    first = (i * bs) % (len(x_all) - bs)
    x, y = x_all[first:first + bs], y_all[first:first + bs]
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()
elapsed = time.perf_counter() - start
print(json.dumps({"impl": "python_pytorch", "batches_per_second": timed / elapsed, "threads": torch.get_num_threads()}))
