//! RobustBench-zoo architectures against the zoo's own PyTorch code (robustbench 1.1.1's
//! `model_zoo/architectures`, loaded from the unpacked wheel): `rift predict` logits equal
//! PyTorch's within 1e-4 at 32×32, with random weights and non-trivial BatchNorm statistics,
//! bare and inside the wrappers seen in the wild (containers, stacked `module.`/`model.`).
mod common;

use common::{max_abs_diff, path_str, rift, rift_ok, run_python, stderr_of};

/// Each case: rift's family name, activation, zoo keyword arguments, and how rift must be
/// told about it. DM networks normalise inside their forward with the CIFAR-10 statistics
/// (their non-persistent `mean`/`std`), which rift's `--dataset cifar10` reproduces; the
/// others take raw pixels and are wrapped in the same normalisation here.
const MAKE_ZOO: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn, Normalized
from zoo import build_zoo
out = sys.argv[1]
torch.manual_seed(0)
cases = [
    # name, family, activation, zoo kwargs, classes
    ("dm-wrn-16-2-silu", "dm-wrn-16-2", "silu", {}, 10),
    ("dm-wrn-10-1-relu", "dm-wrn-10-1", "relu", {}, 100),
    ("dm-wrn-28-4-silu", "dm-wrn-28-4", "silu", {}, 10),
    ("dm-preactresnet18-relu", "dm-preactresnet18", "relu", {}, 10),
    ("dm-preactresnet34-silu", "dm-preactresnet34", "silu", {}, 100),
    ("wrn-16-2-nosub", "wrn-16-2", None, {}, 10),
    ("wrn-16-2-sub", "wrn-16-2", None, {"sub_block1": True}, 10),
    ("wrn-16-2-nobias", "wrn-16-2", None, {"bias_last": False}, 100),
    ("resnet50", "resnet50", None, {}, 10),
]
mean, std = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]
for i, (name, kind, act, kw, classes) in enumerate(cases):
    if kind == "resnet50":
        net = build_zoo(kind)
    else:
        net = build_zoo(kind, activation=act or "relu", num_classes=classes, **kw)
    randomize_bn(net, seed=i)
    net.eval()
    model = net if kind.startswith("dm-") else Normalized(net, mean, std).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    torch.save(net.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
    print(name, kind, act or "-")
    # Wrappers seen in the wild around the same state: containers and stacked prefixes.
    if name in ("dm-wrn-16-2-silu", "wrn-16-2-sub"):
        sd = net.state_dict()
        for container, prefix in [("state_dict", "module."), ("model_state_dict", "module.model."),
                                  ("net", "model.module."), ("model", "model.")]:
            wrapped = {container: {prefix + k: v for k, v in sd.items()}, "epoch": 7}
            wname = f"{name}~{container}~{prefix}"
            torch.save(wrapped, os.path.join(out, wname + ".pth"))
            np.save(os.path.join(out, wname + ".in.npy"), x.numpy())
            np.save(os.path.join(out, wname + ".ref.npy"), logits.numpy())
            print(wname, kind, act or "-")
"#;

#[test]
fn predict_matches_the_zoo_for_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_ZOO, &[path_str(dir.path())]);
    let mut checked = 0;
    for line in listing.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, family, act) = (parts[0], parts[1], parts[2]);
        let ckpt = dir.path().join(format!("{name}.pth"));
        let out = dir.path().join(format!("{name}.rift.npy"));
        let mut args = vec!["predict", "--checkpoint", path_str(&ckpt), "--input"];
        let input = dir.path().join(format!("{name}.in.npy"));
        args.extend([path_str(&input), "--output", path_str(&out)]);
        args.extend(["--dataset", "cifar10", "--device", "cpu"]);
        // SiLU is the DM default and needs no flag; ReLU must be asked for.
        if act == "relu" {
            args.extend(["--activation", "relu"]);
        }
        // Detection (`--arch auto`) must find the family, depth and width from the keys.
        let run = rift(&args);
        let said = stderr_of(&run);
        assert!(run.status.success(), "{name}: {said}");
        assert!(
            said.contains(&format!("wrote {family} logits")),
            "{name}: {said}"
        );
        let d = max_abs_diff(&out, &dir.path().join(format!("{name}.ref.npy")));
        assert!(d <= 1e-4, "{name}: max |rift - torch| = {d}");
        if let Some((_, wrapper)) = name.split_once('~') {
            let (container, prefix) = wrapper.split_once('~').unwrap();
            let said = rift_ok(&["inspect", "--checkpoint", path_str(&ckpt)]);
            assert!(
                said.contains(&format!("state dict under `{container}`"))
                    && said.contains(&format!("prefix `{prefix}` stripped")),
                "{name}: {said}"
            );
        }
        if act == "relu" && family.starts_with("dm-wrn") {
            // The flag matters: the default (SiLU) gives other logits.
            let wrong = dir.path().join(format!("{name}.silu.npy"));
            let mut args = args[..args.len() - 2].to_vec();
            let at = args.iter().position(|a| *a == "--output").unwrap() + 1;
            args[at] = path_str(&wrong);
            rift_ok(&args);
            let d = max_abs_diff(&wrong, &dir.path().join(format!("{name}.ref.npy")));
            assert!(d > 1e-2, "{name}: SiLU and ReLU give the same logits ({d})");
        }
        checked += 1;
    }
    assert_eq!(checked, 9 + 2 * 4, "a zoo case was skipped:\n{listing}");
}

