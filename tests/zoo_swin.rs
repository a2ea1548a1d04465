//! robustbench's timm Swin entries (Liu2023Comprehensive_Swin-B/-L, Mo2022When_Swin-B,
//! RodriguezMunoz2024Characterizing_Swin-B/-L: `normalize_model(timm.create_model(
//! 'swin_base|large_patch4_window7_224'), mu, sigma)`): timm's real
//! `swin_base_patch4_window7_224` with random weights and randomised LayerNorms and
//! position biases (`tests/py/timm_swin.py`), saved where `--zoo` looks in the wrapper's
//! layout and in the published files' older timm layout (which robustbench converts with
//! timm's `checkpoint_filter_fn`); rift's logits through `--zoo` against timm's; `rift
//! inspect`'s modules; other image sizes refused; MRC against the published algorithm in
//! PyTorch and `--fast` against the faithful loop on a small network of timm's own class
//! with shifted windows; a fine-tuned file loading back strictly into timm.
mod common;

use common::{path_str, read_json, rift, rift_ok, run_python, stderr_of};

const BASE: &str = "imagenet/Linf/Liu2023Comprehensive_Swin-B";

/// timm's Swin-B (1000 classes) under OUT/wrapped in `normalize_model`'s layout with
/// statistics other than imagenet.py's, and under OUT/original as `model.*` keys in timm <
/// 0.9's layout with its buffers (no statistics: the table's apply); 2 images of 224×224
/// and timm's logits for each.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_swin import build, normalize_model, save, logits_case, original_layout
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("swin_base", seed=1)
wrapped = normalize_model(net, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
save(net, os.path.join(out, "wrapped", id + ".pt"), "wrapped", wrapped)
logits_case(out, "wrapped", wrapped, 2, 224, seed=11)
os.makedirs(os.path.dirname(os.path.join(out, "original", id + ".pt")), exist_ok=True)
state = {"model." + k: v for k, v in original_layout(net).items()}
torch.save(state, os.path.join(out, "original", id + ".pt"))
logits_case(out, "original", normalize_model(net), 2, 224, seed=12)
"#;

#[test]
fn timm_swin_base_through_the_zoo_equals_timm() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_ZOO, &[path_str(dir.path()), BASE]);
    for layout in ["wrapped", "original"] {
        let d = common::zoo_case::zoo_relative_diff(dir.path(), layout, BASE, "swin-b-p4-w7-224");
        eprintln!("{layout}: max |rift - timm| / max |timm| = {d:e}");
        assert!(d <= 1e-4, "{layout}: max |rift - timm| / max |timm| = {d}");
    }

    // Every weight layer is a module, in forward order: the patch embedding, each
    // PatchMerging's reduction, four layers per block, the classifier.
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
    assert_eq!(v["arch"], "swin-b-p4-w7-224", "{v}");
    assert_eq!(v["num_classes"], 1000);
    let names: Vec<String> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec!["patch_embed.proj".to_string()];
    for (stage, depth) in [2, 2, 18, 2].into_iter().enumerate() {
        if stage > 0 {
            expected.push(format!("layers.{stage}.downsample.reduction"));
        }
        for block in 0..depth {
            for leaf in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"] {
                expected.push(format!("layers.{stage}.blocks.{block}.{leaf}"));
            }
        }
    }
    expected.push("head.fc".into());
    assert_eq!(names, expected);

    // Its windows and masks are made for 224×224: other sizes are refused up front.
    let small = dir.path().join("small.npy");
    run_python(
        "import sys, numpy as np; np.save(sys.argv[1], np.zeros((1, 3, 64, 64), np.float32))",
        &[path_str(&small)],
    );
    let run = rift(&[
        "predict",
        "--zoo",
        BASE,
        "--model-dir",
        path_str(&dir.path().join("wrapped")),
        "--input",
        path_str(&small),
        "--output",
        path_str(&dir.path().join("small.out.npy")),
        "--device",
        "cpu",
    ]);
    let said = stderr_of(&run);
    assert!(!run.status.success(), "{said}");
    assert!(said.contains("64×64") && said.contains("224×224"), "{said}");
}

