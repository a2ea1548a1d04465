//! `rift predict` against PyTorch itself: for every architecture, logits on the same
//! checkpoint and inputs agree within 1e-4 (fp32), with non-trivial BatchNorm statistics,
//! at 32×32 and 64×64 inputs.
mod common;

use common::{max_abs_diff, path_str, rift_ok, run_python};

const MAKE_FIXTURES: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, randomize_bn, Normalized
out = sys.argv[1]
torch.manual_seed(0)
cases = [
    ("resnet18", 10, 3, 64, 32, 4),
    ("resnet18", 100, 3, 16, 64, 4),
    ("resnet34", 10, 3, 8, 32, 4),
    ("resnet34", 200, 3, 8, 64, 4),
    ("resnet50", 10, 3, 8, 32, 4),
    ("resnet50", 10, 3, 8, 64, 4),
    ("preactresnet18", 10, 3, 16, 32, 4),
    ("preactresnet18", 200, 3, 16, 64, 4),
    ("wrn-16-2", 10, 3, None, 32, 4),
    ("wrn-16-2", 200, 3, None, 64, 4),
    ("wrn-28-4", 100, 3, None, 32, 4),
    ("wrn-34-10", 10, 3, None, 32, 2),
    ("resnet18", 10, 1, 8, 28, 4),
]
for i, (arch, classes, ch, width, size, n) in enumerate(cases):
    net = build(arch, classes, ch, width=width, input_size=size)
    randomize_bn(net, seed=i)
    net.eval()
    mean = [0.4914, 0.4822, 0.4465] if ch == 3 else [0.1307]
    std = [0.2471, 0.2435, 0.2616] if ch == 3 else [0.3081]
    model = Normalized(net, mean, std).eval()
    x = torch.rand(n, ch, size, size)
    with torch.no_grad():
        logits = model(x)
    name = f"{arch}-c{classes}-s{size}"
    torch.save(net.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".in.npy"), x.numpy())
    np.save(os.path.join(out, name + ".ref.npy"), logits.numpy())
    # uint8 N×H×W×C input: same logits as the float input it encodes.
    if i == 0:
        xu = (torch.rand(n, size, size, ch) * 255).round().to(torch.uint8)
        with torch.no_grad():
            lu = model(xu.permute(0, 3, 1, 2).float() / 255)
        np.save(os.path.join(out, name + ".u8.npy"), xu.numpy())
        np.save(os.path.join(out, name + ".u8ref.npy"), lu.numpy())
    print(name, ch)
"#;

#[test]
fn predict_matches_pytorch_for_every_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE_FIXTURES, &[path_str(dir.path())]);
    let mut checked = 0;
    for line in listing.lines() {
        let mut parts = line.split_whitespace();
        let (name, ch) = (parts.next().unwrap(), parts.next().unwrap());
        let dataset = if ch == "1" { "mnist" } else { "cifar10" };
        let ckpt = dir.path().join(format!("{name}.pth"));
        let out = dir.path().join(format!("{name}.rift.npy"));
        rift_ok(&[
            "predict",
            "--checkpoint",
            path_str(&ckpt),
            "--input",
            path_str(&dir.path().join(format!("{name}.in.npy"))),
            "--output",
            path_str(&out),
            "--dataset",
            dataset,
            "--device",
            "cpu",
        ]);
        let d = max_abs_diff(&out, &dir.path().join(format!("{name}.ref.npy")));
        assert!(d <= 1e-4, "{name}: max |rift - torch| = {d}");
        let u8in = dir.path().join(format!("{name}.u8.npy"));
        if u8in.exists() {
            let out = dir.path().join(format!("{name}.u8rift.npy"));
            rift_ok(&[
                "predict",
                "--checkpoint",
                path_str(&ckpt),
                "--input",
                path_str(&u8in),
                "--output",
                path_str(&out),
                "--dataset",
                dataset,
                "--device",
                "cpu",
            ]);
            let d = max_abs_diff(&out, &dir.path().join(format!("{name}.u8ref.npy")));
            assert!(d <= 1e-4, "{name} uint8 input: max |rift - torch| = {d}");
        }
        checked += 1;
    }
    assert_eq!(checked, 13);
}

const MAKE_SMALL: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, randomize_bn
out = sys.argv[1]
torch.manual_seed(1)
for i, (arch, width) in enumerate([("resnet18", 8), ("resnet50", 4), ("preactresnet18", 8), ("wrn-16-2", None)]):
    net = build(arch, 10, 3, width=width)
    randomize_bn(net, seed=10 + i)
    torch.save(net.state_dict(), os.path.join(out, arch + ".pth"))
    print(arch)
"#;

/// MRC's fast path: for every module of every family (basic, bottleneck, pre-activation,
/// wide blocks; stem and classifier), the cached prefix followed by the suffix gives the
/// logits of the full forward pass.
#[test]
fn cached_prefix_and_suffix_equal_the_forward_pass() {
    use rift::engine::checkpoint::load_checkpoint;
    use rift::engine::models::Model;
    let dir = tempfile::tempdir().unwrap();
    let archs = run_python(MAKE_SMALL, &[path_str(dir.path())]);
    let (mean, std) = (
        vec![0.4914f32, 0.4822, 0.4465],
        vec![0.2471f32, 0.2435, 0.2616],
    );
    for arch in archs.lines() {
        let ckpt = load_checkpoint(&dir.path().join(format!("{arch}.pth"))).unwrap();
        let model = Model::from_checkpoint(
            &ckpt,
            None,
            None,
            tch::Device::Cpu,
            (&mean, &std, "cifar10"),
        )
        .unwrap();
        tch::manual_seed(0);
        let x = tch::Tensor::rand([3, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
        let full = tch::no_grad(|| model.forward(&x, false));
        for m in model.modules() {
            let cache = model.prefix_cache(&x, &m.name).unwrap();
            let fast = tch::no_grad(|| model.suffix_logits(&m.name, &cache));
            let diff = (&fast - &full).abs().max().double_value(&[]);
            assert!(
                diff <= 1e-5,
                "{arch} {}: |suffix - forward| = {diff}",
                m.name
            );
        }
    }
}
