//! `cargo bench --bench alpha_search`: α selection by the full 11-point grid against
//! `--search` (issue 5: same α within 0.05 for at most a third of the attack work), side by
//! side through the `rift` binary on the bundled demo (the MNIST AT ResNet18-w8, fine-tuned
//! here on `layer2.1.conv2` for 2 epochs), PGD-10 on `RIFT_BENCH_N` test digits (default
//! 1000, all the demo holds). Prints wall time, attack work and chosen α of both, and whether they agree.
mod common;

use common::{python, Scorecard};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const DEMO: &str = "assets/demo/mnist_at_resnet18w8.safetensors";

/// The shared tiny-MNIST writer (`tests/py/mnist_idx.py`): its IDX headers count exactly
/// the digits written, and it refuses more digits than the demo split holds.
const TINY_MNIST: &str = r#"
import sys, os
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "py"))
from mnist_idx import write_tiny_mnist
write_tiny_mnist(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
"#;

fn rift(args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rift"))
        .args(args)
        .output()
        .expect("rift binary");
    assert!(
        out.status.success(),
        "rift {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("result")).expect("json")
}

fn main() -> std::process::ExitCode {
    let mut card = Scorecard::new("alpha_search");
    // The demo's test split holds 1000 digits; more is refused by the fixture writer.
    let n = common::env_usize("RIFT_BENCH_N", 1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path();
    let data = t.join("mnist");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let st = Command::new(python())
        .args(["-c", TINY_MNIST, &s(&data), "2000", &n.to_string()])
        .status()
        .expect("python");
    assert!(
        st.success(),
        "writing the tiny MNIST copy failed (RIFT_BENCH_N ≤ 1000)"
    );
    let ft = t.join("ft.safetensors");
    let (d, f) = (s(&data), s(&ft));
    rift(&[
        "finetune",
        "--checkpoint",
        DEMO,
        "--dataset",
        "mnist",
        "--data-dir",
        &d,
        "--layer",
        "layer2.1.conv2",
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--limit",
        "200",
        "--save",
        &f,
        "--device",
        "cpu",
    ]);
    let n_s = n.to_string();
    let run = |out: &Path, extra: &[&str]| {
        let o = s(out);
        let mut a = vec![
            "interpolate",
            "--checkpoint",
            DEMO,
            "--finetuned",
            &f,
            "--dataset",
            "mnist",
            "--data-dir",
            &d,
            "--limit",
            &n_s,
            "--eps",
            "0.2",
            "--step",
            "0.05",
            "--steps",
            "10",
            "--device",
            "cpu",
            "--output",
            &o,
        ];
        a.extend_from_slice(extra);
        let secs = rift(&a);
        (secs, json(out))
    };
    let (g_secs, g) = run(&t.join("grid.json"), &[]);
    let (s_secs, r) = run(&t.join("search.json"), &["--search"]);
    let sr = &r["search"];
    let ga = g["chosen_alpha"].as_f64().unwrap_or(f64::NAN);
    let sa = r["chosen_alpha"].as_f64().unwrap_or(f64::NAN);
    let grid_work = sr["grid_attacked_samples"].as_u64().unwrap_or(0);
    let work = sr["attacked_samples"].as_u64().unwrap_or(0);
    let work_ratio = sr["work_ratio"].as_f64().unwrap_or(f64::NAN);
    println!("α selection on the demo: {n} test digits, PGD-10 (ε 0.2, step 0.05), grid 0:1:0.1");
    println!(
        "{:<8} {:>9} {:>14} {:>9}",
        "", "wall s", "attacked", "chosen α"
    );
    println!("{:<8} {:>9.1} {:>14} {:>9}", "grid", g_secs, grid_work, ga);
    println!("{:<8} {:>9.1} {:>14} {:>9}", "search", s_secs, work, sa);
    println!(
        "work ratio {:.3} (target ≤ 0.333: {}), wall ratio {:.3}; subset {} samples; full set for {}; agree (|Δα| ≤ 0.05): {}",
        work_ratio,
        card.target("work ratio ≤ 0.333", work_ratio <= 0.333),
        s_secs / g_secs,
        sr["subset_n"],
        sr["full"]
            .as_array()
            .map(|v| v.iter().map(|p| p["alpha"].to_string()).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        card.target("same α within 0.05", (ga - sa).abs() <= 0.05 + 1e-9)
    );
    card.finish()
}
