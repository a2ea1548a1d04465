"""timm's ConvNeXts as robustbench 1.1.1's ImageNet zoo builds them (`imagenet.py`:
`normalize_model(timm.create_model('convnext_base', pretrained=False), mu, sigma)`), with
timm's real constructors and random weights (never downloaded), every LayerNorm's affine
parameters and every layer scale randomised so that they matter; and robustbench's
ConvStem ConvNeXts (`get_convstem_models('convnext_t_cvst')` …, Singh2023Revisiting) from
its own `convstem_models.py`. For tests/zoo_convnext.rs."""
import timm
import torch

from tv_resnet import normalize_model, save, logits_case, MU, SIGMA  # noqa: F401
from zoo import zoo_module

BUILDERS = {
    "convnext_base": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n),
    # timm's own ConvNeXt class with one block per stage and narrow stages: every kind of
    # module (stem, downsampling, depthwise conv, both MLP layers, classifier) at a
    # fraction of the cost, for the MRC tests.
    "tiny": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n,
                                        depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]),
    # The same with MeanSparse before every GELU and after every branch (`add_meansparse`).
    "tiny_meansparse": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n,
                                                   depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]),
    # The same with robustbench's three-convolution ConvStem in place of timm's stem.
    "tiny_convstem": lambda n: timm.create_model("convnext_base", pretrained=False, num_classes=n,
                                                 depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]),
}


def randomize_affine(net, seed):
    """LayerNorm weights near 1 and biases near 0 (random), layer scales `gamma` of the order
    of the branch they scale, small random biases elsewhere, so that a mistake in any of
    them shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    norms = {f"{n}.{leaf}" for n, m in net.named_modules() if "LayerNorm" in type(m).__name__
             for leaf in ("weight", "bias")}
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "gamma" or (name in norms and leaf == "weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name in norms:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif leaf == "bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def convstem_module():
    """robustbench's `convstem_models.py`, whose one robustbench import (`normalize_model`
    from its package path) is served by the file itself, loaded as `zoo_module` loads it."""
    import sys
    import types
    utils = zoo_module("utils_architectures")
    for name in ("robustbench", "robustbench.model_zoo", "robustbench.model_zoo.architectures"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["robustbench.model_zoo.architectures.utils_architectures"] = utils
    return zoo_module("convstem_models")


def unit_gain(net):
    """timm's initialisation (std 0.02) leaves a network this narrow all but constant in its
    input: weights of unit gain give MRC different samples to tell apart."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0, m.weight[0].numel() ** -0.5)


def build(kind, seed, num_classes=1000):
    """timm's network `kind` with seeded weights and randomised norms and layer scales."""
    torch.manual_seed(seed)
    if kind.endswith("_cvst"):
        # robustbench's own factory: timm's ConvNeXt with `model.stem` replaced.
        net = convstem_module().get_convstem_models(kind)
    else:
        net = BUILDERS[kind](num_classes)
    if kind == "tiny_convstem":
        # Its ConvBlock3(4): 3×3 convolutions to 4, 6 and 8 channels, strides 2, 2, 1.
        net.stem = convstem_module().ConvBlock3(4)
    if kind.startswith("tiny"):
        unit_gain(net)
    randomize_affine(net, seed)
    if kind.endswith("_meansparse"):
        add_meansparse(net, seed, by_robustbench=False)
    return net.eval()


def sparsified_module():
    """robustbench's `sparsified_model.py` (`MeanSparse_imagenet`, `add_custom_layer_imagenet`)
    loaded as `zoo_module` loads files; its imports of the other MeanSparse networks (the
    WideResNets and the Swin, built elsewhere) are served by empty stand-ins."""
    import sys
    import types
    for name in ("robustbench", "robustbench.model_zoo", "robustbench.model_zoo.architectures"):
        sys.modules.setdefault(name, types.ModuleType(name))
    for dep, attr in (("Meansparse_wrn_70_16", "DMWideResNet"), ("Meansparse_wrn_94_16", "MeanSparse_DMWideResNet"),
                      ("Meansparse_ra_wrn_70_16", "NormalizedWideResNet"),
                      ("Meansparse_swin_L", "swin_large_patch4_window7_224_with_MeanSparse")):
        stub = types.ModuleType(dep)
        setattr(stub, attr, None)
        sys.modules.setdefault("robustbench.model_zoo.architectures." + dep, stub)
    return zoo_module("sparsified_model")


def add_meansparse(net, seed, by_robustbench=True):
    """MeanSparse before every block's GELU and after its layer-scaled branch:
    robustbench's own `add_custom_layer_imagenet` (whose branch widths are ConvNeXt-L's,
    192…1536), or the same insertion by stage width for other layouts. Statistics random
    and the threshold 0.5, so that a good share of activations snap."""
    sp = sparsified_module()
    if by_robustbench:
        sp.add_custom_layer_imagenet(net, sp.MeanSparse_imagenet)
    else:
        for stage in net.stages:
            for block in stage.blocks:
                block.mlp.act = torch.nn.Sequential(sp.MeanSparse_imagenet(block.mlp.fc1.out_features), block.mlp.act)
                block.drop_path = torch.nn.Sequential(block.drop_path, sp.MeanSparse_imagenet(block.mlp.fc2.out_features))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, sp.MeanSparse_imagenet):
                c = m.running_mean.numel()
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.1 + torch.rand(c, generator=g))
                m.threshold.fill_(0.5)
    return net.eval()
