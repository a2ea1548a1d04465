//! `rift mrc` against an independent PyTorch implementation of SPEC.md §1 on the bundled
//! adversarially trained model (single-batch adversarial set, no random start): the same
//! ranking, values within 2%. The fast path equals the faithful one; the paper variant
//! stops at the ε-ball; bad module names list the valid ones.
mod common;

use common::{
    assert_failed, assert_mrc_matches_reference, mrc_scores, path_str, rift, rift_ok, run_python,
    stderr_of, DEMO_MODEL, EXIT_ERROR,
};

/// The published MRC of every Conv/Linear module (`tests/py/mrc_ref.py`, 10 epochs) on the
/// demo model's PGD-10 adversarial set of the first 256 test digits, without random start.
const PY_MRC: &str = r#"
import sys, os, json, torch, torch.nn as nn
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, Normalized, pgd
from mnist_idx import idx
from mrc_ref import published_mrc
from safetensors.torch import load_file
torch.set_num_threads(2)
net = build("resnet18", 10, 1, width=8, input_size=28)
net.load_state_dict(load_file(sys.argv[1]), strict=True)
model = Normalized(net, [0.1307], [0.3081]).eval()
for p in model.parameters():
    p.requires_grad_(False)
N = 256
x = torch.tensor(idx("assets/demo/t10k-images-idx3-ubyte.gz")[:N]).float() / 255
y = torch.tensor(idx("assets/demo/t10k-labels-idx1-ubyte.gz")[:N])
adv = torch.cat([pgd(model, x[i:i+128], y[i:i+128], 0.1, 0.02, 10, random_start=False) for i in range(0, N, 128)])
# One batch of 256 < 512 (rift's MRC batch): shuffling cannot change the mean loss.
modules = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
print(json.dumps(published_mrc(model, modules, adv, y, 10)))
"#;

/// The `rift mrc` command line every test here shares (demo model, 256 samples, no random
/// start), writing to `out`, with `extra` flags.
fn mrc_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "mrc",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--eps",
        "0.1",
        "--step",
        "0.02",
        "--no-random-start",
        "--adv-limit",
        "256",
        "--device",
        "cpu",
        "--output",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

fn mrc_json(dir: &std::path::Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = dir.join(format!("{name}.json"));
    rift_ok(&mrc_args(path_str(&out), extra));
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

#[test]
fn mrc_matches_an_independent_pytorch_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run_python(PY_MRC, &[DEMO_MODEL]);
    let v = mrc_json(dir.path(), "faithful", &[]);
    let ours = mrc_scores(&v);
    // Every Conv/Linear module is scored (the reference scores them all).
    assert_mrc_matches_reference(&ours, &reference, 0.5);
    assert_eq!(v["recommended"], v["modules"][0]["name"]);
    assert_eq!(v["modules"][0]["recommended"], true);
    assert!(
        v["baseline_loss"].as_f64().unwrap() > 0.0 && v["baseline_acc"].as_f64().unwrap() > 50.0
    );
    assert_eq!(v["adv_n"], 256);

    // The fast path gives the same values, for every kind of module position.
    let subset = "conv1,layer1.0.conv1,layer1.1.conv2,layer2.0.conv2,layer2.0.shortcut.0,layer3.1.conv1,layer4.0.conv2,linear";
    let fast = mrc_scores(&mrc_json(
        dir.path(),
        "fast",
        &["--fast", "--modules", subset],
    ));
    assert_eq!(fast.len(), 8);
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

    // Paper variant: stops at the first epoch reaching the ball, recorded as such.
    let paper = mrc_json(
        dir.path(),
        "paper",
        &["--variant", "paper", "--modules", "layer4.0.conv1,linear"],
    );
    assert_eq!(paper["variant"], "paper");
    for m in paper["modules"].as_array().unwrap() {
        assert!(m["epoch_losses"].as_array().unwrap().len() <= 10);
    }

    // A module that does not exist: the error lists the valid ones.
    let out = rift(&[
        "mrc",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--modules",
        "layer9.conv",
        "--device",
        "cpu",
    ]);
    assert_failed(&out, EXIT_ERROR, &["layer9.conv", "layer2.1.conv2"]);
}

/// `--cache-budget`: a module whose cached activations would exceed the budget recomputes
/// its prefix instead, with the same values; small caches stay cached.
#[test]
fn the_cache_budget_falls_back_to_recomputation_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--modules",
        "conv1,layer1.0.conv2",
        "--mrc-epochs",
        "2",
        "--fast",
    ];
    let free = mrc_json(dir.path(), "free", &common);
    let out = dir.path().join("budget.json");
    let mut extra = vec!["--cache-budget", "2"];
    extra.extend_from_slice(&common);
    let args = mrc_args(path_str(&out), &extra);
    let res = rift(&args);
    assert!(res.status.success(), "{}", stderr_of(&res));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        stderr_of(&res)
    );
    // conv1's cache is the 28×28 input (0.8 MiB for 256 samples): it fits; layer1.0.conv2's
    // (8 channels, 6+ MiB) does not.
    assert!(
        printed.contains("layer1.0.conv2: its cached activations"),
        "{printed}"
    );
    assert!(!printed.contains("conv1: its cached"), "{printed}");
    let budget: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(mrc_scores(&budget), mrc_scores(&free));
    let bad = rift(&["mrc", "--checkpoint", DEMO_MODEL, "--cache-budget=-1"]);
    assert_failed(&bad, EXIT_ERROR, &["--cache-budget"]);
}
