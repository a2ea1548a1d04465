//! `--normalize`: the model's input normalisation, not the dataset's. Each case's logits
//! equal PyTorch's own model (robustbench's code, pyautoattack's example) within 1e-4, and
//! every output says which normalisation was used and where it came from.
mod common;

use common::{max_abs_diff, path_str, rift, run_python, stderr_of};

/// Each line: name, the --normalize flag ("-" for none given) and the phrase rift must
/// report. References are the zoo's own forward passes.
const MAKE: &str = r#"
import sys, os, importlib.util, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import randomize_bn, Normalized
from zoo import build_zoo, zoo_module
out = sys.argv[1]
torch.manual_seed(0)
x = torch.rand(3, 3, 32, 32)
np.save(os.path.join(out, "x.npy"), x.numpy())
def save(name, state, ref, flag, phrase):
    torch.save(state, os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + ".ref.npy"), ref.detach().numpy())
    print(name, flag, phrase)

# The AutoAttack package's own example: a legacy-format file with cuda:0 storages, a
# ResNet-18 on raw pixels (pyautoattack's examples/resnet.py).
import pyautoattack
ex = os.path.join(os.path.dirname(pyautoattack.__file__), "examples")
spec = importlib.util.spec_from_file_location("aa_resnet", os.path.join(ex, "resnet.py"))
aa = importlib.util.module_from_spec(spec); spec.loader.exec_module(aa)
net = aa.ResNet18().eval()
net.load_state_dict(torch.load(os.path.join(ex, "model_test.pt"), map_location="cpu"))
with torch.no_grad():
    np.save(os.path.join(out, "model_test.ref.npy"), net(x).numpy())
print("model_test none none:")

# Carmon 2019 / TRADES style: robustbench's WideResNet on raw pixels.
wrn = build_zoo("wrn-16-2"); randomize_bn(wrn, 1); wrn.eval()
with torch.no_grad():
    save("wrn-raw", wrn.state_dict(), wrn(x), "none", "none:")
    # Engstrom 2019's statistics, given as numbers.
    m, s = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
    save("wrn-engstrom", wrn.state_dict(), Normalized(wrn, m, s)(x),
         "0.4914,0.4822,0.4465/0.2023,0.1994,0.2010", "(--normalize)")
    # RobustBench wrappers that save mu/sigma (1×3×1×1): auto applies them.
    st = dict(wrn.state_dict()); mu = torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1)
    sigma = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    st["mu"], st["sigma"] = mu, sigma
    save("wrn-musigma", st, wrn((x - mu) / sigma), "-", "checkpoint's mu/sigma")
    # ... and none ignores them (they stay in the state).
    save("wrn-musigma-none", st, wrn(x), "none", "none:")
    # mu with a shape that is no per-channel statistic.
    st = dict(st); st["mu"] = torch.tensor([0.3, 0.4])
    save("wrn-badmu", st, wrn(x), "-", "ERROR")

# A DM network with CIFAR-100 statistics (non-persistent, so absent from the file).
dm = zoo_module("dm_wide_resnet")
net = dm.DMWideResNet(num_classes=100, depth=10, width=1, activation_fn=dm.Swish,
                      mean=dm.CIFAR100_MEAN, std=dm.CIFAR100_STD)
randomize_bn(net, 2); net.eval()
with torch.no_grad():
    save("dm-c100", net.state_dict(), net(x), "cifar100", "cifar100 mean/std (--normalize cifar100)")
    # The same network with its buffers made persistent: `mean`/`std` of shape 3×1×1.
    st = dict(net.state_dict()); st["mean"], st["std"] = net.mean, net.std
    save("dm-meanstd", st, net(x), "-", "checkpoint's mean/std")
"#;

fn model_test_pt() -> String {
    run_python(
        "import os, pyautoattack; print(os.path.join(os.path.dirname(pyautoattack.__file__), 'examples', 'model_test.pt'))",
        &[],
    )
    .trim()
    .to_string()
}

#[test]
fn normalize_choices_give_the_models_own_logits() {
    let dir = tempfile::tempdir().unwrap();
    let listing = run_python(MAKE, &[path_str(dir.path())]);
    let x = dir.path().join("x.npy");
    let shipped = model_test_pt();
    let mut checked = 0;
    for line in listing.lines() {
        let (name, rest) = line.split_once(' ').unwrap();
        let (flag, phrase) = rest.split_once(' ').unwrap();
        let ckpt = if name == "model_test" {
            shipped.clone()
        } else {
            path_str(&dir.path().join(format!("{name}.pth"))).to_string()
        };
        let out = dir.path().join(format!("{name}.rift.npy"));
        let mut args = vec!["predict", "--checkpoint", &ckpt, "--input", path_str(&x)];
        args.extend(["--output", path_str(&out), "--dataset", "cifar10"]);
        args.extend(["--device", "cpu"]);
        if flag != "-" {
            args.extend(["--normalize", flag]);
        }
        let run = rift(&args);
        let said = stderr_of(&run);
        if phrase == "ERROR" {
            assert!(!run.status.success(), "{name} loaded: {said}");
            assert!(
                said.contains("`mu` has shape [2]") && said.contains("[1, 3, 1, 1]"),
                "{name}: {said}"
            );
            assert!(!said.contains("panicked"), "{said}");
        } else {
            assert!(run.status.success(), "{name}: {said}");
            assert!(
                said.contains(phrase),
                "{name}: expected `{phrase}` in {said}"
            );
            let d = max_abs_diff(&out, &dir.path().join(format!("{name}.ref.npy")));
            assert!(d <= 1e-4, "{name}: max |rift - torch| = {d}");
        }
        checked += 1;
    }
    assert_eq!(checked, 8, "a case was skipped:\n{listing}");
}

#[test]
fn inspect_states_the_normalization_and_bad_text_is_refused() {
    let shipped = model_test_pt();
    let run = rift(&["inspect", "--checkpoint", &shipped, "--normalize", "none"]);
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{}", stderr_of(&run));
    assert!(said.contains("TorchLegacy"), "{said}");
    assert!(
        said.contains("normalization none: raw [0, 1] pixels (--normalize none)"),
        "{said}"
    );
    for bad in ["cifar", "0.5,0.5/0.2", "0.5,0.5,0.5/0,1,1", "1,2,3"] {
        let run = rift(&["inspect", "--checkpoint", &shipped, "--normalize", bad]);
        let err = stderr_of(&run);
        assert!(!run.status.success(), "{bad} accepted");
        assert!(
            err.contains("--normalize") && !err.contains("panicked"),
            "{bad}: {err}"
        );
    }
    // Three channels of statistics for the model's three inputs, but one given.
    let run = rift(&[
        "inspect",
        "--checkpoint",
        &shipped,
        "--normalize",
        "0.5/0.25",
    ]);
    let err = stderr_of(&run);
    assert!(!run.status.success());
    assert!(
        err.contains("1 value(s)") && err.contains("3 input channel(s)"),
        "{err}"
    );
}
