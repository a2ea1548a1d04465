//! `--norm l2`: PGD-L2 on the bundled, adversarially trained demo model gives the robust
//! accuracy of an independent PyTorch implementation of torchattacks' `PGDL2` steps (no
//! random start, ±0.5 points on 512 samples) at a radius where the model is neither
//! unbroken nor fully broken; random starts stay in the L2 ball (unit test in attack.rs);
//! the flags are checked before any compute, and the session records the norm.
mod common;

use common::{assert_failed, path_str, rift, rift_ok, run_python, DEMO_MODEL, EXIT_ERROR};

const PY_REFERENCE: &str = r#"
import sys, os, torch
import torch.nn.functional as F
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, Normalized
from mnist_idx import idx
from safetensors.torch import load_file
torch.set_num_threads(2)
net = build("resnet18", 10, 1, width=8, input_size=28)
net.load_state_dict(load_file(sys.argv[1]), strict=True)
model = Normalized(net, [0.1307], [0.3081]).eval()
eps, step, steps = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
x = torch.tensor(idx("assets/demo/t10k-images-idx3-ubyte.gz")[:512]).float() / 255
y = torch.tensor(idx("assets/demo/t10k-labels-idx1-ubyte.gz")[:512])

def pgd_l2(x, y):
    # torchattacks' PGDL2 without its random start: a step along the per-sample
    # L2-normalised gradient, the perturbation scaled back into the ball, then [0, 1].
    n = len(x)
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        g, = torch.autograd.grad(loss, adv)
        g = g / (g.view(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1) + 1e-10)
        adv = adv.detach() + step * g
        delta = adv - x
        norms = delta.view(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1)
        delta = delta * torch.clamp(eps / norms, max=1.0)
        adv = torch.clamp(x + delta, 0, 1).detach()
    return adv

with torch.no_grad():
    clean = (model(x).argmax(1) == y).sum().item()
robust = 0
for i in range(0, 512, 128):
    adv = pgd_l2(x[i:i+128], y[i:i+128])
    assert (adv - x[i:i+128]).view(len(adv), -1).norm(dim=1).max() <= eps + 1e-5
    with torch.no_grad():
        robust += (model(adv).argmax(1) == y[i:i+128]).sum().item()
print(clean, robust)
"#;

const EPS: &str = "1.5";
const STEP: &str = "0.25";
const STEPS: &str = "10";

fn eval_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "eval",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--limit",
        "512",
        "--device",
        "cpu",
        "--output",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn pgd_l2_matches_pytorch_on_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let py = run_python(PY_REFERENCE, &[DEMO_MODEL, EPS, STEP, STEPS]);
    let mut it = py.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let (py_clean, py_robust) = (it.next().unwrap() / 5.12, it.next().unwrap() / 5.12);
    assert!(
        (20.0..90.0).contains(&py_robust),
        "ε {EPS} does not test the attack: PyTorch's robust accuracy is {py_robust}%"
    );

    let out = dir.path().join("l2.json");
    let l2 = [
        "--norm",
        "l2",
        "--eps",
        EPS,
        "--step",
        STEP,
        "--steps",
        STEPS,
        "--no-random-start",
    ];
    let printed = rift_ok(&eval_args(path_str(&out), &l2));
    assert!(printed.contains("PGD-10 (L2)"), "{printed}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["attack"]["norm"], "l2");
    let clean = v["clean_acc"].as_f64().unwrap();
    let robust = v["robust_acc"].as_f64().unwrap();
    assert!(
        (clean - py_clean).abs() <= 0.2,
        "clean {clean} vs torch {py_clean}"
    );
    assert!(
        (robust - py_robust).abs() <= 0.5,
        "robust {robust} vs torch {py_robust}"
    );

    // With random starts (keyed per sample): a real attack too, inside the same ball.
    let out = dir.path().join("l2rand.json");
    let mut rand = l2[..l2.len() - 1].to_vec();
    rand.extend(["--restarts", "2"]);
    rift_ok(&eval_args(path_str(&out), &rand));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let r = v["robust_acc"].as_f64().unwrap();
    assert!(
        r < clean && r > 5.0,
        "robust {r} with random starts, clean {clean}"
    );
}

#[test]
fn bad_l2_flags_are_refused_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    let out = path_str(&out);
    // The L∞ defaults are no L2 radius.
    assert_failed(
        &rift(&eval_args(out, &["--norm", "l2"])),
        EXIT_ERROR,
        &["--norm l2", "--eps 0.5 --step 0.1"],
    );
    let out2 = rift(&eval_args(out, &["--norm", "l1"]));
    assert!(!out2.status.success());
    assert!(common::stderr_of(&out2).contains("not implemented"));
}
