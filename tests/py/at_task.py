"""A learnable CIFAR-shaped task and a short PGD adversarial training on it: the recipe
for the adversarially trained fixtures of tests/autoattack.rs (via autoattack_ref.py)
and `cargo bench --bench versus` (via benches/py/eager_rift.py).

The task: the bundled demo's MNIST digits (assets/demo) drawn in a random colour on a
contrasting background with pixel noise, padded to 3×32×32; 10 classes. The training:
Madry PGD-3 at twice the evaluation radius 8/255 (ε 16/255, step 6/255, random start,
examples made in eval mode), SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 128.
A few epochs put PGD-10 robust accuracy at 8/255 mid-range (neither 0 nor all).
Only torch and numpy; nothing is downloaded.
"""
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "assets", "demo")
AT_EPS, AT_STEP, AT_STEPS = 16 / 255, 6 / 255, 3


def idx(name):
    """An IDX file (gzip) of the demo: images N×28×28 uint8 or labels int64."""
    b = gzip.open(name).read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 2051:
        return np.frombuffer(b[16:], np.uint8).reshape(n, 28, 28)
    return np.frombuffer(b[8:], np.uint8).astype(np.int64)


def coloured(digits, rng):
    """Digits (N×28×28) as N×3×32×32 uint8: a random colour on a contrasting background."""
    n = len(digits)
    m = np.pad(digits, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[:, None] / 255
    fg = rng.uniform(0.5, 1.0, size=(n, 3, 1, 1))
    bg = rng.uniform(0.0, 0.4, size=(n, 3, 1, 1))
    swap = rng.random(n) < 0.5
    fg[swap], bg[swap] = 1 - fg[swap], 1 - bg[swap]
    img = bg * (1 - m) + fg * m + rng.normal(0, 0.03, size=(n, 3, 32, 32))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def coloured_digits(n_train, n_test, rng):
    """(train images, train labels, test images, test labels): uint8 N×3×32×32, int64."""
    xtr = coloured(idx(os.path.join(DEMO, "train-images-idx3-ubyte.gz"))[:n_train], rng)
    ytr = idx(os.path.join(DEMO, "train-labels-idx1-ubyte.gz"))[:n_train]
    xte = coloured(idx(os.path.join(DEMO, "t10k-images-idx3-ubyte.gz"))[:n_test], rng)
    yte = idx(os.path.join(DEMO, "t10k-labels-idx1-ubyte.gz"))[:n_test]
    return xtr, ytr, xte, yte


def adversarially_train(model, x_u8, y, epochs=3, batch=128):
    """The recipe's training of `model` (pixels in [0, 1] in, logits out) on uint8 images
    `x_u8` and int64 labels `y`, on the device of its parameters; draws from torch's
    global generator."""
    device = next(model.parameters()).device
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.tensor(x_u8).float() / 255
    y = torch.tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            b = perm[i:i + batch]
            xb, yb = x[b].to(device), y[b].to(device)
            model.eval()
            adv = (xb + torch.empty_like(xb).uniform_(-AT_EPS, AT_EPS)).clamp(0, 1)
            for _ in range(AT_STEPS):
                adv.requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(model(adv), yb), [adv])
                adv = torch.min(torch.max(adv.detach() + AT_STEP * g.sign(), xb - AT_EPS), xb + AT_EPS).clamp(0, 1)
            model.train()
            loss = F.cross_entropy(model(adv), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
