//! `rift eval --save-adv FILE` and the evidence in every evaluation output (issue 24 §3):
//! the saved `x_adv` is checked in PyTorch — the demo model run by PyTorch on it gives
//! exactly the per-point verdicts rift wrote under `per_sample`, every example lies within
//! ε of its clean image, AutoAttack leaves the clean image where no attack succeeded — and
//! the reference's closing lines (initial accuracy, accuracy after each attack, the
//! perturbation and NaN check) are checked against the file. Bad `--save-adv` requests
//! fail before any compute.
mod common;

use common::{assert_failed, demo_args, path_str, rift, run_python, stderr_of};
use common::{DEMO_MODEL, EXIT_ERROR};
use std::path::Path;

const EPS: &str = "0.1";

fn eval_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = demo_args(
        "eval",
        &["--limit", "24", "--batch-size", "12", "--eps", EPS],
    );
    args.extend_from_slice(extra);
    args
}

/// PyTorch's reading of a saved file: per point, whether the demo model classifies `x_adv`
/// correctly, the largest L∞ distance to the clean image, whether `x_adv` equals it, the
/// labels, and the shape; as JSON.
fn pytorch_view(file: &Path, n: usize) -> serde_json::Value {
    let script = r#"
import json, os, sys
sys.path.insert(0, os.path.join(os.getcwd(), 'tests', 'py'))
import torch
from autoattack_ref import demo_model, test_set
path, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if path.endswith('.safetensors'):
    from safetensors.torch import load_file
    d = load_file(path)
else:
    d = torch.load(path, weights_only=True)
x, y = test_set('assets/demo', n)
adv = d['x_adv']
with torch.no_grad():
    pred = demo_model(model)(adv).argmax(1)
delta = (adv - x).flatten(1).abs().amax(1)
print(json.dumps({
    'shape': list(adv.shape), 'dtype': str(adv.dtype),
    'labels_equal': bool(torch.equal(d['y'], y)),
    'correct': (pred == y).tolist(),
    'linf': delta.tolist(),
    'unchanged': (delta == 0).tolist(),
    'min': float(adv.min()), 'max': float(adv.max()),
}))
"#;
    let out = run_python(script, &[path_str(file), DEMO_MODEL, &n.to_string()]);
    serde_json::from_str(out.trim()).expect("json from python")
}

fn bools(v: &serde_json::Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_f64().unwrap())
        .collect()
}

#[test]
fn pgd_examples_reproduce_the_verdicts_in_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let (adv, json) = (
        dir.path().join("adv.safetensors"),
        dir.path().join("e.json"),
    );
    let out = rift(&eval_args(&[
        "--steps",
        "5",
        "--step",
        "0.03",
        "--save-adv",
        path_str(&adv),
        "--output",
        path_str(&json),
    ]));
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let robust = bools(&record["per_sample"]["robust"]);
    assert_eq!(robust.len(), 24);
    assert_eq!(
        robust.iter().filter(|&&r| r).count() as u64,
        record["robust_correct"].as_u64().unwrap()
    );
    let torch = pytorch_view(&adv, 24);
    assert_eq!(torch["shape"], serde_json::json!([24, 1, 28, 28]));
    assert_eq!(torch["dtype"], "torch.float32");
    assert_eq!(torch["labels_equal"], true);
    // PGD's x_adv is the image each verdict was taken on (one restart).
    assert_eq!(bools(&torch["correct"]), robust);
    let linf = floats(&torch["linf"]);
    assert!(linf.iter().all(|&d| d <= 0.1 + 1e-6), "{linf:?}");
    assert!(torch["min"].as_f64().unwrap() >= 0.0 && torch["max"].as_f64().unwrap() <= 1.0);
    // The closing check agrees with the file.
    let check = &record["adversarial_check"];
    let largest = linf.iter().cloned().fold(0.0, f64::max);
    assert!((check["max_perturbation"].as_f64().unwrap() - largest).abs() < 1e-6);
    assert_eq!(check["found"], 24);
    assert_eq!(check["nan"], 0);
    assert!(err.contains("max Linf perturbation: "), "{err}");
    assert_eq!(record["adversarial_examples"], path_str(&adv));
}

