"""AutoAttack test fixtures and reference numbers (tests/autoattack.rs, benches/autoattack.rs).

  train OUT_DIR N_TEST        the CIFAR-shaped task of at_task.py (3×32×32, 10 classes: MNIST
                              digits drawn in random colours), CIFAR-10 binary test batch, and a
                              small ResNet18 (width 4) adversarially trained on it with
                              at_task.py's recipe -> OUT_DIR/model.safetensors
  aa MODEL DATA N EPS ATTACKS [APGD_ITERS TARGETS FAB_ITERS SQUARE_QUERIES]
                              pyautoattack 0.2.0 on the first N test images (the demo's MNIST
                              when MODEL is the demo model, else the CIFAR-shaped set) with the
                              standard version's settings (budgets as given); ATTACKS is
                              `autoattack` or a list; each list entry `+`-joined runs as one
                              ensemble. Prints JSON {name: {"clean": %, "robust": {attack:
                              cumulative %}, "final": %, "seconds": s, "robust_flags":
                              [bool per point]}} per list entry.
  aa-l2 MODEL DATA N EPS ATTACKS [...]
                              the same under the L2 threat model (pyautoattack's norm='L2').
  projections OUT SEED        random points, hyperplanes and perturbations with the
                              reference's outputs -> OUT (safetensors): FAB's projection_l2
                              and projection_linf, and APGD's L2 projection (its inline
                              `x + normalize(p - x) * min(eps, L2_norm(p - x))`, clipped).
Only torch, numpy, safetensors and pyautoattack: nothing is downloaded.
"""
import json, os, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import build, Normalized  # noqa: E402
from at_task import adversarially_train, coloured_digits, idx  # noqa: E402

CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2471, 0.2435, 0.2616]
WIDTH = 4


def model_of(path):
    from safetensors.torch import load_file
    state = load_file(path)
    # The width is the stem's channel count (4 for `train`'s default).
    net = build("resnet18", 10, 3, width=state["conv1.weight"].shape[0], input_size=32)
    net.load_state_dict(state, strict=True)
    return Normalized(net, CIFAR_MEAN, CIFAR_STD).eval()


