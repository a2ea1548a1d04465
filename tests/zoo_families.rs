//! Zoo families built from options on existing ones, against robustbench 1.1.1's own code
//! (loaded by file from the unpacked wheel): the MeanSparse DM WideResNet (Amini2024, the
//! top entries of CIFAR-10 L∞, CIFAR-10 L2 and CIFAR-100 L∞) — logits, detection, the
//! `--zoo` entries' flags, MRC's fast path and fine-tuned files loading back into
//! robustbench's module. MeanSparse statistics are random and chosen to bite (the tests
//! check that zeroing the thresholds changes the logits). PreActResNet V1 and
//! Ding2020MMA are in zoo_preact_ding.rs.
mod common;

use common::{
    assert_failed, assert_fast_equals_faithful, assert_mrc_matches_reference, max_abs_diff,
    mrc_scores, path_str, rift, rift_ok, run_python, stderr_of, tiny_zoo_run_args,
};

/// Small MeanSparse networks from both of robustbench's files (70-16's `DMWideResNet`,
/// 94-16's `MeanSparse_DMWideResNet`), randomised BatchNorm and MeanSparse state, their
/// logits on random pixels, and the logits with every threshold zeroed. Also a plain DM
/// WideResNet of the same size (for the refusals). Prints `name rift-arch bite`.
const MAKE_MS: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_meansparse, randomize_meansparse, without_meansparse, build_zoo
torch.set_num_threads(2)
out = sys.argv[1]
torch.manual_seed(0)
cases = [("ms70-10-1", "Meansparse_wrn_70_16", 10, 1, 10, 0),
         ("ms94-16-2", "Meansparse_wrn_94_16", 16, 2, 100, 4)]
for i, (name, file, depth, width, classes, zero_every) in enumerate(cases):
    net = build_meansparse(depth, width, classes, file=file)
    randomize_bn(net, seed=i)
    n_ops = randomize_meansparse(net, seed=10 + i, zero_every=zero_every)
    assert n_ops == 3 * 3 * (depth - 4) // 6 + 1, n_ops
    net.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
        plain = without_meansparse(net).eval()(x)
    torch.save(net.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
    print(name, f"meansparse-dm-wrn-{depth}-{width}", (logits - plain).abs().max().item())
torch.save(build_zoo("dm-wrn-10-1").state_dict(), os.path.join(out, "plain-10-1.pth"))
"#;

fn predict(dir: &std::path::Path, name: &str, ckpt: &str, extra: &[&str]) -> std::process::Output {
    let at = |s: &str| dir.join(format!("{name}.{s}")).display().to_string();
    let mut args: Vec<String> = ["predict", "--checkpoint", ckpt, "--input"]
        .map(String::from)
        .to_vec();
    args.extend([at("in.npy"), "--output".into(), at("rift.npy")]);
    args.extend(["--dataset", "cifar10", "--device", "cpu"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    rift(&args)
}

#[test]
fn meansparse_dm_wideresnet_logits_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_MS, &[path_str(dir.path())]);
    let mut checked = 0;
    for line in listing.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, arch, bite) = (parts[0], parts[1], parts[2].parse::<f64>().unwrap());
        assert!(
            bite > 1e-2,
            "{name}: the MeanSparse ops change nothing ({bite})"
        );
        let ckpt = dir.path().join(format!("{name}.pth"));
        // Detected from the keys (`--arch auto`), and named explicitly.
        for extra in [&[][..], &["--arch", arch][..]] {
            let run = predict(dir.path(), name, path_str(&ckpt), extra);
            let said = stderr_of(&run);
            assert!(run.status.success(), "{name} {extra:?}: {said}");
            assert!(said.contains(&format!("wrote {arch} logits")), "{said}");
            let d = max_abs_diff(
                &dir.path().join(format!("{name}.rift.npy")),
                &dir.path().join(format!("{name}.ref.npy")),
            );
            assert!(d <= 1e-4, "{name} {extra:?}: max |rift - torch| = {d}");
        }
        checked += 1;
    }
    assert_eq!(checked, 2, "{listing}");

    // The plain architecture on a MeanSparse file, and the other way round: the key diff.
    let ms = dir.path().join("ms70-10-1.pth");
    let run = predict(
        dir.path(),
        "ms70-10-1",
        path_str(&ms),
        &["--arch", "dm-wrn-10-1"],
    );
    assert_failed(
        &run,
        1,
        &[
            "does not match dm-wrn-10-1",
            "unexpected keys",
            "layer.0.block.0.meansparse_0.running_mean",
        ],
    );
    let plain = dir.path().join("plain-10-1.pth");
    let run = predict(
        dir.path(),
        "ms70-10-1",
        path_str(&plain),
        &["--arch", "meansparse-dm-wrn-10-1"],
    );
    assert_failed(
        &run,
        1,
        &[
            "does not match meansparse-dm-wrn-10-1",
            "missing keys",
            "layer.0.block.0.meansparse_0.threshold",
        ],
    );
    // MeanSparse exists only over the DM WideResNet here.
    let run = predict(
        dir.path(),
        "ms70-10-1",
        path_str(&ms),
        &["--arch", "meansparse-wrn-10-1"],
    );
    assert_failed(
        &run,
        1,
        &["meansparse-wrn-10-1", "meansparse-dm-wrn-DEPTH-K"],
    );
}

