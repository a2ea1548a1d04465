"""What rift builds for the zoo's configurable families, from a constructor call whose
arguments `tools/zoo_table.py` has named: the RobustResNet, the RaWideResNet,
torchvision's ResNets and timm's ViTs (each a `(fields, reason)` pair: rift's family, `--arch` and the rest,
or why rift cannot build it), and the literal evaluation they share. Split from
zoo_table.py, which imports it, so that neither file runs long; it imports nothing of
zoo_table's."""
import ast
import math
import os
import re


def literal(node, consts):
    """A literal (numbers, strings, lists, tuples, `[0.5] * 3`, `16 * w[0]`) or a module
    constant."""
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return literal(node.left, consts) * literal(node.right, consts)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return literal(node.value, consts)[node.slice.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e, consts) for e in node.elts]
    return ast.literal_eval(node)


def robust_resnet_config(call, consts):
    """(fields, reason) for `robust_resnet.PreActResNet` (Huang 2022), as rift's
    `robust-resnet-D1.D2.D3-C0.C1.C2.C3` builds it (src/engine/models/robust_resnet.rs):
    basic blocks, BatchNorm, 3×3 kernels, one activation, strides 1, 2, 2, stem stride 1."""
    value = lambda k: literal(call.kwargs[k], consts)  # noqa: E731
    depths, channels = value("depth_configs"), value("channel_configs")
    acts = set(value("activations"))
    same = {"block_types": {"basic_block"}, "normalizations": {"BatchNorm"}, "kernel_size_configs": {3}}
    for key, allowed in same.items():
        if set(value(key)) != allowed:
            return None, f"RobustResNet with {key}={value(key)} not implemented yet"
    if len(acts) != 1 or next(iter(acts)) not in ("ReLU", "SiLU"):
        return None, f"RobustResNet with activations {value('activations')} not implemented yet"
    if list(value("stride_config")) != [1, 2, 2] or value("stem_stride") != 1 or len(channels) != 4:
        return None, "RobustResNet with other strides or stages not implemented yet"
    dotted = lambda v: ".".join(str(x) for x in v)  # noqa: E731
    fields = {"family": "robust-resnet", "arch": f"robust-resnet-{dotted(depths)}-{dotted(channels)}",
              "activation": ACTIVATIONS[next(iter(acts))], "classes": value("num_classes")}
    if value("pre_process"):
        # `pre_process=True` registers CIFAR-10's statistics as `mu`/`sigma` buffers.
        fields["normalize"] = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2471, 0.2435, 0.2616],
                               "source": "buffers"}
    return fields, None


# rift's names for RaWideResNet configurations that have one: what rift's `ra-wrn-70-16`
# builds (src/engine/models/ra_config.rs), robustbench's `get_model('ra_wrn70_16')`.
RA_PRESETS = {"ra-wrn-70-16": {"depth": 70, "width": 16, "stem": 96, "blocks": [30, 31, 10],
                               "widths": [216, 432, 864], "groups": [1, 1, 1], "squeeze": [54, 108, 216]}}
ACTIVATIONS = {"SiLU": "silu", "Swish": "silu", "ReLU": "relu"}


def activation_of(node):
    """`torch.nn.SiLU`, `nn.modules.activation.ReLU`, ... as rift's --activation, or None."""
    return ACTIVATIONS.get(ast.unparse(node).split(".")[-1])


