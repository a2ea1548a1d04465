//! The RiFT pipeline end to end, checked from outside with PyTorch: `finetune` changes only
//! the chosen module (and BatchNorm statistics unless frozen); `interpolate` has exact
//! endpoints, blends every float entry and writes a model PyTorch loads strictly; a killed
//! `rift run` continues where it stopped; `ood` gives PyTorch's accuracies per corruption
//! and severity; `train-at` saves its state every epoch and continues from it. Fine-tuning
//! and adversarial training read a tiny MNIST copy of the bundled demo (128 training
//! digits, 64–128 test digits, drawn at random: the demo files are sorted by class) so the
//! whole file stays fast on two CPU cores.
mod common;

use common::{
    assert_failed, demo_run_args, path_str, rift, rift_bin, rift_ok, run_python, stderr_of,
    tiny_mnist, DEMO_MODEL, EXIT_ERROR,
};
use rift::report::session::Session;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Which keys of two .safetensors checkpoints differ (bit for bit), as JSON.
const PY_DIFF: &str = r#"
import sys, json, numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
def same(x, y):
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
diff = sorted(k for k in a if k in b and not same(a[k], b[k]))
print(json.dumps({"only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
                  "diff": diff, "n": len(a)}))
"#;

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

/// Strict load of a ResNet18 state (.pth via weights_only, or .safetensors) into the
/// reference model; argv: file, width, in_channels, input size; with a 5th argument, the
/// entries must equal that file's bit for bit.
const PY_LOAD_STRICT: &str = r#"
import sys, os, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build
from safetensors.torch import load_file
def load(p):
    return load_file(p) if p.endswith(".safetensors") else torch.load(p, weights_only=True)
sd = load(sys.argv[1])
net = build("resnet18", 10, int(sys.argv[3]), width=int(sys.argv[2]), input_size=int(sys.argv[4]))
net.load_state_dict(sd, strict=True)
if len(sys.argv) > 5:
    other = load(sys.argv[5])
    assert set(other) == set(sd)
    for k in sd:
        assert torch.equal(sd[k], other[k]), k
print(len(sd))
"#;

/// A tiny CIFAR-10-C layout (3 corruptions × 5 severities × 20 images) and a random CIFAR
/// ResNet18 (width 8, randomised BN) saved as .pth; prints PyTorch's accuracy per
/// corruption and severity. Half of the labels are the model's own prediction on the
/// first corruption (the rest are wrong there), and images whose top-2 logit margin is
/// below 1e-3 in any corruption are redrawn, so accuracies are exact to compare.
const PY_OOD: &str = r#"
import sys, os, json, numpy as np, torch
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, randomize_bn, Normalized
torch.set_num_threads(2)
out, model_path = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
net = build("resnet18", 10, 3, width=8, input_size=32)
randomize_bn(net, seed=3)
net.eval()
torch.save(net.state_dict(), model_path)
model = Normalized(net, [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]).eval()
rng = np.random.default_rng(0)
names = ["gaussian_noise", "fog", "contrast"]
N = 100
def draw(n):
    # Smooth random images (upsampled 4x4 colour fields plus noise), varied enough that
    # a random network does not predict one class for all of them.
    base = rng.uniform(0, 255, size=(n, 4, 4, 3))
    big = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
    return np.clip(big + rng.normal(0, 20, size=big.shape), 0, 255).astype(np.uint8)
def logits(imgs):
    x = torch.tensor(imgs).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return model(x)
images = {n: draw(N) for n in names}
for _ in range(50):
    bad = np.zeros(N, bool)
    for n in names:
        top = logits(images[n]).topk(2, dim=1).values
        bad |= ((top[:, 0] - top[:, 1]) < 1e-3).numpy()
    if not bad.any():
        break
    for n in names:
        images[n][bad] = draw(int(bad.sum()))
assert not bad.any()
preds = {n: logits(images[n]).argmax(1).numpy() for n in names}
labels = np.where(np.arange(N) % 2 == 0, preds[names[0]], (preds[names[0]] + 1 + rng.integers(0, 9, N)) % 10).astype(np.int64)
np.save(os.path.join(out, "labels.npy"), labels)
result = {}
for n in names:
    np.save(os.path.join(out, n + ".npy"), images[n])
    correct = preds[n] == labels
    result[n] = [float(correct[s * 20:(s + 1) * 20].mean() * 100) for s in range(5)]
