//! Zoo entries rift supports through options on existing families, against robustbench
//! 1.1.1's own code: PreActResNet V1 (`preactresnet18-v1`: Andriushchenko2020,
//! Wong2020Fast; CIFAR-100 Rice2020 as preactresnet18) and Ding2020MMA's per-image
//! standardisation (`--normalize per-image`). The MeanSparse family is in zoo_families.rs.
mod common;

use common::{assert_failed, max_abs_diff, path_str, rift, rift_ok, run_python, stderr_of};

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

/// robustbench's PreActResNet-18 V1 (`PreActBlock`, `bn_before_fc=False`, `out_shortcut=
/// False`) with randomised BatchNorm, and three zoo entries built from the table's own
/// constructor (`architecture`) with their `mu`/`sigma` buffers where robustbench keeps
/// them (shifted, so the file's values must win): V1 with and without buffers, and
/// CIFAR-100 Rice2020 (`PreActBlock` with `out_shortcut=True` and the final BN, which is
/// rift's preactresnet18). Saved where `--zoo` looks.
const MAKE_PREACT: &str = r#"
import sys, os, json, numpy as np, torch
import torch.nn as nn
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import zoo_module
torch.set_num_threads(2)
out = sys.argv[1]
resnet = zoo_module("resnet")
table = {e["dataset"] + "/" + e["threat"] + "/" + e["name"]: e
         for e in json.load(open("assets/zoo/robustbench-1.1.1.json"))["entries"]}

class Buffered(nn.Module):
    def __init__(self, net, mu, sigma):
        super().__init__()
        self.net = net
        self.register_buffer("mu", torch.tensor(mu).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor(sigma).view(1, 3, 1, 1))
    def forward(self, x):
        return self.net((x - self.mu) / self.sigma)

torch.manual_seed(2)
net = resnet.PreActResNet(resnet.PreActBlock, [2, 2, 2, 2])
randomize_bn(net, seed=4)
net.eval()
x = torch.rand(3, 3, 32, 32)
with torch.no_grad():
    logits = net(x)