def ra_wrn_config(call, consts):
    """(fields, reason) for robustbench's RaWideResNet (`NormalizedWideResNet` of
    `robustarch_wide_resnet.py` or `Meansparse_ra_wrn_70_16.py`), named as rift names it:
    `ra-wrn-70-16`, or the configuration spelled out."""
    value = lambda k: literal(call.kwargs[k], consts)  # noqa: E731
    if value("padding") != 0 or value("num_input_channels") != 3:
        return None, "RaWideResNet with input padding or other than 3 input channels not implemented yet"
    act = activation_of(call.kwargs["activation_fn"])
    if act is None:
        return None, f"RaWideResNet activation `{ast.unparse(call.kwargs['activation_fn'])}` not implemented yet"
    stem, blocks, widths, groups = value("stem_width"), value("depth"), value("stage_width"), value("groups")
    ratio = value("se_ratio")
    # robustbench's `int(round(se_ratio * out_planes))`, with Python's rounding.
    squeeze = [int(round(ratio * w)) for w in widths] if ratio else None
    suffix = ""
    if squeeze:
        order, se_act = value("se_order"), activation_of(call.kwargs["se_activation"])
        if order not in (1, 2):
            return None, f"RaWideResNet with se_order={order} (its SE built but never run) not implemented yet"
        if se_act is None:
            return None, f"RaWideResNet SE activation `{ast.unparse(call.kwargs['se_activation'])}` not implemented yet"
        suffix = ("-seorder1" if order == 1 else "") + ("" if se_act == "relu" else f"-se{se_act}")
    layout = {"stem": stem, "blocks": blocks, "widths": widths, "groups": groups, "squeeze": squeeze}
    fields = {"family": "ra-wrn"}
    preset = [(n, p) for n, p in RA_PRESETS.items() if all(p[k] == v for k, v in layout.items())]
    if preset:
        name, p = preset[0]
        fields.update({"arch": name + suffix, "depth": p["depth"], "width": p["width"]})
    else:
        dotted = lambda v: ".".join(str(x) for x in v)  # noqa: E731
        name = f"ra-wrn-{dotted(blocks)}-{dotted(widths)}-stem{stem}"
        name += f"-groups{dotted(groups)}" if groups != [1, 1, 1] else ""
        name += f"-se{dotted(squeeze)}" if squeeze else ""
        fields["arch"] = name + suffix
    norm = {"mean": value("mean"), "std": value("std"), "source": "NormalizedWideResNet mean/std arguments"}
    fields.update({"activation": act, "classes": value("num_classes"), "normalize": norm})
    return fields, None


# torchvision's ResNet builders (imagenet.py imports `torchvision.models as pt_models`):
# depth and the `width_per_group` each one passes to `ResNet`.
TORCHVISION_RESNETS = {"resnet18": (18, 64), "resnet34": (34, 64), "resnet50": (50, 64),
                       "resnet101": (101, 64), "resnet152": (152, 64),
                       "wide_resnet50_2": (50, 128), "wide_resnet101_2": (101, 128)}
# Builder arguments that leave the network's forward and keys as rift builds them:
# where the weights come from, and initialisation only.
TORCHVISION_HARMLESS = {"pretrained", "weights", "progress", "zero_init_residual"}


def torchvision_config(call, consts):
    """(fields, reason) for `pt_models.resnetD(...)` / `pt_models.wide_resnetD_2(...)`."""
    name = call.callee.split(".")[-1]
    depth, width = TORCHVISION_RESNETS[name]
    kwargs = dict(call.kwargs)
    if call.args:
        return None, f"torchvision `{name}` with positional arguments not implemented yet"
    if "width_per_group" in kwargs:
        width = literal(kwargs.pop("width_per_group"), consts)
    classes = literal(kwargs.pop("num_classes"), consts) if "num_classes" in kwargs else 1000
    other = sorted(set(kwargs) - TORCHVISION_HARMLESS)
    if other:
        return None, f"torchvision `{name}` with {', '.join(other)} not implemented yet"
    bottleneck = depth >= 50
    if not bottleneck and width != 64:
        return None, f"torchvision `{name}` with width_per_group {width} (BasicBlock takes 64 only)"
    if width == 64:
        arch = f"tv-resnet{depth}"
    elif width % 64 == 0:
        arch = f"tv-wide-resnet{depth}-{width // 64}"
    else:
        arch = f"tv-resnet{depth}-w{width}"
    family = "tv-resnet-bottleneck" if bottleneck else "tv-resnet"
    return {"family": family, "arch": arch, "depth": depth, "width": width, "activation": "relu",
            "classes": classes}, None


# timm's ViT builders robustbench calls by name (`timm.create_model('vit_base_patch16_224')`):
# the VisionTransformer arguments each passes (timm's `vision_transformer.py`).
TIMM_VITS = {"vit_base_patch16_224": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
             "deit_small_patch16_224": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6)}
