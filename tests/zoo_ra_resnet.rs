//! robustbench's ImageNet RaResNet (imagenet/Linf/Peng2023Robust: `get_robustarch_model(
//! 'ra_wrn101_2')`, robustarch's `NormalizedConfigurableModel`), built by robustbench's own
//! factory with random weights and BatchNorms (`tests/py/ra_resnet.py`): rift's logits
//! through `--zoo` against robustbench's, its modules, the table's entry; MRC against the
//! published algorithm in PyTorch and `--fast` against the faithful loop on a small
//! configuration of the same class; a fine-tuned file loading back strictly into it.
mod common;

use common::{path_str, read_json, rift_ok, run_python};

const ID: &str = "imagenet/Linf/Peng2023Robust";

/// The factory's network saved where `--zoo` looks (OUT/zoo), 2 images of 64×64 (it pools
/// globally, so any size runs; the published size costs 12× more) and its logits.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from ra_resnet import build
from tv_resnet import logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("published", seed=5)
path = os.path.join(out, "zoo", id + ".pt")
os.makedirs(os.path.dirname(path), exist_ok=True)
torch.save(net.state_dict(), path)
logits_case(out, "zoo", net, 2, 64, seed=17)
"#;

#[test]
fn peng2023_ra_resnet_through_the_zoo_equals_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_ZOO, &[path_str(dir.path()), ID]);
    let d = common::zoo_case::zoo_relative_diff(dir.path(), "zoo", ID, "ra-resnet-101-2");
    eprintln!("RaWRN-101-2: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "RaWRN-101-2: {d}");

    // Every convolution and the classifier, in forward order: the stem, then per block the
    // branch (a, b, the SE's two, c) and the projection where there is one.
    let json = dir.path().join("inspect.json");
    let models = dir.path().join("zoo");
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
    assert_eq!(v["arch"], "ra-resnet-101-2", "{v}");
    let names: Vec<&str> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let mut expected = vec!["stem.stem.stem.0".to_string()];
    for (stage, depth) in [7, 11, 18, 1].into_iter().enumerate() {
        for block in 0..depth {
            let p = format!("stages.stage{0}.stage{0}-block{block}", stage + 1);
            for leaf in ["F.a.0", "F.b.0", "F.se.fc1", "F.se.fc2", "F.c.0"] {
                expected.push(format!("{p}.{leaf}"));
            }
            if block == 0 {
                expected.push(format!("{p}.proj.0"));
            }
        }
    }
    expected.push("fc".into());
    assert_eq!(names, expected);
    let norm = v["normalization"].as_str().unwrap_or_default();
    assert!(
        norm.contains("0.485,0.456,0.406/0.229,0.224,0.225"),
        "{norm}"
    );
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), the small configuration as ra.pth, and,
/// when argv[2] names modules, the published MRC on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from ra_resnet import build
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
net = build("tiny", seed=3)
torch.save(net.state_dict(), os.path.join(out, "ra.pth"))
if len(sys.argv) > 2:
    print_published_mrc(net, x, y, sys.argv[2])
"#;

/// The stem, each kind of layer of a block with a projection and of one without, the
/// classifier.
const MODULES: &str = "stem.stem.stem.0,stages.stage2.stage2-block0.F.a.0,stages.stage2.stage2-block0.F.b.0,stages.stage2.stage2-block0.F.se.fc1,stages.stage2.stage2-block0.F.se.fc2,stages.stage2.stage2-block0.F.c.0,stages.stage2.stage2-block0.proj.0,stages.stage2.stage2-block1.F.b.0,fc";

#[test]
fn mrc_on_a_ra_resnet_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    common::zoo_case::assert_mrc_and_fast(dir.path(), "ra.pth", (MODULES, 9), &[], &reference);
}

/// The fine-tuned file loads strictly into robustarch's class, keys in its order, only the
/// trained layer moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from ra_resnet import build
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build("tiny", seed=0)
net.load_state_dict(mine, strict=True)
assert sorted(mine) == sorted(net.state_dict()), "keys differ from robustarch's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_ra_resnet_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("ra.pth"), dir.path().join("ra-ft.pth"));
    let model = [];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "stages.stage2.stage2-block1.F.b.0",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    // Fine-tuning runs in train mode: the layer's weight moves, and the BatchNorm
    // statistics of the whole network with it (as in PyTorch).
    assert!(
        changed.contains(&"stages.stage2.stage2-block1.F.b.0.weight"),
        "{changed:?}"
    );
    assert!(
        changed.iter().all(|k| k.ends_with(".weight")
            && k.starts_with("stages.stage2.stage2-block1.F.b.0")
            || k.contains("running_")
            || k.ends_with("num_batches_tracked")),
        "{changed:?}"
    );
}
