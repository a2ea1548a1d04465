"""timm's ConvNeXts as robustbench 1.1.1's ImageNet zoo builds them (`imagenet.py`:
`normalize_model(timm.create_model('convnext_base', pretrained=False), mu, sigma)`), with
timm's real constructors and random weights (never downloaded), every LayerNorm's affine
parameters and every layer scale randomised so that they matter. For tests/zoo_convnext.rs."""
import timm
import torch

from tv_resnet import normalize_model, save, logits_case, MU, SIGMA  # noqa: F401

BUILDERS = {
    "convnext_base": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n),
    # timm's own ConvNeXt class with one block per stage and narrow stages: every kind of
    # module (stem, downsampling, depthwise conv, both MLP layers, classifier) at a
    # fraction of the cost, for the MRC tests.
    "tiny": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n,
                                        depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]),
}


def randomize_affine(net, seed):
    """LayerNorm weights near 1 and biases near 0 (random), layer scales `gamma` of the order
    of the branch they scale, so that a mistake in any of them shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = ".norm." in f".{name}" or name.startswith("stem.1.") or ".downsample.0." in name
            if leaf == "gamma":
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif is_norm and leaf == "weight":
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif is_norm and leaf == "bias":
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif leaf == "bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def build(kind, seed, num_classes=1000):
    """timm's network `kind` with seeded weights and randomised norms and layer scales."""
    torch.manual_seed(seed)
    net = BUILDERS[kind](num_classes)
    if kind == "tiny":
        # timm's initialisation (std 0.02) leaves a network this narrow all but constant
        # in its input: weights of unit gain give MRC different samples to tell apart.
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0, fan_in ** -0.5)
    randomize_affine(net, seed)
    return net.eval()