# timm's VisionTransformer defaults that rift's `vit` family builds as they are; any other
# argument (layer scale, pooling, no class token, ...) is not built.
VIT_DEFAULTS = dict(img_size=224, num_classes=1000, mlp_ratio=4.0, qkv_bias=True)
VIT_SHAPE_ARGS = {"patch_size", "embed_dim", "depth", "num_heads"}
VIT_SIZES = {(192, 12, 3): "ti", (384, 12, 6): "s", (768, 12, 12): "b", (1024, 24, 16): "l"}
# timm's IMAGENET_DEFAULT_MEAN / _STD: the statistics of DeiT's `default_cfg` (`deit._cfg`),
# which robustbench's `normalize_timm_model` applies around the network.
TIMM_DEFAULT_STATS = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def registered_vits(arch_dir):
    """robustbench's own timm registrations of VisionTransformers (`deit.py`): {timm name:
    its `model_kwargs`} for each function that builds with `deit._create_deit` and wraps the
    result in `normalize_timm_model`."""
    with open(os.path.join(arch_dir, "deit.py")) as f:
        tree = ast.parse(f.read())
    out = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        text = ast.unparse(func)
        assign = next((s for s in func.body if isinstance(s, ast.Assign)
                       and ast.unparse(s.targets[0]) == "model_kwargs"), None)
        if assign is None or "deit._create_deit(" not in text or "normalize_timm_model(model)" not in text:
            continue
        out[func.name] = {k.arg: ast.literal_eval(k.value) for k in assign.value.keywords if k.arg}
    return out


def vit_arch(dim, depth, heads, patch, img):
    """rift's `--arch` name of a ViT (src/engine/models/vit_config.rs)."""
    size = VIT_SIZES.get((dim, depth, heads))
    if size:
        return f"vit-{size}{patch}-{img}"
    return f"vit-dim{dim}-depth{depth}-heads{heads}-p{patch}-{img}"


def timm_vit_config(call, consts, arch_dir):
    """(fields, reason) for `timm.create_model('NAME', ...)` where NAME is a timm ViT builder
    or one robustbench registers (`deit.py`, whose `normalize_timm_model` brings DeiT's
    statistics); None when NAME is neither."""
    name = literal(call.args[0], consts) if call.args else None
    registered = registered_vits(arch_dir)
    if name in TIMM_VITS:
        shape_args, norm = TIMM_VITS[name], None
    elif name in registered:
        shape_args = registered[name]
        norm = {**TIMM_DEFAULT_STATS, "source": "normalize_timm_model"}
    else:
        return None
    given = {k: literal(v, consts) for k, v in call.kwargs.items() if k != "pretrained"}
    cfg = {**VIT_DEFAULTS, **shape_args, **given}
    other = sorted(set(cfg) - set(VIT_DEFAULTS) - VIT_SHAPE_ARGS)
    if other or cfg["mlp_ratio"] != 4.0 or not cfg["qkv_bias"]:
        return None, f"timm ViT `{name}` with {', '.join(other) or 'another MLP or qkv'} not implemented yet"
    dim, depth, heads = cfg["embed_dim"], cfg["depth"], cfg["num_heads"]
    fields = {"family": "vit", "arch": vit_arch(dim, depth, heads, cfg["patch_size"], cfg["img_size"]),
              "depth": depth, "width": dim, "activation": "gelu", "classes": cfg["num_classes"]}
    if norm:
        fields["normalize"] = norm
    return fields, None


# timm's ConvNeXt builders (imagenet.py's `timm.create_model('convnext_base')`) and rift's
# names of them (src/engine/models/convnext_config.rs).
TIMM_CONVNEXTS = {"convnext_tiny": "convnext-tiny", "convnext_small": "convnext-small",
                  "convnext_base": "convnext-base", "convnext_large": "convnext-large",
                  "convnext_xlarge": "convnext-xlarge"}


