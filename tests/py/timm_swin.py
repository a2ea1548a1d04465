"""timm's Swin Transformers as robustbench 1.1.1's ImageNet zoo builds them (`imagenet.py`:
`normalize_model(timm.create_model('swin_base_patch4_window7_224', pretrained=False), mu,
sigma)`), with timm's real constructors and random weights (never downloaded), every
LayerNorm's affine parameters and every relative position bias randomised so that they
matter; and the published files' older layout (timm < 0.9: PatchMerging at the end of a
stage, `head` for the classifier, the index and mask buffers saved), which robustbench
loads through timm's `checkpoint_filter_fn`. For tests/zoo_swin.rs."""
import re

import timm
import torch

from tv_resnet import normalize_model, save, logits_case, MU, SIGMA  # noqa: F401

BUILDERS = {
    "swin_base": lambda n: timm.create_model("swin_base_patch4_window7_224", pretrained=False,
                                             num_classes=n),
    # timm's own class at 32×32 with 4×4 windows: stage 0 (8×8 tokens) shifts its odd
    # block, stage 1 (4×4 tokens, one window) does not; every kind of module at a fraction
    # of the cost, for the MRC tests.
    "tiny": lambda n: timm.create_model("swin_base_patch4_window7_224", pretrained=False,
                                        num_classes=n, img_size=32, window_size=4,
                                        embed_dim=16, depths=(2, 2), num_heads=(2, 4)),
}


def randomize(net, seed):
    """LayerNorm weights near 1 and biases near 0 (random), relative position biases of
    unit size, small random biases elsewhere, so that a mistake in any of them shows."""
    g = torch.Generator().manual_seed(seed)
    norms = {f"{n}.{leaf}" for n, m in net.named_modules() if isinstance(m, torch.nn.LayerNorm)
             for leaf in ("weight", "bias")}
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if name in norms and leaf == "weight":
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name in norms:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif leaf == "relative_position_bias_table":
                p.copy_(torch.randn(p.shape, generator=g))
            elif leaf == "bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def unit_gain(net):
    """timm's initialisation (std 0.02) leaves a network this narrow all but constant in its
    input: weights of unit gain give MRC different samples to tell apart."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0, m.weight[0].numel() ** -0.5)


def build(kind, seed, num_classes=1000):
    """timm's network `kind` with seeded weights and randomised norms and biases."""
    torch.manual_seed(seed)
    net = BUILDERS[kind](num_classes)
    if kind == "tiny":
        unit_gain(net)
    randomize(net, seed)
    return net.eval()


def original_layout(net):
    """`net`'s state in timm < 0.9's layout (what the published files hold), checked to be
    what timm's `checkpoint_filter_fn`, which robustbench applies, turns back into `net`'s."""
    from timm.models.swin_transformer import checkpoint_filter_fn
    state = {}
    for k, v in net.state_dict().items():
        k = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k)
        state[k.replace("head.fc.", "head.")] = v
    for name, m in net.named_modules():
        if hasattr(m, "relative_position_index"):
            state[name + ".relative_position_index"] = m.relative_position_index
        if getattr(m, "attn_mask", None) is not None:
            state[name + ".attn_mask"] = m.attn_mask
    back = checkpoint_filter_fn(state, net)
    assert sorted(back) == sorted(net.state_dict()), "not the layout timm converts"
    return state
