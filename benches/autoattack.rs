//! Standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square; published budgets) through rift
//! versus pyautoattack 0.2.0 on the same model, samples, ε and device, in one run: the
//! bundled demo model (MNIST AT ResNet18-w8) at ε = 0.2 (at 0.3 robust accuracy is 0 %) on
//! the first `RIFT_BENCH_AA_N` digits (default 100: about 12 minutes for both sides on 2
//! idle cores, so `make bench` runs end to end in one sitting). Prints the speed ratio
//! (pyautoattack seconds / rift seconds,
//! attacks only, model loading excluded on both sides) and both robust accuracies; the
//! summary line and the exit status say whether the ≥ 1.0 target is met.
mod common;

use common::{env_usize, python};
use serde_json::Value;
use std::process::{Command, ExitCode};

const DEMO: &str = "assets/demo/mnist_at_resnet18w8.safetensors";
const EPS: &str = "0.2";
const TARGET: f64 = 1.0;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn main() -> ExitCode {
    let n = env_usize("RIFT_BENCH_AA_N", 100).to_string();
    let threads = env_usize("RIFT_THREADS", 2).to_string();
    let budgets =
        std::env::var("RIFT_BENCH_AA_BUDGETS").unwrap_or_else(|_| "100 9 100 5000".into());
    let b: Vec<&str> = budgets.split_whitespace().collect();
    let mut py_args = vec![
        "tests/py/autoattack_ref.py",
        "aa",
        DEMO,
        "assets/demo",
        &n,
        EPS,
        "autoattack",
    ];
    py_args.extend(&b);
    let out = Command::new(python())
        .args(&py_args)
        .env("RIFT_THREADS", &threads)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "pyautoattack failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let py: Value = serde_json::from_str(text.lines().last().unwrap_or("")).expect("json");
    let py = &py["autoattack"];

    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("aa.json");
    let mut args = vec![
        "eval",
        "--checkpoint",
        DEMO,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--attack",
        "autoattack",
        "--eps",
        EPS,
        "--limit",
        &n,
        "--batch-size",
        "500",
        "--threads",
        &threads,
        "--device",
        "cpu",
        "--output",
        json.to_str().expect("utf-8 path"),
    ];
    let flags = [
        "--apgd-iters",
        "--targets",
        "--fab-iters",
        "--square-queries",
    ];
    for (flag, v) in flags.iter().zip(&b) {
        args.push(flag);
        args.push(v);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(&args)
        .output()
        .expect("rift");
    assert!(
        out.status.success(),
        "rift failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("rift output")).expect("json");
    let aa = &ours["autoattack"];

    println!("\nstandard AutoAttack, demo MNIST AT ResNet18-w8, eps {EPS}, {n} digits, cpu, {threads} threads, budgets {budgets}");
    println!(
        "{:<14} {:>9} {:>9} {:>10}",
        "", "seconds", "clean %", "robust %"
    );
    println!(
        "{:<14} {:>9.1} {:>9.2} {:>10.2}",
        "pyautoattack",
        f(&py["seconds"]),
        f(&py["clean"]),
        f(&py["final"])
    );
    println!(
        "{:<14} {:>9.1} {:>9.2} {:>10.2}",
        "rift",
        f(&aa["seconds"]),
        f(&aa["clean_acc"]),
        f(&aa["robust_acc"])
    );
    for step in aa["attacks"].as_array().into_iter().flatten() {
        let name = step["attack"].as_str().unwrap_or("?");
        println!(
            "  after {name:<8} rift {:>6.2}%  pyautoattack {:>6.2}%  (rift {:.1} s on {} points)",
            f(&step["robust_acc"]),
            f(&py["robust"][name]),
            f(&step["seconds"]),
            step["evaluated"]
        );
    }
    let ratio = f(&py["seconds"]) / f(&aa["seconds"]);
    let met = ratio >= TARGET;
    println!(
        "autoattack speed: rift {ratio:.2}× pyautoattack (target ≥ {TARGET:.1}×): {}",
        if met { "met" } else { "MISSED" }
    );
    if met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
