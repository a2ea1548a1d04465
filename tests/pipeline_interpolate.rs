//! `rift interpolate` checked from outside with PyTorch: exact endpoints, the chosen α
//! follows the rule, every float entry is blended, the written model loads strictly in
//! PyTorch with PyTorch's accuracy, and a bad `--save-chosen` fails before any work. It
//! reads a tiny MNIST copy of the bundled demo (128 training and 128 test digits).
mod common;

use common::stages::finetune;
use common::{
    assert_fails_cleanly, path_str, read_json, rift, rift_ok, run_python, stderr_of, tiny_mnist,
    DEMO_MODEL,
};
use serde_json::Value;
use std::path::Path;

/// Each argument is a JSON case {at, ft, chosen, alpha[, images, n]}: the chosen .pth
/// loads strictly into the reference ResNet18 and equals (1 − α)·AT + α·FT on every float
/// entry; integer counters are one endpoint's. With `images` (uncompressed IDX), also the
/// blended model's clean accuracy on them and how many have a top-2 logit margin below
/// 1e-3. Prints a JSON list, one result per case.
const PY_BLEND: &str = r#"
import sys, os, json, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, Normalized
from mnist_idx import idx
from safetensors.torch import load_file
torch.set_num_threads(2)
results = []
for case in sys.argv[1:]:
    c = json.loads(case)
    at, ft = load_file(c["at"]), load_file(c["ft"])
    chosen = torch.load(c["chosen"], weights_only=True)
    alpha = c["alpha"]
    net = build("resnet18", 10, 1, width=8, input_size=28)
    net.load_state_dict(chosen, strict=True)
    assert set(chosen) == set(at) == set(ft), "the chosen model has other keys than AT/FT"
    worst = 0.0
    for k, v in chosen.items():
        if v.is_floating_point():
            want = (1 - alpha) * at[k].double() + alpha * ft[k].double()
            worst = max(worst, (v.double() - want).abs().max().item())
        else:
            assert torch.equal(v, at[k]) or torch.equal(v, ft[k]), f"{k}: integer entry from neither endpoint"
    assert worst <= 1e-6, f"{case}: largest deviation from the blend {worst}"
    res = {"worst": worst}
    if "images" in c:
        n = c["n"]
        x = torch.tensor(idx(c["images"])[:n]).float() / 255
        y = torch.tensor(idx(c["images"].replace("images-idx3", "labels-idx1"))[:n])
        model = Normalized(net, [0.1307], [0.3081]).eval()
        with torch.no_grad():
            out = model(x)
        top = out.topk(2, dim=1).values
        res["clean_acc"] = (out.argmax(1) == y).double().mean().item() * 100
        res["near_ties"] = int(((top[:, 0] - top[:, 1]) < 1e-3).sum())
    results.append(res)
print(json.dumps(results))
"#;

/// A damaged copy of the demo model (noise on layer2.1.conv2, shifted BN statistics of
/// layer2.1.bn2), so that moving toward the intact weights gains clean accuracy.
const PY_DAMAGE: &str = r#"
import sys, numpy as np
from safetensors.numpy import load_file, save_file
sd = load_file(sys.argv[1])
rng = np.random.default_rng(0)
w = sd["layer2.1.conv2.weight"]
sd["layer2.1.conv2.weight"] = (w + rng.normal(size=w.shape) * w.std() * 3).astype(w.dtype)
sd["layer2.1.bn2.running_var"] = sd["layer2.1.bn2.running_var"] * np.float32(4)
sd["layer2.1.bn2.running_mean"] = sd["layer2.1.bn2.running_mean"] + np.float32(0.5)
nbt = sd["layer2.1.bn2.num_batches_tracked"]
sd["layer2.1.bn2.num_batches_tracked"] = np.asarray(nbt + 7, dtype=nbt.dtype).reshape(nbt.shape)
save_file(sd, sys.argv[2])
"#;

/// Test samples the interpolation test evaluates (fewer than its tiny test split).
const LIMIT: &str = "96";

fn eval_clean(checkpoint: &Path, data: &Path, out: &Path) -> Value {
    rift_ok(&[
        "eval",
        "--checkpoint",
        path_str(checkpoint),
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--limit",
        LIMIT,
        "--attack",
        "none",
        "--output",
        path_str(out),
        "--device",
        "cpu",
    ]);
    read_json(out)
}

fn interpolate(
    at: &Path,
    ft: &Path,
    data: &Path,
    alphas: &str,
    save: &Path,
    output: &Path,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        "interpolate",
        "--checkpoint",
        path_str(at),
        "--finetuned",
        path_str(ft),
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--alphas",
        alphas,
        "--limit",
        LIMIT,
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--save-chosen",
        path_str(save),
        "--output",
        path_str(output),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    rift_ok(&args);
    read_json(output)
}

