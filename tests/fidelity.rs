//! Flags that did something other than they say (issue 14, part 4), checked through the
//! binary on the bundled demo: `rift mrc --attack none` measures on the clean inputs
//! themselves (compared with the demo digits read by Python) and records the split it
//! used; `rift mrc --limit` is refused rather than ignored; a module named twice in
//! `--layer` is refused before any work.
mod common;

use common::{assert_failed, path_str, rift, rift_ok, run_python, DEMO_MODEL, EXIT_ERROR};

fn mrc_base() -> Vec<&'static str> {
    common::demo_args("mrc", &[])
}

/// Largest |x − digit/255| between the saved set and the first N demo test digits, and
/// whether the labels are the same.
const PY_CLEAN_SET: &str = r#"
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mnist_idx import idx
from safetensors.torch import load_file
s = load_file(sys.argv[1])
n = s["x"].shape[0]
x = torch.tensor(idx("assets/demo/t10k-images-idx3-ubyte.gz")[:n]).float() / 255
y = torch.tensor(idx("assets/demo/t10k-labels-idx1-ubyte.gz")[:n])
print(n, (s["x"] - x).abs().max().item(), bool(torch.equal(s["y"], y)))
"#;

#[test]
fn attack_none_measures_on_the_clean_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let adv = dir.path().join("adv.safetensors");
    let out = dir.path().join("mrc.json");
    let mut args = mrc_base();
    args.extend([
        "--attack",
        "none",
        "--adv-limit",
        "32",
        "--modules",
        "linear",
        "--mrc-epochs",
        "1",
        "--save-adv-set",
        path_str(&adv),
        "--output",
        path_str(&out),
    ]);
    rift_ok(&args);
    let printed = run_python(PY_CLEAN_SET, &[path_str(&adv)]);
    let v: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(v[0], "32", "{printed}");
    let worst: f64 = v[1].parse().unwrap();
    assert!(
        worst <= 1e-6,
        "the set is not the clean digits: max |Δ| {worst}"
    );
    assert_eq!(v[2], "True", "labels differ: {printed}");
    // The default split, resolved per dataset (MNIST: test, as CIFAR in the published
    // code), is what the result records, never the word `auto`.
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(result["adv_split"], "test", "{result}");
}

#[test]
fn mrc_refuses_limit_and_repeated_layers_are_refused() {
    let mut args = mrc_base();
    args.extend(["--limit", "5"]);
    assert_failed(&rift(&args), EXIT_ERROR, &["--limit", "--adv-limit"]);

    let dir = tempfile::tempdir().unwrap();
    let ft = dir.path().join("ft.safetensors");
    let finetune = [
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--layer",
        "conv1, layer1.0.conv1,conv1",
        "--save",
        path_str(&ft),
    ];
    assert_failed(&rift(&finetune), EXIT_ERROR, &["`conv1`", "more than once"]);
    assert!(!ft.exists());

    // `rift run` refuses it before its first stage (it used to train after MRC).
    let session = dir.path().join("s");
    let run = [
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--layer",
        "linear,linear",
        "--session",
        path_str(&session),
    ];
    assert_failed(&rift(&run), EXIT_ERROR, &["`linear`", "more than once"]);
    assert!(!session.join("session.yaml").exists());
}
