//! robustbench's ConvNeXt entries (issue 22: Liu2023Comprehensive_ConvNeXt-B and -L,
//! `normalize_model(timm.create_model('convnext_base'|'convnext_large'), mu, sigma)`, and
//! Singh2023Revisiting's ConvStem ConvNeXt-T/S/B/L, `get_convstem_models(…)`): timm's real
//! `convnext_base` and robustbench's own `get_convstem_models('convnext_t_cvst')` with
//! random weights and randomised LayerNorms and layer scales (`tests/py/timm_convnext.py`),
//! saved where `--zoo` looks in robustbench's layouts; rift's logits through `--zoo`
//! against PyTorch's; `rift inspect`'s modules; MRC against the published algorithm in
//! PyTorch and `--fast` against the faithful loop on small networks of timm's own class
//! (with timm's stem and with robustbench's three-convolution ConvStem); a fine-tuned file
//! loading back strictly into timm.
//!
//! The network ends in global average pooling, so any input of 32×32 or more works: the
//! logits check uses 64×64 images, and MRC runs on the stage tests' tiny CIFAR-10
//! (`dm_fixture`, 32×32, 10 classes).
mod common;

use common::{path_str, read_json, rift_ok, run_python};

const BASE: &str = "imagenet/Linf/Liu2023Comprehensive_ConvNeXt-B";

/// timm's `convnext_base` (1000 classes) under OUT/wrapped in `normalize_model`'s layout
/// with statistics other than imagenet.py's (robustbench's loading puts a file's buffers in
/// place, so rift must read them), and under OUT/prefixed as `model.*` keys without
/// statistics (the table's apply); 2 images of 64×64 and timm's logits for each.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_convnext import build, normalize_model, save, logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("convnext_base", seed=1)
wrapped = normalize_model(net, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
save(net, os.path.join(out, "wrapped", id + ".pt"), "wrapped", wrapped)
logits_case(out, "wrapped", wrapped, 2, 64, seed=11)
save(net, os.path.join(out, "prefixed", id + ".pt"), "prefixed")
logits_case(out, "prefixed", normalize_model(net), 2, 64, seed=12)
"#;

use common::zoo_case::zoo_relative_diff as predict_relative_diff;

#[test]
fn timm_convnext_base_through_the_zoo_equals_timm() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_ZOO, &[path_str(dir.path()), BASE]);
    for layout in ["wrapped", "prefixed"] {
        let d = predict_relative_diff(dir.path(), layout, BASE, "convnext-base");
        eprintln!("{layout}: max |rift - timm| / max |timm| = {d:e}");
        assert!(d <= 1e-4, "{layout}: max |rift - timm| / max |timm| = {d}");
    }

    // Every weight layer is a module, in forward order: the stem, each downsampling
    // convolution, three layers per block, the classifier.
    let json = dir.path().join("inspect.json");
    rift_ok(&[
        "inspect",
        "--zoo",
        BASE,
        "--model-dir",
        path_str(&dir.path().join("wrapped")),
        "--output",
        path_str(&json),
    ]);
    let v = read_json(&json);
    assert_eq!(v["arch"], "convnext-base", "{v}");
    assert_eq!(v["num_classes"], 1000);
    let names: Vec<String> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec!["stem.0".to_string()];
    for (stage, depth) in [3, 3, 27, 3].into_iter().enumerate() {
        if stage > 0 {
            expected.push(format!("stages.{stage}.downsample.1"));
        }
        for block in 0..depth {
            for leaf in ["conv_dw", "mlp.fc1", "mlp.fc2"] {
                expected.push(format!("stages.{stage}.blocks.{block}.{leaf}"));
            }
        }
    }
    expected.push("head.fc".into());
    assert_eq!(names, expected);
}

