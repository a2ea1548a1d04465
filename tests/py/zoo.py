"""RobustBench's own architecture code as test references, loaded by file path from the
unpacked wheel ($VENV/wheels/robustbench, made by .ci/bootstrap): those files import only
torch, so robustbench itself (and its dependencies) are never imported."""
import importlib.util
import os
import sys

import torch.nn as nn

ARCH_DIR = os.path.join(sys.prefix, "wheels", "robustbench", "model_zoo", "architectures")


def zoo_module(name):
    """robustbench's `model_zoo/architectures/<name>.py` as a module."""
    path = os.path.join(ARCH_DIR, name + ".py")
    spec = importlib.util.spec_from_file_location("zoo_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_zoo(kind, activation="silu", num_classes=10, **kw):
    """A zoo network by rift's family name: dm-wrn-D-W, dm-preactresnet18|34,
    wrn-D-W (kw: sub_block1, bias_last), resnet50."""
    dm = zoo_module("dm_wide_resnet")
    act = dm.Swish if activation == "silu" else nn.ReLU
    if kind.startswith("dm-wrn-"):
        _, _, d, w = kind.split("-")
        return dm.DMWideResNet(num_classes=num_classes, depth=int(d), width=int(w), activation_fn=act)
    if kind.startswith("dm-preactresnet"):
        return dm.DMPreActResNet(num_classes=num_classes, depth=int(kind[len("dm-preactresnet"):]), activation_fn=act)
    if kind.startswith("wrn-"):
        _, d, w = kind.split("-")
        return zoo_module("wide_resnet").WideResNet(depth=int(d), num_classes=num_classes, widen_factor=int(w), **kw)
    if kind == "resnet50":
        return zoo_module("resnet").ResNet50()
    raise ValueError(kind)