const MAKE_SMALL: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_zoo
out = sys.argv[1]
torch.manual_seed(3)
for i, kind in enumerate(["dm-wrn-10-1", "dm-wrn-16-2", "dm-preactresnet18"]):
    net = build_zoo(kind)
    randomize_bn(net, seed=20 + i)
    torch.save(net.state_dict(), os.path.join(out, kind + ".pth"))
    print(kind)
"#;

/// MRC's fast path on the DM families: for every module (stem, each conv of a block with
/// and without shortcut, the explicitly padded stride-2 convs, classifier), the cached
/// prefix followed by the suffix gives the logits of the full forward pass.
#[test]
fn dm_cached_prefix_and_suffix_equal_the_forward_pass() {
    use rift::engine::checkpoint::load_checkpoint;
    use rift::engine::models::{Model, ModelChoice};
    let dir = tempfile::tempdir().unwrap();
    let kinds = run_python(MAKE_SMALL, &[path_str(dir.path())]);
    let (mean, std) = (
        vec![0.4914f32, 0.4822, 0.4465],
        vec![0.2471f32, 0.2435, 0.2616],
    );
    let mut checked = 0;
    for kind in kinds.lines() {
        let ckpt = load_checkpoint(&dir.path().join(format!("{kind}.pth"))).unwrap();
        let model = Model::from_checkpoint_with(
            &ckpt,
            &ModelChoice::default(),
            tch::Device::Cpu,
            (&mean, &std, "cifar10"),
        )
        .unwrap();
        tch::manual_seed(0);
        let x = tch::Tensor::rand([3, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
        let full = tch::no_grad(|| model.forward(&x, false));
        let modules = model.modules();
        assert!(modules.iter().any(|m| m.name.ends_with("shortcut")));
        for m in modules {
            let cache = model.prefix_cache(&x, &m.name).unwrap();
            let fast = tch::no_grad(|| model.suffix_logits(&m.name, &cache));
            let diff = (&fast - &full).abs().max().double_value(&[]);
            assert!(
                diff <= 1e-5,
                "{kind} {}: |suffix - forward| = {diff}",
                m.name
            );
            checked += 1;
        }
        assert!(model.prefix_cache(&x, "layer.9.block.0.conv_0").is_err());
    }
    // Stem + per block conv_0/conv_1 (+ shortcut where widths change) + classifier:
    // dm-wrn-10-1: 1 + 2+3+3 + 1; dm-wrn-16-2: 1 + 5+5+5 + 1; dm-preactresnet18:
    // 1 + 4 + 5+5+5 + 1.
    assert_eq!(checked, 10 + 17 + 21);
}

/// `rift inspect` says what it detected and what it assumed.
#[test]
fn inspect_reports_detected_family_and_assumed_activation() {
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_SMALL, &[path_str(dir.path())]);
    let ckpt = dir.path().join("dm-wrn-10-1.pth");
    let out = rift_ok(&["inspect", "--checkpoint", path_str(&ckpt)]);
    assert!(out.contains("arch dm-wrn-10-1 "), "{out}");
    assert!(out.contains("family DmWideResNet"), "{out}");
    assert!(out.contains("activation silu (assumed"), "{out}");
    assert!(out.contains("layer.1.block.0.conv_0"), "{out}");
    assert!(out.contains("pad (0,1,0,1)"), "{out}");
    let out = rift_ok(&[
        "inspect",
        "--checkpoint",
        path_str(&ckpt),
        "--activation",
        "relu",
    ]);
    assert!(out.contains("activation relu (from --activation)"), "{out}");
    let bad = rift(&[
        "inspect",
        "--checkpoint",
        path_str(&ckpt),
        "--activation",
        "tanh",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr_of(&bad).contains("--activation"),
        "{}",
        stderr_of(&bad)
    );
}

/// Bad input on the zoo paths: clear one-paragraph errors, non-zero exit, no panic.
#[test]
fn zoo_bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    run_python(
        r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import build_zoo
out = sys.argv[1]
sd = build_zoo("dm-wrn-16-2").state_dict()
# A DM WideResNet missing the second block of its second group.
torch.save({k: v for k, v in sd.items() if not k.startswith("layer.1.block.1.")},
           os.path.join(out, "dm-missing-block.pth"))
torch.save(build_zoo("wrn-16-2").state_dict(), os.path.join(out, "wrn.pth"))
"#,
        &[path_str(dir.path())],
    );
    let check = |args: &[&str], needles: &[&str]| {
        let out = rift(args);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: `{n}` not in {err}");
        }
    };
    let missing = dir.path().join("dm-missing-block.pth");
    check(
        &["inspect", "--checkpoint", path_str(&missing)],
        &[
            "does not match dm-wrn-16-2",
            "missing keys",
            "layer.1.block.1.conv_0.weight",
        ],
    );
    let wrn = dir.path().join("wrn.pth");
    check(
        &[
            "inspect",
            "--checkpoint",
            path_str(&wrn),
            "--activation",
            "silu",
        ],
        &["--activation silu", "wrn-16-2 has no activation to choose"],
    );
    check(
        &[
            "inspect",
            "--checkpoint",
            path_str(&wrn),
            "--normalize",
            "cifar",
        ],
        &[
            "--normalize",
            "`cifar` is not a normalisation",
            "auto, none, cifar10",
        ],
    );
    check(
        &[
            "inspect",
            "--checkpoint",
            path_str(&wrn),
            "--arch",
            "dm-resnet18",
        ],
        &["unknown architecture `dm-resnet18`", "dm-wrn-DEPTH-K"],
    );
}
