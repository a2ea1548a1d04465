//! robustbench's Debenedetti2022Light XCiTs (`model_zoo/architectures/xcit.py`'s timm
//! registrations, the builders `robustbench.load_model` uses for these entries), built by
//! timm's and robustbench's real constructors with random weights and random BatchNorm
//! statistics (`tests/py/timm_xcit.py`), saved where `--zoo` looks; rift's logits through
//! `--zoo` against timm's: a full-size ImageNet XCiT-S12 at 224×224 (raw pixels: its
//! builder wraps no normalisation) and the CIFAR XCiT-S12 and XCiT-M12 at 32×32 (patch
//! embedding adapted to 4, `normalize_timm_model` with the CIFAR statistics); `rift
//! inspect`'s modules; MRC against the published algorithm in PyTorch and `--fast` against
//! the faithful loop on a tiny XCiT of the same timm class; a fine-tuned file loading back
//! strictly into timm.
mod common;

use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, mrc_scores};
use common::{path_str, read_json, rift, rift_ok, run_python, stderr_of};
use std::path::Path;

/// The cases under OUT/models as the release files come (the bare Xcit's keys, which
/// timm's `pretrained=True` loads before robustbench wraps it; the ImageNet one under
/// `model`, as timm's filter accepts too), printed as `id arch`; inputs and timm's logits
/// (of the whole registered module, wrapper included) as OUT/<id with ~>.in.npy / .ref.npy.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_xcit import registered, bare, randomize
from tv_resnet import logits_case
torch.set_num_threads(2)
out = sys.argv[1]
for i, (size, dataset, classes, arch, px, wrap) in enumerate([
        ("s12", "imagenet", 1000, "xcit-s12-p16", 224, True),
        ("s12", "cifar10", 10, "xcit-s12-p16to4", 32, False),
        ("m12", "cifar100", 100, "xcit-m12-p16to4", 32, False)]):
    torch.manual_seed(i)
    module = registered(size, dataset, classes)
    randomize(bare(module), seed=i + 1)
    id = f"{dataset}/Linf/Debenedetti2022Light_XCiT-{size.upper()}"
    path = os.path.join(out, "models", id + ".pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = bare(module).state_dict()
    torch.save({"model": state} if wrap else state, path)
    logits_case(out, id.replace("/", "~"), module.eval(), 2, px, seed=11 + i)
    print(id, arch)
"#;

fn at(dir: &Path, id: &str, ext: &str) -> String {
    format!("{}.{ext}", dir.join(id.replace('/', "~")).display())
}

/// max |rift − timm| over max |timm| of a case's logits.
fn relative_diff(dir: &Path, id: &str) -> f32 {
    let read = |ext: &str| -> Vec<f32> {
        let array = rift::engine::data::read_npy(Path::new(&at(dir, id, ext))).unwrap();
        array.to_f32().unwrap()
    };
    let (ours, theirs) = (read("rift.npy"), read("ref.npy"));
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(&theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

#[test]
fn xcits_through_the_zoo_equal_timm() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_ZOO, &[path_str(dir.path())]);
    let models = dir.path().join("models");
    for line in listing.lines() {
        let (id, arch) = line.split_once(' ').unwrap();
        let run = rift(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&models),
            "--input",
            &at(dir.path(), id, "in.npy"),
            "--output",
            &at(dir.path(), id, "rift.npy"),
            "--device",
            "cpu",
        ]);
        let said = stderr_of(&run);
        assert!(run.status.success(), "{id}: {said}");
        assert!(
            said.contains(&format!("wrote {arch} logits")),
            "{id}: {said}"
        );
        let d = relative_diff(dir.path(), id);
        eprintln!("{id}: max |rift - timm| / max |timm| = {d:e}");
        assert!(d <= 1e-4, "{id}: max |rift - timm| / max |timm| = {d}");
    }

    // Every convolution and Linear is a module, in forward order; the file's own keys say
    // XCiT-S12 (detection sees no strides: the zoo's name says p16to4).
    let json = dir.path().join("inspect.json");
    rift_ok(&[
        "inspect",
        "--zoo",
        "cifar10/Linf/Debenedetti2022Light_XCiT-S12",
        "--model-dir",
        path_str(&models),
        "--output",
        path_str(&json),
    ]);
    let v = read_json(&json);
    assert_eq!(v["arch"], "xcit-s12-p16to4", "{v}");
    assert_eq!(v["num_classes"], 10);
    let names: Vec<String> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = (0..4)
        .map(|i| format!("patch_embed.proj.{}.0", 2 * i))
        .collect();
    for i in 0..12 {
        for leaf in [
            "attn.qkv",
            "attn.proj",
            "local_mp.conv1",
            "local_mp.conv2",
            "mlp.fc1",
            "mlp.fc2",
        ] {
            expected.push(format!("blocks.{i}.{leaf}"));
        }
    }
    for i in 0..2 {
        for leaf in [
            "attn.q",
            "attn.k",
            "attn.v",
            "attn.proj",
            "mlp.fc1",
            "mlp.fc2",
        ] {
            expected.push(format!("cls_attn_blocks.{i}.{leaf}"));
        }
    }
    expected.push("head".into());
    assert_eq!(names, expected);
}

