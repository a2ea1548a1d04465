"""Writes rift's table of the RobustBench model zoo (assets/zoo/robustbench-1.1.1.json).

Run with the venv's python: `python3 tools/zoo_table.py [OUT.json]` (default: the checked-in
file; `-` writes to stdout). It reads robustbench 1.1.1's `model_zoo/cifar10.py`,
`cifar100.py` and `imagenet.py` from the unpacked wheel ($RIFT_VENV/wheels/robustbench, or
the running python's prefix) with the `ast` module only: robustbench is never imported,
since its dependency list does not install and importing it would run its code. The
`tests/zoo_names.rs` test regenerates the table and fails on any difference.

For every entry the table records robustbench's constructor as written, the architecture it
resolves to (a class defined in the zoo file, or imported from an architecture file and
derived from a network rift knows, is followed to its base class, its `super().__init__`
arguments, its `mu`/`sigma` buffers and its forward), and what rift needs
to build it: family, `--arch`, depth, width, activation, classes, the input normalisation,
ImageNet's evaluation preprocessing — or, where rift has no such network yet, the reason.
"""
import ast
import json
import os
import re
import sys

from zoo_configs import TORCHVISION_RESNETS, literal, ra_resnet_config, ra_wrn_config, robust_resnet_config, timm_vit_config, torchvision_config
from zoo_configs import cifar_resnext_config, convstem_config, convstem_vit_config, meansparse_swin_config, mimir_swin_config, timm_alexnet_config, timm_convnext_config, timm_swin_config
from zoo_ast import Call, assigned_call, bind, bind_all, callee_name, import_aliases, module_constants, parse
from zoo_ast import signature, wheel_dir
from zoo_xcit import xcit_config

VERSION = "1.1.1"
DATASETS = [("cifar10", "cifar10.py"), ("cifar100", "cifar100.py"), ("imagenet", "imagenet.py")]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "zoo",
                           f"robustbench-{VERSION}.json")


def architecture_signatures(arch_dir):
    """Signatures of the architectures rift can build, from robustbench's own files."""
    wanted = {"wide_resnet.py": ["WideResNet"], "dm_wide_resnet.py": ["DMWideResNet", "DMPreActResNet"],
              "resnet.py": ["ResNet", "PreActResNet"]}
    sigs, consts = {}, {}
    for file, classes in wanted.items():
        tree = parse(os.path.join(arch_dir, file))
        consts.update(module_constants(tree))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name in classes:
                init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
                sigs[node.name] = signature(init)
                forward = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
                sigs.setdefault("forwards", {})[node.name] = [ast.unparse(s) for s in forward.body]
        # `def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])` and friends.
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.args.args and len(node.body) == 1 \
                    and isinstance(node.body[0], ast.Return) and isinstance(node.body[0].value, ast.Call):
                sigs.setdefault("factories", {})[node.name] = node.body[0].value
    return sigs, consts


# BoostingWideResNet's forward (Pang2020Boosting): its base's, with the pooled features and
# the classifier's weight rows L2-normalised before the classifier (rift's hypersphere head,
# `boosting-wrn-D-K`).
HYPERSPHERE_STEPS = ["out = F.normalize(out, p=2, dim=1)",
                     "for _, module in self.fc.named_modules():\n    if isinstance(module, nn.Linear):\n"
                     "        module.weight.data = F.normalize(module.weight, p=2, dim=1)"]


