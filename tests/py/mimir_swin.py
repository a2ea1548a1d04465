"""MIMIR's Swin Transformer as robustbench 1.1.1 builds Xu2024MIMIR_Swin-B/-L
(`MIMIR_swin_transformer.py`: Microsoft's SimMIM code, `build_swin_base|large`, LayerNorms
of eps 1e-6, no input normalisation; its state in Microsoft's layout, PatchMerging at the
end of a stage, classifier `head`, the index and mask buffers saved), with random weights
randomised as `timm_swin.py` randomises timm's (never downloaded). For tests/zoo_swin.rs."""
from functools import partial

import torch

from timm_swin import randomize, unit_gain
from zoo import zoo_module

LN = partial(torch.nn.LayerNorm, eps=1e-6)

BUILDERS = {
    "base": lambda m, n: m.build_swin_base(),
    # Swin-L's 14×14 windows at a fraction of its width: shifted in the first two stages
    # (56 and 28 tokens a side), one unshifted window in the third, clamped to 7×7 in the
    # last; rift's swin-dim16-depths2.2.2.2-heads1.2.4.8-p4-w14-224-eps1e-6.
    "w14": lambda m, n: m.SwinTransformer(img_size=224, patch_size=4, embed_dim=16,
                                          depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8],
                                          window_size=14, norm_layer=LN, num_classes=n),
    # timm_swin.py's `tiny` in MIMIR's class: rift's swin-dim16-depths2.2-heads2.4-p4-w4-32-eps1e-6.
    "tiny": lambda m, n: m.SwinTransformer(img_size=32, patch_size=4, embed_dim=16, depths=[2, 2],
                                           num_heads=[2, 4], window_size=4, norm_layer=LN,
                                           num_classes=n),
}


def build(kind, seed, num_classes=1000):
    """MIMIR's network `kind` with seeded weights and randomised norms and biases."""
    torch.manual_seed(seed)
    net = BUILDERS[kind](zoo_module("MIMIR_swin_transformer"), num_classes)
    if kind != "base":
        unit_gain(net)
    randomize(net, seed)
    return net.eval()