def timm_convnext_config(call, consts):
    """(fields, reason) for `timm.create_model('convnext_…', ...)`; None where the model is
    not one of `TIMM_CONVNEXTS`. Only where the weights come from (`pretrained`) may differ
    from the builder's defaults."""
    name = literal(call.args[0], consts) if call.args else None
    if name not in TIMM_CONVNEXTS:
        return None
    kwargs = dict(call.kwargs)
    classes = literal(kwargs.pop("num_classes"), consts) if "num_classes" in kwargs else 1000
    other = sorted(set(kwargs) - {"pretrained"})
    if other:
        return None, f"timm `{name}` with {', '.join(other)} not implemented yet"
    return {"family": "convnext", "arch": TIMM_CONVNEXTS[name], "classes": classes}, None


# timm's Swin builders (imagenet.py's `timm.create_model('swin_base_patch4_window7_224')`)
# and rift's names of them (src/engine/models/swin_config.rs).
TIMM_SWINS = {"swin_tiny_patch4_window7_224": "swin-t-p4-w7-224",
              "swin_small_patch4_window7_224": "swin-s-p4-w7-224",
              "swin_base_patch4_window7_224": "swin-b-p4-w7-224",
              "swin_large_patch4_window7_224": "swin-l-p4-w7-224"}


def timm_swin_config(call, consts):
    """(fields, reason) for `timm.create_model('swin_…', ...)`; None where the model is not
    one of `TIMM_SWINS`. Only where the weights come from (`pretrained`) may differ from the
    builder's defaults."""
    name = literal(call.args[0], consts) if call.args else None
    if name not in TIMM_SWINS:
        return None
    kwargs = dict(call.kwargs)
    classes = literal(kwargs.pop("num_classes"), consts) if "num_classes" in kwargs else 1000
    other = sorted(set(kwargs) - {"pretrained"})
    if other:
        return None, f"timm `{name}` with {', '.join(other)} not implemented yet"
    return {"family": "swin", "arch": TIMM_SWINS[name], "classes": classes}, None


# robustbench's `get_convstem_models` names (convstem_models.py, Singh2023Revisiting) that
# build a timm ConvNeXt with its stem replaced: `ConvBlock1(48)` (two convolutions) on the
# tiny and small ones, `ConvBlock3(64|96)` (three) on the base and large ones.
CONVSTEM_CONVNEXTS = {"convnext_t_cvst": "convnext-tiny-convstem2", "convnext_s_cvst": "convnext-small-convstem2",
                      "convnext_b_cvst": "convnext-base-convstem3", "convnext_l_cvst": "convnext-large-convstem3"}


def convstem_config(call, consts):
    """(fields, reason) for `get_convstem_models('convnext_…_cvst')` (no normalisation: the
    factory wraps only its ViT-S in `normalize_model`); None for its ViTs."""
    name = literal(call.args[0], consts) if call.args else None
    if name not in CONVSTEM_CONVNEXTS:
        return None
    return {"family": "convnext", "arch": CONVSTEM_CONVNEXTS[name], "classes": 1000}, None


