"""Reference numbers for rift's evaluation preprocessing and JPEG decoding
(tests/preprocess_pillow.rs): Pillow + torchvision, the stack robustbench evaluates with.

usage: preprocess_ref.py OUT_DIR SEED N_RANDOM

Writes OUT_DIR/cases.json and, per case, in_I.npy (H×W×3 uint8, the input as PIL holds it)
and out_I.npy (what torchvision returns on the PIL image, H×W×3 uint8). JPEG cases write
jpeg_I.jpg (written by PIL) and out_I.npy (PIL's decode, Image.open(...).convert('RGB')).
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

out_dir, seed, n_random = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
cases = []

PREPROCESSINGS = {
    "Res256Crop224": transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)]),
    "Crop288": transforms.CenterCrop(288),
    "Res224": transforms.Resize([224, 224]),
    "BicubicRes256Crop224": transforms.Compose(
        [transforms.Resize(256, interpolation=InterpolationMode("bicubic")), transforms.CenterCrop(224)]
    ),
}
INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def image(h, w):
    """Noise over a smooth gradient: sharp edges and flat ramps, every rounding path."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255.0 / max(w, 1), yy * 255.0 / max(h, 1), (xx + yy) % 256], -1)
    noise = rng.integers(-90, 90, size=(h, w, 3))
    mask = rng.random((h, w, 1)) < 0.3
    return np.clip(base + noise * mask, 0, 255).astype(np.uint8)


def add(arr, op, args, out):
    i = len(cases)
    np.save(os.path.join(out_dir, f"in_{i}.npy"), arr)
    np.save(os.path.join(out_dir, f"out_{i}.npy"), np.asarray(out.convert("RGB")))
    cases.append({"op": op, "args": args, "input": f"in_{i}.npy", "output": f"out_{i}.npy"})


for k in range(n_random):
    h, w = int(rng.integers(1, 320)), int(rng.integers(1, 320))
    arr = image(h, w)
    pil = Image.fromarray(arr, "RGB")
    interp = ["bilinear", "bicubic"][k % 2]
    oh, ow = int(rng.integers(1, 320)), int(rng.integers(1, 320))
    add(arr, "resize", {"h": oh, "w": ow, "interp": interp},
        transforms.Resize([oh, ow], interpolation=INTERP[interp])(pil))
    s = int(rng.integers(1, 300))
    add(arr, "shorter", {"size": s, "interp": interp},
        transforms.Resize(s, interpolation=INTERP[interp])(pil))
    ch, cw = int(rng.integers(1, 330)), int(rng.integers(1, 330))
    add(arr, "crop", {"h": ch, "w": cw}, transforms.CenterCrop((ch, cw))(pil))

# ImageNet-like sizes (landscape, portrait, smaller than the crops, odd) through each
# robustbench preprocessing.
for (h, w) in [(375, 500), (500, 333), (201, 149), (287, 289), (256, 256), (480, 640), (77, 1001)]:
    arr = image(h, w)
    pil = Image.fromarray(arr, "RGB")
    for name, t in PREPROCESSINGS.items():
        add(arr, "preprocess", {"name": name}, t(pil))

# JPEGs written by PIL and decoded by PIL.
for (h, w, quality, sub, mode) in [
    (375, 500, 75, 2, "RGB"), (333, 251, 95, 2, "RGB"), (97, 131, 75, 0, "RGB"),
    (240, 321, 95, 0, "RGB"), (61, 89, 75, 1, "RGB"), (200, 301, 90, 2, "L"),
    (1, 1, 75, 2, "RGB"), (17, 9, 95, 2, "RGB"), (480, 640, 85, 2, "RGB"),
]:
    arr = image(h, w)
    pil = Image.fromarray(arr, "RGB")
    if mode == "L":
        pil = pil.convert("L")
    i = len(cases)
    path = os.path.join(out_dir, f"jpeg_{i}.jpg")
    if mode == "L":
        pil.save(path, quality=quality)
    else:
        pil.save(path, quality=quality, subsampling=sub)
    dec = np.asarray(Image.open(path).convert("RGB"))
    np.save(os.path.join(out_dir, f"out_{i}.npy"), dec)
    cases.append({"op": "jpeg", "args": {"quality": quality, "subsampling": sub, "mode": mode},
                  "input": f"jpeg_{i}.jpg", "output": f"out_{i}.npy"})

with open(os.path.join(out_dir, "cases.json"), "w") as f:
    json.dump(cases, f)
