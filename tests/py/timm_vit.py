"""timm's VisionTransformer as robustbench 1.1.1's ImageNet zoo builds it, with random
weights (never downloaded): `normalize_model(timm.create_model('vit_base_patch16_224'),
mu, sigma)` (Mo2022When_ViT-B), the DeiTs robustbench registers with timm in
`model_zoo/architectures/deit.py` (loaded by file from the unpacked wheel, which runs its
`@register_model`s; `timm.create_model('tian2022deeper_deit_s_imagenet_corruptions')` is
then the `VisionTransformer` wrapped in `normalize_timm_model`), and a tiny ViT of the same
class for the MRC and fine-tuning tests; robustbench's ConvStem ViTs
(`convstem_models.py`'s `get_convstem_models`, Singh2023Revisiting) and a tiny one. For
tests/zoo_vit.rs."""
import torch
import timm
from timm.models.vision_transformer import VisionTransformer

from zoo import arch_package_module

TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2)
# A ConvStem halves four times: 32×32 inputs give 2×2 patches.
TINY_CONVSTEM = dict(img_size=32, patch_size=16, embed_dim=64, depth=1, num_heads=2)


def convstem(name):
    """robustbench's `get_convstem_models(name)` (random weights)."""
    return arch_package_module("convstem_models").get_convstem_models(name)


def deit(size):
    """robustbench's registered DeiT (`s` or `b`), random weights: the `normalize_model`
    wrapper (its statistics: timm's DeiT `default_cfg`) around the VisionTransformer."""
    arch_package_module("deit")
    return timm.create_model(f"tian2022deeper_deit_{size}_imagenet_corruptions", pretrained=False)


def build(kind, seed, num_classes=1000):
    """The bare VisionTransformer of `kind` (`vit_base_patch16_224`, `deit_s`, `tiny`) with
    seeded weights that make every parameter matter (`randomize`), eval mode."""
    torch.manual_seed(seed)
    if kind == "vit_base_patch16_224":
        net = timm.create_model(kind, pretrained=False, num_classes=num_classes)
    elif kind == "deit_s":
        net = deit("s").model
    elif kind == "tiny":
        net = VisionTransformer(num_classes=num_classes, **TINY)
    elif kind == "vit_s_cvst":
        net = convstem(kind).model
    elif kind == "tiny_convstem":
        net = VisionTransformer(num_classes=num_classes, **TINY_CONVSTEM)
        # robustbench's ConvBlock(8, end_siz=8): 8, 16, 32, 64 channels, then 1×1 to 64.
        net.patch_embed.proj = arch_package_module("convstem_models").ConvBlock(8, end_siz=8)
    else:
        raise ValueError(kind)
    randomize(net, seed)
    return net.eval()


def randomize(net, seed):
    """timm initialises LayerNorms to the identity, biases to zero and the class token near
    zero: random values instead, so that a misplaced one changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            # LayerNorm weights (the ConvStem's too) are the 1-D weights.
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or name in ("cls_token", "pos_embed"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