torch.save(net.state_dict(), os.path.join(out, "v1.pth"))
np.save(os.path.join(out, "v1.in.npy"), x.numpy())
np.save(os.path.join(out, "v1.ref.npy"), logits.numpy())
for i, zid in enumerate(sys.argv[2:]):
    e = table[zid]
    net = eval(e["architecture"], vars(resnet))
    randomize_bn(net, seed=i)
    net.eval()
    if e["normalize"] != "none":
        mu = [m + 0.05 for m in e["normalize"]["mean"]]
        sigma = [s * 1.5 for s in e["normalize"]["std"]]
        model = Buffered(net, mu, sigma).eval()
        state = {**net.state_dict(), "mu": model.mu, "sigma": model.sigma}
    else:
        model, state = net, net.state_dict()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    path = os.path.join(out, "models", zid + ".pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    stem = os.path.join(out, zid.replace("/", "~"))
    np.save(stem + ".in.npy", x.numpy())
    np.save(stem + ".ref.npy", logits.numpy())
    print(zid)
"#;

#[test]
fn preactresnet_v1_equals_robustbench_and_its_zoo_entries_load_by_id() {
    use rift::engine::checkpoint::load_checkpoint;
    use rift::engine::models::{Model, ModelChoice};
    let ids = [
        "cifar10/Linf/Wong2020Fast",
        "cifar10/Linf/Andriushchenko2020Understanding",
        "cifar100/Linf/Rice2020Overfitting",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![path_str(dir.path())];
    args.extend(ids);
    let made = run_python(MAKE_PREACT, &args);
    assert_eq!(made.lines().count(), 3, "{made}");

    // Detected from the keys (no final `bn`), and named explicitly.
    let v1 = dir.path().join("v1.pth");
    for extra in [&[][..], &["--arch", "preactresnet18-v1"][..]] {
        let mut extra = extra.to_vec();
        extra.extend(["--normalize", "none"]);
        let run = predict(dir.path(), "v1", path_str(&v1), &extra);
        let said = stderr_of(&run);
        assert!(run.status.success(), "{extra:?}: {said}");
        assert!(said.contains("wrote preactresnet18-v1 logits"), "{said}");
        let d = max_abs_diff(
            &dir.path().join("v1.rift.npy"),
            &dir.path().join("v1.ref.npy"),
        );
        assert!(d <= 1e-4, "{extra:?}: max |rift - torch| = {d}");
    }
    let run = predict(
        dir.path(),
        "v1",
        path_str(&v1),
        &["--arch", "preactresnet18"],
    );
    assert_failed(&run, 1, &["does not match preactresnet18", "bn.weight"]);
    let run = predict(dir.path(), "v1", path_str(&v1), &["--arch", "resnet18-v1"]);
    assert_failed(&run, 1, &["resnet18-v1", "preactresnet18-v1"]);

    // MRC's fast path: every module's cut (the raw-input shortcut included).
    let (mean, std) = (vec![0.5f32; 3], vec![0.25f32; 3]);
    let ckpt = load_checkpoint(&v1).unwrap();
    let model = Model::from_checkpoint_with(
        &ckpt,
        &ModelChoice::default(),
        tch::Device::Cpu,
        (&mean, &std, "test"),
    )
    .unwrap();
    assert!(model.spec.preact_v1);
    tch::manual_seed(0);
    let x = tch::Tensor::rand([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    let full = tch::no_grad(|| model.forward(&x, false));
    let modules = model.modules();
    assert_eq!(modules.len(), 1 + 8 * 2 + 3 + 1);
    for m in modules {
        let cache = model.prefix_cache(&x, &m.name).unwrap();
        let fast = tch::no_grad(|| model.suffix_logits(&m.name, &cache));
        let diff = (&fast - &full).abs().max().double_value(&[]);
        assert!(diff <= 1e-5, "{}: |suffix - forward| = {diff}", m.name);
    }

    // The entries by id: no --checkpoint, --arch or --normalize.
    for id in ids {
        assert!(
            rift::engine::zoo::lookup(id).unwrap().is_supported(),
            "{id}"
        );
        let stem = id.replace('/', "~");
        let at = |s: &str| dir.path().join(format!("{stem}.{s}"));
        rift_ok(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&dir.path().join("models")),
            "--input",
            path_str(&at("in.npy")),
            "--output",
            path_str(&at("rift.npy")),
            "--device",
            "cpu",
        ]);
        let d = max_abs_diff(&at("rift.npy"), &at("ref.npy"));
        assert!(d <= 1e-4, "{id}: max |rift - torch| = {d}");
    }
}

/// Ding2020MMA's entries (L∞ and L2): robustbench's own `Ding2020MMANet` class, its source
/// taken from the wheel's `model_zoo/cifar10.py` and run over the zoo's WideResNet-28-4
/// (per-image standardisation in its forward), random weights and BatchNorm statistics,
/// saved where `--zoo` looks; plus a batch with a constant image (its std is below the
/// floor `1/√(C·H·W)`, which then divides).
const MAKE_DING: &str = r#"
import sys, os, ast, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn
from zoo import zoo_module, ARCH_DIR
torch.set_num_threads(2)
out = sys.argv[1]
src = open(os.path.join(ARCH_DIR, "..", "cifar10.py")).read()
cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "Ding2020MMANet")
scope = {"WideResNet": zoo_module("wide_resnet").WideResNet, "torch": torch}
exec(ast.get_source_segment(src, cls), scope)
torch.manual_seed(5)
for i, zid in enumerate(sys.argv[2:]):
    net = scope["Ding2020MMANet"]()
    randomize_bn(net, seed=i)
    net.eval()
    x = torch.rand(3, 3, 32, 32)
    x[2] = 0.3
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

#[test]
fn ding2020mma_per_image_standardisation_by_zoo_id() {
    let ids = ["cifar10/Linf/Ding2020MMA", "cifar10/L2/Ding2020MMA"];
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![path_str(dir.path())];
    args.extend(ids);
    let made = run_python(MAKE_DING, &args);
    assert_eq!(made.lines().count(), 2, "{made}");
    for id in ids {
        let entry = rift::engine::zoo::lookup(id).unwrap();
        assert!(entry.is_supported(), "{id}");
        assert_eq!(entry.normalize_flag(), "per-image");
        let stem = id.replace('/', "~");
        let at = |s: &str| dir.path().join(format!("{stem}.{s}"));
        let said = rift_ok(&[
            "inspect",
            "--zoo",
            id,
            "--model-dir",
            path_str(&dir.path().join("models")),
        ]);
        assert!(said.contains("per-image"), "{said}");
        rift_ok(&[
            "predict",
            "--zoo",
            id,
            "--model-dir",
            path_str(&dir.path().join("models")),
            "--input",
            path_str(&at("in.npy")),
            "--output",
            path_str(&at("rift.npy")),
            "--device",
            "cpu",
        ]);
        let d = max_abs_diff(&at("rift.npy"), &at("ref.npy"));
        assert!(d <= 1e-4, "{id}: max |rift - torch| = {d}");
    }
    // The flag matters: the same file with raw pixels gives other logits.
    let id = ids[0];
    let stem = id.replace('/', "~");
    let file = dir.path().join(format!("models/{id}.pt"));
    let run = predict(dir.path(), &stem, path_str(&file), &["--normalize", "none"]);
    assert!(run.status.success(), "{}", stderr_of(&run));
    let d = max_abs_diff(
        &dir.path().join(format!("{stem}.rift.npy")),
        &dir.path().join(format!("{stem}.ref.npy")),
    );
    assert!(d > 1e-2, "per-image standardisation changes nothing ({d})");
}
