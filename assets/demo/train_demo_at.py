"""Interim recipe for the bundled demo model until `rift train-at` lands (issue 3 replaces
this file by the rift command that makes the model): PGD adversarial training (Madry) of a
narrow pytorch-cifar ResNet18 (width 8, one input channel) on the bundled MNIST subset.

    python3 train_demo_at.py   # from this folder; writes mnist_at_resnet18w8.safetensors
"""
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from reference_models import Normalized, build, pgd  # noqa: E402

EPS, STEP, STEPS, EPOCHS, LR = 0.1, 0.02, 10, int(os.environ.get("EPOCHS", 8)), 0.05
torch.manual_seed(0)
torch.set_num_threads(2)


def idx(name):
    b = gzip.open(name).read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 2051:
        h, w = struct.unpack(">II", b[8:16])
        return np.frombuffer(b[16:], np.uint8).reshape(n, 1, h, w)
    return np.frombuffer(b[8:], np.uint8).astype(np.int64)


xtr = torch.tensor(idx("train-images-idx3-ubyte.gz")).float() / 255
ytr = torch.tensor(idx("train-labels-idx1-ubyte.gz"))
xte = torch.tensor(idx("t10k-images-idx3-ubyte.gz")).float() / 255
yte = torch.tensor(idx("t10k-labels-idx1-ubyte.gz"))

net = build("resnet18", 10, 1, width=8, input_size=28)
model = Normalized(net, [0.1307], [0.3081])
opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(EPOCHS * 0.75)], 0.1)
for epoch in range(EPOCHS):
    t = time.time()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 128):
        b = perm[i : i + 128]
        adv = pgd(model, xtr[b], ytr[b], EPS, STEP, STEPS)
        model.train()
        loss = F.cross_entropy(model(adv), ytr[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step()
    model.eval()
    with torch.no_grad():
        clean = (model(xte).argmax(1) == yte).float().mean().item() * 100
    adv = pgd(model, xte[:500], yte[:500], EPS, STEP, STEPS)
    with torch.no_grad():
        rob = (model(adv).argmax(1) == yte[:500]).float().mean().item() * 100
    print(f"epoch {epoch} loss {loss.item():.3f} clean {clean:.1f} robust {rob:.1f} ({time.time() - t:.0f}s)", flush=True)

save_file({k: v.contiguous() for k, v in net.state_dict().items()}, "mnist_at_resnet18w8.safetensors",
          metadata={"recipe": f"PGD-AT eps {EPS} step {STEP} steps {STEPS}, {EPOCHS} epochs, SGD lr {LR}"})
