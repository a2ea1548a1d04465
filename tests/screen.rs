//! First-order screening (`rift mrc --screen`, `rift run --screen K`; not in the paper):
//! the estimates equal an independent PyTorch computation on the very adversarial set rift
//! used; `--exact-lowest all` gives the same exact values as plain `rift mrc`, computed in
//! order of increasing estimate; bad flag combinations fail cleanly; Spearman's ρ handles
//! ties with average ranks.
mod common;

use common::{
    assert_failed, path_str, read_json, rift, rift_ok, run_python, stderr_of, tiny_mnist,
    DEMO_MODEL, EXIT_ERROR, EXIT_USAGE,
};
use rift::engine::rift::mrc::screen::{average_ranks, spearman, ExactLowest};
use rift::report::session::Session;
use serde_json::Value;
use std::collections::HashMap;

/// Gradient norms of every Conv/Linear weight of the mean cross-entropy over the saved
/// adversarial set, in one batch (rift accumulates over batches), and the one-step loss rise.
const PY_SCREEN: &str = r#"
import sys, os, json, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from reference_models import build, Normalized
from safetensors.torch import load_file
torch.set_num_threads(2)
net = build("resnet18", 10, 1, width=8, input_size=28)
net.load_state_dict(load_file(sys.argv[1]), strict=True)
model = Normalized(net, [0.1307], [0.3081]).eval()
adv = load_file(sys.argv[2])
x, y = adv["x"], adv["y"]
eps = 0.1
mods = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
for p in model.parameters():
    p.requires_grad_(False)
for _, m in mods:
    m.weight.requires_grad_(True)
loss = F.cross_entropy(model(x), y)
grads = torch.autograd.grad(loss, [m.weight for _, m in mods])
base = loss.item()
out = {}
with torch.no_grad():
    for (name, m), g in zip(mods, grads):
        w0 = m.weight.detach().clone()
        wn, gn = w0.norm(), g.norm()
        m.weight.add_(g * (eps * wn / gn))
        step = F.cross_entropy(model(x), y).item() - base
        m.weight.copy_(w0)
        out[name] = [(eps * wn * gn).item(), step]
print(json.dumps(out))
"#;

fn mrc_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
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
        "--steps",
        "5",
        "--no-random-start",
        "--device",
        "cpu",
        "--output",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn estimates_match_an_independent_pytorch_computation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("screen.json");
    let adv = dir.path().join("adv.safetensors");
    // Batches of 100 over 256 samples: the accumulation (with a short last batch) must
    // equal the one-batch gradient.
    let stdout = rift_ok(&mrc_args(
        path_str(&out),
        &[
            "--adv-limit",
            "256",
            "--screen",
            "--one-step",
            "--mrc-batch-size",
            "100",
            "--save-adv-set",
            path_str(&adv),
        ],
    ));
    assert!(
        stdout.contains("first-order estimate (not in the paper)"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing is recommended"), "{stdout}");
    let v = read_json(&out);
    assert_eq!(v["modules"].as_array().unwrap().len(), 0, "no exact MRC");
    assert_eq!(v["recommended"], "");
    assert_eq!(v["screen"]["method"], "first_order+one_step");
    assert_eq!(v["screen"]["exact_lowest"], "none");
    assert!(v["screen"].get("spearman_vs_exact").is_none());
    let est = v["estimated_only"].as_array().unwrap();
    assert_eq!(est.len(), 21);
    assert!(est.iter().all(|m| m.get("mrc").is_none()));
    let sorted: Vec<f64> = est
        .iter()
        .map(|m| m["estimate"].as_f64().unwrap())
        .collect();
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "by estimate");

    // Estimates never choose a module to fine-tune.
    let ft = rift(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--layer",
        "auto",
        "--mrc-result",
        path_str(&out),
        "--save",
        path_str(&dir.path().join("ft.safetensors")),
    ]);
    assert!(!ft.status.success());
    assert!(
        stderr_of(&ft).contains("only first-order screening estimates"),
        "{}",
        stderr_of(&ft)
    );

    let reference: HashMap<String, Vec<f64>> =
        serde_json::from_str(&run_python(PY_SCREEN, &[DEMO_MODEL, path_str(&adv)])).unwrap();
    assert_eq!(reference.len(), 21);
    for m in est {
        let name = m["name"].as_str().unwrap();
        let (e, s) = (
            m["estimate"].as_f64().unwrap(),
            m["estimate_step"].as_f64().unwrap(),
        );
        let r = &reference[name];
        assert!(
            (e - r[0]).abs() <= 1e-4 * r[0].abs(),
            "{name}: estimate {e} vs torch {}",
            r[0]
        );
        // A difference of two float32 losses: absolute slack of a few ulps of the loss.
        assert!(
            (s - r[1]).abs() <= 1e-4 * r[1].abs() + 2e-6,
            "{name}: one-step {s} vs torch {}",
            r[1]
        );
    }
}