def convstem_vit_config(call, consts, arch_dir):
    """(fields, reason) for `get_convstem_models('NAME')` (`convstem_models.py`,
    Singh2023Revisiting): the branch of NAME builds a timm ViT (`TIMM_VITS`) or a ConvNeXt,
    puts `ConvBlock(W, end_siz=E, fin_dim=F)` in `patch_embed.proj` (rift's `-convstemW`;
    its output width, the quirk of ConvBlock's `__init__` kept: `W·E` unless F is 432, must
    be the ViT's width) and may wrap it in `normalize_model` with the file's
    IMAGENET_MEAN/STD."""
    with open(os.path.join(arch_dir, "convstem_models.py")) as f:
        tree = ast.parse(f.read())
    wanted = literal(call.args[0], consts) if call.args else None
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_convstem_models")
    branch = next(s for s in func.body if isinstance(s, ast.If))
    while branch is not None and ast.literal_eval(branch.test.comparators[0]) != wanted:
        branch = branch.orelse[0] if branch.orelse and isinstance(branch.orelse[0], ast.If) else None
    if branch is None:
        return None, f"ConvStem model `{wanted}` not found in convstem_models.py"
    text = "\n".join(ast.unparse(s) for s in branch.body)
    builder = next((name for name in TIMM_VITS if name in text), None)
    if builder is None:
        return None, f"architecture ConvStem `{wanted}` (a ConvNeXt) not implemented yet"
    block = next(s.value for s in branch.body if isinstance(s, ast.Assign)
                 and ast.unparse(s.targets[0]) == "model.patch_embed.proj")
    if ast.unparse(block.func) != "ConvBlock":
        return None, f"ConvStem `{wanted}` with {ast.unparse(block.func)} not implemented yet"
    args = dict(zip(["siz", "end_siz", "fin_dim"], [literal(a, consts) for a in block.args]))
    args.update({k.arg: ast.literal_eval(k.value) for k in block.keywords})
    width = args.get("siz", 48)
    fin_dim = args.get("fin_dim", 384)
    out = 432 if fin_dim == 432 else width * args.get("end_siz", 8)
    shape = {**VIT_DEFAULTS, **TIMM_VITS[builder]}
    if out != shape["embed_dim"]:
        return None, f"ConvStem `{wanted}` with output width {out} for a ViT of width {shape['embed_dim']}"
    dim, depth, heads = shape["embed_dim"], shape["depth"], shape["num_heads"]
    arch = vit_arch(dim, depth, heads, shape["patch_size"], shape["img_size"]) + f"-convstem{width}"
    fields = {"family": "vit", "arch": arch, "depth": depth, "width": dim, "activation": "gelu",
              "classes": shape["num_classes"]}
    if "normalize_model(" in text:
        stats = {}
        for node in tree.body:
            # `IMAGENET_MEAN = [c * 1. for c in (0.485, ...)]`: the tuple's values as floats.
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.ListComp):
                stats[node.targets[0].id] = [float(c) for c in ast.literal_eval(node.value.generators[0].iter)]
        norm_call = re.search(r"normalize_model\(model, (\w+), (\w+)\)", text)
        fields["normalize"] = {"mean": stats[norm_call.group(1)], "std": stats[norm_call.group(2)],
                               "source": "normalize_model"}
    return fields, None


# imagenet.py's AlexNet entry calls `timm.create_model('alexnet', pretrained=True)`, a name
# timm 1.0.31 does not have (robustbench 1.1.1 cannot build the entry as written). The one
# it registers for it (`alexnet.py`, imported by imagenet.py "to register models") is
# `alexnet_imagenet_corruptions`: torchvision's AlexNet (`TimmAlexNet`) with torchvision's
# weights, in `normalize_timm_model` with timm's ImageNet statistics. rift takes the entry
# as that registration.
TIMM_ALEXNETS = ("alexnet", "alexnet_imagenet_corruptions")


def timm_alexnet_config(call, consts):
    """(fields, reason) for `timm.create_model('alexnet'|'alexnet_imagenet_corruptions')`;
    None for any other model."""
    name = literal(call.args[0], consts) if call.args else None
    if name not in TIMM_ALEXNETS:
        return None
    other = sorted(set(call.kwargs) - {"pretrained"})
    if other:
        return None, f"AlexNet with {', '.join(other)} not implemented yet"
    return {"family": "alexnet", "arch": "alexnet", "classes": 1000,
            "normalize": {**TIMM_DEFAULT_STATS, "source": "normalize_timm_model"}}, None


# timm's preset Swin sizes (src/engine/models/swin_config.rs `PRESETS`): (width, depths,
# heads) → rift's letter.
SWIN_PRESETS = {(96, (2, 2, 6, 2), (3, 6, 12, 24)): "t", (96, (2, 2, 18, 2), (3, 6, 12, 24)): "s",
                (128, (2, 2, 18, 2), (4, 8, 16, 32)): "b", (192, (2, 2, 18, 2), (6, 12, 24, 48)): "l"}

def swin_size(dim, depths, heads):
    """The size part of rift's Swin name: a preset's letter, else `dimD-depths…-heads…`."""
    depths, heads = tuple(depths), tuple(heads)
    dotted = lambda v: ".".join(map(str, v))  # noqa: E731
    return SWIN_PRESETS.get((dim, depths, heads)) or f"dim{dim}-depths{dotted(depths)}-heads{dotted(heads)}"


