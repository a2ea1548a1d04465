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


def dm_fixture(out, seed=5):
    """The small zoo network the stage tests run on: robustbench's DM WideResNet-10-1 with
    Swish/SiLU and randomised BatchNorm, saved as OUT/dm.pth, and a tiny CIFAR-10 in the
    binary format (random pixels and labels: 5 train batches of 32, a test batch of 128)
    under OUT/cifar-10-batches-bin. Returns the network (eval mode) and the first 32 test
    images and labels (the adversarial set's clean inputs) as tensors."""
    import numpy as np
    import torch
    from reference_models import randomize_bn
    torch.manual_seed(seed)
    net = build_zoo("dm-wrn-10-1", activation="silu")
    randomize_bn(net, seed=seed)
    net.eval()
    torch.save(net.state_dict(), os.path.join(out, "dm.pth"))
    rng = np.random.default_rng(0)
    d = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(d)

    def batch(name, n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        rec = np.concatenate([y[:, None], x], axis=1)
        open(os.path.join(d, name), "wb").write(rec.tobytes())
        return torch.tensor(x.reshape(n, 3, 32, 32)).float() / 255, torch.tensor(y.astype(np.int64))
    for i in range(1, 6):
        batch(f"data_batch_{i}.bin", 32)
    x, y = batch("test_batch.bin", 128)
    return net, x[:32], y[:32]


def corrupted_set(out, net, names, n, seed=1):
    """A CIFAR-10-C layout under OUT (`<name>.npy`: 5 severities × n images, uint8 NHWC, and
    `labels.npy`) of random images; labels are `net`'s own prediction on the first
    corruption's severity 1 for even indices and random otherwise, so accuracies are
    neither 0 nor 100. Returns PyTorch's accuracy (%) per corruption and severity."""
    import numpy as np
    import torch
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    images = {c: rng.integers(0, 256, (5 * n, 32, 32, 3)).astype(np.uint8) for c in names}

    def predict(imgs):
        with torch.no_grad():
            return net(torch.tensor(imgs).permute(0, 3, 1, 2).float() / 255).argmax(1).numpy()
    own = predict(images[names[0]][:n])
    labels = np.where(np.arange(n) % 2 == 0, own, rng.integers(0, 10, n)).astype(np.int64)
    np.save(os.path.join(out, "labels.npy"), np.tile(labels, 5))
    acc = {}
    for c in names:
        np.save(os.path.join(out, c + ".npy"), images[c])
        pred = predict(images[c])
        acc[c] = [float((pred[s * n:(s + 1) * n] == labels).mean() * 100) for s in range(5)]
    return acc


def build_meansparse(depth, width, num_classes=10, activation="silu", file="Meansparse_wrn_70_16"):
    """robustbench's MeanSparse DM WideResNet at any depth and width: the class of
    `Meansparse_wrn_70_16.py` (DMWideResNet) or of `Meansparse_wrn_94_16.py`
    (MeanSparse_DMWideResNet), as `get_sparse_model` builds them (SiLU by default)."""
    module = zoo_module(file)
    cls = module.MeanSparse_DMWideResNet if file == "Meansparse_wrn_94_16" else module.DMWideResNet
    act = nn.SiLU if activation == "silu" else nn.ReLU
    return cls(num_classes=num_classes, depth=depth, width=width, activation_fn=act)


def randomize_meansparse(net, seed=0, threshold=0.5, zero_every=0):
    """Random MeanSparse statistics that bite: per-channel means and variances near the
    BatchNorm outputs' scale and a threshold that snaps a good share of activations onto
    the mean (every `zero_every`-th op gets threshold 0, robustbench's identity case).
    Returns the number of MeanSparse ops."""
    import torch
    g = torch.Generator().manual_seed(seed)
    ops = [m for m in net.modules() if type(m).__name__ == "MeanSparse"]
    with torch.no_grad():
        for i, m in enumerate(ops):
            c = m.running_mean.shape[0]
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
            t = 0.0 if zero_every and i % zero_every == zero_every - 1 else threshold
            m.threshold.fill_(t)
            m.batch_num.fill_(float(i + 3))
    return len(ops)


def without_meansparse(net):
    """The same network with every MeanSparse threshold 0 (a copy): its logits show
    whether the MeanSparse ops change anything."""
    import copy
    other = copy.deepcopy(net)
    for m in other.modules():
        if type(m).__name__ == "MeanSparse":
            m.threshold.fill_(0.0)
    return other


def torchvision_stand_in():
    """robustbench's RaWideResNet files import `SqueezeExcitation` (and, for the ImageNet
    model, `Conv2dNormActivation`) from `torchvision.ops.misc`; the test venv holds torch
    without torchvision (.ci/bootstrap). Where torchvision is missing, this puts a module of
    that name in its place whose SqueezeExcitation is torchvision's as documented —
    `AdaptiveAvgPool2d(1)`, 1×1 `fc1` and `fc2` with bias, the activation between them, a
    sigmoid, the input scaled by the result — written here, the one part of those networks
    that is not robustbench's own code. Returns whether the stand-in is in use."""
    import types
    import torch
    try:
        import torchvision.ops.misc  # noqa: F401
        return False
    except ImportError:
        pass

    class SqueezeExcitation(torch.nn.Module):
        def __init__(self, input_channels, squeeze_channels, activation=torch.nn.ReLU,
                     scale_activation=torch.nn.Sigmoid):
            super().__init__()
            self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc1 = torch.nn.Conv2d(input_channels, squeeze_channels, 1)
            self.fc2 = torch.nn.Conv2d(squeeze_channels, input_channels, 1)
            self.activation = activation()
            self.scale_activation = scale_activation()

        def forward(self, x):
            scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
            return scale * x

    class Conv2dNormActivation(torch.nn.Sequential):
        def __init__(self, *args, **kwargs):
            raise NotImplementedError("the torchvision stand-in builds no Conv2dNormActivation")

    misc = types.ModuleType("torchvision.ops.misc")
    misc.SqueezeExcitation = SqueezeExcitation
    misc.Conv2dNormActivation = Conv2dNormActivation
    ops = types.ModuleType("torchvision.ops")
    ops.misc = misc
    tv = types.ModuleType("torchvision")
    tv.ops = ops
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.misc": misc})
    return True


def ra_module(meansparse=False):
    """robustbench's `robustarch_wide_resnet.py`, or `Meansparse_ra_wrn_70_16.py` (the
    MeanSparse variant), as a module. Both import `CIFAR10_MEAN`/`CIFAR10_STD` from
    `robustbench.model_zoo.architectures.dm_wide_resnet`: that name is bound to the file
    loaded by path (empty parent packages around it), so robustbench's own `__init__`,
    whose dependencies are not installed, never runs."""
    import types
    torchvision_stand_in()
    parents = ["robustbench", "robustbench.model_zoo", "robustbench.model_zoo.architectures"]
    for name in parents:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = []
            sys.modules[name] = package
    dm_name = parents[-1] + ".dm_wide_resnet"
    if dm_name not in sys.modules:
        sys.modules[dm_name] = zoo_module("dm_wide_resnet")
    return zoo_module("Meansparse_ra_wrn_70_16" if meansparse else "robustarch_wide_resnet")


def build_ra(stem, blocks, widths, groups=(1, 1, 1), activation="silu", se_ratio=None,
             se_activation="relu", se_order=2, meansparse=False, num_classes=10):
    """robustbench's RaWideResNet (`NormalizedWideResNet`) of any configuration, with the
    CIFAR-10 statistics its zoo entries use."""
    module = ra_module(meansparse)
    act = {"silu": nn.SiLU, "relu": nn.ReLU}
    return module.NormalizedWideResNet(
        mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616), stem_width=stem,
        depth=list(blocks), stage_width=list(widths), groups=list(groups),
        activation_fn=act[activation], se_ratio=se_ratio, se_activation=act[se_activation],
        se_order=se_order, num_classes=num_classes)