def resolve_class(cls, signatures):
    """A class defined in a zoo file or imported from an architecture file: (base call,
    normalisation, forward quirk or None, head: "hypersphere" where the forward is the
    base's with `HYPERSPHERE_STEPS` before its classifier, else None)."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    params, defaults = signature(init) if init else ([], {})
    substitute = lambda a: defaults.get(a.id, a) if isinstance(a, ast.Name) else a  # noqa: E731
    base_call, buffers = None, {}
    for node in ast.walk(init) if init else []:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "__init__" and isinstance(node.func.value, ast.Call) \
                    and callee_name(node.func.value.func) == "super":
                base_call = node
            if node.func.attr == "register_buffer" and len(node.args) == 2:
                value = node.args[1]
                # torch.tensor([...]).view(1, 3, 1, 1)
                while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "view":
                    value = value.func.value
                buffers[literal(node.args[0], {})] = literal(value.args[0], {})
    base = callee_name(cls.bases[0]) if cls.bases else "object"
    forward = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward"), None)
    steps = [ast.unparse(s) for s in forward.body] if forward else []
    quirk, two_x_minus_one = None, False
    # Ding2020MMANet's forward: per-image standardisation, then the base network.
    per_image_steps = ["mu = x.mean(dim=(1, 2, 3), keepdim=True)", "std = x.std(dim=(1, 2, 3), keepdim=True)",
                       "std_min = torch.ones_like(std) / (x.shape[1] * x.shape[2] * x.shape[3]) ** 0.5",
                       "x = (x - mu) / torch.max(std, std_min)"]
    per_image = steps[:len(per_image_steps)] == per_image_steps
    if per_image:
        steps = steps[len(per_image_steps):]
    head, base_steps = None, signatures.get("forwards", {}).get(base)
    own = [s for s in steps if s != "x = (x - self.mu) / self.sigma"]
    if base_steps and own == base_steps[:-1] + HYPERSPHERE_STEPS + base_steps[-1:]:
        head, steps = "hypersphere", []
    for s in steps:
        if s in ("x = (x - self.mu) / self.sigma",) or s.startswith("return super("):
            continue
        if s == "x = 2.0 * x - 1.0":
            two_x_minus_one = True
            continue
        quirk = quirk or s
    if base in ("nn.Module", "torch.nn.Module"):
        return Call(base, [], {}), None, (f"architecture ensemble ({cls.name} averages the softmax of "
                                          "its members) not implemented yet"), None
    call = Call(base, [], {})
    if base_call is not None:
        fake = ast.Call(func=ast.Name(id=base), args=base_call.args, keywords=base_call.keywords)
        call = bind(fake, signatures, substitute)
    if per_image:
        norm = "per-image"
    elif "mu" in buffers and "sigma" in buffers:
        norm = {"mean": buffers["mu"], "std": buffers["sigma"], "source": "buffers"}
    elif two_x_minus_one:
        norm = {"mean": [0.5] * 3, "std": [0.5] * 3, "source": "forward: 2x - 1"}
    else:
        norm = None
    if quirk is not None and "mean(" in quirk:
        quirk = f"per-image standardisation in {cls.name}.forward (`{quirk}`) not implemented yet"
    elif quirk is not None:
        quirk = f"{cls.name}.forward does more than normalise (`{quirk}`): not implemented yet"
    return call, norm, quirk, head


def dm_activation(node):
    name = ast.unparse(node)
    return {"Swish": "silu", "nn.SiLU": "silu", "nn.ReLU": "relu"}.get(name)


UNSUPPORTED_CALLEES = [
    ("RobustWideResNet", "RobustWRN (per-stage depths and widths)"),
    ("robust_resnet.get_model", "RobustResNet (per-stage depths and widths)"),
    ("get_robustarch_model", "RaWideResNet (SE blocks)"),
    ("get_composite_model", "a composite of several members (Bai2023)"),
    ("get_nonlin_mixed_classifier", "MixedNUTS (a nonlinearly mixed pair of members)"),
    ("LRR_ResNet", "CARD LRR ResNet"),
    ("WidePreActResNet", "CARD Binary WidePreActResNet"),
    ("ResNest152", "ResNeSt-152"),
    ("rebuffi_sodef", "SODEF (a neural ODE on a DM WideResNet)"),
]


def unsupported_reason(call_text):
    timm = re.search(r"create_model\(\s*'([^']+)'", call_text)
    if timm:
        kind = "XCiT (timm `{}`)" if "xcit" in timm.group(1) else "timm `{}`"
        return f"architecture {kind.format(timm.group(1))} not implemented yet"
    torchvision = re.search(r"pt_models\.(\w+)", call_text)
    if torchvision:
        return (f"architecture torchvision `{torchvision.group(1)}` (ImageNet stem with max-pool, "
                "classifier `fc`) not implemented yet")
    for key, what in UNSUPPORTED_CALLEES:
        if key in call_text:
            return f"architecture {what} not implemented yet"
    return f"architecture `{call_text}` not implemented yet"


def branch_constants(func, env, consts):
    """The literal assignments (`x = [1, 2]`, `a, b = 1, 2`) on the path of `func`'s if-chain
    that holds for `env`, up to its `model = ...`: the local names that call reads."""
    out = {}

    def holds(test):
        return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) \
            and isinstance(test.comparators[0], ast.Constant) and env.get(test.left.id) == test.comparators[0].value

    def bind_names(target, value):
        try:
            if isinstance(target, ast.Name):
                out[target.id] = literal(value, {**consts, **out})
            elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                for t, v in zip(target.elts, value.elts):
                    bind_names(t, v)
        except (ValueError, TypeError, SyntaxError, KeyError, IndexError):
            pass

    def walk(stmts):
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                if walk(stmt.body if holds(stmt.test) else stmt.orelse):
                    return True
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                if ast.unparse(stmt.targets[0]) == "model":
                    return True
                bind_names(stmt.targets[0], stmt.value)
        return False
    walk(func.body)
    return out


def sparse_model_call(arch_dir, model, dataset):
    """What robustbench's `get_sparse_model(model, dataset)` (sparsified_model.py) builds for
    string arguments: (architecture file, class, call) of the branch its if-chain takes, the
    class followed through its import alias; None where no branch builds a network."""
    tree = parse(os.path.join(arch_dir, "sparsified_model.py"))
    aliases = import_aliases(tree)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_sparse_model")
    call = assigned_call(func, {"model": model, "dataset": dataset})
    if call is None or callee_name(call.func) not in aliases:
        return None
    file, cls = aliases[callee_name(call.func)]
    return file, cls, call


def meansparse_config(call, signatures, consts):
    """(fields, reason, architecture text) for `get_sparse_model(...)`: rift builds the
    MeanSparse DM WideResNet (the class of `Meansparse_wrn_*.py`, DMWideResNet's
    signature); any other wrapped network gets its reason."""
    args = [literal(a, {}) if isinstance(a, ast.Constant) else None for a in call.args]
    kwargs = {k: literal(v, {}) if isinstance(v, ast.Constant) else None for k, v in call.kwargs.items()}
    model = args[0] if args else kwargs.get("model")
    dataset = args[1] if len(args) > 1 else kwargs.get("dataset")
    arch_dir = os.path.join(wheel_dir(), "model_zoo", "architectures")
    found = isinstance(model, str) and sparse_model_call(arch_dir, model, dataset)
    if not found:  # a network given whole: `add_custom_layer_imagenet` on a timm ConvNeXt
        inner = call.args[0] if call.args and isinstance(call.args[0], ast.Call) else None
        fields, _ = rift_config(bind(inner, signatures, lambda a: a), signatures, consts) if inner else (None, None)
        if dataset == "imagenet-Linf" and fields and fields["family"] == "convnext":
            fields["arch"] += "-meansparse"
            if callee_name(inner.func) == "normalize_model":
                fields["normalize"] = {"mean": literal(inner.args[1], consts), "std": literal(inner.args[2], consts),
                                       "source": "normalize_model"}
            return fields, None, call.text()
        return None, f"MeanSparse around {inner and ast.unparse(inner)} not implemented yet", call.text()
    file, cls, node = found
    tree = parse(os.path.join(arch_dir, file + ".py"))
    if file == "Meansparse_swin_L":
        return meansparse_swin_config(tree, cls, node) + (f"{file}.{ast.unparse(node)}",)
    sigs = {n.name: signature(m) for n in tree.body if isinstance(n, ast.ClassDef)
            for m in n.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"}
    fake = ast.Call(func=ast.Name(id=cls), args=node.args, keywords=node.keywords)
    bound = bind(fake, sigs, lambda a: a)
    text = f"{file}.{bound.text()}"
    # The DM WideResNet with MeanSparse ops (the class names differ between the files).
    has_meansparse = any(
        isinstance(n, ast.ClassDef) and n.name == cls and "meansparse_end" in ast.unparse(n) for n in tree.body)
    if has_meansparse and cls == "NormalizedWideResNet":
        fields, reason = ra_wrn_config(bound, consts)
        if fields is not None:
            fields["family"] = "meansparse-ra-wrn"
            fields["arch"] = "meansparse-" + fields["arch"]
        return fields, reason, text
    if not (has_meansparse and cls.endswith("DMWideResNet")):
        return None, f"architecture MeanSparse over `{cls}` ({file}.py) not implemented yet", text
    fields, reason = rift_config(Call("DMWideResNet", [], bound.kwargs), signatures, consts)
    if fields is not None:
        fields["family"] = "meansparse-dm-wrn"
        fields["arch"] = "meansparse-" + fields["arch"]
    return fields, reason, text


def factory_config(factory, args, consts):
    """(fields, reason, architecture text) for a zoo entry that calls an architecture file's
    factory (`get_robustarch_model('ra_wrn70_16')`, imported from `robustarch_wide_resnet`
    as `get_model`): the class its if-chain builds for those literal arguments."""
    file, name = factory
    arch_dir = os.path.join(wheel_dir(), "model_zoo", "architectures")
    tree = parse(os.path.join(arch_dir, file + ".py"))
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    params = [a.arg for a in func.args.args] if func else []
    env = dict(zip(params, [literal(a, {}) if isinstance(a, ast.Constant) else None for a in args]))
    node = assigned_call(func, env) if func else None
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if node is None or callee_name(node.func) not in classes:
        return None, None, None
    init = next(m for m in classes[callee_name(node.func)].body
                if isinstance(m, ast.FunctionDef) and m.name == "__init__")
    bound = bind_all(node, init)
    text = f"{file}.{bound.text()}"
    if file == "robust_resnet" and bound.callee == "PreActResNet":
        # The factory's own parameters (their defaults, then the entry's arguments) and the
        # branch's local names.
        names = {a.arg: literal(d, consts) for a, d in
                 zip(func.args.args[len(func.args.args) - len(func.args.defaults):], func.args.defaults)}
        names.update({k: v for k, v in env.items() if v is not None})
        names.update(branch_constants(func, env, consts))
        fields, reason = robust_resnet_config(bound, {**consts, **names})
        return fields, reason, text
    if bound.callee == "NormalizedWideResNet":
        fields, reason = ra_wrn_config(bound, consts)
        return fields, reason, text
    if bound.callee == "NormalizedConfigurableModel":
        fields, reason = ra_resnet_config(bound, {**consts, **module_constants(tree)})
        return fields, reason, text
    return None, f"architecture `{bound.callee}` ({file}.py) not implemented yet", text


def paf_config(factory, call, consts):
    """(fields, reason, architecture text) for a factory of `paf_wide_resnet.py`
    (`pssilu_wrn_28_10(num_classes=10)`): the `PAF_WideResNet` it returns, the entry's
    keywords passed on through its `**kwargs` and its activation argument followed to what
    the factory assigns it; rift's `pssilu-wrn-D-K` where that is one `PSSiLU()`."""
    tree = parse(os.path.join(wheel_dir(), "model_zoo", "architectures", "paf_wide_resnet.py"))
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == factory), None)
    ret = func.body[-1].value if func and isinstance(func.body[-1], ast.Return) else None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and isinstance(ret, ast.Call)
                and n.name == callee_name(ret.func)), None)
    if cls is None:
        return None, None, None
    local = {ast.unparse(s.targets[0]): s.value for s in func.body
             if isinstance(s, ast.Assign) and len(s.targets) == 1}
    node = ast.Call(func=ret.func, args=[local.get(ast.unparse(a), a) for a in ret.args],
                    keywords=[k for k in ret.keywords if k.arg] + call.keywords)
    init = next(m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__")
    bound = bind_all(node, init)
    text = f"paf_wide_resnet.{bound.text()}"
    value = lambda k: literal(bound.kwargs[k], consts)  # noqa: E731
    act = ast.unparse(bound.kwargs["activation"])
    if act != "PSSiLU()" or value("dropRate") != 0:
        return None, f"PAF_WideResNet with activation `{act}`, dropRate {value('dropRate')} not implemented yet", text
    depth, width = value("depth"), value("widen_factor")
    return {"family": "pssilu-wrn", "arch": f"pssilu-wrn-{depth}-{width}", "depth": depth, "width": width,
            "activation": "pssilu", "classes": value("num_classes")}, None, text


def rift_config(call, signatures, consts):
    """(fields, reason): what rift builds for a resolved call, or why it cannot."""
    value = lambda k: literal(call.kwargs[k], consts)  # noqa: E731
    name = call.callee.split(".")[-1]
    if name == "normalize_model" and call.args and isinstance(call.args[0], ast.Call):
        # robustbench's input-normalising wrapper: the network is its first argument (the
        # statistics are read by `entry`).
        return rift_config(bind(call.args[0], signatures, lambda a: a), signatures, consts)
    if name == "create_model":
        vit = timm_vit_config(call, consts, os.path.join(wheel_dir(), "model_zoo", "architectures"))
        if vit:
            return vit
        xcit = xcit_config(call, consts, os.path.join(wheel_dir(), "model_zoo", "architectures"), literal)
        if xcit:
            return xcit
    if call.callee.startswith("pt_models.") and name in TORCHVISION_RESNETS:
        return torchvision_config(call, consts)
    if call.callee == "timm.create_model" and timm_convnext_config(call, consts):
        return timm_convnext_config(call, consts)
    if call.callee == "timm.create_model" and timm_alexnet_config(call, consts):
        return timm_alexnet_config(call, consts)
    if call.callee == "timm.create_model" and timm_swin_config(call, consts):
        return timm_swin_config(call, consts)
    if name == "get_convstem_models":  # its ConvNeXts, else its ViTs
        arch_dir = os.path.join(wheel_dir(), "model_zoo", "architectures")
        return convstem_config(call, consts) or convstem_vit_config(call, consts, arch_dir)
    if name == "CifarResNeXt":
        return cifar_resnext_config(call, consts)
    if name == "WideResNet":
        depth, width = value("depth"), value("widen_factor")
        return {"family": "wrn", "arch": f"wrn-{depth}-{width}", "depth": depth, "width": width,
                "activation": "relu", "classes": value("num_classes"),
                "sub_block1": value("sub_block1"), "bias_last": value("bias_last")}, None
    if name in ("DMWideResNet", "DMPreActResNet"):
        act = dm_activation(call.kwargs["activation_fn"])
        if act is None:
            return None, f"DM activation `{ast.unparse(call.kwargs['activation_fn'])}` not implemented yet"
        if value("padding") != 0 or value("num_input_channels") != 3:
            return None, "DM network with padding or other than 3 input channels not implemented yet"
        depth = value("depth")
        norm = {"mean": value("mean"), "std": value("std"), "source": "DM mean/std arguments"}
        if name == "DMWideResNet":
            fields = {"family": "dm-wrn", "arch": f"dm-wrn-{depth}-{value('width')}", "depth": depth,
                      "width": value("width")}
        elif depth in (18, 34):
            fields = {"family": "dm-preactresnet", "arch": f"dm-preactresnet{depth}", "depth": depth, "width": 64}
        else:
            return None, f"DM PreActResNet of depth {depth} not implemented yet (rift has 18 and 34)"
        fields.update({"activation": act, "classes": value("num_classes"), "normalize": norm})
        return fields, None
    if name in ("ResNet", "PreActResNet"):
        block = ast.unparse(call.kwargs["block"])
        blocks = value("num_blocks")
        depths = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34}
        if name == "ResNet":
            if block not in ("BasicBlock", "Bottleneck"):
                return None, f"ResNet with block {block} not implemented yet"
            depth = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34 if block == "BasicBlock" else 50}.get(tuple(blocks))
            family = "resnet" if block == "BasicBlock" else "resnet-bottleneck"
        else:
            # PreActBlock with out_shortcut=True computes exactly PreActBlockV2's forward
            # (the shortcut sees the activated input); with bn_before_fc that is rift's
            # preactresnet. PreActBlock with neither is V1.
            bn, out_shortcut = value("bn_before_fc"), value("out_shortcut")
            v2 = block == "PreActBlockV2" or (block == "PreActBlock" and out_shortcut)
            v1 = block == "PreActBlock" and not out_shortcut and not bn
            if not ((v2 and bn is True) or v1):
                return None, (f"architecture PreActResNet with {block}, bn_before_fc={bn}, "
                              f"out_shortcut={out_shortcut} not implemented yet")
            depth, family = depths.get(tuple(blocks)), "preactresnet-v1" if v1 else "preactresnet"
        if depth is None:
            return None, f"{name} with blocks {blocks} not implemented yet"
        prefix = "preactresnet" if name == "PreActResNet" else "resnet"
        suffix = "-v1" if family == "preactresnet-v1" else ""
        return {"family": family, "arch": f"{prefix}{depth}{suffix}", "depth": depth, "width": 64,
                "activation": "relu", "classes": value("num_classes")}, None
    if name == "RobustWideResNet":
        depths, channels = value("depth_configs"), value("channel_configs")
        # robust_wide_resnet.py's default strides are 1, 2, 2.
        strides = value("stride_config") if "stride_config" in call.kwargs else [1, 2, 2]
        if list(strides) != [1, 2, 2] or len(channels) != 4:
            return None, "RobustWideResNet with other strides or stages not implemented yet"
        dotted = lambda v: ".".join(str(x) for x in v)  # noqa: E731
        return {"family": "robust-wrn", "arch": f"robust-wrn-{dotted(depths)}-{dotted(channels)}",
                "activation": "relu", "classes": value("num_classes")}, None
    return None, unsupported_reason(call.text())