def train(out, n_test, width=WIDTH):
    """at_task.py's recipe on a ResNet18 (width 4): about 76% clean and 57% PGD-10 robust
    accuracy at 8/255 on 500 test images."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr, xte, yte = coloured_digits(3000, n_test, np.random.default_rng(0))
    binary = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(binary, exist_ok=True)
    rec = np.concatenate([yte.astype(np.uint8)[:, None], xte.reshape(n_test, -1)], 1)
    rec.tofile(os.path.join(binary, "test_batch.bin"))
    net = build("resnet18", 10, 3, width=width, input_size=32)
    adversarially_train(Normalized(net, CIFAR_MEAN, CIFAR_STD), xtr, ytr)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(out, "model.safetensors"))


def test_set(data, n):
    if os.path.isdir(os.path.join(data, "cifar-10-batches-bin")):
        raw = np.fromfile(os.path.join(data, "cifar-10-batches-bin", "test_batch.bin"), np.uint8).reshape(-1, 3073)[:n]
        return torch.tensor(raw[:, 1:].reshape(-1, 3, 32, 32)).float() / 255, torch.tensor(raw[:, 0].astype(np.int64))
    x = idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"))[:n]
    y = idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz"))[:n]
    return torch.tensor(x[:, None]).float() / 255, torch.tensor(y)


def demo_model(path):
    from safetensors.torch import load_file
    net = build("resnet18", 10, 1, width=8, input_size=28)
    net.load_state_dict(load_file(path), strict=True)
    return Normalized(net, [0.1307], [0.3081]).eval()


class _AffineBatchNorm(torch.nn.Module):
    """An eval-mode BatchNorm2d as the affine map it is (x * a + b)."""

    def __init__(self, bn):
        super().__init__()
        a = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        self.register_buffer("a", a.view(1, -1, 1, 1))
        self.register_buffer("b", (bn.bias.detach() - bn.running_mean * a).view(1, -1, 1, 1))

    def forward(self, x):
        return x * self.a + self.b


def channels_last(model):
    """The same function, computed channels-last with BatchNorm as its affine map: libtorch's
    NCHW convolution backward and its channels-last BatchNorm backward are several times
    slower than this on narrow layers. Only the published-budget test uses it
    (RIFT_AA_REF_LAYOUT=channels-last), to fit the suite's time; pyautoattack's algorithm is
    untouched. The bench keeps the plain eager model."""
    def swap(m):
        for name, child in m.named_children():
            if isinstance(child, torch.nn.BatchNorm2d):
                setattr(m, name, _AffineBatchNorm(child))
            else:
                swap(child)
    swap(model)
    model = model.to(memory_format=torch.channels_last)

    class ChannelsLast(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.contiguous(memory_format=torch.channels_last))

    return ChannelsLast(model).eval()


def run_aa(model_path, data, n, eps, attacks, apgd_iters, targets, fab_iters, square_queries, norm="Linf"):
    from pyautoattack import AutoAttack
    torch.set_num_threads(int(os.environ.get("RIFT_THREADS", "2")))
    model = demo_model(model_path) if "mnist_at" in model_path else model_of(model_path)
    if os.environ.get("RIFT_AA_REF_LAYOUT") == "channels-last":
        model = channels_last(model)
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = test_set(data, n)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    out = {}
    for entry in attacks.split(","):
        names = ["apgd-ce", "apgd-t", "fab-t", "square"] if entry == "autoattack" else entry.split("+")
        aa = AutoAttack(model, norm=norm, eps=eps, seed=0, version="custom", attacks=names)
        aa.verbose = False
        # The standard version's settings, also for single attacks, with the given budgets
        # (APGD's checkpoints follow its iteration count, as its constructor computes them).
        for apgd in (aa.apgd, aa.apgd_targeted):
            apgd.n_restarts = 1
            apgd.n_iter = apgd.n_iter_orig = apgd_iters
            apgd.n_iter_2 = max(int(0.22 * apgd_iters), 1)
            apgd.n_iter_min = max(int(0.06 * apgd_iters), 1)
            apgd.size_decr = max(int(0.03 * apgd_iters), 1)
        aa.apgd_targeted.n_target_classes = targets
        aa.fab.n_restarts = 1
        aa.fab.n_iter = fab_iters
        aa.fab.n_target_classes = targets
        aa.square.n_queries = square_queries
        start = time.time()
        # One attack at a time on what the earlier ones left, as run_standard_evaluation
        # does, recording the cumulative robust accuracy after each.
        keep = correct.clone()
        robust = {}
        for name in names:
            idx_r = keep.nonzero().squeeze(1)
            if len(idx_r) > 0:
                aa.attacks_to_run = [name]
                adv, _ = aa.run_standard_evaluation(x[idx_r], y[idx_r], batch_size=500)
                with torch.no_grad():
                    ok = model(adv).argmax(1) == y[idx_r]
                keep[idx_r[~ok]] = False
            robust[name] = keep.float().mean().item() * 100
        out[entry] = {"clean": correct.float().mean().item() * 100, "robust": robust,
                      "final": keep.float().mean().item() * 100, "seconds": time.time() - start,
                      "robust_flags": keep.tolist()}
    return out


def data_files(data):
    """The files `test_set` reads from `data`."""
    binary = os.path.join(data, "cifar-10-batches-bin", "test_batch.bin")
    if os.path.exists(binary):
        return [binary]
    return [os.path.join(data, n) for n in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]


def projections(out, seed):
    """Inputs in every regime of the projections: points in [0, 1] (some on the box's
    faces), Gaussian weights with exact and near zeros, offsets that put the hyperplane
    near the point, far from it, and out of the box's reach."""
    from pyautoattack.fab_projections import projection_l2, projection_linf
    from pyautoattack.other_utils import L2_norm
    from pyautoattack.autopgd_base import APGDAttack
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (m, d) in {"small": (256, 12), "image": (48, 3 * 32 * 32)}.items():
        t = torch.rand(m, d, generator=g)
        t[t < 0.05] = 0.0
        t[t > 0.95] = 1.0
        w = torch.randn(m, d, generator=g)
        w[torch.rand(m, d, generator=g) < 0.05] = 0.0
        w[torch.rand(m, d, generator=g) < 0.02] *= 1e-9
        scale = torch.tensor([0.01, 0.3, 3.0, 300.0])[torch.randint(0, 4, (m,), generator=g)]
        b = (w * t).sum(1) + torch.randn(m, generator=g) * scale * w.abs().sum(1) ** 0.5
        tensors[f"{name}.t"], tensors[f"{name}.w"], tensors[f"{name}.b"] = t, w, b
        tensors[f"{name}.l2"] = projection_l2(t, w, b)
        tensors[f"{name}.linf"] = projection_linf(t, w, b)
    # APGD's L2 projection, as attack_single_run writes it, on image batches.
    x = torch.rand(64, 3, 32, 32, generator=g)
    p = (x + torch.randn(64, 3, 32, 32, generator=g) * torch.linspace(0.001, 0.05, 64).view(-1, 1, 1, 1))
    apgd = APGDAttack(lambda z: z, norm="L2", eps=0.5)
    apgd.init_hyperparam(x)
    eps = 0.5
    proj = torch.clamp(x + apgd.normalize(p - x) * torch.min(eps * torch.ones_like(x), L2_norm(p - x, keepdim=True)), 0.0, 1.0)
    tensors.update({"ball.x": x, "ball.p": p, "ball.out": proj})
    save_file({k: v.contiguous() for k, v in tensors.items()}, out)


if __name__ == "__main__":
    import ref_cache  # noqa: E402  (RIFT_REF_CACHE: the tests' memo; see ref_cache.py)
    if sys.argv[1] == "train":
        ref_cache.files(["train"] + sys.argv[3:], sys.argv[2],
                        lambda: train(sys.argv[2], int(sys.argv[3]), *(int(w) for w in sys.argv[4:5])))
    elif sys.argv[1] == "projections":
        projections(sys.argv[2], int(sys.argv[3]))
    else:
        budgets = [int(v) for v in sys.argv[7:11]] if len(sys.argv) > 7 else [100, 9, 100, 5000]
        norm = "L2" if sys.argv[1] == "aa-l2" else "Linf"
        model, data = sys.argv[2], sys.argv[3]
        # The key holds the arguments but not the paths (temporary folders): the files'
        # contents stand for them.
        args = [sys.argv[1]] + sys.argv[4:]
        print(json.dumps(ref_cache.result(args, [model] + data_files(data), lambda: run_aa(
            model, data, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], *budgets, norm=norm))))
