"""timm's Xcit as robustbench 1.1.1 builds its Debenedetti2022Light XCiTs, with random
weights (never downloaded): the builders `model_zoo/architectures/xcit.py` registers with
timm (loaded by file from the unpacked wheel, which runs its `@register_model`s;
`robustbench.load_model` builds these entries by that registered name,
`debenedetti2022light_xcit_s12_cifar10_linf`), the CIFAR ones being the Xcit after
`adapt_model_patches(·, 4)` wrapped in `normalize_timm_model`; and a tiny Xcit of the same
class for the MRC and fine-tuning tests. For tests/zoo_xcit.rs."""
import torch
import timm
from timm.models.xcit import Xcit

from zoo import arch_package_module

# Width 64, 4 heads, one XCA block and one class-attention block, robustbench's CIFAR
# patch embedding (patch 16 adapted to 4: 32×32 images give 8×8 tokens).
TINY = dict(patch_size=16, embed_dim=64, depth=1, num_heads=4, eta=1.0, tokens_norm=True,
            cls_attn_layers=1)


def registered(size, dataset, num_classes):
    """robustbench's registered XCiT (`s12`, `m12`, `l12`; `cifar10`, `cifar100`,
    `imagenet`), random weights: for CIFAR the `normalize_timm_model` wrapper (its
    statistics: the registered `default_cfg`'s) around the adapted Xcit."""
    arch_package_module("xcit")
    name = f"debenedetti2022light_xcit_{size}_{dataset}_linf"
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def bare(module):
    """The Xcit inside robustbench's wrapper (or the module itself)."""
    return module.model if hasattr(module, "model") else module


def tiny(num_classes=10):
    """The tiny Xcit, patch embedding adapted as robustbench's CIFAR ones."""
    net = Xcit(img_size=32, num_classes=num_classes, **TINY)
    return arch_package_module("xcit").adapt_model_patches(net, 4)


def randomize(net, seed):
    """timm initialises LayerNorms and layer scales to ones, biases and BatchNorm
    statistics to zeros, temperatures to one: random values instead, so that a misplaced
    one changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif "gamma" in name or "temperature" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("bias") or name == "cls_token":
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return net.eval()