#[test]
fn autoattack_examples_break_exactly_the_points_it_says_and_leave_the_rest_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (adv, json) = (dir.path().join("adv.pt"), dir.path().join("e.json"));
    let out = rift(&eval_args(&[
        "--attack",
        "apgd-ce,square",
        "--apgd-iters",
        "10",
        "--square-queries",
        "20",
        "--save-adv",
        path_str(&adv),
        "--output",
        path_str(&json),
    ]));
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let robust = bools(&record["per_sample"]["robust"]);
    let broken: Vec<bool> = record["per_sample"]["broken_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| !b.is_null())
        .collect();
    assert!(
        broken.iter().any(|&b| b),
        "no point broken: the check would be empty"
    );
    let torch = pytorch_view(&adv, 24);
    let (correct, unchanged) = (bools(&torch["correct"]), bools(&torch["unchanged"]));
    let linf = floats(&torch["linf"]);
    for i in 0..24 {
        if broken[i] {
            // An example the model gets wrong, within ε.
            assert!(
                !correct[i] && linf[i] <= 0.1 + 1e-6,
                "point {i}: {}",
                linf[i]
            );
        } else {
            // The clean image, as the reference leaves it; robust iff PyTorch is right.
            assert!(unchanged[i], "point {i} changed though no attack broke it");
            assert_eq!(correct[i], robust[i], "point {i}");
        }
    }
    let check = &record["adversarial_check"];
    assert_eq!(
        check["found"].as_u64().unwrap() as usize,
        broken.iter().filter(|&&b| b).count()
    );
    let largest = linf.iter().cloned().fold(0.0, f64::max);
    assert!((check["max_perturbation"].as_f64().unwrap() - largest).abs() < 1e-6);
    // The reference's closing lines, in its order and spelling.
    let clean = record["clean_acc"].as_f64().unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{err}"))
    };
    assert!(lines[at("initial accuracy:")].contains(&format!("{clean:.2}%")));
    assert!(at("initial accuracy:") < at("robust accuracy after APGD-CE: "));
    assert!(at("robust accuracy after APGD-CE: ") < at("robust accuracy after SQUARE: "));
    assert!(at("robust accuracy after SQUARE: ") < at("max Linf perturbation: "));
    assert!(lines[at("max Linf perturbation: ")].contains("nan in tensor: 0"));
    let robust_acc = record["robust_acc"].as_f64().unwrap();
    assert!(lines[at("robust accuracy: ")].contains(&format!("{robust_acc:.2}%")));
}

#[test]
fn bad_save_adv_requests_fail_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("adv.txt");
    let out = rift(&eval_args(&["--save-adv", path_str(&txt)]));
    assert_failed(&out, EXIT_ERROR, &["adv.txt", ".safetensors"]);
    let nowhere = dir.path().join("missing").join("adv.pt");
    let out = rift(&eval_args(&["--save-adv", path_str(&nowhere)]));
    assert_failed(&out, EXIT_ERROR, &["does not exist", "missing"]);
    let adv = dir.path().join("adv.pt");
    let out = rift(&eval_args(&[
        "--attack",
        "none",
        "--save-adv",
        path_str(&adv),
    ]));
    assert_failed(&out, EXIT_ERROR, &["needs an attack"]);
    assert!(!adv.exists());
}

#[test]
fn save_adv_is_refused_when_resuming_a_run_that_already_attacked() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("aa.json");
    let adv = dir.path().join("adv.safetensors");
    let aa = [
        "--attack",
        "apgd-ce,square",
        "--apgd-iters",
        "3",
        "--square-queries",
        "5",
        "--state",
    ];
    let mut first = eval_args(&aa);
    first.push(path_str(&state));
    let out = rift(&first);
    assert!(out.status.success(), "{}", stderr_of(&out));
    first.extend_from_slice(&["--save-adv", path_str(&adv)]);
    let out = rift(&first);
    assert_failed(
        &out,
        EXIT_ERROR,
        &["--save-adv", "aa.json", "without --save-adv"],
    );
    assert!(!adv.exists());
}
