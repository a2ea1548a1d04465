//! robustbench's ImageNet entries built from torchvision's ResNets (issue 22): ResNet-18,
//! ResNet-50, Wide-ResNet-50-2 and `resnet50(width_per_group=128)` from torchvision's real
//! constructors (random weights, `tests/py/tv_resnet.py`), wrapped in robustbench's own
//! `normalize_model` where the entry is, saved where `--zoo` looks in the three layouts such
//! a file comes in; rift's logits through `--zoo` against PyTorch's; `rift inspect`'s
//! modules; MRC against the published algorithm in PyTorch and `--fast` against the
//! faithful loop, on BasicBlocks and Bottlenecks; a fine-tuned file loading back strictly
//! into torchvision.
//!
//! The networks end in global average pooling, so they take any input size: the logits
//! checks use 64×64 and 96×96 images (ImageNet's 224×224 costs CPU time and checks nothing
//! more), and MRC runs on the stage tests' tiny CIFAR-10 (`dm_fixture`, 32×32, 10 classes:
//! the same architectures with a 10-way `fc`), since the ImageNet data side is not needed
//! to check the model and its fast path.
mod common;

use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, max_abs_diff};
use common::{mrc_scores, path_str, read_json, rift, rift_ok, run_python, stderr_of};
use std::path::Path;

/// The ImageNet cases under OUT/models, printed as `id kind layout`. Salman2020Do_R18's
/// file is the whole `normalize_model` module with statistics that differ from
/// imagenet.py's (robustbench's loading puts a file's buffers in place, so rift must read
/// them); the others carry no statistics (the table's apply, or none). torchvision's
/// `wide_resnet50_2()` is `resnet50(width_per_group=128)` key for key and shape for shape
/// (checked here), so one 69M-parameter file serves both of its entries, the corruptions
/// one wrapping it in `normalize_model`.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from tv_resnet import build, normalize_model, save, logits_case, same_layout, MU, SIGMA
torch.set_num_threads(2)
assert same_layout("wide_resnet50_2", "resnet50_wpg128")
out = sys.argv[1]
cases = [
    ("imagenet/Linf/Salman2020Do_R18", "resnet18", "wrapped", 4, 96,
     ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))),
    ("imagenet/Linf/Salman2020Do_R50", "resnet50", "prefixed", 2, 64, (MU, SIGMA)),
    ("imagenet/Linf/Chen2024Data_WRN_50_2", "resnet50_wpg128", "bare", 2, 64, None),
]
for i, (id, kind, layout, n, size, stats) in enumerate(cases):
    net = build(kind, seed=i)
    module = normalize_model(net, *stats) if stats else net
    save(net, os.path.join(out, "models", id + ".pt"), layout, module)
    logits_case(out, id.replace("/", "~"), module, n, size, seed=10 + i)
    print(id, kind, layout)
wide = "imagenet/corruptions/Salman2020Do_50_2_Linf"
os.makedirs(os.path.join(out, "models", os.path.dirname(wide)))
os.symlink(os.path.join(out, "models", cases[-1][0] + ".pt"), os.path.join(out, "models", wide + ".pt"))
logits_case(out, wide.replace("/", "~"), normalize_model(net), 2, 64, seed=20)
print(wide, "wide_resnet50_2", "bare")
"#;

fn predict_zoo(dir: &Path, id: &str) -> std::process::Output {
    let stem = dir.join(id.replace('/', "~"));
    let at = |s: &str| format!("{}.{s}", stem.display());
    rift(&[
        "predict",
        "--zoo",
        id,
        "--model-dir",
        path_str(&dir.join("models")),
        "--input",
        &at("in.npy"),
        "--output",
        &at("rift.npy"),
        "--device",
        "cpu",
    ])
}

fn diff(dir: &Path, id: &str) -> f32 {
    let stem = dir.join(id.replace('/', "~"));
    let at = |s: &str| std::path::PathBuf::from(format!("{}.{s}", stem.display()));
    max_abs_diff(&at("rift.npy"), &at("ref.npy"))
}

