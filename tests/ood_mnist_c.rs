//! `rift ood --dataset mnist-c`: MNIST-C's layout (`mnist_c/<corruption>/test_*.npy`) read
//! at its one severity, `identity` left out, and each corruption's accuracy equal to the
//! demo model's in PyTorch on the same files.
mod common;

use common::{assert_failed, path_str, rift, run_python, stderr_of, tiny_mnist, tiny_mnist_c};
use common::{DEMO_MODEL, EXIT_ERROR};

#[test]
fn mnist_c_accuracy_per_corruption_equals_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_mnist(dir.path(), 16, 64);
    let c = tiny_mnist_c(&data, 1);
    let json = dir.path().join("ood.json");
    let out = rift(&[
        "ood",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist-c",
        "--data-dir",
        path_str(&data),
        "--device",
        "cpu",
        "--output",
        path_str(&json),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let script = r#"
import json, os, sys
sys.path.insert(0, os.path.join(os.getcwd(), 'tests', 'py'))
import numpy as np, torch
from autoattack_ref import demo_model
root, model = sys.argv[1], demo_model(sys.argv[2])
acc = {}
for name in sorted(os.listdir(root)):
    if name == 'identity':
        continue
    x = torch.tensor(np.load(os.path.join(root, name, 'test_images.npy'))).permute(0, 3, 1, 2).float() / 255
    y = torch.tensor(np.load(os.path.join(root, name, 'test_labels.npy')).astype(np.int64))
    with torch.no_grad():
        acc[name] = 100.0 * float((model(x).argmax(1) == y).float().mean())
print(json.dumps(acc))
"#;
    let torch: serde_json::Value =
        serde_json::from_str(run_python(script, &[path_str(&c), DEMO_MODEL]).trim()).unwrap();
    let names: Vec<&str> = r["corruptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["brightness", "shot_noise", "stripe"]);
    for c in r["corruptions"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (c["acc"].as_f64().unwrap(), torch[name].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{name}: rift {a}, PyTorch {b}");
        assert_eq!(c["by_severity"].as_object().map(|m| m.len()), Some(1));
    }
    // Another severity than MNIST-C's one is refused, naming the fix.
    let out = rift(&[
        "ood",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist-c",
        "--data-dir",
        path_str(&data),
        "--severities",
        "1-3",
    ]);
    assert_failed(&out, EXIT_ERROR, &["--severities 1"]);
}
