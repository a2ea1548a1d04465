"""torchvision's ImageNet ResNets as robustbench 1.1.1's ImageNet zoo builds them
(`imagenet.py`: `normalize_model(pt_models.resnet18(), mu, sigma)`, ...,
`pt_models.resnet50(width_per_group=64 * 2)`), with torchvision's real constructors and
random weights (never downloaded), and robustbench's own `normalize_model` loaded by file
from the unpacked wheel. For tests/zoo_imagenet_resnet.rs."""
import os

import numpy as np
import torch
import torchvision

from reference_models import randomize_bn
from zoo import zoo_module

# imagenet.py's `mu` and `sigma`.
MU = (0.485, 0.456, 0.406)
SIGMA = (0.229, 0.224, 0.225)

BUILDERS = {
    "resnet18": lambda n: torchvision.models.resnet18(num_classes=n),
    "resnet50": lambda n: torchvision.models.resnet50(num_classes=n),
    "wide_resnet50_2": lambda n: torchvision.models.wide_resnet50_2(num_classes=n),
    "resnet50_wpg128": lambda n: torchvision.models.resnet50(width_per_group=128, num_classes=n),
    # torchvision's own `ResNet` class with one block per stage: every kind of block and
    # projection at a fraction of the cost, for the MRC tests.
    "tiny_basic": lambda n: torchvision.models.resnet.ResNet(
        torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=n),
    "tiny_bottleneck": lambda n: torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=n, width_per_group=16),
}


def same_layout(a, b):
    """Whether torchvision's builders `a` and `b` make the same keys and shapes (built on
    the meta device: no memory, no time)."""
    with torch.device("meta"):
        sa, sb = BUILDERS[a](1000).state_dict(), BUILDERS[b](1000).state_dict()
    return [(k, v.shape) for k, v in sa.items()] == [(k, v.shape) for k, v in sb.items()]


def build(kind, seed, num_classes=1000):
    """torchvision's network `kind` with seeded weights and randomised BatchNorm."""
    torch.manual_seed(seed)
    net = BUILDERS[kind](num_classes)
    randomize_bn(net, seed=seed)
    return net.eval()


def normalize_model(net, mean=MU, std=SIGMA):
    return zoo_module("utils_architectures").normalize_model(net, mean, std).eval()


def save(net, path, layout, wrapped=None):
    """Saves `net`'s state dict as a robustbench cache file in one of three layouts:
    `wrapped` (the whole `normalize_model` module's: `normalize.mean|std` and `model.*`),
    `prefixed` (`model.*` only, the network's keys under the wrapper's attribute, no
    statistics) or `bare` (torchvision's own keys)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if layout == "wrapped":
        state = wrapped.state_dict()
    elif layout == "prefixed":
        state = {"model." + k: v for k, v in net.state_dict().items()}
    else:
        state = net.state_dict()
    torch.save(state, path)


def logits_case(out, stem, module, n, size, seed):
    """Random pixels in [0, 1] (n×3×size×size) and `module`'s logits, saved as
    OUT/STEM.in.npy and OUT/STEM.ref.npy."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    with torch.no_grad():
        logits = module(x)
    np.save(os.path.join(out, stem + ".in.npy"), x.numpy())
    np.save(os.path.join(out, stem + ".ref.npy"), logits.numpy())