/// MRC's fast path on the MeanSparse network: for every module the cached prefix followed
/// by the suffix gives the full forward pass's logits (the cuts keep the MeanSparse ops
/// after each BatchNorm and residual sum, and the head's).
#[test]
fn meansparse_cached_prefix_and_suffix_equal_the_forward_pass() {
    use rift::engine::checkpoint::load_checkpoint;
    use rift::engine::models::{Model, ModelChoice};
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_MS, &[path_str(dir.path())]);
    let (mean, std) = (
        vec![0.4914f32, 0.4822, 0.4465],
        vec![0.2471f32, 0.2435, 0.2616],
    );
    let mut checked = 0;
    for name in ["ms70-10-1", "ms94-16-2"] {
        let ckpt = load_checkpoint(&dir.path().join(format!("{name}.pth"))).unwrap();
        let model = Model::from_checkpoint_with(
            &ckpt,
            &ModelChoice::default(),
            tch::Device::Cpu,
            (&mean, &std, "cifar10"),
        )
        .unwrap();
        assert!(model.spec.meansparse, "{name}");
        // Saved state: robustbench's keys in robustbench's order (its state_dict's).
        let keys: Vec<&String> = ckpt.tensors.iter().map(|(k, _)| k).collect();
        assert_eq!(model.keys().iter().collect::<Vec<_>>(), keys, "{name}");
        tch::manual_seed(0);
        let x = tch::Tensor::rand([3, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
        let full = tch::no_grad(|| model.forward(&x, false));
        for m in model.modules() {
            let cache = model.prefix_cache(&x, &m.name).unwrap();
            let fast = tch::no_grad(|| model.suffix_logits(&m.name, &cache));
            let diff = (&fast - &full).abs().max().double_value(&[]);
            assert!(
                diff <= 1e-5,
                "{name} {}: |suffix - forward| = {diff}",
                m.name
            );
            checked += 1;
        }
    }
    // 10-1: 1 + 2+3+3 + 1 modules; 16-2: 1 + 5+5+5 + 1.
    assert_eq!(checked, 10 + 17);
}

/// Each MeanSparse entry's own constructor (the table's `architecture`, robustbench's
/// `get_sparse_model` branch) at depth 10 and width 1, saved where `--zoo` looks.
const MAKE_ENTRIES: &str = r#"
import sys, os, re, json, numpy as np, torch
import torch.nn as nn
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import zoo_module, randomize_meansparse
out = sys.argv[1]
table = {e["dataset"] + "/" + e["threat"] + "/" + e["name"]: e
         for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]}
scope = {"Meansparse_wrn_70_16": zoo_module("Meansparse_wrn_70_16"),
         "Meansparse_wrn_94_16": zoo_module("Meansparse_wrn_94_16"), "nn": nn}
