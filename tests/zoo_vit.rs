//! robustbench's ImageNet ViTs (issue 22): Mo2022When_ViT-B
//! (`normalize_model(timm.create_model('vit_base_patch16_224'), mu, sigma)`) and
//! Tian2022Deeper_DeiT-S (timm's VisionTransformer that robustbench's `deit.py` registers,
//! wrapped in `normalize_timm_model`), built by timm's real constructors with random weights
//! (`tests/py/timm_vit.py`), saved where `--zoo` looks; rift's logits through `--zoo`
//! against timm's at the networks' one input size, 224×224; `rift inspect`'s modules; the
//! size check; MRC against the published algorithm in PyTorch and `--fast` against the
//! faithful loop on a tiny ViT of the same timm class (32×32 inputs, 8×8 patches, width 64,
//! 2 blocks of 2 heads, on the stage tests' tiny CIFAR-10); a fine-tuned file loading back
//! strictly into timm.
mod common;

use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, mrc_scores};
use common::{path_str, read_json, rift, rift_ok, run_python, stderr_of};
use std::path::Path;

/// The three cases under OUT/models, printed as `id arch`: ViT-B in robustbench's gdrive
/// layout (`model.*`, statistics from the table's `normalize_model`), DeiT-S as timm's
/// pretrained file comes (the bare network's keys under `model`, DeiT's release format;
/// statistics from timm's DeiT `default_cfg`), the ConvStem ViT-S as the whole
/// `normalize_model` module `get_convstem_models('vit_s_cvst')` returns. Inputs and timm's logits as
/// OUT/<id with ~>.in.npy / .ref.npy.
const MAKE_ZOO: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_vit import build, deit
from tv_resnet import normalize_model, logits_case
torch.set_num_threads(2)
out = sys.argv[1]
vit = build("vit_base_patch16_224", seed=1)
id = "imagenet/Linf/Mo2022When_ViT-B"
path = os.path.join(out, "models", id + ".pt")
os.makedirs(os.path.dirname(path))
torch.save({"model." + k: v for k, v in vit.state_dict().items()}, path)
logits_case(out, id.replace("/", "~"), normalize_model(vit), 2, 224, seed=11)
print(id, "vit-b16-224")
wrapped = deit("s")
wrapped.model.load_state_dict(build("deit_s", seed=2).state_dict())
id = "imagenet/corruptions/Tian2022Deeper_DeiT-S"
path = os.path.join(out, "models", id + ".pt")
os.makedirs(os.path.dirname(path))
torch.save({"model": wrapped.model.state_dict()}, path)
logits_case(out, id.replace("/", "~"), wrapped.eval(), 2, 224, seed=12)
print(id, "vit-s16-224")
cvst = normalize_model(build("vit_s_cvst", seed=3), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
id = "imagenet/Linf/Singh2023Revisiting_ViT-S-ConvStem"
torch.save(cvst.state_dict(), os.path.join(out, "models", id + ".pt"))
logits_case(out, id.replace("/", "~"), cvst, 2, 224, seed=13)
print(id, "vit-s16-224-convstem48")
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

fn predict(dir: &Path, id: &str, input: &str) -> std::process::Output {
    rift(&[
        "predict",
        "--zoo",
        id,
        "--model-dir",
        path_str(&dir.join("models")),
        "--input",
        input,
        "--output",
        &at(dir, id, "rift.npy"),
        "--device",
        "cpu",
    ])
}

#[test]
fn vit_and_deit_through_the_zoo_equal_timm() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_ZOO, &[path_str(dir.path())]);
    for line in listing.lines() {
        let (id, arch) = line.split_once(' ').unwrap();
        let run = predict(dir.path(), id, &at(dir.path(), id, "in.npy"));
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

    // The positions are fixed: another size is refused before any op runs.
    let id = "imagenet/Linf/Mo2022When_ViT-B";
    let small = dir.path().join("small.npy");
    run_python(
        "import sys, numpy as np; np.save(sys.argv[1], np.zeros((1, 3, 64, 64), np.float32))",
        &[path_str(&small)],
    );
    let run = predict(dir.path(), id, path_str(&small));
    common::assert_failed(&run, 1, &["64×64", "224×224", "pos_embed"]);

    // Every Linear and the patch projection is a module, in forward order.
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
    assert_eq!(v["arch"], "vit-b16-224", "{v}");
    assert_eq!(v["num_classes"], 1000);
    let names: Vec<String> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec!["patch_embed.proj".to_string()];
    for i in 0..12 {
        for leaf in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"] {
            expected.push(format!("blocks.{i}.{leaf}"));
        }
    }
    expected.push("head".into());
    assert_eq!(names, expected);
}

