//! robustbench's two variants of the TRADES WideResNet (issue 21 §3/§4) against robustbench
//! 1.1.1's own modules, loaded by file from the unpacked wheel: `BoostingWideResNet`
//! (`cifar10/Linf/Pang2020Boosting`, `boosting-wrn-D-K`: L2-normalised features and
//! classifier rows) and `PAF_WideResNet` with one shared `PSSiLU`
//! (`cifar10/Linf/Dai2021Parameterizing`, `pssilu-wrn-D-K`). Logits of small configurations
//! (classifier rows of uneven norms, PSSiLU scalars away from their defaults, a file whose
//! shared copies disagree), detection, the `--zoo` entries' flags and the published
//! constructors' key layout, MRC against the published algorithm in PyTorch and `--fast`
//! against the faithful loop, and fine-tuned files loading back strictly.
mod common;

use common::{assert_failed, assert_fast_equals_faithful, assert_mrc_matches_reference};
use common::{mrc_scores, path_str, rift, rift_ok, run_python, stderr_of, zoo_mrc_json};
use std::path::Path;

const CIFAR10_STATS: &str = "0.4914,0.4822,0.4465/0.2471,0.2435,0.2616";

/// Small networks of both classes with random weights and BatchNorm, their logits on
/// random pixels (the state saved before robustbench's forward overwrites `fc.weight`):
/// - boost: BoostingWideResNet-10-2 with `fc` rows scaled unevenly (their norms matter
///   unless the head normalises them), saved with its `mu`/`sigma`;
/// - boost-published: the same without `mu`/`sigma`, as the published file is;
/// - pssilu: PAF_WideResNet-16-1, α = −1.7, β = −0.3 (|·| matters), 100 classes;
/// - pssilu-mixed: its state with every block's copy of α and β changed: PyTorch's loading
///   keeps the top-level copy (loaded last), so the logits are pssilu's.
const MAKE_NETS: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import build_boosting, build_pssilu
torch.set_num_threads(2)
out = sys.argv[1]
def save(name, state, x, logits):
    torch.save(state, os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
torch.manual_seed(0)
boost = build_boosting(10, 2)
randomize_bn(boost, seed=1)
with torch.no_grad():
    boost.fc.weight.mul_(torch.rand(10, 1) * 2.7 + 0.3)
boost.eval()
state = {k: v.clone() for k, v in boost.state_dict().items()}
assert list(state)[:2] == ["mu", "sigma"] and "fc.bias" not in state
x = torch.rand(4, 3, 32, 32)
with torch.no_grad():
    logits = boost(x)
save("boost", state, x, logits)
save("boost-published", {k: v for k, v in state.items() if k not in ("mu", "sigma")}, x, logits)
pssilu = build_pssilu(16, 1, alpha=-1.7, beta=-0.3, num_classes=100)
randomize_bn(pssilu, seed=2)
pssilu.eval()
state = {k: v.clone() for k, v in pssilu.state_dict().items()}
copies = [k for k in state if k.endswith(("activation.alpha", "activation.beta"))]
assert len(copies) == 2 * (3 * 2 + 1) and copies[-2:] == ["activation.beta", "activation.alpha"], copies
with torch.no_grad():
    logits = pssilu(x)
save("pssilu", state, x, logits)
mixed = dict(state)
for k in copies[:-2]:
    mixed[k] = torch.full_like(state[k], 0.9)
check = build_pssilu(16, 1, num_classes=100).eval()
check.load_state_dict(mixed, strict=True)
with torch.no_grad():
    assert torch.equal(check(x), logits)
save("pssilu-mixed", mixed, x, logits)
"#;

fn predict(dir: &Path, name: &str, ckpt: &str, extra: &[&str]) -> std::process::Output {
    let at = |s: &str| dir.join(format!("{name}.{s}")).display().to_string();
    let mut args = vec!["predict".to_string(), "--checkpoint".into()];
    args.push(dir.join(ckpt).display().to_string());
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

/// max |rift − torch| / max |torch| over the logits of `name`.
fn rel_diff(dir: &Path, name: &str) -> f32 {
    let read = |s: &str| {
        let a = rift::engine::data::read_npy(&dir.join(format!("{name}.{s}.npy"))).unwrap();
        (a.shape.clone(), a.to_f32().unwrap())
    };
    let ((s1, ours), (s2, theirs)) = (read("rift"), read("ref"));
    assert_eq!(s1, s2, "{name}: logit shapes differ");
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs());
    diff.fold(0f32, f32::max) / scale
}

/// Runs `rift predict` and returns its stderr and the relative logit difference.
fn logits(dir: &Path, name: &str, ckpt: &str, extra: &[&str]) -> (String, f32) {
    let run = predict(dir, name, ckpt, extra);
    let said = stderr_of(&run);
    assert!(run.status.success(), "{name} {extra:?}: {said}");
    (said, rel_diff(dir, name))
}

#[test]
fn variant_logits_equal_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python(MAKE_NETS, &[path_str(d)]);
    // BoostingWideResNet by name; the file's mu/sigma, or the constructor's where the file
    // has none (as published).
    let (said, diff) = logits(d, "boost", "boost.pth", &["--arch", "boosting-wrn-10-2"]);
    assert!(diff <= 1e-4, "boost: {diff}");
    assert!(said.contains("wrote boosting-wrn-10-2 logits") && said.contains("mu/sigma"));
    let flags = ["--arch", "boosting-wrn-10-2", "--normalize", CIFAR10_STATS];
    let (_, diff) = logits(d, "boost-published", "boost-published.pth", &flags);
    assert!(diff <= 1e-4, "boost-published: {diff}");
    // Its keys are a bias-free WideResNet's: `auto` reads a plain one, whose logits are
    // not robustbench's, and `inspect` says how to name it.
    let (said, diff) = logits(d, "boost", "boost.pth", &[]);
    assert!(said.contains("wrote wrn-10-2 logits"), "{said}");
    assert!(diff > 0.05, "the hypersphere head changes nothing: {diff}");
    let boost = d.join("boost.pth");
    let shown = rift_ok(&["inspect", "--checkpoint", path_str(&boost)]);
    assert!(shown.contains("--arch boosting-wrn-D-K"), "{shown}");
    let named = [
        "inspect",
        "--checkpoint",
        path_str(&boost),
        "--arch",
        "boosting-wrn-10-2",
    ];
    let shown = rift_ok(&named);
    assert!(shown.contains("Linear (no bias, L2-normalised)"), "{shown}");

    // PSSiLU: detected from its keys; raw pixels as robustbench's module takes them.
    for (name, extra) in [
        ("pssilu", vec!["--normalize", "none"]),
        (
            "pssilu",
            vec!["--normalize", "none", "--arch", "pssilu-wrn-16-1"],
        ),
        ("pssilu-mixed", vec!["--normalize", "none"]),
    ] {
        let (said, diff) = logits(d, name, &format!("{name}.pth"), &extra);
        assert!(diff <= 1e-4, "{name} {extra:?}: {diff}");
        assert!(said.contains("wrote pssilu-wrn-16-1 logits"), "{said}");
    }
    let file = d.join("pssilu.pth");
    let shown = rift_ok(&["inspect", "--checkpoint", path_str(&file)]);
    assert!(
        shown.contains("pssilu (") && shown.contains("alpha -1.700000, beta -0.300000"),
        "{shown}"
    );
    // A plain WideResNet by name refuses the PSSiLU's keys, naming them.
    let run = predict(d, "pssilu", "pssilu.pth", &["--arch", "wrn-16-1"]);
    assert_failed(
        &run,
        1,
        &["unexpected keys", "block1.layer.0.activation.beta"],
    );
}

