"""The zoo table's XCiT entries (robustbench 1.1.1's Debenedetti2022Light_XCiT-S12|M12|L12
on cifar10, cifar100 and imagenet Linf), read with `ast` from the wheel's
`model_zoo/architectures/xcit.py` like the rest of the table (tools/zoo_table.py).

The zoo files' constructors call `timm.create_model('debenedetti2020light_xcit_s_cifar10_linf',
pretrained=True)`: names that nothing registers (2020 for 2022, `s` for `s12`), so that
constructor itself cannot run. `robustbench.load_model` never calls it: it first tries the
timm name it derives from the entry, `debenedetti2022light_xcit_s12_cifar10_linf` (the
entry's name lower-cased, dashes to underscores, then `_DATASET_THREAT`), which
`xcit.py` does register. The table maps each constructor to that registered builder: the
same paper, size and dataset, the one robustbench builds. The builder's `model_kwargs` give
the shape; `adapt_model_patches(model, Q)` the patch embedding's strides (`-p16toQ`);
`normalize_timm_model(model)` the statistics of its `default_cfg` (`xcit._cfg(...,
mean=CIFAR10_MEAN, std=CIFAR10_STD)`). The ImageNet builders wrap nothing: raw pixels.
"""
import ast
import os
import re

# timm's Xcit defaults that rift's `xcit` family builds; `eta` only initialises the layer
# scales, which the file holds.
XCIT_DEFAULTS = dict(num_classes=1000, mlp_ratio=4.0, qkv_bias=True, cls_attn_layers=2, tokens_norm=False)
SHAPE_ARGS = {"patch_size", "embed_dim", "depth", "num_heads", "eta"}
# rift's standard sizes (src/engine/models/xcit_config.rs): (width, heads) → letter.
XCIT_SIZES = {(128, 4): "n", (192, 4): "t", (384, 8): "s", (512, 8): "m", (768, 16): "l"}
UNREGISTERED = re.compile(r"debenedetti2020light_xcit_([a-z])_(\w+)_linf$")


def xcit_arch(dim, depth, heads, patch, adapted):
    """rift's `--arch` name of an XCiT."""
    p = f"p{patch}" if adapted is None else f"p{patch}to{adapted}"
    size = XCIT_SIZES.get((dim, heads))
    return f"xcit-{size}{depth}-{p}" if size else f"xcit-dim{dim}-depth{depth}-heads{heads}-{p}"


def registered_builders(arch_dir):
    """{registered name: (model_kwargs, adapted patch or None, normalised)} and the
    `default_cfgs` statistics {name: (mean, std)} of `xcit.py`."""
    with open(os.path.join(arch_dir, "xcit.py")) as f:
        tree = ast.parse(f.read())
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                consts[node.targets[0].id] = node.value
    stats = {}
    for key, cfg in zip(consts["default_cfgs"].keys, consts["default_cfgs"].values):
        kw = {k.arg: k.value for k in cfg.keywords}
        if "mean" in kw:
            stats[key.value] = (list(consts[kw["mean"].id]), list(consts[kw["std"].id]))
    builders = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef) or "xcit._create_xcit(" not in ast.unparse(func):
            continue
        kwargs, adapted, normalised = None, None, False
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "model_kwargs":
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg}
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "adapt_model_patches":
                adapted = ast.literal_eval(node.args[1])
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "normalize_timm_model":
                normalised = True
        builders[func.name] = (kwargs, adapted, normalised)
    return builders, stats


def xcit_config(call, consts, arch_dir, literal):
    """(fields, reason) for `timm.create_model('debenedetti2020light_xcit_…_linf', ...)`;
    None when the call names no Debenedetti XCiT."""
    name = literal(call.args[0], consts) if call.args else None
    match = UNREGISTERED.match(name or "")
    if not match:
        return None
    builders, stats = registered_builders(arch_dir)
    size, dataset = match.groups()
    target = f"debenedetti2022light_xcit_{size}12_{dataset}_linf"
    if target not in builders:
        return None, f"timm `{name}` is not registered and neither is `{target}`"
    kwargs, adapted, normalised = builders[target]
    given = {k: literal(v, consts) for k, v in call.kwargs.items() if k != "pretrained"}
    cfg = {**XCIT_DEFAULTS, **kwargs, **given}
    other = sorted(k for k in set(cfg) - set(XCIT_DEFAULTS) - SHAPE_ARGS)
    if other or cfg["mlp_ratio"] != 4.0 or not cfg["qkv_bias"] or not cfg["tokens_norm"] \
            or cfg["cls_attn_layers"] != 2:
        return None, f"timm XCiT `{target}` with {', '.join(other) or 'another configuration'} not implemented yet"
    classes = {"cifar10": 10, "cifar100": 100}.get(dataset, cfg["num_classes"])
    dim, depth = cfg["embed_dim"], cfg["depth"]
    fields = {"family": "xcit",
              "arch": xcit_arch(dim, depth, cfg["num_heads"], cfg["patch_size"], adapted),
              "depth": depth, "width": dim, "activation": "gelu", "classes": classes}
    if normalised:
        mean, std = stats[target]
        fields["normalize"] = {"mean": mean, "std": std, "source": "normalize_timm_model"}
    return fields, None
