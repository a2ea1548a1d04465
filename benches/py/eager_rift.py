"""RiFT as plain PyTorch eager, written for `cargo bench --bench versus` (issue 5).

The yardstick rift is measured against: SPEC.md's stages done the way the published code
does them (model copies, full forward passes, no activation cache), one subcommand per
stage, on the same checkpoint and CIFAR-10 pickles rift reads. Each prints one JSON line:
the stage's results, `seconds` (the stage's work only, after data and weights are loaded,
as rift's side measures it) and `peak_mb` (this process's peak resident memory).

    python eager_rift.py fixture --cache DIR [--arch resnet18 --width 16 --train 2000 --test 500 --n 256]
    python eager_rift.py STAGE --dir DIR [--n 256 --mrc-epochs 3 --device cpu --threads 2]
    STAGE: advset | mrc | finetune | eval | sweep | pipeline
"""
import argparse
import copy
import hashlib
import json
import os
import pickle
import resource
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "py"))
from at_task import adversarially_train, coloured_digits  # noqa: E402
from reference_models import Normalized, build, pgd  # noqa: E402
from zoo import build_zoo  # noqa: E402

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]
EPS, STEP, STEPS = 8 / 255, 2 / 255, 10  # SPEC.md §0 defaults


def load_split(d, split):
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for f in files:
        with open(os.path.join(d, "cifar-10-batches-py", f), "rb") as fh:
            b = pickle.load(fh, encoding="bytes")
        xs.append(np.asarray(b[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(b[b"labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def load_model(path, arch, width, device):
    model = network(arch, width)
    model.net.load_state_dict(torch.load(path, map_location="cpu"))
    return model.to(device).eval()


def pixels(x_u8, device):
    return x_u8.to(device).float() / 255


def adv_set(model, x, y, bs, device):
    """PGD-10 from the clean input (no random start: see benches/versus.rs), batch by batch."""
    out = []
    for i in range(0, len(y), bs):
        out.append(pgd(model, pixels(x[i:i + bs], device), y[i:i + bs].to(device), EPS, STEP, STEPS, random_start=False))
    return torch.cat(out), y.to(device)


@torch.no_grad()
def loss_acc(model, x, y, bs):
    loss, correct = 0.0, 0
    for i in range(0, len(y), bs):
        logits = model(x[i:i + bs])
        loss += F.cross_entropy(logits, y[i:i + bs], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + bs]).sum().item()
    return loss / len(y), 100.0 * correct / len(y)


def evaluate(model, x, y, bs, device):
    """What `rift eval` does: per batch a clean pass, PGD-10 and a pass on the PGD examples."""
    clean = robust = 0
    for i in range(0, len(y), bs):
        xb, yb = pixels(x[i:i + bs], device), y[i:i + bs].to(device)
        with torch.no_grad():
            clean += (model(xb).argmax(1) == yb).sum().item()
        adv = pgd(model, xb, yb, EPS, STEP, STEPS, random_start=False)
        with torch.no_grad():
            robust += (model(adv).argmax(1) == yb).sum().item()
    return clean, robust


def module_names(model):
    """Every Conv2d/Linear the forward pass uses (WRN's `sub_block1` is skipped)."""
    return [n[len("net."):] for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and "sub_block1" not in n]


def mrc(model, ax, ay, epochs, lr=1.0, bs=512, eps=0.1):
    """SPEC.md §1, "code" variant, as the published code does it: per module a deep copy of
    the model, only that weight trainable, SGD ascent on the full network, projection onto
    the ε-sphere after each epoch, then loss/accuracy on the whole adversarial set."""
    base_loss, base_acc = loss_acc(model, ax, ay, bs)
    scores = {}
    for name in module_names(model):
        m = copy.deepcopy(model).eval()
        for p in m.parameters():
            p.requires_grad_(False)
        w = m.get_submodule("net." + name).weight
        w.requires_grad_(True)
        w0 = w.detach().clone()
        opt = torch.optim.SGD([w], lr=lr)
        losses, accs = [], []
        for _ in range(epochs):
            perm = torch.randperm(len(ay), device=ay.device)
            for i in range(0, len(ay), bs):
                idx = perm[i:i + bs]
                loss = -F.cross_entropy(m(ax[idx]), ay[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                diff = w - w0
                ratio = (diff.norm() / w0.norm()).item()
                if ratio > eps:
                    w.copy_(w0 + diff * (eps / ratio))
            l, a = loss_acc(m, ax, ay, bs)
            losses.append(l)
            accs.append(a)
        k = int(np.argmax(losses))
        scores[name] = {"mrc": losses[k] - base_loss, "robust_acc_drop": base_acc - accs[k]}
        del m, opt
    lowest = min(scores, key=lambda n: scores[n]["mrc"])
    return {"baseline_loss": base_loss, "baseline_acc": base_acc, "modules": scores, "recommended": lowest}


def augment(xb):
    """Reflect-pad 4 + random 32×32 crop + horizontal flip (SPEC.md §2), on a uint8 batch."""
    n, _, h, w = xb.shape
    padded = F.pad(xb.float(), (4, 4, 4, 4), mode="reflect")
    ox, oy = torch.randint(0, 9, (n,)), torch.randint(0, 9, (n,))
    out = torch.stack([padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(3)
    return out / 255


def finetune_epoch(model, layer, tx, ty, test_x, test_y, device, bs=128, lr=0.001):
    """One epoch of SPEC.md §2 (train mode, so BN statistics update; only `layer` trains),
    then clean test accuracy (the published code's per-epoch selection)."""
    for p in model.parameters():
        p.requires_grad_(False)
    mod = model.get_submodule("net." + layer)
    params = [mod.weight] + ([mod.bias] if isinstance(mod, nn.Linear) and mod.bias is not None else [])
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    model.train()
    perm = torch.randperm(len(ty))
    loss_sum, seen = 0.0, 0
    for i in range(0, len(ty), bs):
        idx = perm[i:i + bs]
        xb, yb = augment(tx[idx]).to(device), ty[idx].to(device)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
        seen += len(idx)
    model.eval()
    _, acc = loss_acc(model, pixels(test_x, device), test_y.to(device), 256)
    for p in params:
        p.requires_grad_(False)
    return {"train_loss": loss_sum / seen, "test_acc": acc}


def choose_alpha(points, tol=0.1):
    base = next(p for p in points if p["alpha"] == 0.0)
    best = base
    for p in points:
        if p["robust_acc"] >= base["robust_acc"] - tol - 1e-9 and (
                p["clean_acc"] > best["clean_acc"] or (p["clean_acc"] == best["clean_acc"] and p["alpha"] < best["alpha"])):
            best = p
    return best["alpha"]


def sweep(model, at_state, ft_state, x, y, device, bs=128):
    """SPEC.md §3 over the 11-point grid on the network's state dict (the wrapper's mean/std
    stay): every float entry blended, integer counters carried."""
    points = []
    for k in range(11):
        a = k / 10
        state = {n: ((1 - a) * t + a * ft_state[n]) if t.is_floating_point() else (t if a < 0.5 else ft_state[n])
                 for n, t in at_state.items()}
        model.net.load_state_dict(state)
        clean, robust = evaluate(model, x, y, bs, device)
        points.append({"alpha": a, "clean_acc": 100.0 * clean / len(y), "robust_acc": 100.0 * robust / len(y)})
    return {"points": points, "chosen_alpha": choose_alpha(points)}


def network(arch, width):
    """The bench's network, pixels in [0, 1] in: a pytorch-cifar family of
    reference_models.py behind CIFAR normalisation, or a DM WideResNet (`dm-wrn-D-W`,
    Swish/SiLU) from robustbench's own dm_wide_resnet.py, which normalises inside."""
    if arch.startswith("dm-"):
        return Plain(build_zoo(arch, activation="silu"))
    return Normalized(build(arch, 10, 3, width=width), MEAN, STD)


class Plain(nn.Module):
    """A network that normalises itself, under the same `.net` as `Normalized`."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def fixture_key(args):
    """Hash of the recipe: the scripts that make the fixture and the sizes it is made for."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for f in [os.path.abspath(__file__)] + [os.path.join(here, "..", "..", "tests", "py", n)
                                            for n in ("at_task.py", "reference_models.py", "zoo.py")]:
        h.update(open(f, "rb").read())
    h.update(json.dumps([args.arch, args.width, args.train, args.test, args.n, args.device]).encode())
    return h.hexdigest()[:16]


def fixture(args):
    """The adversarially trained fixture, cached in `--cache`/ARCH-HASH (HASH: `fixture_key`):
    at_task.py's CIFAR-shaped task (`--train` / `--test` images as CIFAR-10 pickles, true
    labels), the network trained on it with at_task.py's recipe (`at.pth`), a "fine-tuned"
    state for the α sweep (the trained weights plus 5% noise, `ft.pth`), and the clean and
    PGD-10 robust accuracy on the first `--n` test images as the bench attacks them. Prints
    one JSON line: `dir`, `clean_acc`, `robust_acc`, `n`, `cached`, `seconds`."""
    out = os.path.join(args.cache, f"{args.arch}-{fixture_key(args)}")
    done = os.path.join(out, "fixture.json")
    if os.path.exists(done):
        # The folder it is in now, not the one it was trained in (a copied or moved
        # target/ keeps its fixtures).
        print(json.dumps({**json.load(open(done)), "dir": os.path.abspath(out), "cached": True}))
        return
    start = time.perf_counter()
    tmp = out + f".tmp{os.getpid()}"
    os.makedirs(os.path.join(tmp, "cifar-10-batches-py"))
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    xtr, ytr, xte, yte = coloured_digits(args.train, args.test, np.random.default_rng(0))
    dev = torch.device(args.device)
    model = network(args.arch, args.width).to(dev)
    adversarially_train(model, xtr, ytr)
    model = model.cpu()
    torch.save(model.net.state_dict(), f"{tmp}/at.pth")

    def pickled(name, x, y):
        b = {b"data": x.reshape(len(y), -1), b"labels": y.tolist(), b"batch_label": b"x", b"filenames": [b"f"] * len(y)}
        pickle.dump(b, open(f"{tmp}/cifar-10-batches-py/{name}", "wb"), protocol=2)
    per = args.train // 5
    for i in range(5):
        pickled(f"data_batch_{i + 1}", xtr[i * per:(i + 1) * per], ytr[i * per:(i + 1) * per])
    pickled("test_batch", xte, yte)
    state = model.net.state_dict()
    ft = {k: (v + 0.05 * v.std() * torch.randn_like(v)) if v.is_floating_point() and "running_var" not in k else v.clone()
          for k, v in state.items()}
    torch.save(ft, f"{tmp}/ft.pth")
    x, y = torch.from_numpy(xte[:args.n]), torch.from_numpy(yte[:args.n])
    clean, robust = evaluate(model, x, y, 128, torch.device("cpu"))
    result = {"dir": os.path.abspath(out), "clean_acc": 100.0 * clean / len(y), "robust_acc": 100.0 * robust / len(y),
              "n": len(y), "seconds": time.perf_counter() - start}
    json.dump(result, open(f"{tmp}/fixture.json", "w"))
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(json.dumps({**result, "cached": False}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["fixture", "advset", "mrc", "finetune", "eval", "sweep", "pipeline"])
    ap.add_argument("--dir")
    ap.add_argument("--cache", help="fixture: the folder of cached fixtures")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--mrc-epochs", type=int, default=3)
    ap.add_argument("--layer", default="layer2.1.conv2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.stage == "fixture":
        return fixture(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    model = load_model(f"{args.dir}/at.pth", args.arch, args.width, dev)
    test_x, test_y = load_split(args.dir, "test")
    test_x, test_y = test_x[:args.n], test_y[:args.n]
    train_x, train_y = load_split(args.dir, "train") if args.stage in ("finetune", "pipeline") else (None, None)
    ft_state = torch.load(f"{args.dir}/ft.pth", map_location=dev) if args.stage == "sweep" else None
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    out = {"stage": args.stage}
    t = time.perf_counter()
    if args.stage == "advset":
        ax, ay = adv_set(model, test_x, test_y, 128, dev)
        sync()
        out["seconds"] = time.perf_counter() - t
        out["adv_loss"], out["adv_acc"] = loss_acc(model, ax, ay, 512)
    elif args.stage == "mrc":
        ax, ay = adv_set(model, test_x, test_y, 128, dev)
        sync()
        t = time.perf_counter()
        out.update(mrc(model, ax, ay, args.mrc_epochs))
    elif args.stage == "finetune":
        out.update(finetune_epoch(model, args.layer, train_x, train_y, test_x, test_y, dev))
    elif args.stage == "eval":
        out["clean_correct"], out["robust_correct"] = evaluate(model, test_x, test_y, 128, dev)
    elif args.stage == "sweep":
        at_state = {k: v.clone() for k, v in model.net.state_dict().items()}
        out.update(sweep(model, at_state, ft_state, test_x, test_y, dev))
    elif args.stage == "pipeline":
        at_state = {k: v.clone() for k, v in model.net.state_dict().items()}
        ax, ay = adv_set(model, test_x, test_y, 128, dev)
        m = mrc(model, ax, ay, args.mrc_epochs)
        ft_model = copy.deepcopy(model)
        f = finetune_epoch(ft_model, m["recommended"], train_x, train_y, test_x, test_y, dev)
        ft_state = {k: v.detach().clone() for k, v in ft_model.net.state_dict().items()}
        s = sweep(model, at_state, ft_state, test_x, test_y, dev)
        out.update({"recommended": m["recommended"], "train_loss": f["train_loss"], **s})
    sync()
    out.setdefault("seconds", time.perf_counter() - t)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