/// The published constructors of both entries (the table's `constructor`, robustbench's
/// own code) built on PyTorch's meta device: every state key and shape, in order.
const PUBLISHED_KEYS: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import arch_package_module
table = {e["name"]: e for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]}
scope = {**vars(arch_package_module("boosting_wide_resnet")), **vars(arch_package_module("paf_wide_resnet"))}
out = {}
for name in ["Pang2020Boosting", "Dai2021Parameterizing"]:
    with torch.device("meta"):
        net = eval(table[name]["constructor"], scope)()
    out[name] = [[k, list(v.shape)] for k, v in net.state_dict().items()]
print(json.dumps(out))
"#;

/// Both entries are supported with the flags that build them; rift's networks of those
/// names have the published keys and shapes in robustbench's order (BoostingWideResNet's
/// `mu`/`sigma` buffers aside: its published file has none, robustbench loads it
/// non-strictly); `--zoo` refuses a small file of either, naming both architectures.
#[test]
fn zoo_entries_build_the_published_networks() {
    use rift::engine::models::{detect_arch, ArchSpec, Model, WrnVariant};
    use rift::engine::zoo;
    use std::collections::HashMap;
    let cases = [
        (
            "cifar10/Linf/Pang2020Boosting",
            format!("--arch boosting-wrn-34-20 --normalize {CIFAR10_STATS}"),
        ),
        (
            "cifar10/Linf/Dai2021Parameterizing",
            "--arch pssilu-wrn-28-10 --normalize none".to_string(),
        ),
    ];
    let listing = rift_ok(&["zoo", "--supported", "--dataset", "cifar10"]);
    let published: HashMap<String, Vec<(String, Vec<usize>)>> =
        serde_json::from_str(&run_python(PUBLISHED_KEYS, &[])).unwrap();
    let (mean, std) = ([0.4914f32, 0.4822, 0.4465], [0.2471f32, 0.2435, 0.2616]);
    let dir = tempfile::tempdir().unwrap();
    run_python(MAKE_NETS, &[path_str(dir.path())]);
    for (id, flags) in &cases {
        let entry = zoo::lookup(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(&entry.flags_text(), flags, "{id}");
        assert!(listing.contains(&format!("{id}\n")) && listing.contains(flags.as_str()));
        let arch = entry.arch.as_deref().unwrap();
        let spec = ArchSpec::parse(arch, None, 10, 3, (32, 32)).unwrap();
        let mut layout = published[&entry.name].clone();
        let shapes: HashMap<String, Vec<usize>> = layout.iter().cloned().collect();
        let detected = detect_arch(&shapes).unwrap();
        if spec.wrn_variant == WrnVariant::Boosting {
            assert_eq!(
                (entry.sub_block1, entry.bias_last),
                (Some(true), Some(false))
            );
            assert_eq!(
                layout.drain(..2).map(|k| k.0).collect::<Vec<_>>(),
                ["mu", "sigma"]
            );
            // Detection reads a bias-free WideResNet with sub_block1: all but the head.
            assert_eq!(detected.name(), "wrn-34-20");
            let plain = ArchSpec {
                wrn_variant: WrnVariant::Trades,
                ..spec.clone()
            };
            assert_eq!(detected, plain);
        } else {
            assert_eq!(detected, spec, "{id}: parsed and detected specs differ");
        }
        let model = Model::new(spec, tch::Device::Cpu, &mean, &std, "cifar10").unwrap();
        let ours: Vec<(String, Vec<usize>)> = model
            .keys()
            .iter()
            .map(|k| {
                let size = model.var(k).unwrap().size();
                (k.clone(), size.iter().map(|&d| d as usize).collect())
            })
            .collect();
        assert_eq!(ours, layout, "{id}");
        drop(model);

        // `--zoo` reads robustbench's cache path and refuses a small file of the family.
        let file = dir.path().join(format!("models/{id}.pt"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let small = if arch.starts_with("boosting") {
            "boost"
        } else {
            "pssilu"
        };
        std::fs::copy(dir.path().join(format!("{small}.pth")), &file).unwrap();
        let models = dir.path().join("models");
        let input = dir.path().join(format!("{small}.in.npy"));
        let run = rift(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&models),
            "--input",
            path_str(&input),
            "--output",
            path_str(&dir.path().join("zoo.npy")),
            "--device",
            "cpu",
        ]);
        assert_failed(
            &run,
            1,
            &[&format!("is a {arch} with 10 classes"), path_str(&file)],
        );
    }
}

/// The tiny CIFAR-10 of the stage tests (`dm_fixture`), BoostingWideResNet-10-1 (`fc` rows
/// of uneven norms) and PAF_WideResNet-10-1 (α 0.8, β 0.2) saved as boost.pth and
/// pssilu.pth, and the published MRC (`tests/py/mrc_ref.py`: PGD-10 without random start,
/// 5 epochs) of the modules given for each (`-`: none). The Boosting reference runs robustbench's own
/// forward with `fc.weight` parametrised as its normalised rows: that forward's overwrite
/// of `fc.weight.data` then touches only a computed copy, and MRC perturbs the stored
/// weight, as rift does (`layers::Linear::hypersphere`).
const PY_MRC: &str = r#"
import sys, os, json, types, torch, torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import pgd, randomize_bn
from mrc_ref import published_mrc
from zoo import dm_fixture, build_boosting, build_pssilu
torch.set_num_threads(2)
out = sys.argv[1]
_, x, y = dm_fixture(out)
class Rows(torch.nn.Module):
    def forward(self, w):
        return F.normalize(w, p=2, dim=1)
def mrc(net, modules, override):
    if modules == "-":
        return {}
    for p in net.parameters():
        p.requires_grad_(False)
    adv = pgd(net, x, y, 8 / 255, 2 / 255, 10, random_start=False)
    named = dict(net.named_modules())
    chosen = [(n, override.get(n, named.get(n))) for n in modules.split(",")]
    return published_mrc(net, chosen, adv, y, 5)
torch.manual_seed(11)
boost = build_boosting(10, 1)
randomize_bn(boost, seed=11)
with torch.no_grad():
    boost.fc.weight.mul_(torch.rand(10, 1) * 2.7 + 0.3)
boost.eval()
torch.save(boost.state_dict(), os.path.join(out, "boost.pth"))
parametrize.register_parametrization(boost.fc, "weight", Rows())
stored = types.SimpleNamespace(weight=boost.fc.parametrizations.weight.original)
scores = {"boost": mrc(boost, sys.argv[2], {"fc": stored})}
torch.manual_seed(12)
paf = build_pssilu(10, 1, alpha=0.8, beta=0.2)
randomize_bn(paf, seed=12)
paf.eval()
torch.save(paf.state_dict(), os.path.join(out, "pssilu.pth"))
scores["pssilu"] = mrc(paf, sys.argv[3], {})
print(json.dumps(scores))
"#;

/// Every kind of cut between the two: the stem, a block's conv1 and conv2, a shortcut, the
/// classifier (the first stage's convolutions, whose MRC is near 0 here, left out).
const BOOST_MODULES: &str = "conv1,block2.layer.0.convShortcut,block3.layer.0.conv2,fc";
const PSSILU_MODULES: &str = "conv1,block2.layer.0.conv1,block3.layer.0.convShortcut,fc";

#[test]
fn mrc_on_the_variants_matches_pytorch_and_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = run_python(PY_MRC, &[path_str(d), BOOST_MODULES, PSSILU_MODULES]);
    let reference: serde_json::Value = serde_json::from_str(&reference).unwrap();
    let nets = [
        ("boost", BOOST_MODULES, ["--arch", "boosting-wrn-10-1"]),
        ("pssilu", PSSILU_MODULES, ["--normalize", "none"]),
    ];
    for (name, modules, flags) in nets {
        let ckpt = format!("{name}.pth");
        let faithful = zoo_mrc_json(d, &ckpt, modules, &format!("{name}-faithful"), &flags);
        let ours = mrc_scores(&faithful);
        assert_eq!(ours.len(), 4, "{name}");
        // At most one of the 32 samples may land on the other side of a decision boundary.
        assert_mrc_matches_reference(&ours, &reference[name].to_string(), 3.2);
        let mut fast_flags = flags.to_vec();
        fast_flags.push("--fast");
        let fast = zoo_mrc_json(d, &ckpt, modules, &format!("{name}-fast"), &fast_flags);
        assert_fast_equals_faithful(&mrc_scores(&fast), &ours);
    }
}