#[test]
fn interpolation_endpoints_are_exact_and_the_chosen_model_loads_in_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 128);
    let demo = Path::new(DEMO_MODEL);

    // A fine-tuned model that really differs from the AT one (lr 0.05).
    let ft = t.join("ft.safetensors");
    finetune(
        &data,
        &ft,
        &t.join("ft.json"),
        &[
            "--layer",
            "layer2.1.conv2",
            "--lr",
            "0.05",
            "--milestones",
            "5",
        ],
    );

    let chosen = t.join("chosen.pth");
    let v = interpolate(
        demo,
        &ft,
        &data,
        "0,0.5,1",
        &chosen,
        &t.join("interp.json"),
        &[],
    );
    let points = v["points"].as_array().unwrap();
    let alphas: Vec<f64> = points
        .iter()
        .map(|p| p["alpha"].as_f64().unwrap())
        .collect();
    assert_eq!(alphas, [0.0, 0.5, 1.0]);
    for p in points {
        assert_eq!(p["n"], 96);
        for f in ["clean_acc", "robust_acc"] {
            assert!((0.0..=100.0).contains(&p[f].as_f64().unwrap()), "{p}");
        }
    }
    // The endpoints are the two models themselves.
    let e_at = eval_clean(demo, &data, &t.join("e_at.json"));
    let e_ft = eval_clean(&ft, &data, &t.join("e_ft.json"));
    assert_eq!(e_at["n"], 96);
    assert_eq!(
        points[0]["clean_acc"].as_f64(),
        e_at["clean_acc"].as_f64(),
        "α = 0 is the AT model"
    );
    assert_eq!(
        points[2]["clean_acc"].as_f64(),
        e_ft["clean_acc"].as_f64(),
        "α = 1 is the fine-tuned model"
    );
    // The rule: largest clean gain among points within the tolerance of α = 0's robust acc.
    let tol = v["tolerance"].as_f64().unwrap();
    assert_eq!(tol, 0.1);
    let base_robust = points[0]["robust_acc"].as_f64().unwrap();
    let admissible: Vec<&Value> = points
        .iter()
        .filter(|p| p["robust_acc"].as_f64().unwrap() >= base_robust - tol - 1e-9)
        .collect();
    let best_clean = admissible
        .iter()
        .map(|p| p["clean_acc"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let expect = admissible
        .iter()
        .find(|p| p["clean_acc"].as_f64().unwrap() == best_clean)
        .unwrap()["alpha"]
        .as_f64()
        .unwrap();
    let chosen_alpha = v["chosen_alpha"].as_f64().unwrap();
    assert!(alphas.contains(&chosen_alpha));
    assert_eq!(chosen_alpha, expect, "chosen α breaks the rule: {v}");

    // A real blend: AT = a damaged demo model, FT = the intact one; α ∈ {0, 0.5}; with a
    // loose tolerance α = 0.5 wins on clean accuracy, and its accuracy is PyTorch's.
    let damaged = t.join("damaged.safetensors");
    run_python(PY_DAMAGE, &[DEMO_MODEL, path_str(&damaged)]);
    let half = t.join("half.pth");
    let v = interpolate(
        &damaged,
        demo,
        &data,
        "0.5",
        &half,
        &t.join("half.json"),
        &["--tolerance", "100"],
    );
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "α = 0 is always added: {v}");
    assert!(
        points[1]["clean_acc"].as_f64() > points[0]["clean_acc"].as_f64(),
        "the damaged model should gain toward the intact one: {v}"
    );
    assert_eq!(v["chosen_alpha"].as_f64(), Some(0.5));
    // The written models: strict load, and the blend at their α (PyTorch checks both).
    let images = data.join("t10k-images-idx3-ubyte");
    let cases = [
        serde_json::json!({"at": path_str(demo), "ft": path_str(&ft),
                           "chosen": path_str(&chosen), "alpha": chosen_alpha}),
        serde_json::json!({"at": path_str(&damaged), "ft": DEMO_MODEL, "chosen": path_str(&half),
                           "alpha": 0.5, "images": path_str(&images), "n": 96}),
    ]
    .map(|c| c.to_string());
    let refs: Vec<&str> = cases.iter().map(String::as_str).collect();
    let r: Value = serde_json::from_str(&run_python(PY_BLEND, &refs)).unwrap();
    let r = &r[1];
    let ours = points[1]["clean_acc"].as_f64().unwrap();
    let theirs = r["clean_acc"].as_f64().unwrap();
    let slack = r["near_ties"].as_f64().unwrap() * 100.0 / 96.0 + 1e-9;
    assert!(
        (ours - theirs).abs() <= slack,
        "α = 0.5 clean accuracy {ours} vs PyTorch {theirs} on the blended weights"
    );

    // A bad --save-chosen fails before any work (the missing --finetuned is never read).
    let out = rift(&[
        "interpolate",
        "--checkpoint",
        DEMO_MODEL,
        "--finetuned",
        path_str(&t.join("does-not-exist.safetensors")),
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--save-chosen",
        path_str(&t.join("x.txt")),
        "--device",
        "cpu",
    ]);
    assert_fails_cleanly(&out, "--save-chosen x.txt", &["x.txt"]);
    assert!(
        !stderr_of(&out).contains("does-not-exist"),
        "{}",
        stderr_of(&out)
    );
    assert!(!t.join("x.txt").exists());
}