/// The three ViT entries are supported, with the architecture and normalisation their
/// constructors say (DeiT's statistics are timm's `default_cfg`'s, which
/// `normalize_timm_model` applies).
#[test]
fn the_vit_entries_are_supported() {
    let out = rift_ok(&["zoo", "--dataset", "imagenet", "--supported", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let find = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    for (name, arch) in [
        ("Mo2022When_ViT-B", "vit-b16-224"),
        ("Tian2022Deeper_DeiT-S", "vit-s16-224"),
        ("Tian2022Deeper_DeiT-B", "vit-b16-224"),
        (
            "Singh2023Revisiting_ViT-S-ConvStem",
            "vit-s16-224-convstem48",
        ),
        (
            "Singh2023Revisiting_ViT-B-ConvStem",
            "vit-b16-224-convstem48",
        ),
    ] {
        let e = find(name);
        assert_eq!(e["family"], "vit", "{e}");
        assert_eq!(e["arch"], arch, "{e}");
        assert_eq!(e["classes"], 1000, "{e}");
        if name.ends_with("ViT-B-ConvStem") {
            // get_convstem_models('vit_b_cvst') has no normalize_model: raw pixels.
            assert_eq!(e["normalize"], "none", "{e}");
            continue;
        }
        assert_eq!(e["normalize"]["mean"][0], 0.485, "{e}");
        assert_eq!(e["normalize"]["std"][2], 0.225, "{e}");
    }
}

/// The stage tests' tiny CIFAR-10 (`dm_fixture`), the tiny ViT of argv[2] (`tiny`,
/// `tiny_convstem`; 10 classes) in robustbench's `normalize_model` saved as vit.pth, and
/// the published MRC (`tests/py/mrc_ref.py`) of the modules argv[3] names on it.
const PY_MRC: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mrc_ref import print_published_mrc
from zoo import dm_fixture
from timm_vit import build
from tv_resnet import normalize_model
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
net = build(sys.argv[2], seed=7, num_classes=10)
module = normalize_model(net)
torch.save(module.state_dict(), os.path.join(out, "vit.pth"))
print_published_mrc(module, x, y, sys.argv[3], named=net)
"#;

/// Every kind of cut: the patch projection (class token and positions after it), each of
/// a block's four Linears in the first and the last block, the classifier.
const MODULES: &str = "patch_embed.proj,blocks.0.attn.qkv,blocks.0.attn.proj,blocks.0.mlp.fc1,blocks.0.mlp.fc2,blocks.1.attn.qkv,blocks.1.attn.proj,blocks.1.mlp.fc1,blocks.1.mlp.fc2,head";

/// Width 64 is none of timm's standard widths: the heads come from the name.
const TINY_ARCH: &str = "vit-dim64-depth2-heads2-p8-32";

#[test]
fn mrc_on_a_tiny_vit_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), "tiny", MODULES]);
    let arch = ["--arch", TINY_ARCH];
    let ours = mrc_scores(&common::zoo_mrc_json(
        dir.path(),
        "vit.pth",
        MODULES,
        "faithful",
        &arch,
    ));
    assert_eq!(ours.len(), 10);
    let torch: serde_json::Value = serde_json::from_str(&reference).unwrap();
    let worst = ours.iter().fold(0f64, |m, (name, mrc, _)| {
        let r = torch[name][0].as_f64().unwrap();
        m.max((mrc - r).abs() / r.abs().max(1e-4))
    });
    eprintln!("tiny ViT: max relative |MRC rift - torch| = {worst:e}");
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    let fast = mrc_scores(&common::zoo_mrc_json(
        dir.path(),
        "vit.pth",
        MODULES,
        "fast",
        &["--arch", TINY_ARCH, "--fast"],
    ));
    assert_fast_equals_faithful(&fast, &ours);

    // Without a name the heads are unknown, and the error says how to give them.
    let run = rift(&[
        "inspect",
        "--checkpoint",
        path_str(&dir.path().join("vit.pth")),
    ]);
    common::assert_failed(&run, 1, &["heads", "vit-dim64-depth2-headsH-p8-32"]);
}

/// `rift finetune` of one Linear: the file rift writes loads strictly into timm's
/// VisionTransformer, keys in its order, and only that layer moved.
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from timm_vit import build
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build("tiny", seed=0, num_classes=10)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from timm's"
print(" ".join(k for k, v in mine.items() if not torch.equal(orig[k], v)))
"#;

#[test]
fn a_finetuned_vit_loads_back_into_timm() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import dm_fixture
from timm_vit import build
dm_fixture(sys.argv[1])
torch.save(build("tiny", seed=3, num_classes=10).state_dict(), os.path.join(sys.argv[1], "vit.pt"))
"#;
    run_python(script, &[path_str(dir.path())]);
    let (ckpt, saved) = (dir.path().join("vit.pt"), dir.path().join("vit-ft.pth"));
    let model = ["--arch", TINY_ARCH, "--normalize", "imagenet"];
    let changed = common::zoo_case::finetune_loads_back(
        dir.path(),
        (&ckpt, &model),
        "blocks.1.mlp.fc1",
        &saved,
        PY_LOADS_BACK,
    );
    let changed: Vec<&str> = changed.split_whitespace().collect();
    assert!(changed.contains(&"blocks.1.mlp.fc1.weight"), "{changed:?}");
    assert!(
        changed.iter().all(|k| k.starts_with("blocks.1.mlp.fc1.")),
        "{changed:?}"
    );
}

/// Every convolution of a ConvStem (`stem.0` sees the input; `stem.12`, the 1×1, comes
/// after the last LayerNorm and GELU), a block's first and last Linear, the classifier.
const CONVSTEM_MODULES: &str = "patch_embed.proj.stem.0,patch_embed.proj.stem.3,patch_embed.proj.stem.6,patch_embed.proj.stem.9,patch_embed.proj.stem.12,blocks.0.attn.qkv,blocks.0.mlp.fc2,head";

#[test]
fn mrc_on_a_tiny_convstem_vit_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let modules = CONVSTEM_MODULES;
    let reference = run_python(PY_MRC, &[path_str(dir.path()), "tiny_convstem", modules]);
    let arch = "vit-dim64-depth1-heads2-p16-32-convstem8";
    let json = |name: &str, extra: &[&str]| {
        let args: Vec<&str> = ["--arch", arch].iter().chain(extra).copied().collect();
        mrc_scores(&common::zoo_mrc_json(
            dir.path(),
            "vit.pth",
            modules,
            name,
            &args,
        ))
    };
    let ours = json("faithful", &[]);
    assert_eq!(ours.len(), 8);
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    assert_fast_equals_faithful(&json("fast", &["--fast"]), &ours);
}