/// The five timm Swin entries are supported, with the architecture and normalisation their
/// constructors say.
#[test]
fn the_swin_entries_are_supported() {
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    for (name, arch) in [
        ("Liu2023Comprehensive_Swin-B", "swin-b-p4-w7-224"),
        ("Liu2023Comprehensive_Swin-L", "swin-l-p4-w7-224"),
        ("Mo2022When_Swin-B", "swin-b-p4-w7-224"),
        (
            "RodriguezMunoz2024Characterizing_Swin-B",
            "swin-b-p4-w7-224",
        ),
        (
            "RodriguezMunoz2024Characterizing_Swin-L",
            "swin-l-p4-w7-224",
        ),
    ] {
        let e = entries
            .iter()
            .find(|e| e["name"] == name && e["threat"] == "Linf")
            .unwrap_or_else(|| panic!("{name} missing: {out}"));
        assert_eq!(e["family"], "swin", "{e}");
        assert_eq!(e["arch"], arch, "{e}");
        assert_eq!(e["classes"], 1000, "{e}");
        assert_eq!(e["normalize"]["mean"][0], 0.485, "{e}");
    }
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), timm's Swin at 32×32 with 4×4 windows
/// (`timm_swin.py`'s `tiny`, 10 classes) in robustbench's `normalize_model` saved as
/// swin.pth, and, when argv[2] names modules, the published MRC on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from timm_swin import build, normalize_model
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
net = build("tiny", seed=7, num_classes=10)
module = normalize_model(net)
torch.save(module.state_dict(), os.path.join(out, "swin.pth"))
if len(sys.argv) > 2:
    print_published_mrc(module, x, y, sys.argv[2], named=net)
"#;

/// `timm_swin.py`'s `tiny` by name (its image size is in no shape).
const TINY: &str = "swin-dim16-depths2.2-heads2.4-p4-w4-32";

/// Every kind of cut: the patch embedding, each layer of an unshifted and of a shifted
/// block, the PatchMerging, a block of the last stage, the classifier.
const MODULES: &str = "patch_embed.proj,layers.0.blocks.0.attn.qkv,layers.0.blocks.1.attn.qkv,layers.0.blocks.1.attn.proj,layers.0.blocks.1.mlp.fc1,layers.0.blocks.1.mlp.fc2,layers.1.downsample.reduction,layers.1.blocks.1.attn.proj,head.fc";

#[test]
fn mrc_on_a_timm_swin_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let arch = ["--arch", TINY];
    // At most one of the 32 samples may land on the other side of a decision boundary.
    common::zoo_case::assert_mrc_and_fast(dir.path(), "swin.pth", (MODULES, 9), &arch, &reference);
}

/// `rift finetune` of one MLP layer of the tiny Swin: the file rift writes loads strictly
/// into timm's class, keys in its order, and only that layer moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_swin import build

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
fn a_finetuned_swin_loads_back_into_timm() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MRC, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("swin.pth"), dir.path().join("swin-ft.pth"));
    let model = ["--arch", TINY];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "layers.0.blocks.1.mlp.fc1",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"layers.0.blocks.1.mlp.fc1.weight"),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|k| k.starts_with("layers.0.blocks.1.mlp.fc1.")),
        "{changed:?}"
    );
}

const MIMIR_B: &str = "imagenet/Linf/Xu2024MIMIR_Swin-B";

/// MIMIR's Swin-L layout at a fraction of its width (`mimir_swin.py`'s `w14`).
const MIMIR_W14: &str = "swin-dim16-depths2.2.2.2-heads1.2.4.8-p4-w14-224-eps1e-6";

/// MIMIR's `build_swin_base()` (robustbench's own class, Microsoft's layout with its
/// buffers, no normalisation) under OUT/mimir where `--zoo` looks, and its narrow Swin-L
/// layout as OUT/w14.pth; 2 images of 224×224 and MIMIR's logits for each.
const MAKE_MIMIR: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mimir_swin import build
from tv_resnet import logits_case
torch.set_num_threads(2)
out, id = sys.argv[1], sys.argv[2]
net = build("base", seed=4)
path = os.path.join(out, "mimir", id + ".pt")
os.makedirs(os.path.dirname(path), exist_ok=True)
assert any(k.endswith("attn_mask") for k in net.state_dict()), "Microsoft's layout saves its masks"
torch.save(net.state_dict(), path)
logits_case(out, "mimir", net, 2, 224, seed=13)
w14 = build("w14", seed=5)
torch.save(w14.state_dict(), os.path.join(out, "w14.pth"))
logits_case(out, "w14", w14, 2, 224, seed=14)
"#;

