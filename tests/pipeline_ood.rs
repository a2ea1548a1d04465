//! `rift ood` gives PyTorch's accuracies per corruption and severity on a tiny CIFAR-10-C
//! layout, lists the missing corruptions, honours `--severities`, and fails cleanly on a
//! bad severity list or a folder without corruption files.
mod common;

use common::{assert_fails_cleanly, path_str, read_json, rift, rift_ok, run_python, strings};
use serde_json::Value;

/// A tiny CIFAR-10-C layout (3 corruptions × 5 severities × 20 images) and a random CIFAR
/// ResNet18 (width 8, randomised BN) saved as .pth; prints PyTorch's accuracy per
/// corruption and severity. Half of the labels are the model's own prediction on the
/// first corruption (the rest are wrong there), and images whose top-2 logit margin is
/// below 1e-3 in any corruption are redrawn, so accuracies are exact to compare.
const PY_OOD: &str = r#"
import sys, os, json, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, randomize_bn, Normalized
torch.set_num_threads(2)
out, model_path = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
net = build("resnet18", 10, 3, width=8, input_size=32)
randomize_bn(net, seed=3)
net.eval()
torch.save(net.state_dict(), model_path)
model = Normalized(net, [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]).eval()
rng = np.random.default_rng(0)
names = ["gaussian_noise", "fog", "contrast"]
N = 100
def draw(n):
    # Smooth random images (upsampled 4x4 colour fields plus noise), varied enough that
    # a random network does not predict one class for all of them.
    base = rng.uniform(0, 255, size=(n, 4, 4, 3))
    big = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
    return np.clip(big + rng.normal(0, 20, size=big.shape), 0, 255).astype(np.uint8)
def logits(imgs):
    x = torch.tensor(imgs).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return model(x)
images = {n: draw(N) for n in names}
for _ in range(50):
    bad = np.zeros(N, bool)
    for n in names:
        top = logits(images[n]).topk(2, dim=1).values
        bad |= ((top[:, 0] - top[:, 1]) < 1e-3).numpy()
    if not bad.any():
        break
    for n in names:
        images[n][bad] = draw(int(bad.sum()))
assert not bad.any()
preds = {n: logits(images[n]).argmax(1).numpy() for n in names}
labels = np.where(np.arange(N) % 2 == 0, preds[names[0]], (preds[names[0]] + 1 + rng.integers(0, 9, N)) % 10).astype(np.int64)
np.save(os.path.join(out, "labels.npy"), labels)
result = {}
for n in names:
    np.save(os.path.join(out, n + ".npy"), images[n])
    correct = preds[n] == labels
    result[n] = [float(correct[s * 20:(s + 1) * 20].mean() * 100) for s in range(5)]
print(json.dumps(result))
"#;

const CORRUPTIONS_19: [&str; 19] = [
    "brightness",
    "contrast",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "saturate",
    "shot_noise",
    "snow",
    "spatter",
    "speckle_noise",
    "zoom_blur",
];

#[test]
fn ood_matches_pytorch_per_corruption_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let c = t.join("c");
    let model = t.join("m.pth");
    let reference: std::collections::BTreeMap<String, Vec<f64>> =
        serde_json::from_str(&run_python(PY_OOD, &[path_str(&c), path_str(&model)])).unwrap();
    assert_eq!(reference.len(), 3);

    let ood = |extra: &[&str], name: &str| -> Value {
        let out = t.join(name);
        let mut args = vec![
            "ood",
            "--checkpoint",
            path_str(&model),
            "--dataset",
            "cifar10-c",
            "--data-dir",
            path_str(&c),
            "--output",
            path_str(&out),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        rift_ok(&args);
        read_json(&out)
    };

    let v = ood(&[], "ood.json");
    assert_eq!(v["dataset"], "cifar10-c");
    assert_eq!(v["severities"], serde_json::json!([1, 2, 3, 4, 5]));
    let cs = v["corruptions"].as_array().unwrap();
    let names: Vec<&str> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["contrast", "fog", "gaussian_noise"]);
    let mut non_trivial = false;
    for c in cs {
        let want = &reference[c["name"].as_str().unwrap()];
        for (s, w) in want.iter().enumerate() {
            let got = c["by_severity"][(s + 1).to_string()].as_f64().unwrap();
            assert!(
                (got - w).abs() < 1e-9,
                "{} severity {}: rift {got} vs PyTorch {w}",
                c["name"],
                s + 1
            );
            non_trivial |= *w > 20.0 && *w < 100.0;
        }
        let pooled = want.iter().sum::<f64>() / 5.0;
        assert!((c["acc"].as_f64().unwrap() - pooled).abs() < 1e-9, "{c}");
        assert_eq!(c["n"], 100);
    }
    assert!(
        non_trivial,
        "the fixture should give non-trivial accuracies: {reference:?}"
    );
    let mean = reference
        .values()
        .map(|w| w.iter().sum::<f64>() / 5.0)
        .sum::<f64>()
        / 3.0;
    assert!((v["mean_acc"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!(
        v["mean_published18"].is_null() && v["mean_standard15"].is_null(),
        "{v}"
    );
    let missing = strings(&v["missing"]);
    let want: Vec<&str> = CORRUPTIONS_19
        .iter()
        .copied()
        .filter(|n| !names.contains(n))
        .collect();
    assert_eq!(missing, want);

    // --severities 2-3: only those, each still PyTorch's.
    let v = ood(&["--severities", "2-3"], "ood23.json");
    assert_eq!(v["severities"], serde_json::json!([2, 3]));
    for c in v["corruptions"].as_array().unwrap() {
        let want = &reference[c["name"].as_str().unwrap()];
        let keys: Vec<&String> = c["by_severity"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["2", "3"]);
        assert!((c["by_severity"]["2"].as_f64().unwrap() - want[1]).abs() < 1e-9);
        assert!((c["by_severity"]["3"].as_f64().unwrap() - want[2]).abs() < 1e-9);
        assert!((c["acc"].as_f64().unwrap() - (want[1] + want[2]) / 2.0).abs() < 1e-9);
        assert_eq!(c["n"], 40);
    }

    // Failures: a bad severity list, and a folder without corruption files.
    let out = rift(&[
        "ood",
        "--checkpoint",
        path_str(&model),
        "--dataset",
        "cifar10-c",
        "--data-dir",
        path_str(&c),
        "--severities",
        "0-6",
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(&out, "--severities 0-6", &["0-6"]);
    let empty = t.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = rift(&[
        "ood",
        "--checkpoint",
        path_str(&model),
        "--dataset",
        "cifar10-c",
        "--data-dir",
        path_str(&empty),
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(&out, "ood on an empty folder", &["empty"]);
}
