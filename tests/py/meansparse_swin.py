"""robustbench's MeanSparse Swin-L (Amini2024MeanSparse_Swin-L: `get_sparse_model('swin-l',
dataset='imagenet-Linf')`, `Meansparse_swin_L.py`'s `swin_large_patch4_window7_224_with_MeanSparse`:
the file's copy of timm's SwinTransformer with four MeanSparse ops per block, in
`nn.Sequential(normalize=ImageNormalizer(ImageNet statistics), model=...)`), with random
weights randomised as `timm_swin.py` randomises timm's and random MeanSparse statistics with
threshold 0.5, so that a good share of activations snap. For tests/zoo_swin_meansparse.rs."""
from collections import OrderedDict

import torch

from timm_swin import randomize, unit_gain
from zoo import arch_package_module


def module():
    """`Meansparse_swin_L.py` as a module (it registers timm models, so it must be one)."""
    return arch_package_module("Meansparse_swin_L")


def sparsify(net, seed, threshold):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if type(m).__name__ == "MeanSparse":
                c = m.running_mean.numel()
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.1 + torch.rand(c, generator=g))
                m.threshold.fill_(threshold)


def build(kind, seed, threshold=0.5, depths=None):
    """`large`: the factory itself (1000 classes), with `depths` its keyword arguments allow
    (None: Swin-L's); `tiny`: the file's class at 32×32 with
    4×4 windows and 10 classes (rift's swin-dim16-depths2.2-heads2.4-p4-w4-32-meansparse),
    in the factory's wrapper. Every MeanSparse threshold `threshold`: snapping is a jump of
    that many standard deviations, so a threshold of 0.5 lets float rounding flip which
    activations snap (PyTorch in float32 and float64 then differ by several % in MRC and in
    a deep network's logits); small thresholds keep the jumps, and those differences, small."""
    m = module()
    torch.manual_seed(seed)
    if kind == "large":
        extra = {} if depths is None else {"depths": depths}
        wrapped = m.swin_large_patch4_window7_224_with_MeanSparse(
            pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, **extra)
    else:
        net = m.SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16,
                                depths=(2, 2), num_heads=(2, 4), num_classes=10)
        unit_gain(net)
        wrapped = torch.nn.Sequential(OrderedDict([
            ("normalize", m.ImageNormalizer(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))),
            ("model", net)]))
    randomize(wrapped, seed)
    sparsify(wrapped, seed, threshold)
    return wrapped.eval()