print(json.dumps(result))
"#;

// ---------------------------------------------------------------------------------------

fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
    )
    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Keys that differ between two checkpoints; both must hold the same keys.
fn differing_keys(a: &Path, b: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(&run_python(PY_DIFF, &[path_str(a), path_str(b)])).unwrap();
    assert!(
        strings(&v["only_a"]).is_empty() && strings(&v["only_b"]).is_empty(),
        "{} and {} hold different keys: {v}",
        a.display(),
        b.display()
    );
    strings(&v["diff"])
}

fn is_bn_stat(k: &str) -> bool {
    k.ends_with(".running_mean")
        || k.ends_with(".running_var")
        || k.ends_with(".num_batches_tracked")
}

/// A failure: exit status 1, no panic, and every `needles` in stderr (`what` names the case
/// in the test output).
fn assert_clean_failure(out: &Output, what: &str, needles: &[&str]) {
    eprintln!("checking that {what} fails cleanly");
    assert_failed(out, EXIT_ERROR, needles);
}

/// `rift finetune` of the demo model on `data`, 1 epoch; returns the ft.json result.
fn finetune(data: &Path, save: &Path, output: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--epochs",
        "1",
        "--save",
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

// ---------------------------------------------------------------------------------------

#[test]
fn finetune_changes_only_the_chosen_module_and_bn_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 64);
    let demo = Path::new(DEMO_MODEL);

    // Default: the module trains, every BN's running statistics update (train mode).
    let ft = t.join("ft.safetensors");
    let v = finetune(
        &data,
        &ft,
        &t.join("ft.json"),
        &["--layer", "layer2.1.conv2"],
    );
    let diff = differing_keys(demo, &ft);
    for k in &diff {
        assert!(
            k == "layer2.1.conv2.weight" || is_bn_stat(k),
            "{k} changed, but only layer2.1.conv2 and BN statistics may: {diff:?}"
        );
    }
    assert!(
        diff.iter().any(|k| k == "layer2.1.conv2.weight"),
        "the chosen module did not change"
    );
    assert!(
        diff.iter().any(|k| k.ends_with(".running_mean"))
            && diff.iter().any(|k| k.ends_with(".running_var")),
        "BN running statistics must update in train mode (SPEC.md §2): {diff:?}"
    );
    // ft.json
    assert_eq!(strings(&v["layers"]), ["layer2.1.conv2"]);
    assert_eq!(v["select_on"], "val");
    assert_eq!(v["freeze_bn_stats"], false);
    assert_eq!(v["trained_params"], 16 * 16 * 9);
    let losses = v["iter_losses"].as_array().expect("iter_losses");
    assert!(!losses.is_empty() && losses.iter().all(|l| l.as_f64().unwrap().is_finite()));
    let log = v["epochs_log"].as_array().expect("epochs_log");
    assert_eq!(log.len(), 1);
    for field in ["train_acc", "val_acc", "test_acc"] {
        let a = log[0][field]
            .as_f64()
            .unwrap_or_else(|| panic!("epochs_log[0].{field}: {}", log[0]));
        assert!((0.0..=100.0).contains(&a), "{field} = {a}");
    }
    assert_eq!(v["best_epoch"], 0);
    // One epoch over the training part (128 minus the validation hold-out) at batch 128.
    let train_n = 128 - v["val_size"].as_u64().unwrap() as usize;
    assert_eq!(
        losses.len(),
        train_n.div_ceil(128),
        "one loss per iteration"
    );

    // --freeze-bn-stats: the module's weight is the only difference.
    let frozen = t.join("frozen.safetensors");
    let v = finetune(
        &data,
        &frozen,
        &t.join("frozen.json"),
        &["--layer", "layer2.1.conv2", "--freeze-bn-stats"],
    );
    assert_eq!(v["freeze_bn_stats"], true);
    assert_eq!(differing_keys(demo, &frozen), ["layer2.1.conv2.weight"]);

    // A Linear module trains its weight and its bias.
    let lin = t.join("linear.safetensors");
    let v = finetune(&data, &lin, &t.join("linear.json"), &["--layer", "linear"]);
    assert_eq!(v["trained_params"], 64 * 10 + 10);
    let diff = differing_keys(demo, &lin);
    for k in &diff {
        assert!(
            k.starts_with("linear.") || is_bn_stat(k),
            "{k} changed: {diff:?}"
        );
    }
    assert!(
        diff.iter().any(|k| k == "linear.weight") && diff.iter().any(|k| k == "linear.bias"),
        "linear weight and bias should both train: {diff:?}"
    );

    // An unknown module fails, listing the valid names.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "nope",
        "--epochs",
        "1",
        "--save",
        path_str(&t.join("nope.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_clean_failure(
        &out,
        "--layer nope",
        &["nope", "layer2.1.conv2", "layer4.1.conv2", "linear"],
    );
    assert!(!t.join("nope.safetensors").exists());

    // lowest:2 without an MRC result fails cleanly; with one it takes its two lowest modules.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "lowest:2",
        "--save",
        path_str(&t.join("x.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_clean_failure(
        &out,
        "--layer lowest:2 without --mrc-result",
        &["--mrc-result"],
    );
    let mrc_json = t.join("mrc.json");
    rift_ok(&[
        "mrc",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--modules",
        "conv1,linear,layer1.0.conv1",
        "--adv-limit",
        "64",
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--mrc-epochs",
        "2",
        "--output",
        path_str(&mrc_json),
        "--device",
        "cpu",
    ]);
    let m = read_json(&mrc_json);
    let ranked: Vec<String> = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ranked.len(), 3);
    let low = t.join("low.safetensors");
    let v = finetune(
        &data,
        &low,
        &t.join("low.json"),
        &[
            "--layer",
            "lowest:2",
            "--mrc-result",
            path_str(&mrc_json),
            "--freeze-bn-stats",
        ],
    );
    assert_eq!(
        strings(&v["layers"]),
        ranked[..2],
        "lowest:2 = the two lowest-MRC modules"
    );
    let mut want: Vec<String> = ranked[..2].iter().map(|n| format!("{n}.weight")).collect();
    if ranked[..2].iter().any(|n| n == "linear") {
        want.push("linear.bias".into());
    }
    want.sort();
    assert_eq!(differing_keys(demo, &low), want);
    // lowest:K beyond the result's size names it.
    let out = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "lowest:4",
        "--mrc-result",
        path_str(&mrc_json),
        "--save",
        path_str(&t.join("x.safetensors")),
        "--device",
        "cpu",
    ]);
    assert_clean_failure(
        &out,
        "--layer lowest:4 of a 3-module result",
        &["mrc.json", "3 modules"],
    );
}

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
    assert_clean_failure(&out, "--save-chosen x.txt", &["x.txt"]);
    assert!(
        !stderr_of(&out).contains("does-not-exist"),
        "{}",
        stderr_of(&out)
    );
    assert!(!t.join("x.txt").exists());
}