# What MIMIR's SwinTransformer (Microsoft's original code) computes as timm's does, and
# must therefore be for rift to build it; `norm_layer` and the sizes are read, not fixed.
MIMIR_FIXED = {"mlp_ratio": 4, "qkv_bias": True, "qk_scale": None, "drop_rate": 0.0,
               "drop_path_rate": 0.0, "ape": False, "patch_norm": True, "in_chans": 3}


def mimir_swin_config(call, arch_dir):
    """(fields, reason, architecture text) for `build_swin_base|large` of robustbench's
    `MIMIR_swin_transformer.py` (Xu2024MIMIR): the `SwinTransformer(...)` the builder
    returns, read from its source, as rift's Swin with the builder's LayerNorm eps
    (`swin-…-eps1e-6`); None when `call` is no such builder."""
    path = os.path.join(arch_dir, "MIMIR_swin_transformer.py")
    tree = ast.parse(open(path).read())
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == call.callee), None)
    model = next((s.value for s in func.body if isinstance(s, ast.Assign)
                  and ast.unparse(s.targets[0]) == "model"), None) if func else None
    if not isinstance(model, ast.Call) or ast.unparse(model.func) != "SwinTransformer":
        return None
    kwargs = {k.arg: k.value for k in model.keywords}
    text = "MIMIR_swin_transformer." + " ".join(ast.unparse(model).split())
    norm = kwargs.pop("norm_layer", None)
    eps = None
    if isinstance(norm, ast.Call) and ast.unparse(norm.func) == "partial" \
            and [ast.unparse(a) for a in norm.args] == ["nn.LayerNorm"]:
        eps = {k.arg: literal(k.value, {}) for k in norm.keywords}.get("eps", 1e-5)
    value = {k: literal(v, {}) for k, v in kwargs.items() if k != "use_checkpoint"}
    odd = sorted(k for k, v in MIMIR_FIXED.items() if value.get(k, v) != v)
    exponent = round(-math.log10(eps)) if eps else None
    if eps is None or 10.0 ** -exponent != eps or odd:
        return None, f"MIMIR's SwinTransformer with {', '.join(odd) or 'that norm_layer'} not implemented yet", text
    size = swin_size(value["embed_dim"], value["depths"], value["num_heads"])
    tail = "" if exponent == 5 else f"-eps1e-{exponent}"
    arch = f"swin-{size}-p{value['patch_size']}-w{value['window_size']}-{value['img_size']}{tail}"
    return {"family": "swin", "arch": arch, "classes": value.get("num_classes", 1000)}, None, text


def meansparse_swin_config(tree, factory, call):
    """(fields, reason) for the MeanSparse Swin factory of robustbench's
    `Meansparse_swin_L.py` (`swin_large_patch4_window7_224_with_MeanSparse`, tree `tree`):
    the sizes its `model_args` give timm's SwinTransformer (the file's copy, with MeanSparse
    ops in every block) and the statistics of the `ImageNormalizer` it wraps the network
    in. rift's `swin-…-meansparse`."""
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == factory), None)
    args = next((s.value for s in func.body if isinstance(s, ast.Assign)
                 and ast.unparse(s.targets[0]) == "model_args"), None) if func else None
    if not isinstance(args, ast.Call) or ast.unparse(args.func) != "dict":
        return None, f"MeanSparse Swin factory `{factory}` not understood"
    value = {k.arg: literal(k.value, {}) for k in args.keywords}
    extra = sorted({k.arg for k in call.keywords} - {"pretrained", "pretrained_cfg", "pretrained_cfg_overlay"})
    if extra or set(value) - {"patch_size", "window_size", "embed_dim", "depths", "num_heads"}:
        return None, f"MeanSparse Swin with {', '.join(extra or sorted(value))} not implemented yet"
    norm = next((n for n in ast.walk(func) if isinstance(n, ast.Call)
                 and ast.unparse(n.func) == "ImageNormalizer"), None)
    if norm is None:
        return None, "MeanSparse Swin without its ImageNormalizer not understood"
    stats = {k.arg: literal(k.value, {}) for k in norm.keywords}
    size = swin_size(value["embed_dim"], value["depths"], value["num_heads"])
    arch = f"swin-{size}-p{value['patch_size']}-w{value['window_size']}-224-meansparse"
    return {"family": "swin", "arch": arch, "classes": 1000,
            "normalize": {"mean": list(stats["mean"]), "std": list(stats["std"]),
                          "source": "ImageNormalizer"}}, None


