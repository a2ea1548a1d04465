//! The RiFT stages on a zoo network (a small DM WideResNet with SiLU, robustbench's own
//! code as the reference): `rift mrc` agrees with an independent PyTorch MRC (values and
//! ranking), `--fast` equals the faithful path (its cuts respect the explicit padding), and
//! `rift run` goes through MRC, fine-tuning by the zoo's module name and interpolation,
//! recording the normalisation and activation. Data: a tiny CIFAR-10 in the binary format
//! (random pixels and labels, written here).
mod common;

use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, mrc_scores, path_str};
use common::{rift_ok, run_python, tiny_zoo_run_args};
use rift::report::session::Session;

/// Writes the DM WRN-10-1 checkpoint and a CIFAR-10 binary copy (`dm_fixture` in
/// tests/py/zoo.py; the first 32 test images are the adversarial set), then runs the published MRC
/// (`tests/py/mrc_ref.py` on a PGD-10 adversarial set without random start; 5 epochs here,
/// to stay fast) on the zoo's own model for the modules given.
const PY_MRC: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd
from mrc_ref import published_mrc
from zoo import dm_fixture
torch.set_num_threads(2)
out = sys.argv[1]
net, x, y = dm_fixture(out)
modules = sys.argv[2].split(",")
for p in net.parameters():
    p.requires_grad_(False)
adv = pgd(net, x, y, 8 / 255, 2 / 255, 10, random_start=False)
chosen = [(n, m) for n, m in net.named_modules() if n in modules]
print(json.dumps(published_mrc(net, chosen, adv, y, 5)))
"#;

/// One module of every kind: stem, a block without shortcut, a stride-2 conv_0 with its
/// (0,1,0,1) padding, a shortcut, a last-group conv_1, the classifier.
const MODULES: &str =
    "init_conv,layer.0.block.0.conv_0,layer.1.block.0.conv_0,layer.1.block.0.shortcut,layer.2.block.0.conv_1,logits";

fn mrc_json(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    common::zoo_mrc_json(dir, "dm.pth", MODULES, name, extra)
}

#[test]
fn mrc_on_a_dm_wideresnet_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let v = mrc_json(dir.path(), "faithful", &[]);
    let ours = mrc_scores(&v);
    assert_eq!(ours.len(), 6);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    assert_eq!(v["adv_n"], 32);

    // --fast on the same modules (every kind of cut; `dm_cached_prefix_and_suffix_equal_
    // the_forward_pass` in zoo_models.rs checks every module's cut) gives the same values.
    let fast = mrc_scores(&mrc_json(dir.path(), "fast", &["--fast"]));
    assert_eq!(fast.len(), 6);
    assert_fast_equals_faithful(&fast, &ours);

    // The whole pipeline on the same network: MRC (screened), fine-tuning the module
    // named as in the checkpoint, interpolation; the session records how inputs were read.
    let session = dir.path().join("session");
    let ckpt = dir.path().join("dm.pth");
    let mut args = tiny_zoo_run_args(&ckpt, dir.path(), &session, "2", &[]);
    args.extend([
        "--modules",
        "init_conv,layer.1.block.0.conv_0,layer.2.block.0.shortcut,logits",
    ]);
    args.extend(["--layer", "layer.1.block.0.conv_0", "--epochs", "1"]);
    args.extend([
        "--alphas",
        "0,0.5,1",
        "--activation",
        "silu",
        "--device",
        "cpu",
    ]);
    rift_ok(&args);
    let s = Session::load(&session).unwrap();
    assert_eq!(s.model.arch, "dm-wrn-10-1");
    assert_eq!(s.model.activation.as_deref(), Some("silu"));
    assert_eq!(s.settings.activation.as_deref(), Some("silu"));
    assert!(
        s.model.normalization.contains("cifar10 dataset mean/std"),
        "{}",
        s.model.normalization
    );
    let ft = s.finetune.as_ref().expect("fine-tuning ran");
    assert_eq!(ft.layers, vec!["layer.1.block.0.conv_0".to_string()]);
    assert!(s.chosen.is_some(), "an α was chosen");
    let report = std::fs::read_to_string(session.join("report.md")).unwrap();
    assert!(
        report.contains("| normalization | cifar10 dataset mean/std"),
        "{report}"
    );
    assert!(report.contains("| activation | silu |"), "{report}");
}