/// Both ConvNeXt entries are supported, with the architecture and normalisation their
/// constructors say.
#[test]
fn the_convnext_entries_are_supported() {
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let find = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name && e["threat"] == "Linf")
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    for (name, arch) in [
        ("Liu2023Comprehensive_ConvNeXt-B", "convnext-base"),
        ("Liu2023Comprehensive_ConvNeXt-L", "convnext-large"),
        (
            "Singh2023Revisiting_ConvNeXt-T-ConvStem",
            "convnext-tiny-convstem2",
        ),
        (
            "Singh2023Revisiting_ConvNeXt-S-ConvStem",
            "convnext-small-convstem2",
        ),
        (
            "Singh2023Revisiting_ConvNeXt-B-ConvStem",
            "convnext-base-convstem3",
        ),
        (
            "Singh2023Revisiting_ConvNeXt-L-ConvStem",
            "convnext-large-convstem3",
        ),
    ] {
        let e = find(name);
        assert_eq!(e["family"], "convnext", "{e}");
        assert_eq!(e["arch"], arch, "{e}");
        assert_eq!(e["classes"], 1000, "{e}");
        assert_eq!(e["preprocessing"], "BicubicRes256Crop224", "{e}");
        // get_convstem_models wraps none of its ConvNeXts in normalize_model.
        if name.starts_with("Liu") {
            assert_eq!(e["normalize"]["mean"][0], 0.485, "{e}");
        } else {
            assert_eq!(e["normalize"], "none", "{e}");
        }
    }
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), timm's ConvNeXt with depths 1.1.1.1 and
/// dims 8.16.32.64 and 10 classes (argv[2] `tiny`: timm's stem; `tiny_convstem`:
/// robustbench's ConvBlock3) in robustbench's `normalize_model` saved as cnx.pth, and, when
/// argv[3] names modules, the published MRC (`tests/py/mrc_ref.py`: PGD-10 adversarial set
/// without random start, 5 epochs) on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from timm_convnext import build, normalize_model
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
net = build(sys.argv[2], seed=7, num_classes=10)
module = normalize_model(net)
torch.save(module.state_dict(), os.path.join(out, "cnx.pth"))
if len(sys.argv) > 3:
    print_published_mrc(module, x, y, sys.argv[3], named=net)
"#;

/// Every kind of cut: the stem, a downsampling convolution, each layer of a block of the
/// first stage and of the last, the classifier.
const MODULES: &str = "stem.0,stages.0.blocks.0.conv_dw,stages.0.blocks.0.mlp.fc1,stages.0.blocks.0.mlp.fc2,stages.2.downsample.1,stages.3.blocks.0.conv_dw,stages.3.blocks.0.mlp.fc2,head.fc";

#[test]
fn mrc_on_a_timm_convnext_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), "tiny", MODULES]);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    common::zoo_case::assert_mrc_and_fast(dir.path(), "cnx.pth", (MODULES, 8), &[], &reference);
}

/// `rift finetune` of one MLP layer of the tiny ConvNeXt (`normalize_model`'s layout): the
/// file rift writes loads strictly into timm's class, keys in its order, and only that
/// layer moved (no BatchNorm: nothing else changes in training mode).
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_convnext import build

def network_keys(state):
    """The network's own keys (without the wrapper's `model.` and its statistics)."""
    return {k[len("model."):] if k.startswith("model.") else k: v
            for k, v in state.items() if not k.startswith("normalize.")}

mine = network_keys(torch.load(sys.argv[1], weights_only=True))
orig = network_keys(torch.load(sys.argv[2], weights_only=True))
net = build("tiny", seed=0, num_classes=10)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from timm's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_convnext_loads_back_into_timm() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path()), "tiny"]);
    let (ckpt, saved) = (dir.path().join("cnx.pth"), dir.path().join("cnx-ft.pth"));
    let model = [];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "stages.1.blocks.0.mlp.fc1",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"stages.1.blocks.0.mlp.fc1.weight"),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|k| k.starts_with("stages.1.blocks.0.mlp.fc1.")),
        "{changed:?}"
    );
}

const CONVSTEM_T: &str = "imagenet/Linf/Singh2023Revisiting_ConvNeXt-T-ConvStem";

/// robustbench's `get_convstem_models('convnext_t_cvst')` (timm's `convnext_tiny` with
/// `ConvBlock1(48)` as its stem) saved with its own keys under OUT/bare (no statistics: the
/// entry has none), 2 images of 72×72 (not a multiple of the stem's stride) and its logits.
const MAKE_CONVSTEM: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_convnext import build, save, logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("convnext_t_cvst", seed=4)
save(net, os.path.join(out, "bare", id + ".pt"), "bare")
logits_case(out, "bare", net, 2, 72, seed=13)
"#;