#[test]
fn exact_lowest_all_equals_plain_mrc() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let shared = ["--adv-limit", "64", "--mrc-epochs", "2", "--fast"];
    rift_ok(&mrc_args(path_str(&p("plain.json")), &shared));
    let all_args = [&shared[..], &["--screen", "--exact-lowest", "all"]].concat();
    let out = rift(&mrc_args(path_str(&p("all.json")), &all_args));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let k2_args = [&shared[..], &["--screen", "--exact-lowest", "2"]].concat();
    rift_ok(&mrc_args(path_str(&p("k2.json")), &k2_args));
    let (plain, all, k2) = (
        read_json(&p("plain.json")),
        read_json(&p("all.json")),
        read_json(&p("k2.json")),
    );
    let by_name = |v: &Value| -> HashMap<String, Value> {
        v["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
            .collect()
    };
    let (pm, am) = (by_name(&plain), by_name(&all));
    assert_eq!(pm.len(), 21);
    assert_eq!(am.len(), 21);
    for (name, m) in &pm {
        let a = &am[name];
        for key in ["mrc", "robust_acc_drop", "epoch_losses", "epoch_accs"] {
            assert_eq!(m[key], a[key], "{name}: {key} differs");
        }
        assert!(m.get("estimate").is_none() && a["estimate"].is_number());
    }
    assert_eq!(plain["recommended"], all["recommended"]);
    assert_eq!(plain["baseline_loss"], all["baseline_loss"]);
    let sc = &all["screen"];
    let rho = sc["spearman_vs_exact"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&rho));
    assert!(sc["lowest_matches"].is_boolean());
    assert!(all.get("estimated_only").is_none(), "every module is exact");

    // Exact work ran lowest estimate first.
    let err = stderr_of(&out);
    let order: Vec<f64> = err
        .lines()
        .filter_map(|l| l.split("(estimate was ").nth(1))
        .map(|s| s.trim_end_matches(')').parse().unwrap())
        .collect();
    assert_eq!(order.len(), 21, "{err}");
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");

    // K = 2: the two lowest estimates, exact, the same values; the rest estimated only.
    let km = by_name(&k2);
    assert_eq!(km.len(), 2);
    let est_only = k2["estimated_only"].as_array().unwrap();
    assert_eq!(est_only.len(), 19);
    let max_exact_est = km
        .values()
        .map(|m| m["estimate"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!(est_only
        .iter()
        .all(|m| m["estimate"].as_f64().unwrap() >= max_exact_est));
    for (name, m) in &km {
        assert_eq!(m["mrc"], pm[name]["mrc"], "{name}");
    }
    assert_eq!(k2["recommended"], k2["modules"][0]["name"]);
    assert!(k2["screen"].get("spearman_vs_exact").is_none());
}

#[test]
fn bad_screening_flags_fail_cleanly() {
    let base = [
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--device",
        "cpu",
    ];
    let with = |cmd: &str, extra: &[&str]| -> Vec<String> {
        std::iter::once(cmd)
            .chain(base)
            .chain(extra.iter().copied())
            .map(String::from)
            .collect()
    };
    // Combinations are checked by rift (status 1); values by clap's typed parsers (2).
    let cases: Vec<(Vec<String>, Vec<&str>, i32)> = vec![
        (
            with("mrc", &["--exact-lowest", "3"]),
            vec!["--exact-lowest", "--screen"],
            EXIT_ERROR,
        ),
        (
            with("mrc", &["--one-step"]),
            vec!["--one-step", "--screen"],
            EXIT_ERROR,
        ),
        (
            with("mrc", &["--screen", "--exact-lowest", "0"]),
            vec!["at least 1"],
            EXIT_USAGE,
        ),
        (
            with("mrc", &["--screen", "--exact-lowest", "three"]),
            vec!["three", "all"],
            EXIT_USAGE,
        ),
        (
            with("run", &["--session", "/nonexistent/s", "--screen", "0"]),
            vec!["at least 1"],
            EXIT_USAGE,
        ),
        (
            with("run", &["--session", "/nonexistent/s", "--screen=-2"]),
            vec!["-2", "neither a number"],
            EXIT_USAGE,
        ),
    ];
    for (args, mention, code) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        eprintln!("checking that rift {refs:?} fails cleanly");
        assert_failed(&rift(&refs), code, &mention);
    }
}

