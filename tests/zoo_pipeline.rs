//! The RiFT stages on a zoo network (a small DM WideResNet with SiLU, robustbench's own
//! code as the reference): `rift mrc` agrees with an independent PyTorch MRC (values and
//! ranking), `--fast` equals the faithful path (its cuts respect the explicit padding), and
//! `rift run` goes through MRC, fine-tuning by the zoo's module name and interpolation,
//! recording the normalisation and activation. Data: a tiny CIFAR-10 in the binary format
//! (random pixels and labels, written here).
mod common;

use common::{mrc_scores, path_str, rift_ok, run_python};
use rift::report::session::Session;
use std::collections::HashMap;

/// Writes the DM WRN-10-1 checkpoint and a CIFAR-10 binary copy (`dm_fixture` in
/// tests/py/zoo.py; the first 32 test images are the adversarial set), then runs the published MRC
/// (SPEC.md §1: PGD-10 adversarial set without random start, SGD ascent at lr 1 with the
/// weight kept within 10% of its norm, the best epoch's loss increase; 5 epochs here, to
/// stay fast) on the zoo's own model for the modules given.
const PY_MRC: &str = r#"
import sys, os, json, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd
from zoo import dm_fixture
torch.set_num_threads(2)
out = sys.argv[1]
net, x, y = dm_fixture(out)
modules = sys.argv[2].split(",")
for p in net.parameters():
    p.requires_grad_(False)
adv = pgd(net, x, y, 8 / 255, 2 / 255, 10, random_start=False)
def evaluate():
    with torch.no_grad():
        o = net(adv)
        return F.cross_entropy(o, y).item(), (o.argmax(1) == y).float().mean().item() * 100
base_loss, base_acc = evaluate()
result = {}
for name, m in net.named_modules():
    if name not in modules:
        continue
    w = m.weight
    w0 = w.detach().clone()
    w.requires_grad_(True)
    opt = torch.optim.SGD([w], lr=1.0)
    losses, accs = [], []
    for epoch in range(5):
        loss = -F.cross_entropy(net(adv), y)
        opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            dw = w - w0
            ratio = dw.norm() / w0.norm()
            if ratio > 0.1:
                w.copy_(w0 + dw * (0.1 / ratio))
        l, a = evaluate()
        losses.append(l); accs.append(a)
    best = int(np.argmax(losses))
    result[name] = [losses[best] - base_loss, base_acc - accs[best]]
    with torch.no_grad():
        w.copy_(w0)
    w.requires_grad_(False)
print(json.dumps(result))
"#;

/// One module of every kind: stem, a block without shortcut, a stride-2 conv_0 with its
/// (0,1,0,1) padding, a shortcut, a last-group conv_1, the classifier.
const MODULES: &str =
    "init_conv,layer.0.block.0.conv_0,layer.1.block.0.conv_0,layer.1.block.0.shortcut,layer.2.block.0.conv_1,logits";

fn mrc_json(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = dir.join(format!("{name}.json"));
    let ckpt = dir.join("dm.pth");
    let mut args = vec![
        "mrc",
        "--checkpoint",
        path_str(&ckpt),
        "--dataset",
        "cifar10",
    ];
    args.extend([
        "--data-dir",
        path_str(dir),
        "--adv-split",
        "test",
        "--adv-limit",
        "32",
        "--mrc-epochs",
        "5",
        "--modules",
        MODULES,
    ]);
    args.extend([
        "--eps",
        "0.03137254901960784",
        "--step",
        "0.00784313725490196",
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
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

#[test]
fn mrc_on_a_dm_wideresnet_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference: HashMap<String, (f64, f64)> = serde_json::from_str::<HashMap<String, Vec<f64>>>(
        &run_python(PY_MRC, &[path_str(dir.path()), MODULES]),
    )
    .unwrap()
    .into_iter()
    .map(|(k, v)| (k, (v[0], v[1])))
    .collect();
    let v = mrc_json(dir.path(), "faithful", &[]);
    let ours = mrc_scores(&v);
    assert_eq!(ours.len(), reference.len(), "every chosen module is scored");
    assert_eq!(ours.len(), 6);
    for (name, mrc, drop) in &ours {
        let (r_mrc, r_drop) = reference[name];
        assert!(
            (mrc - r_mrc).abs() <= 0.02 * r_mrc.abs() + 1e-4,
            "{name}: MRC {mrc} vs torch {r_mrc}"
        );
        // At most one of the 32 samples may land on the other side of a decision boundary.
        assert!(
            (drop - r_drop).abs() <= 3.2,
            "{name}: drop {drop} vs torch {r_drop}"
        );
    }
    let mut ref_order: Vec<(&String, f64)> = reference.iter().map(|(k, v)| (k, v.0)).collect();
    ref_order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let our_order: Vec<&String> = ours.iter().map(|s| &s.0).collect();
    let ref_names: Vec<&String> = ref_order.iter().map(|s| s.0).collect();
    assert_eq!(our_order, ref_names, "rankings differ");
    assert_eq!(v["adv_n"], 32);

    // --fast on the same modules (every kind of cut; `dm_cached_prefix_and_suffix_equal_
    // the_forward_pass` in zoo_models.rs checks every module's cut) gives the same values.
    let fast = mrc_scores(&mrc_json(dir.path(), "fast", &["--fast"]));
    assert_eq!(fast.len(), 6);
    for (name, mrc, drop) in &fast {
        let (_, f_mrc, f_drop) = ours.iter().find(|s| &s.0 == name).unwrap();
        assert!(
            (mrc - f_mrc).abs() <= 1e-4 * f_mrc.abs().max(1e-2),
            "{name}: fast {mrc} vs faithful {f_mrc}"
        );
        assert!(
            (drop - f_drop).abs() < 1e-9,
            "{name}: fast drop {drop} vs {f_drop}"
        );
    }

    // The whole pipeline on the same network: MRC (screened), fine-tuning the module
    // named as in the checkpoint, interpolation; the session records how inputs were read.
    let session = dir.path().join("session");
    let ckpt = dir.path().join("dm.pth");
    let mut args = vec![
        "run",
        "--checkpoint",
        path_str(&ckpt),
        "--dataset",
        "cifar10",
    ];
    args.extend([
        "--data-dir",
        path_str(dir.path()),
        "--session",
        path_str(&session),
    ]);
    args.extend(["--limit", "32", "--adv-limit", "32", "--steps", "2"]);
    args.extend([
        "--eps",
        "0.03",
        "--step",
        "0.015",
        "--mrc-epochs",
        "2",
        "--fast",
    ]);
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