#[test]
fn a_killed_run_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 128);
    let s = t.join("s");
    let args = demo_run_args(&s, &data, &[]);

    // Start, wait until MRC has scored a module (or finished), then SIGKILL.
    let mut child = Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = s.join("mrc_partial.yaml");
    let start = Instant::now();
    loop {
        if partial.exists() {
            break;
        }
        if let Ok(sess) = Session::load(&s) {
            if sess.mrc.is_some() {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rift run ended ({status}) before MRC started");
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "MRC never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Session::load(&s).expect("session.yaml parses after a kill");
    assert!(
        killed.baseline.is_some(),
        "the baseline was saved before MRC"
    );
    assert!(killed.interpolation.is_none());
    // Modules fully scored before the kill must not be scored again.
    let scored_before: Vec<String> = match std::fs::read_to_string(&partial) {
        Ok(text) => {
            let v: serde_yaml::Value =
                serde_yaml::from_str(&text).expect("mrc_partial.yaml parses");
            v.as_sequence()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_string())
                .collect()
        }
        Err(_) => killed
            .mrc
            .as_ref()
            .unwrap()
            .modules
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    assert!(!scored_before.is_empty());

    // Same command: continues and finishes.
    let out = rift(&args);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    assert!(out.status.success(), "the continued run failed:\n{all}");
    assert!(
        all.contains("continuing"),
        "no `continuing` message:\n{all}"
    );
    assert!(
        !partial.exists(),
        "mrc_partial.yaml is removed once MRC is complete"
    );

    let sess = Session::load(&s).unwrap();
    let baseline = sess.baseline.as_ref().unwrap();
    assert_eq!(baseline.n, 96);
    let mrc = sess.mrc.as_ref().expect("mrc");
    assert_eq!(mrc.modules.len(), 5);
    assert_eq!(mrc.adv_n, 64);
    assert!(
        mrc.modules.windows(2).all(|w| w[0].mrc <= w[1].mrc),
        "MRC not ascending"
    );
    assert!(mrc.modules[0].recommended && mrc.modules[1..].iter().all(|m| !m.recommended));
    assert_eq!(mrc.recommended, mrc.modules[0].name);
    for m in &mrc.modules {
        assert_eq!(m.epoch_losses.len(), 2, "{}", m.name);
    }
    let ft = sess.finetune.as_ref().expect("finetune");
    assert_eq!(
        ft.layers,
        [mrc.modules[0].name.clone()],
        "--layer auto = the lowest MRC"
    );
    let interp = sess.interpolation.as_ref().expect("interpolation");
    let alphas: Vec<f64> = interp.points.iter().map(|p| p.alpha).collect();
    assert_eq!(alphas, [0.0, 0.5, 1.0]);
    // α = 0 is the AT model, evaluated with the same seed as the baseline.
    assert_eq!(interp.points[0].clean_acc, baseline.clean_acc);
    assert_eq!(Some(interp.points[0].robust_acc), baseline.robust_acc);
    let chosen = sess.chosen.as_ref().expect("chosen");
    assert_eq!(chosen.alpha, interp.chosen_alpha);

    // events.jsonl: one JSON object with an `event` a line, from both runs.
    let events: Vec<Value> = std::fs::read_to_string(s.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
        })
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for k in [
        "baseline",
        "module_scored",
        "module_epoch",
        "sweep_point",
        "stage_finished",
    ] {
        assert!(kinds.contains(&k), "no {k} event");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "sweep_point").count(), 3);
    // The AT baseline (n = 96) ran once; the adversarial set's own summary (n = 64) is
    // rebuilt by each run.
    let baselines = events
        .iter()
        .filter(|e| e["event"] == "baseline" && e["n"] == 96)
        .count();
    assert_eq!(baselines, 1, "the baseline ran twice");
    for name in &scored_before {
        let epochs = events
            .iter()
            .filter(|e| e["event"] == "module_epoch" && e["module"] == name.as_str())
            .count();
        assert_eq!(
            epochs, 2,
            "{name} was scored before the kill and must not be scored again"
        );
    }
    for m in &mrc.modules {
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "module_scored" && e["score"]["name"] == m.name.as_str()),
            "no module_scored for {}",
            m.name
        );
    }

    for f in [
        "report.md",
        "mrc.png",
        "mrc.svg",
        "finetune.png",
        "finetune.svg",
        "alpha.png",
        "alpha.svg",
        "chosen.pth",
        "chosen.safetensors",
        "finetuned.safetensors",
    ] {
        let p = s.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 0,
            "{f} missing"
        );
    }
    // chosen.pth loads strictly in PyTorch and equals chosen.safetensors.
    run_python(
        PY_LOAD_STRICT,
        &[
            path_str(&s.join("chosen.pth")),
            "8",
            "1",
            "28",
            path_str(&s.join("chosen.safetensors")),
        ],
    );

    // Other settings on the same session: refused, naming the session directory.
    let out = rift(&demo_run_args(&s, &data, &["--lr", "0.5"]));
    assert_clean_failure(&out, "rift run with another --lr", &[path_str(&s)]);
    assert_eq!(
        Session::load(&s).unwrap().settings,
        sess.settings,
        "the session was touched"
    );

    // `rift report` re-renders the report and figures.
    std::fs::remove_file(s.join("report.md")).unwrap();
    std::fs::remove_file(s.join("alpha.svg")).unwrap();
    rift_ok(&["report", path_str(&s)]);
    assert!(s.join("report.md").is_file() && s.join("alpha.svg").is_file());
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(
        report.contains(&mrc.modules[0].name),
        "the report names the chosen module"
    );
    let out = rift(&["report", path_str(&t.join("nowhere"))]);
    assert_clean_failure(&out, "rift report of a missing session", &["nowhere"]);
}