# What robustbench's only ImageNet RaResNet configuration (`get_model("ra_wrn101_2")`) fixes
# and rift's `ra-resnet-…` builds with it (src/engine/models/ra_resnet_config.rs), as source
# text; the stem width, depths, widths and group widths vary.
RA_RESNET_FIXED = {"kernel": "3", "strides": "[2, 2, 2, 2]", "dilation": "1",
                   "norm_layer": "[nn.Identity, nn.BatchNorm2d, nn.BatchNorm2d]",
                   "activation_layer": "[nn.SiLU] * 3", "downsample_norm": "nn.BatchNorm2d",
                   "dense_ratio": "None", "stem_type": "Stem", "stem_kernel": "7",
                   "stem_downsample_factor": "2", "stem_patch_size": "None",
                   "block_constructor": "BottleneckBlock", "ConvBlock": "Conv2dNormActivation",
                   "se_ratio": "0.25", "se_activation": "nn.ReLU"}


def ra_resnet_config(bound, consts):
    """(fields, reason) for robustarch's `NormalizedConfigurableModel(...)` (every argument
    named): rift's `ra-resnet-101-2` for Peng2023Robust's, `ra-resnet-stemS-depths…-widths…-
    groups…` for any other with the fixed parts `RA_RESNET_FIXED` names."""
    text = {k: ast.unparse(v) for k, v in bound.kwargs.items()}
    odd = sorted(k for k, v in RA_RESNET_FIXED.items() if text.get(k) != v)
    multipliers = literal(bound.kwargs["bottleneck_multipliers"], consts)
    if odd or any(m != 0.25 for m in multipliers):
        return None, f"RaResNet with {', '.join(odd) or 'bottleneck_multipliers'} other than Peng2023Robust's not implemented yet"
    value = lambda k: literal(bound.kwargs[k], consts)  # noqa: E731
    stem, depths, widths, groups = value("stem_width"), value("depths"), value("stage_widths"), value("group_widths")
    if (stem, depths, widths, groups) == (96, [7, 11, 18, 1], [512, 1024, 2016, 4032], [64, 128, 252, 504]):
        arch = "ra-resnet-101-2"
    else:
        dotted = lambda v: ".".join(map(str, v))  # noqa: E731
        arch = f"ra-resnet-stem{stem}-depths{dotted(depths)}-widths{dotted(widths)}-groups{dotted(groups)}"
    classes = value("num_classes") if "num_classes" in bound.kwargs else 1000
    norm = {"mean": value("mean"), "std": value("std"), "source": "NormalizedConfigurableModel mean/std arguments"}
    return {"family": "ra-resnet", "arch": arch, "classes": classes, "normalize": norm}, None


def cifar_resnext_config(call, consts):
    """(fields, reason) for `CifarResNeXt(ResNeXtBottleneck, depth=…, cardinality=…,
    base_width=…, num_classes=…)` (robustbench's `resnext.py`, AugMix): rift's
    `resnextDEPTH-CxWd` (src/engine/models/resnext_config.rs)."""
    value = lambda k: literal(call.kwargs[k], consts)  # noqa: E731
    block = ast.unparse(call.kwargs["block"]) if "block" in call.kwargs else \
        (ast.unparse(call.args[0]) if call.args else None)
    if block != "ResNeXtBottleneck":
        return None, f"CifarResNeXt with block {block} not implemented yet"
    depth, c, w = value("depth"), value("cardinality"), value("base_width")
    return {"family": "resnext", "arch": f"resnext{depth}-{c}x{w}d", "classes": value("num_classes")}, None