def entries_of(dataset, tree, signatures, consts):
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    aliases = import_aliases(tree)
    # Classes imported from an architecture file that derive from a network rift knows
    # (BoostingWideResNet), resolved as the zoo file's own are.
    arch_dir = os.path.join(wheel_dir(), "model_zoo", "architectures")
    for alias, (file, cls) in aliases.items():
        path = os.path.join(arch_dir, file + ".py")
        if alias not in classes and os.path.isfile(path):
            classes.update({alias: n for n in parse(path).body if isinstance(n, ast.ClassDef)
                            and n.name == cls and n.bases and callee_name(n.bases[0]) in signatures})
    # Architecture-file factories the zoo file imports by another name, and those of
    # `paf_wide_resnet.py`.
    factories = {alias: target for alias, target in aliases.items()
                 if target[1] == "get_model" or target[0] == "paf_wide_resnet"}
    consts = {**consts, **module_constants(tree)}
    dicts = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) \
                and callee_name(stmt.value.func) == "OrderedDict":
            dicts[stmt.targets[0].id] = stmt.value
    # The last OrderedDict maps ThreatModel.X to the per-threat dicts.
    *threat_dicts, index = dicts.values()
    out = []
    for pair in index.args[0].elts:
        threat = ast.unparse(pair.elts[0]).split(".")[-1]
        for item in dicts[pair.elts[1].id].args[0].elts:
            name = literal(item.elts[0], {})
            spec = {literal(k, {}): v for k, v in zip(item.elts[1].keys, item.elts[1].values)}
            out.append(entry(dataset, threat, name, spec, classes, signatures, consts, factories))
    return out