def arch_package_module(name):
    """robustbench's `model_zoo/architectures/<name>.py` as a module of an empty
    `robustbench.model_zoo.architectures` package whose path is the wheel's architecture
    folder, so that its relative imports (`from .wide_resnet import ...`) resolve there and
    robustbench's own `__init__` (dependencies not installed) never runs."""
    import importlib
    import types
    parents = ["robustbench", "robustbench.model_zoo", "robustbench.model_zoo.architectures"]
    for parent in parents:
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            sys.modules[parent] = package
    sys.modules[parents[-1]].__path__ = [ARCH_DIR]
    return importlib.import_module(parents[-1] + "." + name)


def robust_modules():
    """robustbench's `robust_wide_resnet.py` (which imports `.wide_resnet`) and
    `robust_resnet.py` as modules (`arch_package_module`)."""
    return arch_package_module("robust_wide_resnet"), arch_package_module("robust_resnet")


def build_boosting(depth, width):
    """robustbench's BoostingWideResNet (Pang2020Boosting) at any depth and width."""
    return arch_package_module("boosting_wide_resnet").BoostingWideResNet(depth=depth, widen_factor=width)


def build_pssilu(depth, width, alpha=1.0, beta=1e-8, num_classes=10):
    """robustbench's `PAF_WideResNet` with one shared `PSSiLU` (what `pssilu_wrn_28_10`
    builds) at any depth and width, its scalars set to `alpha` and `beta`."""
    import torch
    module = zoo_module("paf_wide_resnet")
    act = module.PSSiLU()
    with torch.no_grad():
        act.alpha.fill_(alpha)
        act.beta.fill_(beta)
    return module.PAF_WideResNet(act, depth=depth, widen_factor=width, num_classes=num_classes)


def build_robust(kind, channels, depths, activation="silu", pre_process=False, num_classes=10):
    """robustbench's RobustWideResNet (`kind` "wrn") or robust_resnet.PreActResNet
    ("resnet", basic blocks, one activation, as WRN-A4 builds it) of any widths and depths."""
    wrn, rn = robust_modules()
    if kind == "wrn":
        return wrn.RobustWideResNet(num_classes=num_classes, channel_configs=list(channels),
                                    depth_configs=list(depths))
    act = {"silu": "SiLU", "relu": "ReLU"}[activation]
    return rn.PreActResNet(num_classes=num_classes, channel_configs=list(channels),
                           depth_configs=list(depths), stride_config=[1, 2, 2], stem_stride=1,
                           block_types=["basic_block"] * 3, activations=[act] * 3,
                           normalizations=["BatchNorm"] * 3, use_init=False,
                           pre_process=pre_process)
