//! robustbench's per-stage networks of Huang et al. (issue 21): `RobustWideResNet`
//! (`cifar10/Linf/Huang2021Exploring`, `_ema`) and `robust_resnet.PreActResNet`
//! (`cifar10/Linf/Huang2022Revisiting_WRN-A4`), against robustbench 1.1.1's own modules
//! loaded by file from the unpacked wheel: logits of small configurations (ReLU and SiLU,
//! with and without the `mu`/`sigma` of `pre_process`), detection, the published MRC and
//! `--fast` against the faithful loop, the zoo entries' flags, and the published networks'
//! key layout (built on PyTorch's meta device, never run).
mod common;

use common::{assert_failed, path_str, rift, run_python, stderr_of, zoo_mrc_json};
use common::{assert_fast_equals_faithful, assert_mrc_matches_reference, max_abs_diff, mrc_scores};
use std::path::Path;

/// Small networks of both classes with random weights and randomised BatchNorm, their
/// logits on random pixels. Prints `name rift-arch` per case.
const MAKE: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_robust
torch.set_num_threads(2)
out = sys.argv[1]
cases = [
    ("rwrn", "robust-wrn-2.1.2-8.16.32.24", dict(kind="wrn", channels=[8, 16, 32, 24], depths=[2, 1, 2])),
    ("rrn-silu", "robust-resnet-1.2.1-8.16.24.32",
     dict(kind="resnet", channels=[8, 16, 24, 32], depths=[1, 2, 1], pre_process=True)),
    ("rrn-relu", "robust-resnet-2.1.1-16.16.32.32",
     dict(kind="resnet", channels=[16, 16, 32, 32], depths=[2, 1, 1], activation="relu")),
]
for i, (name, arch, kw) in enumerate(cases):
    torch.manual_seed(i)
    net = build_robust(**kw)
    randomize_bn(net, seed=i)
    net.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
    torch.save(net.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
    print(name, arch)
"#;

fn predict(dir: &Path, name: &str, extra: &[&str]) -> std::process::Output {
    let at = |s: &str| dir.join(format!("{name}.{s}")).display().to_string();
    let mut args: Vec<String> = vec!["predict".into(), "--checkpoint".into(), at("pth")];
    args.extend([
        "--input".into(),
        at("in.npy"),
        "--output".into(),
        at("rift.npy"),
    ]);
    args.extend(["--dataset", "cifar10", "--device", "cpu"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    rift(&args)
}

#[test]
fn robust_networks_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listing = run_python(MAKE, &[path_str(d)]);
    let cases: Vec<(String, String)> = listing
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    assert_eq!(cases.len(), 3, "{listing}");
    for (name, arch) in &cases {
        // The RobustWideResNet takes raw pixels; pre_process keeps its statistics as
        // mu/sigma, which --normalize auto reads; without them, raw pixels too.
        let norm = if name == "rrn-silu" { "auto" } else { "none" };
        let act = if name == "rrn-relu" { "relu" } else { "silu" };
        let mut named = vec!["--arch", arch.as_str(), "--normalize", norm];
        if arch.starts_with("robust-resnet") {
            named.extend(["--activation", act]);
        }
        for extra in [named.clone(), vec!["--normalize", norm]] {
            let run = predict(d, name, &extra);
            let said = stderr_of(&run);
            assert!(run.status.success(), "{name} {extra:?}: {said}");
            assert!(said.contains(&format!("wrote {arch} logits")), "{said}");
            let diff = max_abs_diff(
                &d.join(format!("{name}.rift.npy")),
                &d.join(format!("{name}.ref.npy")),
            );
            // Detection assumes SiLU for the RobustResNet (the zoo's WRN-A4): the ReLU
            // network detected gets other logits, and is right with --activation relu.
            if name == "rrn-relu" && extra.len() == 2 {
                assert!(diff > 1e-3, "{name}: SiLU assumed, yet the logits agree");
            } else {
                assert!(
                    diff <= 1e-4,
                    "{name} {extra:?}: max |rift - torch| = {diff}"
                );
            }
        }
    }
    // A RobustWideResNet file read as a RobustResNet of the same widths: refused with the
    // key diff.
    let run = predict(d, "rwrn", &["--arch", "robust-resnet-2.1.2-8.16.32.24"]);
    assert_failed(
        &run,
        1,
        &[
            "does not match robust-resnet-2.1.2-8.16.32.24",
            "convShortcut",
        ],
    );
    // A bad name says what a name looks like.
    let run = predict(d, "rwrn", &["--arch", "robust-wrn-2.1-8.16"]);
    assert_failed(&run, 1, &["robust-wrn-2.1-8.16", "three stages"]);
}

/// A small SiLU RobustResNet with pre_process on the stage tests' tiny CIFAR-10, and the
/// published MRC (`tests/py/mrc_ref.py`) on robustbench's module for the modules given.
const PY_MRC: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd, randomize_bn
from mrc_ref import print_published_mrc
from zoo import dm_fixture, build_robust
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
torch.manual_seed(7)
net = build_robust("resnet", [8, 16, 24, 32], [1, 2, 1], pre_process=True)
randomize_bn(net, seed=7)
net.eval()
torch.save(net.state_dict(), os.path.join(out, "rrn.pth"))
print_published_mrc(net, x, y, sys.argv[2])
"#;

/// Every kind of cut: the stem, both convolutions of a block, a shortcut, a later stage,
/// the classifier.
const MODULES: &str = "stem_conv,blocks.0.layer.0.conv1,blocks.0.layer.0.shortcut.0,blocks.1.layer.1.conv2,blocks.2.layer.0.conv1,fc";

#[test]
fn robust_resnet_mrc_equals_the_published_algorithm_and_fast_equals_faithful() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = run_python(PY_MRC, &[path_str(d), MODULES]);
    let faithful = zoo_mrc_json(d, "rrn.pth", MODULES, "faithful", &[]);
    // A drop is a few of 32 points; one point of robust accuracy flipping with the
    // summation order is 3.125.
    assert_mrc_matches_reference(&mrc_scores(&faithful), &reference, 3.2);
    let fast = zoo_mrc_json(d, "rrn.pth", MODULES, "fast", &["--fast"]);
    assert_fast_equals_faithful(&mrc_scores(&fast), &mrc_scores(&faithful));
}

/// The published networks of the three entries on PyTorch's meta device: every state key
/// and shape, in order.
const PUBLISHED_KEYS: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import robust_modules
wrn, rn = robust_modules()
out = {}
with torch.device("meta"):
    out["robust-wrn-5.5.5-16.320.640.512"] = wrn.RobustWideResNet(
        num_classes=10, channel_configs=[16, 320, 640, 512], depth_configs=[5, 5, 5])
    out["robust-resnet-27.28.13-16.160.448.384"] = rn.get_model("WRN-A4")
print(json.dumps({k: [[n, list(v.shape)] for n, v in m.state_dict().items()] for k, m in out.items()}))
"#;

/// rift's networks for the zoo entries have exactly the published keys and shapes in
/// robustbench's order (WRN-A4's `mu`/`sigma` aside: rift keeps input statistics apart),
/// detection names those shapes as the zoo table does, and the entries' flags are those.
#[test]
fn the_zoo_entries_have_the_published_key_layout() {
    use rift::engine::models::{detect_arch, ArchSpec, Model};
    use std::collections::HashMap;
    let published: HashMap<String, Vec<(String, Vec<usize>)>> =
        serde_json::from_str(&run_python(PUBLISHED_KEYS, &[])).unwrap();
    for (name, layout) in &published {
        let layout: Vec<(String, Vec<usize>)> = layout
            .iter()
            .filter(|(k, _)| k != "mu" && k != "sigma")
            .cloned()
            .collect();
        let shapes: HashMap<String, Vec<usize>> = layout.iter().cloned().collect();
        let detected = detect_arch(&shapes).unwrap();
        assert_eq!(&detected.name(), name);
        let spec = ArchSpec::parse(name, None, 10, 3, (32, 32)).unwrap();
        assert_eq!(spec, detected, "{name}: parsed and detected specs differ");
        let (mean, std) = ([0.0f32; 3], [1.0f32; 3]);
        let model = Model::new(spec, tch::Device::Cpu, &mean, &std, "cifar10").unwrap();
        let ours: Vec<(String, Vec<usize>)> = model
            .keys()
            .iter()
            .map(|k| {
                let size = model.var(k).unwrap().size();
                (k.clone(), size.iter().map(|&d| d as usize).collect())
            })
            .collect();
        assert_eq!(ours, layout, "{name}");
    }
    // The entries, by their robustbench names.
    for (id, arch, act) in [
        (
            "cifar10/Linf/Huang2021Exploring",
            "robust-wrn-5.5.5-16.320.640.512",
            None,
        ),
        (
            "cifar10/Linf/Huang2021Exploring_ema",
            "robust-wrn-5.5.5-16.320.640.512",
            None,
        ),
        (
            "cifar10/Linf/Huang2022Revisiting_WRN-A4",
            "robust-resnet-27.28.13-16.160.448.384",
            Some("silu"),
        ),
    ] {
        let e = rift::engine::zoo::lookup(id).unwrap();
        assert!(e.is_supported(), "{id}: {:?}", e.unsupported);
        let flags = e.flags();
        assert!(
            flags.contains(&("--arch", arch.to_string())),
            "{id}: {flags:?}"
        );
        let has_act = flags
            .iter()
            .any(|(f, v)| *f == "--activation" && Some(v.as_str()) == act);
        assert_eq!(has_act, act.is_some(), "{id}: {flags:?}");
    }
}
