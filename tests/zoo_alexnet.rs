//! robustbench's ImageNet-C baseline `imagenet/corruptions/AlexNet` (issue 22): the model
//! robustbench registers for it (`alexnet.py`'s `alexnet_imagenet_corruptions`:
//! torchvision's AlexNet in `normalize_timm_model`; the entry's own
//! `timm.create_model('alexnet')` names no timm model) with random weights, saved where
//! `--zoo` looks in both layouts a file comes in; rift's logits against PyTorch's, its
//! modules, the fast MRC path against the faithful loop, and a fine-tuned file loading
//! back strictly into torchvision's class. AlexNet needs 63 pixels or more, so the stage
//! checks run on the Tiny-ImageNet fixture (64×64) with a 200-class AlexNet.
mod common;

use common::zoo_case::predict_relative_diff;
use common::{assert_fast_equals_faithful, dataset_fixtures, mrc_scores, path_str, read_json};
use common::{rift, rift_ok, run_python, stderr_of};
use std::path::Path;

const ID: &str = "imagenet/corruptions/AlexNet";

/// The registered module (random weights, random biases) saved as the whole wrapper's
/// state (OUT/wrapped) and as torchvision's bare keys (OUT/bare, the file robustbench's
/// `default_cfg` points at); 2 images of 224×224 and the wrapper's logits for each.
const MAKE_ZOO: &str = r#"
import sys, os, torch, timm
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import arch_package_module
from tv_resnet import save, logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
arch_package_module("alexnet")
torch.manual_seed(2)
wrapped = timm.create_model("alexnet_imagenet_corruptions", pretrained=False).eval()
with torch.no_grad():
    for name, p in wrapped.named_parameters():
        if name.endswith("bias"):
            p.normal_(0, 0.05)
save(wrapped.model, os.path.join(out, "wrapped", id + ".pt"), "wrapped", wrapped)
logits_case(out, "wrapped", wrapped, 2, 224, seed=21)
save(wrapped.model, os.path.join(out, "bare", id + ".pt"), "bare")
logits_case(out, "bare", wrapped, 2, 224, seed=22)
"#;

#[test]
fn alexnet_through_the_zoo_equals_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_ZOO, &[path_str(dir.path()), ID]);
    for layout in ["wrapped", "bare"] {
        let models = dir.path().join(layout);
        let flags = ["--zoo", ID, "--model-dir", path_str(&models)];
        let d = predict_relative_diff(dir.path(), layout, &flags, "alexnet");
        eprintln!("{layout}: max |rift - torch| / max |torch| = {d:e}");
        assert!(
            d <= 1e-4,
            "{layout}: max |rift - torch| / max |torch| = {d}"
        );
    }

    // Every weight layer is a module, in forward order.
    let json = dir.path().join("inspect.json");
    let models = dir.path().join("bare");
    rift_ok(&[
        "inspect",
        "--zoo",
        ID,
        "--model-dir",
        path_str(&models),
        "--output",
        path_str(&json),
    ]);
    let v = read_json(&json);
    assert_eq!(v["arch"], "alexnet", "{v}");
    assert_eq!(v["num_classes"], 1000);
    let names: Vec<&str> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let expected = [
        "features.0",
        "features.3",
        "features.6",
        "features.8",
        "features.10",
    ];
    let classifier = ["classifier.1", "classifier.4", "classifier.6"];
    assert_eq!(names, [&expected[..], &classifier[..]].concat());

    // Too small for its max-pools: refused before any compute, saying why.
    let small = dir.path().join("small.npy");
    run_python(
        "import sys, numpy as np; np.save(sys.argv[1], np.zeros((1, 3, 48, 48), np.float32))",
        &[path_str(&small)],
    );
    let out = dir.path().join("small-out.npy");
    let run = rift(&[
        "predict",
        "--zoo",
        ID,
        "--model-dir",
        path_str(&models),
        "--input",
        path_str(&small),
        "--output",
        path_str(&out),
    ]);
    let said = stderr_of(&run);
    assert!(!run.status.success(), "{said}");
    assert!(
        said.contains("48×48") && said.contains("too small"),
        "{said}"
    );
    assert!(!out.exists());
}

/// torchvision's AlexNet with 200 classes (seeded weights, random biases) as alex.pth.
const MAKE_TIN: &str = r#"
import sys, os, torch, torchvision
torch.manual_seed(4)
net = torchvision.models.AlexNet(num_classes=200)
with torch.no_grad():
    for name, p in net.named_parameters():
        if name.endswith("bias"):
            p.normal_(0, 0.05)
torch.save(net.state_dict(), os.path.join(sys.argv[1], "alex.pth"))
"#;

fn tin_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = dataset_fixtures(&["tin"]);
    run_python(MAKE_TIN, &[path_str(dir.path())]);
    let ckpt = dir.path().join("alex.pth");
    (dir, ckpt)
}

fn mrc(data: &Path, ckpt: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = data.join(format!("{name}.json"));
    let data_dir = data.join("tin_raw");
    let mut args = vec!["mrc", "--checkpoint", path_str(ckpt)];
    args.extend([
        "--dataset",
        "tiny-imagenet",
        "--data-dir",
        path_str(&data_dir),
    ]);
    args.extend([
        "--adv-split",
        "test",
        "--adv-limit",
        "5",
        "--mrc-epochs",
        "3",
    ]);
    args.extend([
        "--modules",
        "features.0,features.6,features.10,classifier.1,classifier.4,classifier.6",
    ]);
    args.extend([
        "--no-random-start",
        "--device",
        "cpu",
        "--output",
        path_str(&out),
    ]);
    args.extend_from_slice(extra);
    rift_ok(&args);
    read_json(&out)
}

/// The fast path (prefix cached before each convolution and hidden layer) gives the
/// faithful loop's MRC.
#[test]
fn mrc_fast_path_on_alexnet_equals_the_faithful_loop() {
    let (dir, ckpt) = tin_fixture();
    let faithful = mrc_scores(&mrc(dir.path(), &ckpt, "faithful", &[]));
    assert_eq!(faithful.len(), 6);
    let fast = mrc_scores(&mrc(dir.path(), &ckpt, "fast", &["--fast"]));
    assert_fast_equals_faithful(&fast, &faithful);
}

/// `rift finetune` of `classifier.4` (dropout active in training): the file loads
/// strictly into torchvision's AlexNet, keys in its order, only that layer changed.
const PY_LOADS_BACK: &str = r#"
import sys, torch, torchvision
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = torchvision.models.AlexNet(num_classes=200)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from torchvision's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_alexnet_loads_back_into_torchvision() {
    let (dir, ckpt) = tin_fixture();
    let saved = dir.path().join("alex-ft.pth");
    let data_dir = dir.path().join("tin_raw");
    rift_ok(&[
        "finetune",
        "--checkpoint",
        path_str(&ckpt),
        "--dataset",
        "tiny-imagenet",
        "--data-dir",
        path_str(&data_dir),
        "--layer",
        "classifier.4",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--limit",
        "6",
        "--save",
        path_str(&saved),
        "--device",
        "cpu",
    ]);
    let changed = run_python(PY_LOADS_BACK, &[path_str(&saved), path_str(&ckpt)]);
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert_eq!(changed, ["classifier.4.weight", "classifier.4.bias"]);
}