def entry(dataset, threat, name, spec, classes, signatures, consts, file_factories):
    model = spec["model"]
    constructor = ast.unparse(model)
    body = model.body if isinstance(model, ast.Lambda) else model
    norm, quirk, head = None, None, None
    factories = signatures.get("factories", {})
    if isinstance(body, ast.Name) and body.id in classes:
        call, norm, quirk, head = resolve_class(classes[body.id], signatures)
    elif isinstance(body, ast.Name) and body.id in factories:
        call = bind(factories[body.id], signatures, lambda a: a)
    elif isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id in factories and not body.args:
        call = bind(factories[body.func.id], signatures, lambda a: a)
    elif isinstance(body, ast.Call):
        call = bind(body, signatures, lambda a: a)
    else:
        call = Call(ast.unparse(body), [], {})
    architecture = call.text()
    factory_fields = None
    if isinstance(body, ast.Call) and callee_name(body.func) in file_factories:
        file, factory = file_factories[callee_name(body.func)]
        factory_fields = paf_config(factory, body, consts) if file == "paf_wide_resnet" \
            else factory_config((file, factory), body.args, consts)
    elif isinstance(body, ast.Call) and callee_name(body.func) == "robust_resnet.get_model":
        # Called through the module (`from ...architectures import robust_resnet`).
        factory_fields = factory_config(("robust_resnet", "get_model"), body.args, consts)
    if quirk:
        fields, reason = None, quirk
    elif factory_fields and factory_fields[2]:
        fields, reason, architecture = factory_fields
    elif call.callee == "get_sparse_model":
        fields, reason, architecture = meansparse_config(call, signatures, consts)
    elif call.callee.startswith("build_swin") and \
            mimir_swin_config(call, os.path.join(wheel_dir(), "model_zoo", "architectures")):
        fields, reason, architecture = mimir_swin_config(call, os.path.join(wheel_dir(), "model_zoo", "architectures"))
    else:
        fields, reason = rift_config(call, signatures, consts)
    if head == "hypersphere" and fields is not None and fields["family"] == "wrn":
        fields.update({"family": "boosting-wrn", "arch": "boosting-" + fields["arch"]})
        architecture += f", hypersphere head ({body.id}.forward L2-normalises features and fc rows)"
    elif head == "hypersphere":
        fields, reason = None, f"architecture {architecture} with a hypersphere head not implemented yet"
    if norm is None and fields is not None:
        norm = fields.pop("normalize", None)
    if norm is None and isinstance(body, ast.Call) and callee_name(body.func) == "normalize_model":
        norm = {"mean": literal(body.args[1], consts), "std": literal(body.args[2], consts),
                "source": "normalize_model"}
    row = {"dataset": dataset, "threat": threat, "name": name, "constructor": " ".join(constructor.split()),
           "architecture": architecture}
    row.update(fields or {})
    row["normalize"] = norm if norm is not None else "none"
    row["preprocessing"] = literal(spec["preprocessing"], {}) if "preprocessing" in spec else None
    row["unsupported"] = reason
    return row


def table():
    root = wheel_dir()
    signatures, consts = architecture_signatures(os.path.join(root, "model_zoo", "architectures"))
    entries = []
    for dataset, file in DATASETS:
        entries += entries_of(dataset, parse(os.path.join(root, "model_zoo", file)), signatures, consts)
    return {"robustbench": VERSION, "generator": "tools/zoo_table.py",
            "sources": [f"robustbench/model_zoo/{f}" for _, f in DATASETS], "entries": entries}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    text = json.dumps(table(), indent=1) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
