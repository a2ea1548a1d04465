//! `rift eval` on the bundled, adversarially trained demo model: PGD without random start
//! gives the robust accuracy of a PyTorch implementation of the same steps (±0.5 points on
//! 512 samples), clean accuracy matches, and restarts only ever lower robust accuracy.
mod common;

use common::{assert_failed, path_str, rift_ok, run_python, DEMO_MODEL, EXIT_ERROR};
use std::path::Path;

/// `rift eval` on the demo model and its MNIST digits.
const DEMO_EVAL: [&str; 7] = [
    "eval",
    "--checkpoint",
    DEMO_MODEL,
    "--dataset",
    "mnist",
    "--data-dir",
    "assets/demo",
];

const PY_REFERENCE: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, Normalized, pgd
from mnist_idx import idx
from safetensors.torch import load_file
torch.set_num_threads(2)
net = build("resnet18", 10, 1, width=8, input_size=28)
net.load_state_dict(load_file(sys.argv[1]), strict=True)
model = Normalized(net, [0.1307], [0.3081]).eval()
x = torch.tensor(idx("assets/demo/t10k-images-idx3-ubyte.gz")[:512]).float() / 255
y = torch.tensor(idx("assets/demo/t10k-labels-idx1-ubyte.gz")[:512])
with torch.no_grad():
    clean = (model(x).argmax(1) == y).sum().item()
robust = 0
for i in range(0, 512, 128):
    adv = pgd(model, x[i:i+128], y[i:i+128], 0.1, 0.02, 10, random_start=False)
    with torch.no_grad():
        robust += (model(adv).argmax(1) == y[i:i+128]).sum().item()
print(clean, robust)
"#;

fn eval_json(dir: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = dir.join(format!("{name}.json"));
    let mut args = DEMO_EVAL.to_vec();
    args.extend([
        "--eps",
        "0.1",
        "--step",
        "0.02",
        "--steps",
        "10",
        "--limit",
        "512",
        "--device",
        "cpu",
        "--output",
        path_str(&out),
    ]);
    args.extend_from_slice(extra);
    rift_ok(&args);
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

#[test]
fn pgd_matches_pytorch_on_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let py = run_python(PY_REFERENCE, &[DEMO_MODEL]);
    let mut it = py.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let (py_clean, py_robust) = (it.next().unwrap() / 5.12, it.next().unwrap() / 5.12);

    let v = eval_json(dir.path(), "norand", &["--no-random-start"]);
    assert_eq!(v["n"], 512);
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
    // A trained, robust model: the attack must actually bite but not destroy it.
    assert!(
        clean > 80.0 && robust < clean && robust > 30.0,
        "clean {clean} robust {robust}"
    );
    assert_eq!(v["attack"]["name"], "pgd");
    assert_eq!(v["attack"]["random_start"], false);
    assert_eq!(v["model"]["arch"], "resnet18-w8");
    assert_eq!(v["device"], "cpu");

    // Random start, one restart vs three with the same seed: per-sample worst case can
    // only lower robust accuracy.
    let one = eval_json(dir.path(), "r1", &["--seed", "3"]);
    let three = eval_json(dir.path(), "r3", &["--seed", "3", "--restarts", "3"]);
    let (r1, r3) = (
        one["robust_acc"].as_f64().unwrap(),
        three["robust_acc"].as_f64().unwrap(),
    );
    assert!(r3 <= r1, "3 restarts ({r3}) above 1 restart ({r1})");
    assert_eq!(three["attack"]["restarts"], 3);

    // YAML output and clean-only evaluation.
    let yaml = dir.path().join("clean.yaml");
    let mut clean_only = DEMO_EVAL.to_vec();
    clean_only.extend([
        "--attack",
        "none",
        "--device",
        "cpu",
        "--output",
        path_str(&yaml),
    ]);
    rift_ok(&clean_only);
    let y: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&yaml).unwrap()).unwrap();
    assert_eq!(y["n"].as_u64(), Some(1000));
    assert!(y["robust_acc"].is_null());
}

/// `--channels-last` and `--precision bf16` (issue 5): the same model, attack and samples
/// give accuracies within a few tenths of a point of fp32 (one sample = 0.195 points), and
/// the output records how it computed.
#[test]
fn bf16_and_channels_last_stay_close_to_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let acc = |v: &serde_json::Value| {
        (
            v["clean_acc"].as_f64().unwrap(),
            v["robust_acc"].as_f64().unwrap(),
        )
    };
    let fp32 = eval_json(dir.path(), "fp32", &["--no-random-start"]);
    assert_eq!(fp32["compute"], "fp32");
    let (c0, r0) = acc(&fp32);
    for (name, extra, tol) in [
        ("cl", vec!["--channels-last"], 0.4),
        ("bf16", vec!["--precision", "bf16"], 0.6),
        ("both", vec!["--precision", "bf16", "--channels-last"], 0.6),
    ] {
        let mut args = vec!["--no-random-start"];
        args.extend(extra);
        let v = eval_json(dir.path(), name, &args);
        let (c, r) = acc(&v);
        assert!(
            (c - c0).abs() <= tol && (r - r0).abs() <= tol,
            "{name}: clean {c} robust {r}, fp32 clean {c0} robust {r0}"
        );
        let want = match name {
            "cl" => "fp32, channels-last",
            "bf16" => "bf16",
            _ => "bf16, channels-last",
        };
        assert_eq!(v["compute"], want);
    }
    let mut bad = DEMO_EVAL.to_vec();
    bad.extend(["--precision", "fp8"]);
    assert_failed(&common::rift(&bad), EXIT_ERROR, &["--precision", "bf16"]);
}
