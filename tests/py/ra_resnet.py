"""robustbench's ImageNet RaResNet (Peng2023Robust: `robustarch_wide_resnet.py`'s
`get_model("ra_wrn101_2")`, a `NormalizedConfigurableModel` with ImageNet's statistics as
buffers) with random weights and non-trivial BatchNorms, and a small configuration of the
same class for the stage tests. For tests/zoo_ra_resnet.rs."""
import torch
from torch import nn

from reference_models import randomize_bn
from zoo import ra_module


def randomize_biases(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def build(kind, seed):
    """`published`: the factory's RaWRN-101-2 (1000 classes); `tiny`: rift's
    ra-resnet-stem16-depths1.2.1.1-widths32.64.64.128-groups4.8.8.16 with 10 classes."""
    m = ra_module()
    torch.manual_seed(seed)
    if kind == "published":
        net = m.get_model("ra_wrn101_2")
    else:
        net = m.NormalizedConfigurableModel(
            mean=m.IMAGENET_MEAN, std=m.IMAGENET_STD, stage_widths=[32, 64, 64, 128], kernel=3,
            strides=[2, 2, 2, 2], dilation=1, norm_layer=[nn.Identity, nn.BatchNorm2d, nn.BatchNorm2d],
            activation_layer=[nn.SiLU] * 3, group_widths=[4, 8, 8, 16], bottleneck_multipliers=[0.25] * 4,
            downsample_norm=nn.BatchNorm2d, depths=[1, 2, 1, 1], dense_ratio=None, stem_type=m.Stem,
            stem_width=16, stem_kernel=7, stem_downsample_factor=2, stem_patch_size=None,
            block_constructor=m.BottleneckBlock, ConvBlock=m.Conv2dNormActivation, se_ratio=0.25,
            se_activation=nn.ReLU, num_classes=10)
    randomize_bn(net, seed)
    randomize_biases(net, seed)
    return net.eval()