#[test]
fn robustbench_convstem_convnext_through_the_zoo_equals_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_CONVSTEM, &[path_str(dir.path()), CONVSTEM_T]);
    let d = predict_relative_diff(dir.path(), "bare", CONVSTEM_T, "convnext-tiny-convstem2");
    eprintln!("convstem: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "max |rift - torch| / max |torch| = {d}");
    let json = dir.path().join("inspect.json");
    rift_ok(&[
        "inspect",
        "--zoo",
        CONVSTEM_T,
        "--model-dir",
        path_str(&dir.path().join("bare")),
        "--output",
        path_str(&json),
    ]);
    let v = read_json(&json);
    let names: Vec<&str> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..4],
        [
            "stem.stem.0",
            "stem.stem.3",
            "stages.0.blocks.0.conv_dw",
            "stages.0.blocks.0.mlp.fc1"
        ]
    );
    assert_eq!(names.len(), 2 + 3 + 3 * 18 + 1, "{names:?}");
}

/// Every kind of cut in the three-convolution ConvStem (each convolution, the last one at
/// stride 1) and after it.
const CONVSTEM_MODULES: &str =
    "stem.stem.0,stem.stem.3,stem.stem.6,stages.0.blocks.0.conv_dw,stages.1.downsample.1,stages.1.blocks.0.mlp.fc1,head.fc";

#[test]
fn mrc_on_a_convstem_convnext_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(
        PY_MRC,
        &[path_str(dir.path()), "tiny_convstem", CONVSTEM_MODULES],
    );
    common::zoo_case::assert_mrc_and_fast(
        dir.path(),
        "cnx.pth",
        (CONVSTEM_MODULES, 7),
        &[],
        &reference,
    );
}

const MEANSPARSE_L: &str = "imagenet/Linf/Amini2024MeanSparse_ConvNeXt-L";

/// Amini2024MeanSparse_ConvNeXt-L's constructor, `get_sparse_model(normalize_model(
/// timm.create_model('convnext_large'), mu, sigma), dataset='imagenet-Linf')`, with one
/// block per stage (timm's `depths` argument; the widths, which robustbench's insertion
/// hard-codes, are ConvNeXt-L's): robustbench's own `add_custom_layer_imagenet` on the
/// wrapped network, random MeanSparse statistics, the whole module's state saved, 2 images
/// of 64×64 and its logits.
const MAKE_MEANSPARSE: &str = r#"
import sys, os, timm, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_convnext import add_meansparse, normalize_model, randomize_affine, logits_case
torch.set_num_threads(2)
out = sys.argv[1]
torch.manual_seed(3)
net = timm.create_model("convnext_large", pretrained=False, depths=[1, 1, 1, 1])
randomize_affine(net, 3)
wrapped = add_meansparse(normalize_model(net, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)), seed=3)
torch.save(wrapped.state_dict(), os.path.join(out, "ms.pt"))
logits_case(out, "ms", wrapped, 2, 64, seed=14)
"#;

#[test]
fn meansparse_convnext_equals_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_MEANSPARSE, &[path_str(dir.path())]);
    let file = dir.path().join("ms.pt");
    // Told from its keys alone: the layout, MeanSparse, and the wrapper's statistics.
    let flags = ["--checkpoint", path_str(&file)];
    let arch = "convnext-1.1.1.1-192.384.768.1536-meansparse";
    let d = common::zoo_case::predict_relative_diff(dir.path(), "ms", &flags, arch);
    eprintln!("meansparse: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "max |rift - torch| / max |torch| = {d}");

    // The entry says the published layout, and the statistics its wrapper takes.
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = |e: &serde_json::Value| {
        format!(
            "imagenet/{}/{}",
            e["threat"].as_str().unwrap(),
            e["name"].as_str().unwrap()
        )
    };
    let entry = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| id(e) == MEANSPARSE_L)
        .unwrap_or_else(|| panic!("{MEANSPARSE_L} missing: {out}"));
    assert_eq!(entry["arch"], "convnext-large-meansparse", "{entry}");
    assert_eq!(entry["unsupported"], serde_json::Value::Null, "{entry}");
    assert_eq!(entry["normalize"]["mean"][0], 0.485, "{entry}");
}

/// MeanSparse in every block of the tiny ConvNeXt: the published MRC in PyTorch through
/// robustbench's `MeanSparse_imagenet`, and the fast path, cutting right before and after
/// the snapped activations.
#[test]
fn mrc_on_a_meansparse_convnext_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let modules = "stem.0,stages.0.blocks.0.mlp.fc1,stages.0.blocks.0.mlp.fc2,stages.3.blocks.0.conv_dw,head.fc";
    let reference = run_python(PY_MRC, &[path_str(dir.path()), "tiny_meansparse", modules]);
    common::zoo_case::assert_mrc_and_fast(dir.path(), "cnx.pth", (modules, 5), &[], &reference);
}