/// Loads a rift-written file strictly into robustbench's module (`build_boosting` or
/// `build_pssilu` of the depth and width given), checks the key order and that every copy
/// of PSSiLU's α and β is the input file's, writes robustbench's logits on the input, and
/// prints the keys whose values changed.
const PY_LOADS_BACK: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from zoo import build_boosting, build_pssilu
mine = torch.load(sys.argv[1], weights_only=True)
orig = torch.load(sys.argv[2], weights_only=True)
net = (build_boosting if sys.argv[3] == "boost" else build_pssilu)(10, 1).eval()
net.load_state_dict(mine, strict=True)
assert list(mine) == list(net.state_dict()), "key order differs from robustbench's"
for k, v in orig.items():
    if k.endswith(("activation.alpha", "activation.beta")):
        assert torch.equal(mine[k], v), k
x = torch.tensor(np.load(sys.argv[4]))
with torch.no_grad():
    np.save(sys.argv[5], net(x).numpy())
print(" ".join(k for k, v in orig.items() if v.is_floating_point() and not torch.equal(mine[k], v)))
"#;

/// `rift finetune` of each network's classifier and of a PSSiLU block's convolution: the
/// file loads back strictly into robustbench's module, only the trained module's weights
/// and BatchNorm statistics change, and robustbench's logits of it are rift's.
#[test]
fn finetuned_variants_load_back_into_robustbench() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python(PY_MRC, &[path_str(d), "-", "-"]);
    let input = d.join("x.in.npy");
    run_python(
        "import sys, numpy as np\nnp.save(sys.argv[1], np.random.default_rng(3).random((4, 3, 32, 32), dtype=np.float32))\n",
        &[path_str(&input)],
    );
    let cases = [
        ("boost", "fc", vec!["--arch", "boosting-wrn-10-1"]),
        (
            "pssilu",
            "block2.layer.0.conv1",
            vec!["--normalize", "none"],
        ),
    ];
    for (name, layer, flags) in cases {
        let ckpt = d.join(format!("{name}.pth"));
        let saved = d.join(format!("{name}-ft.pth"));
        let mut args = vec!["finetune", "--checkpoint", path_str(&ckpt), "--dataset"];
        args.extend(["cifar10", "--data-dir", path_str(d), "--layer", layer]);
        args.extend(["--epochs", "1", "--lr", "0.05", "--limit", "32"]);
        args.extend(["--save", path_str(&saved), "--device", "cpu"]);
        args.extend(&flags);
        rift_ok(&args);
        let reference = d.join("x.ref.npy");
        let changed = run_python(
            PY_LOADS_BACK,
            &[
                path_str(&saved),
                path_str(&ckpt),
                name,
                path_str(&input),
                path_str(&reference),
            ],
        );
        let changed: Vec<&str> = changed.split_whitespace().collect();
        assert!(
            changed.contains(&format!("{layer}.weight").as_str()),
            "{changed:?}"
        );
        let layer_dot = format!("{layer}.");
        assert!(
            changed
                .iter()
                .all(|k| k.starts_with(&layer_dot) || k.contains("running_")),
            "{name}: {changed:?}"
        );
        let ft = format!("{name}-ft.pth");
        let (_, diff) = logits(d, "x", &ft, &flags);
        assert!(
            diff <= 1e-4,
            "{name}: robustbench's logits of rift's file differ by {diff}"
        );
    }
}