#[test]
fn torchvision_resnets_through_the_zoo_equal_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_ZOO, &[path_str(dir.path())]);
    let arch_of = |kind: &str| match kind {
        "resnet18" => "tv-resnet18",
        "resnet50" => "tv-resnet50",
        _ => "tv-wide-resnet50-2",
    };
    for line in listing.lines() {
        let p: Vec<&str> = line.split_whitespace().collect();
        let (id, kind, layout) = (p[0], p[1], p[2]);
        let run = predict_zoo(dir.path(), id);
        let said = stderr_of(&run);
        assert!(run.status.success(), "{id}: {said}");
        let arch = arch_of(kind);
        assert!(
            said.contains(&format!("wrote {arch} logits")),
            "{id}: {said}"
        );
        let d = diff(dir.path(), id);
        assert!(d <= 1e-4, "{id} ({layout}): max |rift - torch| = {d}");
    }

    // Without --zoo the file names itself: its keys give the architecture, its own
    // normalize.mean/std the statistics.
    let id = "imagenet/Linf/Salman2020Do_R18";
    let file = dir.path().join(format!("models/{id}.pt"));
    let stem = dir.path().join(id.replace('/', "~"));
    let at = |s: &str| format!("{}.{s}", stem.display());
    rift_ok(&[
        "predict",
        "--checkpoint",
        path_str(&file),
        "--input",
        &at("in.npy"),
        "--output",
        &at("rift.npy"),
        "--device",
        "cpu",
    ]);
    let d = diff(dir.path(), id);
    assert!(d <= 1e-4, "{id} by --checkpoint: max |rift - torch| = {d}");

    // Every weight layer is a module: the stem, two convolutions per BasicBlock, the
    // three projections, the classifier.
    let json = dir.path().join("inspect.json");
    rift_ok(&[
        "inspect",
        "--zoo",
        id,
        "--model-dir",
        path_str(&dir.path().join("models")),
        "--output",
        path_str(&json),
    ]);
    let v = read_json(&json);
    assert_eq!(v["arch"], "tv-resnet18", "{v}");
    assert_eq!(v["num_classes"], 1000);
    assert!(
        v["normalization"]
            .as_str()
            .unwrap()
            .contains("normalize.mean"),
        "{v}"
    );
    let names: Vec<String> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec!["conv1".to_string()];
    for stage in 1..=4 {
        for block in 0..2 {
            expected.push(format!("layer{stage}.{block}.conv1"));
            expected.push(format!("layer{stage}.{block}.conv2"));
            if stage > 1 && block == 0 {
                expected.push(format!("layer{stage}.0.downsample.0"));
            }
        }
    }
    expected.push("fc".into());
    assert_eq!(names, expected);
}

/// The 16 torchvision-ResNet entries are supported, with the architecture, the width
/// (torchvision's width_per_group) and the normalisation their constructors say.
#[test]
fn the_torchvision_resnet_entries_are_supported() {
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let tv: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["family"].as_str().is_some_and(|f| f.starts_with("tv-")))
        .collect();
    assert_eq!(tv.len(), 16, "{out}");
    let find = |id: &str| {
        *tv.iter()
            .find(|e| {
                format!("{}/{}/{}", e["dataset"], e["threat"], e["name"]).replace('"', "") == id
            })
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    let r18 = find("imagenet/Linf/Salman2020Do_R18");
    assert_eq!(r18["arch"], "tv-resnet18");
    assert_eq!(r18["normalize"]["mean"][0], 0.485);
    let chen = find("imagenet/Linf/Chen2024Data_WRN_50_2");
    assert_eq!(chen["arch"], "tv-wide-resnet50-2");
    assert_eq!(chen["width"], 128);
    assert_eq!(chen["normalize"], "none");
    let wide = find("imagenet/corruptions/Salman2020Do_50_2_Linf");
    assert_eq!(wide["arch"], "tv-wide-resnet50-2");
    assert_eq!(
        find("imagenet/Linf/Wong2020Fast")["preprocessing"],
        "Crop288"
    );
    let standard = tv.iter().filter(|e| e["name"] == "Standard_R50").count();
    assert_eq!(standard, 2, "Standard_R50 on both leaderboards");

    // robustbench keeps no file for torchvision's pretrained ResNet-50: the error says
    // how to make one instead of sending the user to `load_model`.
    let empty = tempfile::tempdir().unwrap();
    let run = rift(&[
        "inspect",
        "--zoo",
        "imagenet/Linf/Standard_R50",
        "--model-dir",
        path_str(empty.path()),
    ]);
    common::assert_failed(
        &run,
        1,
        &[
            "robustbench keeps no file for this entry",
            "torchvision.models.resnet50(weights='IMAGENET1K_V1')",
        ],
    );
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), torchvision's network of argv[2] with a
/// 10-way `fc` in robustbench's `normalize_model` saved as tv.pth, and, when argv[3] names
/// modules, the published MRC (`tests/py/mrc_ref.py`: PGD-10 adversarial set without
/// random start, 5 epochs) on it.
const PY_MRC: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from tv_resnet import build, normalize_model
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
net = build(sys.argv[2], seed=7, num_classes=10)
module = normalize_model(net)
torch.save(module.state_dict(), os.path.join(out, "tv.pth"))
if len(sys.argv) > 3:
    print_published_mrc(module, x, y, sys.argv[3], named=net)