const CORRUPTIONS_19: [&str; 19] = [
    "brightness",
    "contrast",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "saturate",
    "shot_noise",
    "snow",
    "spatter",
    "speckle_noise",
    "zoom_blur",
];

#[test]
fn ood_matches_pytorch_per_corruption_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let c = t.join("c");
    let model = t.join("m.pth");
    let reference: std::collections::BTreeMap<String, Vec<f64>> =
        serde_json::from_str(&run_python(PY_OOD, &[path_str(&c), path_str(&model)])).unwrap();
    assert_eq!(reference.len(), 3);

    let ood = |extra: &[&str], name: &str| -> Value {
        let out = t.join(name);
        let mut args = vec![
            "ood",
            "--checkpoint",
            path_str(&model),
            "--dataset",
            "cifar10-c",
            "--data-dir",
            path_str(&c),
            "--output",
            path_str(&out),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        rift_ok(&args);
        read_json(&out)
    };

    let v = ood(&[], "ood.json");
    assert_eq!(v["dataset"], "cifar10-c");
    assert_eq!(v["severities"], serde_json::json!([1, 2, 3, 4, 5]));
    let cs = v["corruptions"].as_array().unwrap();
    let names: Vec<&str> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["contrast", "fog", "gaussian_noise"]);
    let mut non_trivial = false;
    for c in cs {
        let want = &reference[c["name"].as_str().unwrap()];
        for (s, w) in want.iter().enumerate() {
            let got = c["by_severity"][(s + 1).to_string()].as_f64().unwrap();
            assert!(
                (got - w).abs() < 1e-9,
                "{} severity {}: rift {got} vs PyTorch {w}",
                c["name"],
                s + 1
            );
            non_trivial |= *w > 20.0 && *w < 100.0;
        }
        let pooled = want.iter().sum::<f64>() / 5.0;
        assert!((c["acc"].as_f64().unwrap() - pooled).abs() < 1e-9, "{c}");
        assert_eq!(c["n"], 100);
    }
    assert!(
        non_trivial,
        "the fixture should give non-trivial accuracies: {reference:?}"
    );
    let mean = reference
        .values()
        .map(|w| w.iter().sum::<f64>() / 5.0)
        .sum::<f64>()
        / 3.0;
    assert!((v["mean_acc"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!(
        v["mean_published18"].is_null() && v["mean_standard15"].is_null(),
        "{v}"
    );
    let missing = strings(&v["missing"]);
    let want: Vec<&str> = CORRUPTIONS_19
        .iter()
        .copied()
        .filter(|n| !names.contains(n))
        .collect();
    assert_eq!(missing, want);

    // --severities 2-3: only those, each still PyTorch's.
    let v = ood(&["--severities", "2-3"], "ood23.json");
    assert_eq!(v["severities"], serde_json::json!([2, 3]));
    for c in v["corruptions"].as_array().unwrap() {
        let want = &reference[c["name"].as_str().unwrap()];
        let keys: Vec<&String> = c["by_severity"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["2", "3"]);
        assert!((c["by_severity"]["2"].as_f64().unwrap() - want[1]).abs() < 1e-9);
        assert!((c["by_severity"]["3"].as_f64().unwrap() - want[2]).abs() < 1e-9);
        assert!((c["acc"].as_f64().unwrap() - (want[1] + want[2]) / 2.0).abs() < 1e-9);
        assert_eq!(c["n"], 40);
    }

    // Failures: a bad severity list, and a folder without corruption files.
    let out = rift(&[
        "ood",
        "--checkpoint",
        path_str(&model),
        "--dataset",
        "cifar10-c",
        "--data-dir",
        path_str(&c),
        "--severities",
        "0-6",
        "--device",
        "cpu",
    ]);
    assert_clean_failure(&out, "--severities 0-6", &["0-6"]);
    let empty = t.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = rift(&[
        "ood",
        "--checkpoint",
        path_str(&model),
        "--dataset",
        "cifar10-c",
        "--data-dir",
        path_str(&empty),
        "--device",
        "cpu",
    ]);
    assert_clean_failure(&out, "ood on an empty folder", &["empty"]);
}

/// The JSON header of a .safetensors file (8-byte little-endian length, then JSON).
fn safetensors_header(p: &Path) -> Value {
    let bytes = std::fs::read(p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n])
        .unwrap_or_else(|e| panic!("{}: bad header: {e}", p.display()))
}

fn train_state_epoch(save: &Path) -> String {
    let side = PathBuf::from(format!("{}.train-state.safetensors", save.display()));
    assert!(side.is_file(), "{} missing", side.display());
    let meta = safetensors_header(&side)["__metadata__"].clone();
    meta["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("no epoch in {meta}"))
        .to_string()
}

#[test]
fn train_at_saves_its_state_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 64);
    let at = t.join("at.safetensors");
    let base = |epochs: &'static str| -> Vec<String> {
        [
            "train-at",
            "--arch",
            "resnet18",
            "--width",
            "4",
            "--dataset",
            "mnist",
            "--data-dir",
            path_str(&data),
            "--epochs",
            epochs,
            "--steps",
            "1",
            "--eps",
            "0.1",
            "--step",
            "0.1",
            "--eval-limit",
            "50",
            "--device",
            "cpu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |extra: &[&str], epochs: &'static str| -> Output {
        let mut a = base(epochs);
        a.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        rift(&refs)
    };

    let out = run(&["--save", path_str(&at)], "2");
    assert!(
        out.status.success(),
        "train-at failed:\n{}",
        stderr_of(&out)
    );
    assert!(at.is_file());
    assert_eq!(
        train_state_epoch(&at),
        "1",
        "epochs count from 0: two epochs end at 1"
    );
    // The sidecar holds a momentum buffer for every trainable tensor of the ResNet18.
    let side = safetensors_header(&PathBuf::from(format!(
        "{}.train-state.safetensors",
        at.display()
    )));
    let momentum = side
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("momentum."))
        .count();
    assert_eq!(
        momentum, 62,
        "20 conv + linear weight/bias + 20 BN weight/bias: {side}"
    );
    let before = t.join("at-epoch1.safetensors");
    std::fs::copy(&at, &before).unwrap();

    let out = run(&["--continue", path_str(&at), "--save", path_str(&at)], "3");
    let err = stderr_of(&out);
    assert!(out.status.success(), "continuing failed:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("continuing") && l.contains("from epoch 2")),
        "no `continuing … from epoch 2`:\n{err}"
    );
    assert_eq!(train_state_epoch(&at), "2");
    assert!(
        !differing_keys(&before, &at).is_empty(),
        "the third epoch changed nothing"
    );
    let n_keys: usize = run_python(PY_LOAD_STRICT, &[path_str(&at), "4", "1", "28"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        n_keys, 122,
        "ResNet18 state: 62 weights/biases + 60 BN buffers"
    );

    // A model without its sidecar cannot continue; the error names the sidecar.
    let lone = t.join("lone.safetensors");
    std::fs::copy(&before, &lone).unwrap();
    let out = run(
        &[
            "--continue",
            path_str(&lone),
            "--save",
            path_str(&t.join("next.safetensors")),
        ],
        "3",
    );
    assert_clean_failure(
        &out,
        "--continue without a sidecar",
        &["lone.safetensors.train-state.safetensors"],
    );
    assert!(!t.join("next.safetensors").exists());
}

/// A `mrc_partial.yaml` that does not parse is not silently dropped: `rift run` warns,
/// names where it kept the file (`mrc_partial.yaml.corrupt-1`, content unchanged) and
/// scores every module.
#[test]
fn a_corrupt_partial_mrc_file_is_kept_aside_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    std::fs::create_dir_all(&s).unwrap();
    let garbage = "- name: conv1\n  mrc: [0.1,\n";
    std::fs::write(s.join("mrc_partial.yaml"), garbage).unwrap();
    let out = rift(&demo_run_args(&s, &data, &[]));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("warning") && printed.contains("mrc_partial.yaml.corrupt-1"),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(s.join("mrc_partial.yaml.corrupt-1")).unwrap(),
        garbage
    );
    let session = Session::load(&s).unwrap();
    assert_eq!(session.mrc.expect("mrc").modules.len(), 5);
}
