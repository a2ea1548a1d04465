//! robustbench's RaWideResNet (issue 21: `cifar10/Linf/Peng2023Robust`) and its MeanSparse
//! variant (`cifar10/Linf/Amini2024MeanSparse_Ra_WRN_70_16`, first on the CIFAR-10 L∞
//! leaderboard) against robustbench 1.1.1's own modules (`robustarch_wide_resnet.py`,
//! `Meansparse_ra_wrn_70_16.py`, loaded by file from the unpacked wheel; the venv has no
//! torchvision, so `tests/py/zoo.py` stands in for its `SqueezeExcitation`): logits of small
//! configurations with groups, SE before and after `conv_1`, ReLU and SiLU, with and
//! without shortcuts and MeanSparse; detection; BatchNorm's momentum; MRC's fast path cut
//! by cut; the `--zoo` entries' flags; and the published `get_model('ra_wrn70_16')`'s key
//! layout (built on PyTorch's meta device, never run). MRC against PyTorch and files rift
//! fine-tuned loading back are in zoo_rawrn_mrc.rs.
mod common;

use common::{assert_failed, max_abs_diff, path_str, rift, rift_ok, run_python, stderr_of};
use std::path::Path;

/// Small RaWideResNets from robustbench's files with random weights, randomised BatchNorm
/// (and MeanSparse statistics that bite, some thresholds 0), their logits on random pixels,
/// and for the first case its BatchNorm running means after one train-mode batch. Prints
/// `name rift-arch activation-flag auto bite` per case (`-`: no flag needed; `auto`: what
/// `--arch auto` reads, `refused:ARCH` where it takes the file for ARCH and lists the keys).
const MAKE_RA: &str = r#"
import sys, os, copy, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_ra, randomize_meansparse, without_meansparse
torch.set_num_threads(2)
out = sys.argv[1]
cases = [
    ("ra-grouped", "ra-wrn-2.1.1-24.48.96-stem16-groups1.2.4-se6.12.24", "-", "same",
     dict(stem=16, blocks=[2, 1, 1], widths=[24, 48, 96], groups=[1, 2, 4], se_ratio=0.25)),
    ("ra-order1", "ra-wrn-1.2.1-8.16.32-stem8-se4.8.16-seorder1-sesilu", "relu",
     "ra-wrn-1.2.1-8.16.32-stem8-se4.8.16",
     dict(stem=8, blocks=[1, 2, 1], widths=[8, 16, 32], activation="relu", se_ratio=0.5,
          se_activation="silu", se_order=1)),
    ("ra-no-se", "ra-wrn-1.2.1-16.32.64-stem16", "-", "refused:dm-wrn-10-1",
     dict(stem=16, blocks=[1, 2, 1], widths=[16, 32, 64])),
    ("ra-no-se-stem8", "ra-wrn-1.1.2-16.32.64-stem8", "-", "same",
     dict(stem=8, blocks=[1, 1, 2], widths=[16, 32, 64])),
    ("ms-ra", "meansparse-ra-wrn-1.1.2-32.64.128-stem16-groups2.2.2-se8.16.32", "-", "same",
     dict(stem=16, blocks=[1, 1, 2], widths=[32, 64, 128], groups=[2, 2, 2], se_ratio=0.25,
          meansparse=True)),
]
for i, (name, arch, act, auto, kw) in enumerate(cases):
    torch.manual_seed(i)
    net = build_ra(**kw)
    randomize_bn(net, seed=i)
    if kw.get("meansparse"):
        n_ops = randomize_meansparse(net, seed=10 + i, zero_every=4)
        assert n_ops == 3 * sum(kw["blocks"]) + 1, n_ops
    net.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
        bite = (logits - without_meansparse(net).eval()(x)).abs().max().item() \
            if kw.get("meansparse") else 0.0
    torch.save(net.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
    if i == 0:
        trained = copy.deepcopy(net).train()
        with torch.no_grad():
            trained(x)
        np.save(os.path.join(out, name + ".bn-head.npy"), trained.batchnorm.running_mean.numpy())
        first = trained.layer[0].block[0].batchnorm_0
        np.save(os.path.join(out, name + ".bn-first.npy"), first.running_mean.numpy())
    print(name, arch, act, arch if auto == "same" else auto, bite)
"#;

struct Case {
    name: String,
    arch: String,
    activation: Option<String>,
    /// What `--arch auto` reads the file as (`refused:ARCH`: ARCH, then the key diff).
    auto: String,
    bite: f64,
}

fn make_cases(dir: &Path) -> Vec<Case> {
    let listing = run_python(MAKE_RA, &[path_str(dir)]);
    let cases: Vec<Case> = listing
        .lines()
        .map(|line| {
            let p: Vec<&str> = line.split_whitespace().collect();
            Case {
                name: p[0].into(),
                arch: p[1].into(),
                activation: (p[2] != "-").then(|| p[2].to_string()),
                auto: p[3].into(),
                bite: p[4].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(cases.len(), 5, "{listing}");
    cases
}

fn predict(dir: &Path, name: &str, ckpt: &Path, extra: &[&str]) -> std::process::Output {
    let at = |s: &str| dir.join(format!("{name}.{s}")).display().to_string();
    let mut args: Vec<String> = vec!["predict".into(), "--checkpoint".into()];
    args.push(path_str(ckpt).into());
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

fn logits_diff(dir: &Path, name: &str) -> f32 {
    max_abs_diff(
        &dir.join(format!("{name}.rift.npy")),
        &dir.join(format!("{name}.ref.npy")),
    )
}

#[test]
fn rawrn_logits_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    for case in make_cases(dir.path()) {
        let ckpt = dir.path().join(format!("{}.pth", case.name));
        if case.arch.starts_with("meansparse-") {
            assert!(
                case.bite > 1e-2,
                "{}: MeanSparse changes nothing",
                case.name
            );
        }
        let mut named = vec!["--arch", case.arch.as_str()];
        if let Some(act) = &case.activation {
            named.extend(["--activation", act.as_str()]);
        }
        let run = predict(dir.path(), &case.name, &ckpt, &named);
        let said = stderr_of(&run);
        assert!(run.status.success(), "{} {named:?}: {said}", case.name);
        assert!(
            said.contains(&format!("wrote {} logits", case.arch)),
            "{said}"
        );
        let d = logits_diff(dir.path(), &case.name);
        assert!(
            d <= 1e-4,
            "{} {named:?}: max |rift - torch| = {d}",
            case.name
        );

        let run = predict(dir.path(), &case.name, &ckpt, &[]);
        if let Some(dm) = case.auto.strip_prefix("refused:") {
            // Nothing in the file is foreign to a DM WideResNet but its unequal stages:
            // detection takes it for one and lists the keys that do not fit.
            assert_failed(
                &run,
                1,
                &[&format!("does not match {dm}"), "unexpected keys"],
            );
            continue;
        }
        let said = stderr_of(&run);
        assert!(
            said.contains(&format!("wrote {} logits", case.auto)),
            "{said}"
        );
        let d = logits_diff(dir.path(), &case.name);
        if case.auto == case.arch {
            assert!(
                d <= 1e-4,
                "{} detected: max |rift - torch| = {d}",
                case.name
            );
        } else {
            // Where the SE sits and the activations are not in the state: detection assumes
            // the zoo's (SE after conv_1 with ReLU, SiLU elsewhere) and gets other logits.
            assert!(d > 1e-3, "{}: {d}", case.name);
        }
    }

    // The plain network on a MeanSparse file and the DM WideResNet on a RaWideResNet file:
    // the key diff, cleanly.
    let ms = dir.path().join("ms-ra.pth");
    let plain_name = "ra-wrn-1.1.2-32.64.128-stem16-groups2.2.2-se8.16.32";
    let run = predict(dir.path(), "ms-ra", &ms, &["--arch", plain_name]);
    assert_failed(
        &run,
        1,
        &[
            &format!("does not match {plain_name}"),
            "unexpected keys",
            "layer.0.block.0.meansparse_0.running_mean",
        ],
    );
    let grouped = dir.path().join("ra-grouped.pth");
    let run = predict(
        dir.path(),
        "ra-grouped",
        &grouped,
        &["--arch", "dm-wrn-10-1"],
    );
    assert_failed(
        &run,
        1,
        &[
            "does not match dm-wrn-10-1",
            "layer.0.block.0.se.fc1.weight",
        ],
    );
    // Names robustbench could not build are refused with the reason.
    let run = predict(
        dir.path(),
        "ra-grouped",
        &grouped,
        &["--arch", "ra-wrn-1.1.1-16.16.64"],
    );
    assert_failed(&run, 1, &["keeps width 16 at stride 2"]);
    let run = predict(
        dir.path(),
        "ra-grouped",
        &grouped,
        &["--arch", "ra-wrn-70-16", "--width", "8"],
    );
    assert_failed(&run, 1, &["widths are per stage"]);
}

/// MRC's fast path: for every module the cached prefix followed by the suffix gives the
/// full forward pass's logits (cuts inside the SE too); the module list holds every
/// convolution, the SE's included; saved keys come in robustbench's order; one train-mode
/// batch moves BatchNorm's running statistics by robustbench's momentum 0.01.
#[test]
fn rawrn_cached_prefix_and_suffix_equal_the_forward_pass() {
    use rift::engine::checkpoint::load_checkpoint;
    use rift::engine::data::read_npy;
    use rift::engine::models::{Activation, Model, ModelChoice};
    use tch::{Device, Kind, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let (mean, std) = (
        vec![0.4914f32, 0.4822, 0.4465],
        vec![0.2471f32, 0.2435, 0.2616],
    );
    let npy = |name: &str| {
        let a = read_npy(&dir.path().join(name)).unwrap();
        let shape: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
        Tensor::from_slice(&a.to_f32().unwrap()).view(shape.as_slice())
    };
    let mut checked = Vec::new();
    for case in make_cases(dir.path()) {
        let ckpt = load_checkpoint(&dir.path().join(format!("{}.pth", case.name))).unwrap();
        let choice = ModelChoice {
            arch: Some(case.arch.clone()),
            activation: case
                .activation
                .as_deref()
                .map(|a| Activation::parse(a).unwrap()),
            ..ModelChoice::default()
        };
        let model =
            Model::from_checkpoint_with(&ckpt, &choice, Device::Cpu, (&mean, &std, "cifar10"))
                .unwrap();
        let keys: Vec<&String> = ckpt.tensors.iter().map(|(k, _)| k).collect();
        assert_eq!(
            model.keys().iter().collect::<Vec<_>>(),
            keys,
            "{}",
            case.name
        );
        let x = npy(&format!("{}.in.npy", case.name));
        let full = tch::no_grad(|| model.forward(&x, false));
        let reference = npy(&format!("{}.ref.npy", case.name));
        assert!((&full - &reference).abs().max().double_value(&[]) <= 1e-4);
        let modules = model.modules();
        for m in &modules {
            let cache = model.prefix_cache(&x, &m.name).unwrap();
            let fast = tch::no_grad(|| model.suffix_logits(&m.name, &cache));
            let diff = (&fast - &full).abs().max().double_value(&[]);
            assert!(
                diff <= 1e-5,
                "{} {}: |suffix - forward| = {diff}",
                case.name,
                m.name
            );
        }
        let se = modules.iter().filter(|m| m.name.contains(".se.fc")).count();
        checked.push((modules.len(), se));
        if case.name == "ra-grouped" {
            let _ = tch::no_grad(|| model.forward(&x, true));
            for (key, file) in [
                ("batchnorm.running_mean", "bn-head"),
                ("layer.0.block.0.batchnorm_0.running_mean", "bn-first"),
            ] {
                let ours = model.var(key).unwrap().to_kind(Kind::Float);
                let theirs = npy(&format!("{}.{file}.npy", case.name));
                let diff = (&ours - &theirs).abs().max().double_value(&[]);
                assert!(diff <= 1e-5, "{key} after one train-mode batch: {diff}");
            }
        }
    }
    // Per block conv_0, conv_1, a shortcut where widths change, two SE convolutions; plus
    // the stem and the classifier.
    assert_eq!(checked, vec![(21, 8), (20, 8), (12, 0), (13, 0), (21, 8)]);
}

/// Each RaWideResNet entry's own constructor (the table's `architecture`, from
/// robustbench's `get_model` or `get_sparse_model` branch) at a small configuration,
/// saved where `--zoo` looks.
const MAKE_ENTRIES: &str = r#"
import sys, os, re, json, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import ra_module, randomize_meansparse
out = sys.argv[1]
table = {e["dataset"] + "/" + e["threat"] + "/" + e["name"]: e
         for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]}
plain, sparse = ra_module(False), ra_module(True)
scope = {**vars(plain), "robustarch_wide_resnet": plain, "Meansparse_ra_wrn_70_16": sparse}
torch.manual_seed(2)
for i, zid in enumerate(sys.argv[2:]):
    arch = table[zid]["architecture"]
    small = re.sub(r"stem_width=\d+", "stem_width=16", arch)
    small = re.sub(r"\bdepth=\[[^\]]*\]", "depth=[1, 1, 1]", small)
    small = re.sub(r"stage_width=\[[^\]]*\]", "stage_width=[32, 64, 128]", small)
    assert small != arch
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

/// Both CIFAR-10 entries are supported and `--zoo` sets `--arch ra-wrn-70-16` (MeanSparse:
/// `meansparse-ra-wrn-70-16`), `--activation silu` and the constructor's statistics; those
/// flags with the entry's constructor at a small size give robustbench's logits, and
/// `--zoo` itself, reading robustbench's cache path under `--model-dir`, refuses the small
/// file before any compute, naming both. The ImageNet entry (a different network,
/// robustarch's `ConfigurableModel`) stays unsupported with its reason.
#[test]
fn rawrn_entries_are_supported_with_the_constructors_flags() {
    use rift::engine::zoo;
    let ids = [
        ("cifar10/Linf/Peng2023Robust", "ra-wrn-70-16"),
        (
            "cifar10/Linf/Amini2024MeanSparse_Ra_WRN_70_16",
            "meansparse-ra-wrn-70-16",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![path_str(dir.path())];
    args.extend(ids.iter().map(|(id, _)| *id));
    let made = run_python(MAKE_ENTRIES, &args);
    assert_eq!(made.lines().count(), 2, "{made}");
    let listing = rift_ok(&[
        "zoo",
        "--supported",
        "--dataset",
        "cifar10",
        "--threat",
        "Linf",
    ]);
    let models = dir.path().join("models");
    for (id, arch) in ids {
        let entry = zoo::lookup(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        let flags = format!(
            "--arch {arch} --activation silu --normalize 0.4914,0.4822,0.4465/0.2471,0.2435,0.2616"
        );
        assert_eq!(entry.flags_text(), flags, "{id}");
        assert!(
            listing.contains(&format!("{id}\n")) && listing.contains(&flags),
            "{listing}"
        );
        let small = format!(
            "{}ra-wrn-1.1.1-32.64.128-stem16-se8.16.32",
            if arch.starts_with("meansparse-") {
                "meansparse-"
            } else {
                ""
            }
        );
        let mut extra: Vec<String> = Vec::new();
        for (flag, value) in entry.flags() {
            let value = if flag == "--arch" {
                small.clone()
            } else {
                value
            };
            extra.extend([flag.to_string(), value]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let stem = id.replace('/', "~");
        let file = models.join(format!("{id}.pt"));
        let run = predict(dir.path(), &stem, &file, &extra);
        assert!(run.status.success(), "{id}: {}", stderr_of(&run));
        let d = logits_diff(dir.path(), &stem);
        assert!(d <= 1e-4, "{id}: max |rift - torch| = {d}");

        let run = rift(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&models),
            "--input",
            path_str(&dir.path().join(format!("{stem}.in.npy"))),
            "--output",
            path_str(&dir.path().join("zoo.npy")),
            "--device",
            "cpu",
        ]);
        assert_failed(
            &run,
            1,
            &[
                &format!("is a {arch} with 10 classes"),
                &format!("holds a {small}"),
                path_str(&file),
            ],
        );
    }
    // The ImageNet entry of the same name is another network (tests/zoo_ra_resnet.rs).
    let imagenet = zoo::entries()
        .unwrap()
        .iter()
        .find(|e| e.id() == "imagenet/Linf/Peng2023Robust")
        .unwrap();
    assert_eq!(imagenet.arch.as_deref(), Some("ra-resnet-101-2"));
}

/// The published `get_model('ra_wrn70_16')` of both files, built on PyTorch's meta device
/// (shapes without storage): every state key and shape, in order.
const PUBLISHED_KEYS: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import ra_module
out = {}
for name, meansparse in [("ra-wrn-70-16", False), ("meansparse-ra-wrn-70-16", True)]:
    with torch.device("meta"):
        net = ra_module(meansparse).get_model("ra_wrn70_16")
    out[name] = [[k, list(v.shape)] for k, v in net.state_dict().items()]
print(json.dumps(out))
"#;

/// rift's `ra-wrn-70-16` and `meansparse-ra-wrn-70-16` have exactly the published
/// networks' keys and shapes in robustbench's order, and detection names those shapes so.
#[test]
fn rawrn_70_16_has_the_published_key_layout() {
    use rift::engine::models::{detect_arch, ArchSpec, Model};
    use std::collections::HashMap;
    let published: HashMap<String, Vec<(String, Vec<usize>)>> =
        serde_json::from_str(&run_python(PUBLISHED_KEYS, &[])).unwrap();
    let (mean, std) = ([0.4914f32, 0.4822, 0.4465], [0.2471f32, 0.2435, 0.2616]);
    for name in ["ra-wrn-70-16", "meansparse-ra-wrn-70-16"] {
        let layout = &published[name];
        let shapes: HashMap<String, Vec<usize>> = layout.iter().cloned().collect();
        let detected = detect_arch(&shapes).unwrap();
        assert_eq!(detected.name(), name);
        assert_eq!(
            (detected.width, detected.blocks.clone()),
            (16, vec![30, 31, 10])
        );
        let spec = ArchSpec::parse(name, None, 10, 3, (32, 32)).unwrap();
        assert_eq!(spec, detected, "{name}: parsed and detected specs differ");
        let model = Model::new(spec, tch::Device::Cpu, &mean, &std, "cifar10").unwrap();
        let ours: Vec<(String, Vec<usize>)> = model
            .keys()
            .iter()
            .map(|k| {
                let size = model.var(k).unwrap().size();
                (k.clone(), size.iter().map(|&d| d as usize).collect())
            })
            .collect();
        assert_eq!(ours.len(), layout.len(), "{name}");
        for (a, b) in ours.iter().zip(layout) {
            assert_eq!(a, b, "{name}");
        }
    }
}
