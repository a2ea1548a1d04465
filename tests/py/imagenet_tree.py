"""A tiny ImageNet-like tree for tests/imagenet_data.rs, and what robustbench's pipeline
reads from it (PIL open -> convert('RGB') -> the torchvision transform -> ToTensor, x255).

usage: imagenet_tree.py OUT_DIR

OUT_DIR/imagenet/{train,val}/<wnid>/*.JPEG: the first K files of robustbench's evaluation
list (varied sizes, one grey) and a few files outside it; OUT_DIR/bad_wnid and
OUT_DIR/mixed for the error cases; OUT_DIR/manifest.json (the orders, labels and the
wheel's helper files); OUT_DIR/ref_<NAME>_<ORDER>.npy (N x 3 x H x W uint8).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

out = sys.argv[1]
helper = os.path.join(sys.prefix, "wheels", "robustbench", "helper_files")
class_to_id = json.load(open(os.path.join(helper, "imagenet_class_to_id_map.json")))
ids_text = open(os.path.join(helper, "imagenet_test_image_ids.txt")).read()
listed = [l.strip() for l in ids_text.splitlines() if l.strip()]
rng = np.random.default_rng(3)

K = 6
SIZES = [(375, 500), (500, 333), (281, 211), (256, 256), (333, 500), (301, 399)]


def photo(h, w):
    """A smooth scene with a little texture, closer to a photograph than pure noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c = rng.random(6) * 6
    img = np.stack([
        128 + 90 * np.sin(xx / (17 + c[0]) + c[1]),
        128 + 90 * np.cos(yy / (23 + c[2]) + c[3]),
        128 + 60 * np.sin((xx + yy) / (31 + c[4]) + c[5]),
    ], -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write(path, h, w, grey=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(photo(h, w), "RGB")
    if grey:
        im = im.convert("L")
    im.save(path, "JPEG", quality=90)


root = os.path.join(out, "imagenet")
val = os.path.join(root, "val")
subset = []
for i, rel in enumerate(listed[:K]):
    h, w = SIZES[i]
    write(os.path.join(val, rel), h, w, grey=(i == 2))
    subset.append((os.path.join(val, rel), class_to_id[rel.split("/")[0]]))
# Files outside the list: the first and the last synset, and one more in a listed synset.
extra = [("n01440764", "extra_a.JPEG", 200, 300), ("n15075141", "extra_b.JPEG", 290, 270),
         (listed[0].split("/")[0], "zz_extra.JPEG", 240, 320)]
for wnid, name, h, w in extra:
    write(os.path.join(val, wnid, name), h, w)
# torchvision's ImageFolder order with the standard labels: synsets in index order,
# files sorted by name.
everything = []
for wnid in sorted(os.listdir(val), key=lambda d: class_to_id[d]):
    for f in sorted(os.listdir(os.path.join(val, wnid))):
        everything.append((os.path.join(val, wnid, f), class_to_id[wnid]))
for wnid, name, h, w in [("n01443537", "t1.JPEG", 180, 240), ("n01443537", "t2.JPEG", 260, 250)]:
    write(os.path.join(root, "train", wnid, name), h, w)

PREPROCESSINGS = {
    "Res256Crop224": transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)]),
    "Crop288": transforms.CenterCrop(288),
    "Res224": transforms.Resize([224, 224]),
    "BicubicRes256Crop224": transforms.Compose(
        [transforms.Resize(256, interpolation=InterpolationMode("bicubic")), transforms.CenterCrop(224)]
    ),
}
to_tensor = transforms.ToTensor()
for name, t in PREPROCESSINGS.items():
    for order, items in [("subset", subset), ("all", everything)]:
        xs = [(to_tensor(t(Image.open(p).convert("RGB"))) * 255).round().to(torch.uint8).numpy()
              for p, _ in items]
        np.save(os.path.join(out, f"ref_{name}_{order}.npy"), np.stack(xs))

# Error cases.
write(os.path.join(out, "bad_wnid", "val", "n01440764", "a.JPEG"), 64, 64)
write(os.path.join(out, "bad_wnid", "val", "cats", "b.JPEG"), 64, 64)
write(os.path.join(out, "mixed", "val", "n01440764", "a.JPEG"), 64, 80)
write(os.path.join(out, "mixed", "val", "n01440764", "b.JPEG"), 70, 64)
os.makedirs(os.path.join(out, "no_val", "train", "n01440764"), exist_ok=True)

json.dump({
    "subset": subset,
    "all": everything,
    "K": K,
    "wheel_wnids": sorted(class_to_id, key=lambda k: class_to_id[k]),
    "wheel_ids_text": ids_text,
}, open(os.path.join(out, "manifest.json"), "w"))

# A tiny 3-channel, 1000-class ResNet-18 (width 4) that accepts 224×224 inputs, so the CLI
# tests run the real `rift eval` on the preprocessed images.
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.manual_seed(0)
net = build("resnet18", 1000, 3, width=4, input_size=224)
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(out, "tiny_in1k.safetensors"))
