"""MNIST IDX files as numpy arrays, and tiny random subsets of the bundled demo digits, for
the tests and benches (one copy; they import it from tests/py)."""
import gzip
import os
import struct

import numpy as np


def read_bytes(name):
    """The file's bytes, gunzipped when it is gzip (by its magic, not its name)."""
    with open(name, "rb") as f:
        b = f.read()
    return gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b


def idx(name):
    """Images as uint8 (n, 1, h, w), labels as int64 (n,), from a plain or gzipped IDX file."""
    b = read_bytes(name)
    magic, n = struct.unpack(">II", b[:8])
    if magic == 2051:
        h, w = struct.unpack(">II", b[8:16])
        return np.frombuffer(b[16:], np.uint8).reshape(n, 1, h, w)
    assert magic == 2049, f"{name}: not an IDX image or label file (magic {magic})"
    return np.frombuffer(b[8:], np.uint8).astype(np.int64)


def write_tiny_mnist(out, n_train, n_test, demo="assets/demo"):
    """Uncompressed IDX files of n_train / n_test demo digits drawn at random (seed 0; the
    demo files are sorted by class, so a prefix would hold one or two digits). The header
    counts exactly the images that follow."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = idx(os.path.join(demo, f"{split}-images-idx3-ubyte.gz"))
        y = idx(os.path.join(demo, f"{split}-labels-idx1-ubyte.gz"))
        total, _, h, w = x.shape
        assert total >= n, f"the demo {split} split holds {total} digits, not {n}"
        pick = np.sort(rng.permutation(total)[:n])
        if n >= 100:
            assert len(set(y[pick].tolist())) == 10, "a tiny split lacks a class"
        with open(os.path.join(out, f"{split}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, h, w) + x[pick].tobytes())
        with open(os.path.join(out, f"{split}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 2049, n) + y[pick].astype(np.uint8).tobytes())
