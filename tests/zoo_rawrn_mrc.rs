//! MRC on robustbench's RaWideResNet (issue 21) against the published algorithm in
//! PyTorch on robustbench's own module, `--fast` against the faithful loop, and files rift
//! fine-tuned (by `rift run` and `rift finetune`, an SE convolution each time) loading back
//! strictly into robustbench's modules. Logits, detection and the zoo entries are in
//! zoo_rawrn.rs.
mod common;

use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, mrc_scores, path_str};
use common::{rift_ok, run_python, tiny_zoo_run_args};

/// The tiny CIFAR-10 of the stage tests (`dm_fixture`), a small MeanSparse RaWideResNet
/// with grouped convolutions and SE saved as ra.pth, and the published MRC
/// (`tests/py/mrc_ref.py`, PGD-10 adversarial set without random start, 5 epochs) on
/// robustbench's module for the modules given.
const PY_MRC: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd, randomize_bn
from mrc_ref import print_published_mrc
from zoo import dm_fixture, build_ra, randomize_meansparse
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
torch.manual_seed(7)
net = build_ra(8, [1, 1, 1], [16, 32, 64], groups=[1, 2, 2], se_ratio=0.25, meansparse=True)
randomize_bn(net, seed=7)
randomize_meansparse(net, seed=7, threshold=0.3)
net.eval()
torch.save(net.state_dict(), os.path.join(out, "ra.pth"))
print_published_mrc(net, x, y, sys.argv[2])
"#;

/// Every kind of cut: the stem, a block's conv_0, both SE convolutions, a shortcut, a
/// grouped conv_1, the last stage's SE, the classifier.
const MODULES: &str = "init_conv,layer.0.block.0.conv_0,layer.0.block.0.se.fc1,layer.0.block.0.se.fc2,layer.0.block.0.shortcut,layer.1.block.0.conv_1,layer.2.block.0.se.fc2,logits";

fn mrc_json(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    common::zoo_mrc_json(dir, "ra.pth", MODULES, name, extra)
}

/// Loads a rift-written file strictly into robustbench's module of the configuration
/// given as JSON (same keys, same order, every MeanSparse buffer unchanged from the input
/// file) and prints the keys whose values changed.
const PY_LOADS_BACK: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import build_ra
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build_ra(**json.loads(sys.argv[3]))
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from robustbench's"
for k, v in orig.items():
    if ".meansparse" in k or k.startswith("meansparse"):
        assert torch.equal(mine[k], v), k
print(" ".join(k for k, v in orig.items() if v.is_floating_point() and not torch.equal(mine[k], v)))
"#;

/// robustbench's RaWideResNet of the configuration given as JSON (`build_ra`'s
/// arguments), random weights and BatchNorm, saved at the path given.
const MAKE_NET: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_ra
torch.manual_seed(3)
net = build_ra(**json.loads(sys.argv[2]))
randomize_bn(net, seed=3)
torch.save(net.state_dict(), sys.argv[1])
"#;

#[test]
fn mrc_on_a_rawrn_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let ours = mrc_scores(&mrc_json(dir.path(), "faithful", &[]));
    assert_eq!(ours.len(), 8);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    let fast = mrc_scores(&mrc_json(dir.path(), "fast", &["--fast"]));
    assert_eq!(fast.len(), 8);
    assert_fast_equals_faithful(&fast, &ours);

    // The whole pipeline fine-tuning an SE convolution: the chosen file loads back into
    // robustbench's MeanSparse module, MeanSparse state untouched.
    let session = dir.path().join("session");
    let ckpt = dir.path().join("ra.pth");
    let mut args = tiny_zoo_run_args(&ckpt, dir.path(), &session, "1", &[]);
    args.extend(["--modules", "layer.1.block.0.se.fc1,logits"]);
    args.extend(["--layer", "layer.1.block.0.se.fc1", "--epochs", "1"]);
    args.extend(["--alphas", "0,1", "--device", "cpu"]);
    rift_ok(&args);
    let config = r#"{"stem": 8, "blocks": [1, 1, 1], "widths": [16, 32, 64], "groups": [1, 2, 2], "se_ratio": 0.25, "meansparse": true}"#;
    run_python(
        PY_LOADS_BACK,
        &[
            path_str(&session.join("chosen.pth")),
            path_str(&ckpt),
            config,
        ],
    );
}

/// `rift finetune` of a network with its SE before `conv_1` (named, with its activation):
/// only the trained module's weights and the BatchNorm statistics change, and the file
/// loads back strictly into robustbench's module.
#[test]
fn a_finetuned_rawrn_loads_back_into_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(
        "import sys, os\nsys.path.insert(0, os.path.join(os.getcwd(), 'tests', 'py'))\nfrom zoo import dm_fixture\ndm_fixture(sys.argv[1])\n",
        &[path_str(dir.path())],
    );
    let config = r#"{"stem": 8, "blocks": [1, 2, 1], "widths": [8, 16, 32], "activation": "relu", "se_ratio": 0.5, "se_activation": "silu", "se_order": 1}"#;
    let ckpt = dir.path().join("ra-order1.pth");
    run_python(MAKE_NET, &[path_str(&ckpt), config]);
    let saved = dir.path().join("ra-order1-ft.pth");
    rift_ok(&[
        "finetune",
        "--checkpoint",
        path_str(&ckpt),
        "--arch",
        "ra-wrn-1.2.1-8.16.32-stem8-se4.8.16-seorder1-sesilu",
        "--activation",
        "relu",
        "--dataset",
        "cifar10",
        "--data-dir",
        path_str(dir.path()),
        "--layer",
        "layer.1.block.1.se.fc1",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--limit",
        "32",
        "--save",
        path_str(&saved),
        "--device",
        "cpu",
    ]);
    let changed = run_python(PY_LOADS_BACK, &[path_str(&saved), path_str(&ckpt), config]);
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"layer.1.block.1.se.fc1.weight")
            && changed.contains(&"layer.1.block.1.se.fc1.bias"),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|k| k.starts_with("layer.1.block.1.se.fc1.") || k.contains("running_")),
        "{changed:?}"
    );
}
