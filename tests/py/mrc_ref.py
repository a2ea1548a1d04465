"""The published MRC (SPEC.md §1) in plain PyTorch, the reference tests/mrc.rs and
tests/zoo_pipeline.rs compare `rift mrc` against: per module, SGD ascent of the
cross-entropy on the adversarial set at lr 1, the weight kept within 10% of its norm after
every step, and the best epoch's loss increase and robust-accuracy drop."""
import numpy as np
import torch
import torch.nn.functional as F


def published_mrc(model, modules, adv, y, epochs):
    """{name: [MRC, robust-accuracy drop in %]} for each (name, module) of `modules` (with
    a `weight`) inside `model` (eval mode, every parameter frozen), on `adv` labelled `y`
    in one batch: shuffling a single batch cannot change the mean loss."""

    def evaluate():
        with torch.no_grad():
            out = model(adv)
            return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item() * 100

    base_loss, base_acc = evaluate()
    result = {}
    for name, m in modules:
        w = m.weight
        w0 = w.detach().clone()
        w.requires_grad_(True)
        opt = torch.optim.SGD([w], lr=1.0)
        losses, accs = [], []
        for epoch in range(epochs):
            loss = -F.cross_entropy(model(adv), y)
            opt.zero_grad(); loss.backward(); opt.step()
            with torch.no_grad():
                d = w - w0
                ratio = d.norm() / w0.norm()
                if ratio > 0.1:
                    w.copy_(w0 + d * (0.1 / ratio))
            l, a = evaluate()
            losses.append(l); accs.append(a)
        best = int(np.argmax(losses))
        result[name] = [losses[best] - base_loss, base_acc - accs[best]]
        with torch.no_grad():
            w.copy_(w0)
        w.requires_grad_(False)
    return result


def print_published_mrc(model, x, y, modules_csv, named=None):
    """Prints, as JSON, `published_mrc` of the comma-separated modules of `named` (default
    `model`; a wrapped network names its modules without the wrapper's prefix) with every
    parameter frozen, on the PGD-10 adversarial set (8/255, step 2/255, no random start)
    of `x`, `y`, 5 epochs: what the zoo tests compare `rift mrc` with
    (`common::zoo_mrc_json` runs rift with those settings)."""
    import json
    from reference_models import pgd
    names = modules_csv.split(",")
    for p in model.parameters():
        p.requires_grad_(False)
    adv = pgd(model, x, y, 8 / 255, 2 / 255, 10, random_start=False)
    chosen = [(n, m) for n, m in (named or model).named_modules() if n in names]
    print(json.dumps(published_mrc(model, chosen, adv, y, 5)))