#[test]
fn mimir_swins_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_MIMIR, &[path_str(dir.path()), MIMIR_B]);
    let d = common::zoo_case::zoo_relative_diff(
        dir.path(),
        "mimir",
        MIMIR_B,
        "swin-b-p4-w7-224-eps1e-6",
    );
    eprintln!("MIMIR Swin-B: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "MIMIR Swin-B: {d}");
    let w14 = dir.path().join("w14.pth");
    let flags = [
        "--checkpoint",
        path_str(&w14),
        "--arch",
        MIMIR_W14,
        "--normalize",
        "none",
    ];
    let d = common::zoo_case::predict_relative_diff(dir.path(), "w14", &flags, MIMIR_W14);
    eprintln!("MIMIR 14×14 windows: max |rift - torch| / max |torch| = {d:e}");
    assert!(d <= 1e-4, "MIMIR 14×14 windows: {d}");
    // The eps is MIMIR's own: timm's 1e-5 reads the same file ≥ 10× further off (47× here).
    let timm_eps = MIMIR_W14.trim_end_matches("-eps1e-6");
    let flags = [
        "--checkpoint",
        path_str(&w14),
        "--arch",
        timm_eps,
        "--normalize",
        "none",
    ];
    let off = common::zoo_case::predict_relative_diff(dir.path(), "w14", &flags, timm_eps);
    assert!(off >= 10.0 * d, "eps 1e-5: {off}, eps 1e-6: {d}");

    // The entries themselves: rift's names, no normalisation (MIMIR's model has none).
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (name, arch) in [
        ("Xu2024MIMIR_Swin-B", "swin-b-p4-w7-224-eps1e-6"),
        ("Xu2024MIMIR_Swin-L", "swin-l-p4-w14-224-eps1e-6"),
    ] {
        let e = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {out}"));
        assert_eq!(e["arch"], arch, "{e}");
        assert_eq!(e["normalize"], "none", "{e}");
    }
}

/// MIMIR's class at 32×32 (`mimir_swin.py`'s `tiny`) as swin.pth in the stage tests' data
/// directory, in Microsoft's layout.
const PY_MIMIR_TINY: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import dm_fixture
from mimir_swin import build
out = sys.argv[1]
dm_fixture(out)
torch.save(build("tiny", seed=8, num_classes=10).state_dict(), os.path.join(out, "swin.pth"))
"#;

/// The fine-tuned file loads strictly into MIMIR's class: Microsoft's layout, keys in its
/// order, the masks and indices as saved, only the trained layer moved.
const PY_MIMIR_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mimir_swin import build
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build("tiny", seed=0, num_classes=10)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(orig), "key order differs from MIMIR's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_mimir_swin_is_written_in_its_own_layout() {
    let dir = tempfile::tempdir().unwrap();
    run_python(PY_MIMIR_TINY, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("swin.pth"), dir.path().join("swin-ft.pth"));
    // rift names modules in timm ≥ 0.9's layout: stage 1's PatchMerging, which
    // Microsoft's layout keeps at the end of stage 0.
    let model = [
        "--arch",
        "swin-dim16-depths2.2-heads2.4-p4-w4-32-eps1e-6",
        "--normalize",
        "none",
    ];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "layers.1.downsample.reduction",
        &saved,
        PY_MIMIR_LOADS_BACK,
    );
    assert_eq!(
        changed.split_whitespace().collect::<Vec<_>>(),
        ["layers.0.downsample.reduction.weight"]
    );

    // The fine-tuned file in Microsoft's layout is an endpoint of the α sweep, and the
    // chosen model is written in that layout too.
    let chosen = dir.path().join("chosen.pth");
    rift_ok(&[
        "interpolate",
        "--checkpoint",
        path_str(&ckpt),
        "--arch",
        "swin-dim16-depths2.2-heads2.4-p4-w4-32-eps1e-6",
        "--normalize",
        "none",
        "--finetuned",
        path_str(&saved),
        "--dataset",
        "cifar10",
        "--data-dir",
        path_str(dir.path()),
        "--limit",
        "32",
        "--steps",
        "1",
        "--alphas",
        "0,0.5,1",
        "--save-chosen",
        path_str(&chosen),
        "--device",
        "cpu",
    ]);
    let changed = run_python(PY_MIMIR_LOADS_BACK, &[path_str(&chosen), path_str(&ckpt)]);
    assert!(
        changed
            .split_whitespace()
            .all(|k| k == "layers.0.downsample.reduction.weight"),
        "{changed}"
    );
}