#[test]
fn run_with_screen_measures_only_the_lowest_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_mnist(dir.path(), 128, 128);
    let s = dir.path().join("s");
    rift_ok(&[
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--session",
        path_str(&s),
        "--limit",
        "64",
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
        "--fast",
        "--screen",
        "2",
        "--epochs",
        "1",
        "--alphas",
        "0,1",
        "--device",
        "cpu",
    ]);
    let sess = Session::load(&s).unwrap();
    assert_eq!(sess.settings.mrc_screen.as_deref(), Some("2"));
    let mrc = sess.mrc.as_ref().unwrap();
    assert_eq!(mrc.modules.len(), 2);
    assert_eq!(mrc.estimated_only.len(), 19);
    assert!(mrc.modules.iter().all(|m| m.estimate.is_some()));
    assert_eq!(mrc.recommended, mrc.modules[0].name);
    let ft = sess.finetune.as_ref().unwrap();
    assert_eq!(ft.layers, vec![mrc.recommended.clone()]);
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(report.contains("### First-order screening (not in the paper)"));
    assert!(report.contains("estimate only"));
    for f in ["mrc_screen.png", "mrc_screen.svg"] {
        assert!(s.join(f).exists(), "{f} missing");
    }
    // session.yaml still loads as plain YAML with the new fields, and an old file (without
    // them) loads too.
    let text = std::fs::read_to_string(s.join("session.yaml")).unwrap();
    assert!(text.contains("estimated_only:") && text.contains("mrc_screen: '2'"));
    let old: String = text
        .lines()
        .filter(|l| !l.contains("mrc_screen"))
        .collect::<Vec<_>>()
        .join("\n");
    let old_dir = dir.path().join("old");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("session.yaml"), old).unwrap();
    assert!(Session::load(&old_dir)
        .unwrap()
        .settings
        .mrc_screen
        .is_none());
}

#[test]
fn spearman_uses_average_ranks_for_ties() {
    assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
    assert_eq!(
        average_ranks(&[1.0, 2.0, 2.0, 3.0]),
        vec![1.0, 2.5, 2.5, 4.0]
    );
    assert_eq!(average_ranks(&[5.0, 5.0, 5.0]), vec![2.0, 2.0, 2.0]);
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
    assert!(close(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0));
    assert!(close(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
    // Monotone, not linear: still 1.
    assert!(close(
        spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]),
        1.0
    ));
    // Ties: ranks [1, 2.5, 2.5, 4] vs [1, 3, 2, 4] → 4.5 / √(4.5 · 5).
    assert!(close(
        spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]),
        4.5 / (4.5f64 * 5.0).sqrt()
    ));
    assert_eq!(spearman(&[1.0], &[2.0]), None);
    assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
    assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    assert_eq!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), None);
}

#[test]
fn exact_lowest_parses_k_or_all() {
    assert_eq!(ExactLowest::parse("3"), Ok(ExactLowest::Count(3)));
    assert_eq!(ExactLowest::parse("ALL"), Ok(ExactLowest::All));
    assert!(ExactLowest::parse("0").is_err());
    assert!(ExactLowest::parse("x").is_err());
    assert_eq!(ExactLowest::Count(50).count(21), 21);
    assert_eq!(ExactLowest::None.count(21), 0);
}