torch.manual_seed(1)
for i, zid in enumerate(sys.argv[2:]):
    arch = table[zid]["architecture"]
    small = re.sub(r"width=\d+", "width=1", re.sub(r"depth=\d+", "depth=10", arch))
    net = eval(small, scope)
    randomize_bn(net, seed=i)
    randomize_meansparse(net, seed=i)
    net.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
    path = os.path.join(out, "models", zid + ".pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(net.state_dict(), path)
    stem = os.path.join(out, zid.replace("/", "~"))
    np.save(stem + ".in.npy", x.numpy())
    np.save(stem + ".ref.npy", logits.numpy())
    print(zid)
"#;

/// The three MeanSparse entries are supported, and the flags `--zoo` sets for each
/// (architecture family, activation, the constructor's mean/std — CIFAR-100's for the
/// CIFAR-100 entry) give robustbench's logits on the entry's own constructor at a small
/// depth; `--zoo` itself refuses that file, naming both sizes.
#[test]
fn meansparse_entries_flags_reproduce_their_constructors() {
    use rift::engine::zoo;
    let ids = [
        "cifar10/Linf/Amini2024MeanSparse_S-WRN-94-16",
        "cifar10/L2/Amini2024MeanSparse_S-WRN-70-16",
        "cifar100/Linf/Amini2024MeanSparse_S-WRN-70-16",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![path_str(dir.path())];
    args.extend(ids);
    let made = run_python(MAKE_ENTRIES, &args);
    assert_eq!(made.lines().count(), 3, "{made}");
    for id in ids {
        let entry = zoo::lookup(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(entry.is_supported(), "{id}");
        let stem = id.replace('/', "~");
        let file = dir.path().join(format!("models/{id}.pt"));
        let mut extra: Vec<String> = Vec::new();
        for (flag, value) in entry.flags() {
            let value = if flag == "--arch" {
                assert!(value.starts_with("meansparse-dm-wrn-"), "{id}: {value}");
                "meansparse-dm-wrn-10-1".to_string()
            } else {
                value
            };
            extra.extend([flag.to_string(), value]);
        }
        assert!(extra.contains(&"--activation".to_string()), "{extra:?}");
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let run = predict(dir.path(), &stem, path_str(&file), &extra);
        assert!(run.status.success(), "{id}: {}", stderr_of(&run));
        let d = max_abs_diff(
            &dir.path().join(format!("{stem}.rift.npy")),
            &dir.path().join(format!("{stem}.ref.npy")),
        );
        assert!(d <= 1e-4, "{id}: max |rift - torch| = {d}");

        let run = rift(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&dir.path().join("models")),
            "--input",
            path_str(&dir.path().join(format!("{stem}.in.npy"))),
            "--output",
            path_str(&dir.path().join("zoo.npy")),
            "--device",
            "cpu",
        ]);
        let size = id.rsplit('-').take(2).collect::<Vec<_>>();
        let expected = format!("is a meansparse-dm-wrn-{}-{}", size[1], size[0]);
        assert_failed(
            &run,
            1,
            &[&expected, "holds a meansparse-dm-wrn-10-1", path_str(&file)],
        );
    }
}

/// The small MeanSparse network with the stage tests' tiny CIFAR-10 (`dm_fixture`'s data;
/// its dm.pth replaced), and the published MRC (`tests/py/mrc_ref.py`, PGD-10 adversarial
/// set without random start, 5 epochs) on robustbench's module for the modules given.
const PY_MRC: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd, randomize_bn
from mrc_ref import print_published_mrc
from zoo import dm_fixture, build_meansparse, randomize_meansparse
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
torch.manual_seed(7)
net = build_meansparse(10, 1)
randomize_bn(net, seed=7)
randomize_meansparse(net, seed=7, threshold=0.3)
net.eval()
torch.save(net.state_dict(), os.path.join(out, "ms.pth"))
print_published_mrc(net, x, y, sys.argv[2])
"#;

/// Every kind of cut: stem, both convs of a block without shortcut, a stride-2 conv_0, a
/// shortcut, a last-group conv_1, the classifier.
const MODULES: &str = "init_conv,layer.0.block.0.conv_0,layer.0.block.0.conv_1,layer.1.block.0.conv_0,layer.1.block.0.shortcut,layer.2.block.0.conv_1,logits";

fn mrc_json(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    common::zoo_mrc_json(dir, "ms.pth", MODULES, name, extra)
}

/// Loads a rift-written file strictly into robustbench's MeanSparse module (same keys,
/// same order, every MeanSparse buffer unchanged from the input file).
const PY_LOADS_BACK: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import build_meansparse
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = build_meansparse(10, 1)
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from robustbench's"
for k, v in orig.items():
    if ".meansparse" in k or k.startswith("meansparse"):
        assert torch.equal(mine[k], v), k
print("ok")
"#;

#[test]
fn mrc_on_a_meansparse_wideresnet_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[path_str(dir.path()), MODULES]);
    let v = mrc_json(dir.path(), "faithful", &[]);
    let ours = mrc_scores(&v);
    assert_eq!(ours.len(), 7);
    // At most one of the 32 samples may land on the other side of a decision boundary.
    assert_mrc_matches_reference(&ours, &reference, 3.2);
    let fast = mrc_scores(&mrc_json(dir.path(), "fast", &["--fast"]));
    assert_eq!(fast.len(), 7);
    assert_fast_equals_faithful(&fast, &ours);

    // Fine-tuning one module and interpolating: the chosen file loads back into
    // robustbench's module, MeanSparse state untouched.
    let session = dir.path().join("session");
    let ckpt = dir.path().join("ms.pth");
    let mut args = tiny_zoo_run_args(&ckpt, dir.path(), &session, "1", &[]);
    args.extend(["--modules", "layer.1.block.0.conv_0,logits"]);
    args.extend(["--layer", "layer.1.block.0.conv_0", "--epochs", "1"]);
    args.extend(["--alphas", "0,1", "--device", "cpu"]);
    rift_ok(&args);
    let said = run_python(
        PY_LOADS_BACK,
        &[path_str(&session.join("chosen.pth")), path_str(&ckpt)],
    );
    assert_eq!(said.trim(), "ok");
}
