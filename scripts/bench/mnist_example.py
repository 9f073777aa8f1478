#!/usr/bin/env python3
"""Determined's mnist_pytorch example (examples/tutorials/mnist_pytorch: model_def.py, data.py,
const.yaml) as one plain Python process, the way a newcomer runs it: torchvision's MNIST dataset
(raw IDX files under ROOT/MNIST/raw) with ToTensor + Normalize, torch.utils.data.DataLoader with
the example's settings (batch 64, no shuffle, no workers), Adadelta lr 1.0, train BATCHES
batches, then validate on the whole test set (loss and accuracy averaged over batches, as
Determined reduces them). Prints one JSON line.

    python mnist_example.py ROOT [BATCHES=300]
"""
import json, sys, time, warnings

import torch
from torch import nn
from torchvision import datasets, transforms

warnings.filterwarnings("ignore")  # Dropout2d on a 2-D input, as in the example
t_start = time.perf_counter()
root = sys.argv[1]
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 300

transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
train_set = datasets.MNIST(root, train=True, download=False, transform=transform)
test_set = datasets.MNIST(root, train=False, download=False, transform=transform)
train_loader = torch.utils.data.DataLoader(train_set, batch_size=64)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=64)


class Flatten(nn.Module):
    def forward(self, x):
        return x.contiguous().view(x.size(0), -1)


model = nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Dropout2d(0.25), Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout2d(0.5),
                      nn.Linear(128, 10), nn.LogSoftmax(dim=1))
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)

model.train()
t_train = time.perf_counter()
seen = 0
for x, y in train_loader:
    loss = nn.functional.nll_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    seen += 1
    if seen == batches:
        break
t_val = time.perf_counter()
model.eval()
losses, accs = [], []
with torch.no_grad():
    for x, y in test_loader:
        out = model(x)
        losses.append(nn.functional.nll_loss(out, y).item())
        accs.append(out.argmax(dim=1).eq(y).float().mean().item())
t_end = time.perf_counter()
print(json.dumps({"impl": "python_example", "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "batches": seen, "validation_loss": sum(losses) / len(losses),
                  "accuracy": sum(accs) / len(accs), "setup_s": round(t_train - t_start, 3),
                  "train_s": round(t_val - t_train, 3), "validation_s": round(t_end - t_val, 3)}))
