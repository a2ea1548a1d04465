"""The zoo coverage fixture (tests/zoo_coverage.rs, issue 21 §5): one network per distinct
architecture among the supported entries of rift's zoo table, built by robustbench's own
code (its architecture files, loaded by path from the unpacked wheel; torchvision for the
ImageNet ResNets) with random weights, randomised BatchNorm statistics (and MeanSparse
statistics that bite), saved where `--zoo` looks, with PyTorch's logits on random inputs.

  zoo_coverage.py OUT [MAX_PARAMS]

The entry's `architecture` text (every argument bound) is evaluated as written. A network
over MAX_PARAMS parameters (default 15M) is built at a smaller depth and width through the
same class (depth 10 or one block per stage, width 2 or 16-wide stages), except for the
smallest member of each family, which is always built as published: every family's real
constructor runs at least once. Prints one JSON line per network: the id, whether it was
reduced (rift then reads it with `--arch` = the reduced name, or detection), the parameter
count, and the file stems.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import randomize_bn  # noqa: E402
from zoo import (ARCH_DIR, arch_package_module, build_boosting, ra_module,  # noqa: E402
                 randomize_meansparse, robust_modules, zoo_module)

TABLE = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "zoo", "robustbench-1.1.1.json")
SHRINK = {"on": False}
# Built through timm (and robustbench's ConvStem factory): their entries are checked by
# their own tests through the same real constructors (tests/zoo_vit.rs, tests/zoo_convnext.rs,
# tests/zoo_alexnet.rs, tests/zoo_swin.rs, tests/zoo_xcit.rs; robustbench's ImageNet RaResNet, made of
# torchvision's blocks: tests/zoo_ra_resnet.rs), not yet walked here.
TIMM_FAMILIES = ("vit", "convnext", "alexnet", "swin", "xcit", "ra-resnet")


def shrunk(kw):
    """The same constructor arguments at a small depth and width."""
    kw = dict(kw)
    if isinstance(kw.get("depth"), int) and kw["depth"] > 10:
        kw["depth"] = 10
    if isinstance(kw.get("depth"), list):
        kw["depth"] = [1] * len(kw["depth"])
    for key in ("width", "widen_factor"):
        if isinstance(kw.get(key), int) and kw[key] > 2:
            kw[key] = 2
    if "stage_width" in kw:
        kw["stem_width"], kw["stage_width"] = 16, [16, 32, 64]
    return kw


def shrinking(cls):
    def make(*args, **kw):
        return cls(*args, **(shrunk(kw) if SHRINK["on"] else kw))
    return make


def scope():
    dm = zoo_module("dm_wide_resnet")
    resnet = zoo_module("resnet")
    wrn, robust_rn = robust_modules()
    ra = ra_module()
    import types
    names = {"nn": nn, "torch": torch, "Swish": dm.Swish}
    for k in ("CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD"):
        names[k] = getattr(dm, k)
    for k in ("PreActBlock", "PreActBlockV2", "BasicBlock", "Bottleneck"):
        names[k] = getattr(resnet, k)
    names["ResNet"] = resnet.ResNet
    names["PreActResNet"] = resnet.PreActResNet
    names["WideResNet"] = shrinking(zoo_module("wide_resnet").WideResNet)
    names["DMWideResNet"] = shrinking(dm.DMWideResNet)
    names["DMPreActResNet"] = dm.DMPreActResNet
    names["RobustWideResNet"] = wrn.RobustWideResNet
    names["robust_resnet"] = robust_rn
    paf = zoo_module("paf_wide_resnet")
    names["paf_wide_resnet"] = types.SimpleNamespace(PAF_WideResNet=shrinking(paf.PAF_WideResNet))
    names["PSSiLU"] = paf.PSSiLU
    names["robustarch_wide_resnet"] = types.SimpleNamespace(
        NormalizedWideResNet=shrinking(ra.NormalizedWideResNet))
    ms_ra = ra_module(meansparse=True)
    names["Meansparse_ra_wrn_70_16"] = types.SimpleNamespace(
        NormalizedWideResNet=shrinking(ms_ra.NormalizedWideResNet))
    ms94 = zoo_module("Meansparse_wrn_94_16")
    names["Meansparse_wrn_94_16"] = types.SimpleNamespace(
        MeanSparse_DMWideResNet=shrinking(ms94.MeanSparse_DMWideResNet))
    ms70 = zoo_module("Meansparse_wrn_70_16")
    names["Meansparse_wrn_70_16"] = types.SimpleNamespace(DMWideResNet=shrinking(ms70.DMWideResNet))
    import torchvision.models as pt_models
    names["pt_models"] = pt_models
    names["normalize_model"] = zoo_module("utils_architectures").normalize_model
    return names


def entry_class(dataset, name):
    """The class `name` that robustbench's `model_zoo/<dataset>.py` defines for an entry
    (its `mu`/`sigma` buffers, Hendrycks2019's `2x - 1`, Ding2020MMA's per-image
    standardisation live there), its source run over the architecture files; None when
    the file defines no such class."""
    import ast
    import torch.nn.functional as F
    src = open(os.path.join(ARCH_DIR, "..", dataset + ".py")).read()
    cls = next((n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        return None
    resnet = zoo_module("resnet")
    names = {"torch": torch, "nn": nn, "F": F, "WideResNet": zoo_module("wide_resnet").WideResNet}
    names.update({k: getattr(resnet, k) for k in dir(resnet) if not k.startswith("_")})
    resnext = zoo_module("resnext")  # AugMix's CifarResNeXt and its bottleneck
    names.update({k: getattr(resnext, k) for k in ("CifarResNeXt", "ResNeXtBottleneck")})
    exec(ast.get_source_segment(src, cls), names)
    return names[name]


def build(entry, names):
    """robustbench's network for `entry` (at the current SHRINK setting) and the name rift
    reads a reduced one with (None: detection)."""
    text = entry["architecture"]
    reduced_arch = None
    if "hypersphere head" in text:
        depth, width = entry["depth"], entry["width"]
        if SHRINK["on"]:
            depth, width = 10, 2
            reduced_arch = f"boosting-wrn-{depth}-{width}"
        return build_boosting(depth, width), reduced_arch
    cls = entry_class(entry["dataset"], entry["constructor"]) if entry["constructor"].isidentifier() else None
    if cls is not None:
        import inspect
        kw = {k: entry[k2] for k, k2 in (("depth", "depth"), ("widen_factor", "width"))
              if k in inspect.signature(cls.__init__).parameters and SHRINK["on"]}
        return cls(**shrunk(kw)), None
    if text.startswith("robust_resnet.PreActResNet("):
        return eval(entry["constructor"], names)(), None
    mean_std = entry["normalize"]
    if isinstance(mean_std, dict):
        names["mu"], names["sigma"] = tuple(mean_std["mean"]), tuple(mean_std["std"])
    # torchvision's weights would be downloaded: random ones, as everywhere here.
    return eval(text.replace("pretrained=True", "weights=None"), names), reduced_arch


def params(entry, names):
    with torch.device("meta"):
        net, _ = build(entry, names)
    return sum(p.numel() for p in net.parameters())


def main(out, max_params):
    torch.set_num_threads(2)
    table = json.load(open(TABLE))["entries"]
    names = scope()
    firsts = {}
    for e in table:
        if e["unsupported"] is None and e["family"] not in TIMM_FAMILIES:
            firsts.setdefault(e["architecture"], e)
    sizes = {a: params(e, names) for a, e in firsts.items()}
    smallest = {}
    for a, e in firsts.items():
        fam = e["family"]
        if fam not in smallest or sizes[a] < sizes[smallest[fam]]:
            smallest[fam] = a
    for i, (a, e) in enumerate(firsts.items()):
        zid = f"{e['dataset']}/{e['threat']}/{e['name']}"
        SHRINK["on"] = sizes[a] > max_params and smallest[e["family"]] != a
        torch.manual_seed(i)
        net, reduced_arch = build(e, names)
        randomize_bn(net, seed=i)
        if any(type(m).__name__ == "MeanSparse" for m in net.modules()):
            randomize_meansparse(net, seed=i)
        net.eval()
        size = 64 if e["dataset"] == "imagenet" else 32
        x = torch.rand(2, 3, size, size)
        model = net
        stats = e["normalize"]
        # Statistics the network does not apply itself (pytorch-cifar's ResNets, the
        # TRADES WideResNets, torchvision's): robustbench wraps it; rift's --zoo flags
        # apply them.
        own = any(k in ("mu", "sigma") or k.startswith("normalize.") for k in net.state_dict())
        external = isinstance(stats, dict) and stats["source"] in ("buffers", "normalize_model") and not own
        if external:
            model = zoo_module("utils_architectures").normalize_model(net, stats["mean"], stats["std"]).eval()
        with torch.no_grad():
            logits = model(x)
        stem = os.path.join(out, zid.replace("/", "~"))
        if SHRINK["on"]:
            path = stem + ".reduced.pt"
        else:
            path = os.path.join(out, "models", zid + ".pt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save(net.state_dict(), path)
        np.save(stem + ".in.npy", x.numpy())
        np.save(stem + ".ref.npy", logits.numpy())
        print(json.dumps({"id": zid, "family": e["family"], "reduced_file": path if SHRINK["on"] else None,
                          "reduced_arch": reduced_arch, "params": sum(p.numel() for p in net.parameters()),
                          "published_params": sizes[a], "ref_scale": logits.abs().max().item()}),
              flush=True)
        del net, model


if __name__ == "__main__":
    main(sys.argv[1], int(float(sys.argv[2])) if len(sys.argv) > 2 else 15_000_000)