"#;

/// Every kind of cut in a BasicBlock network (torchvision's `ResNet(BasicBlock,
/// [1, 1, 1, 1])`): the stem (before bn1, ReLU and the max-pool), both convolutions of a
/// block with and without a projection, a projection, the last block, the classifier.
const BASIC_MODULES: &str =
    "conv1,layer1.0.conv1,layer1.0.conv2,layer2.0.conv1,layer2.0.downsample.0,layer3.0.conv2,layer4.0.conv2,fc";

/// Every kind of cut in a Bottleneck network (`ResNet(Bottleneck, [1, 1, 1, 1],
/// width_per_group=16)`, the stride on conv2): each of its three convolutions, the
/// projections of the first stage (stride 1) and of a later one (stride 2).
const BOTTLENECK_MODULES: &str =
    "conv1,layer1.0.conv1,layer1.0.conv3,layer1.0.downsample.0,layer2.0.conv2,layer3.0.conv3,layer4.0.downsample.0,fc";

fn mrc_json(dir: &Path, modules: &str, name: &str, extra: &[&str]) -> serde_json::Value {
    common::zoo_mrc_json(dir, "tv.pth", modules, name, extra)
}

#[test]
fn mrc_on_a_torchvision_basicblock_resnet_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), "tiny_basic", BASIC_MODULES]);
    let ours = mrc_scores(&mrc_json(dir.path(), BASIC_MODULES, "faithful", &[]));
    assert_eq!(ours.len(), 8);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    let fast = mrc_scores(&mrc_json(dir.path(), BASIC_MODULES, "fast", &["--fast"]));
    assert_fast_equals_faithful(&fast, &ours);
}

#[test]
fn mrc_fast_path_on_a_bottleneck_resnet_equals_the_faithful_loop() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path()), "tiny_bottleneck"]);
    let ours = mrc_scores(&mrc_json(dir.path(), BOTTLENECK_MODULES, "faithful", &[]));
    assert_eq!(ours.len(), 8);
    let fast = mrc_scores(&mrc_json(
        dir.path(),
        BOTTLENECK_MODULES,
        "fast",
        &["--fast"],
    ));
    assert_fast_equals_faithful(&fast, &ours);
}

/// `rift finetune` of one convolution of a file in robustbench's download layout
/// (`model.*`, no statistics): the file rift writes loads strictly into torchvision's
/// `resnet18`, keys in its order, and only that convolution and BatchNorm statistics moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from tv_resnet import build
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build("resnet18", seed=0, num_classes=10)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from torchvision's"
print(" ".join(k for k, v in mine.items()
               if v.is_floating_point() and not torch.equal(orig["model." + k], v)))
"#;

#[test]
fn a_finetuned_torchvision_resnet_loads_back_into_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import dm_fixture
from tv_resnet import build, save
dm_fixture(sys.argv[1])
save(build("resnet18", seed=3, num_classes=10), os.path.join(sys.argv[1], "tv.pt"), "prefixed")
"#;
    run_python(script, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("tv.pt"), dir.path().join("tv-ft.pth"));
    let model = ["--arch", "tv-resnet18", "--normalize", "imagenet"];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "layer3.0.conv2",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(changed.contains(&"layer3.0.conv2.weight"), "{changed:?}");
    assert!(
        changed
            .iter()
            .all(|k| *k == "layer3.0.conv2.weight" || k.contains("running_")),
        "{changed:?}"
    );
}