/// The nine XCiT entries are supported, with the registered builders' architecture and
/// normalisation (CIFAR: `normalize_timm_model` with its `default_cfg`'s statistics;
/// ImageNet: none).
#[test]
fn the_xcit_entries_are_supported() {
    for (dataset, classes, suffix) in [
        ("cifar10", 10, "-p16to4"),
        ("cifar100", 100, "-p16to4"),
        ("imagenet", 1000, "-p16"),
    ] {
        let out = rift_ok(&["zoo", "--dataset", dataset, "--supported", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let entries = v["entries"].as_array().unwrap();
        for (size, arch) in [
            ("S12", "xcit-s12"),
            ("M12", "xcit-m12"),
            ("L12", "xcit-l12"),
        ] {
            let name = format!("Debenedetti2022Light_XCiT-{size}");
            let e = entries
                .iter()
                .find(|e| e["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{dataset} {name} missing: {out}"));
            assert_eq!(e["family"], "xcit", "{e}");
            assert_eq!(e["arch"], format!("{arch}{suffix}"), "{e}");
            assert_eq!(e["classes"], classes, "{e}");
            match dataset {
                "imagenet" => assert_eq!(e["normalize"], "none", "{e}"),
                "cifar10" => assert_eq!(e["normalize"]["mean"][0], 0.4914, "{e}"),
                _ => assert_eq!(e["normalize"]["std"][2], 0.2761, "{e}"),
            }
        }
    }
}

/// A missing file: the hint builds the registered model robustbench's `load_model` uses
/// (the entry's own constructor names an unregistered one).
#[test]
fn a_missing_xcit_file_says_how_to_save_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = rift(&[
        "inspect",
        "--zoo",
        "cifar100/Linf/Debenedetti2022Light_XCiT-L12",
        "--model-dir",
        path_str(dir.path()),
    ]);
    common::assert_failed(
        &run,
        1,
        &[
            "no checkpoint",
            "load_model('Debenedetti2022Light_XCiT-L12', dataset='cifar100', threat_model='Linf')",
        ],
    );
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), the tiny XCiT (10 classes) in
/// robustbench's `normalize_model` saved as xcit.pth, and the published MRC
/// (`tests/py/mrc_ref.py`) of the modules argv[2] names on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from timm_xcit import tiny, randomize
from tv_resnet import normalize_model
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
torch.manual_seed(7)
net = randomize(tiny(10), seed=7)
module = normalize_model(net)
torch.save(module.state_dict(), os.path.join(out, "xcit.pth"))
print_published_mrc(module, x, y, sys.argv[2], named=net)
"#;

/// Every kind of cut: each patch-embedding convolution, each of the XCA block's six
/// layers, each of the class-attention block's six, the classifier.
const MODULES: &str = "patch_embed.proj.0.0,patch_embed.proj.2.0,patch_embed.proj.4.0,patch_embed.proj.6.0,blocks.0.attn.qkv,blocks.0.attn.proj,blocks.0.local_mp.conv1,blocks.0.local_mp.conv2,blocks.0.mlp.fc1,blocks.0.mlp.fc2,cls_attn_blocks.0.attn.q,cls_attn_blocks.0.attn.k,cls_attn_blocks.0.attn.v,cls_attn_blocks.0.attn.proj,cls_attn_blocks.0.mlp.fc1,cls_attn_blocks.0.mlp.fc2,head";

/// timm's Xcit(embed_dim=64, depth=1, num_heads=4, cls_attn_layers=1) adapted to patch 4.
const TINY_ARCH: &str = "xcit-dim64-depth1-heads4-p16to4-ca1";

#[test]
fn mrc_on_a_tiny_xcit_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let arch = ["--arch", TINY_ARCH];
    let ours = mrc_scores(&common::zoo_mrc_json(
        dir.path(),
        "xcit.pth",
        MODULES,
        "faithful",
        &arch,
    ));
    assert_eq!(ours.len(), 17);
    let torch: serde_json::Value = serde_json::from_str(&reference).unwrap();
    let worst = ours.iter().fold(0f64, |m, (name, mrc, _)| {
        let r = torch[name][0].as_f64().unwrap();
        m.max((mrc - r).abs() / r.abs().max(1e-4))
    });
    eprintln!("tiny XCiT: max relative |MRC rift - torch| = {worst:e}");
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    let fast = mrc_scores(&common::zoo_mrc_json(
        dir.path(),
        "xcit.pth",
        MODULES,
        "fast",
        &["--arch", TINY_ARCH, "--fast"],
    ));
    assert_fast_equals_faithful(&fast, &ours);
}

/// `rift finetune` of one layer: the file rift writes loads strictly into timm's Xcit,
/// keys in its order, and only that layer moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_xcit import tiny
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = tiny(10)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from timm's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_xcit_loads_back_into_timm() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import dm_fixture
from timm_xcit import tiny, randomize
dm_fixture(sys.argv[1])
torch.manual_seed(3)
torch.save(randomize(tiny(10), seed=3).state_dict(), os.path.join(sys.argv[1], "xcit.pt"))
"#;
    run_python(script, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("xcit.pt"), dir.path().join("xcit-ft.pth"));
    let model = ["--arch", TINY_ARCH, "--normalize", "cifar10"];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "blocks.0.local_mp.conv1",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(
        changed.contains(&"blocks.0.local_mp.conv1.weight"),
        "{changed:?}"
    );
    // Training mode moves the BatchNorms' running statistics (the LPI's and the patch
    // embedding's), as PyTorch's would; no other parameter moves.
    assert!(
        changed
            .iter()
            .all(|k| k.starts_with("blocks.0.local_mp.conv1.")
                || k.contains(".running_")
                || k.ends_with("num_batches_tracked")),
        "{changed:?}"
    );
}
