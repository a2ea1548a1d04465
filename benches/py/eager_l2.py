"""PGD-L2 evaluation in eager PyTorch, the baseline of the versus bench's `eval-l2` row
(issue 24: PGD-L2 evaluation >= 1.0x eager). The same work as `rift eval --norm l2 --eps 0.5
--step 0.1 --steps 10 --no-random-start`: per batch a clean pass, PGD-L2 as torchattacks'
`PGDL2` computes a step (the gradient over its per-sample L2 norm + 1e-10, the perturbation
shortened to ε, then [0, 1]), and a pass on the examples. No random start, so both sides
compute the same examples.

A script of its own, beside eager_rift.py, because the versus fixtures' cache key is a hash
of eager_rift.py: editing it would retrain them. Same arguments as eager_rift.py's `eval`.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eager_rift as er  # noqa: E402

EPS_L2, STEP_L2, STEPS = 0.5, 0.1, 10


def pgd_l2(model, x, y, eps, step, steps):
    x0 = x.detach()
    adv = x0.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, [adv])
        unit = g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10)
        delta = adv.detach() + step * unit - x0
        factor = (eps / delta.flatten(1).norm(dim=1)).clamp(max=1.0).view(-1, 1, 1, 1)
        adv = (x0 + delta * factor).clamp(0, 1)
    return adv.detach()


def evaluate_l2(model, x, y, bs, device):
    clean = robust = 0
    for i in range(0, len(y), bs):
        xb, yb = er.pixels(x[i:i + bs], device), y[i:i + bs].to(device)
        with torch.no_grad():
            clean += (model(xb).argmax(1) == yb).sum().item()
        adv = pgd_l2(model, xb, yb, EPS_L2, STEP_L2, STEPS)
        with torch.no_grad():
            robust += (model(adv).argmax(1) == yb).sum().item()
    return clean, robust


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["eval-l2"])
    ap.add_argument("--dir")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args, _ = ap.parse_known_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    model = er.load_model(f"{args.dir}/at.pth", args.arch, args.width, dev)
    test_x, test_y = er.load_split(args.dir, "test")
    test_x, test_y = test_x[:args.n], test_y[:args.n]
    t = time.perf_counter()
    out = {"stage": args.stage}
    out["clean_correct"], out["robust_correct"] = evaluate_l2(model, test_x, test_y, 128, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    out["seconds"] = time.perf_counter() - t
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
