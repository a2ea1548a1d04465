//! α selection by search (`--search`, issue 5) on the bundled demo (a real MNIST AT model):
//! it picks the α of the full 11-point grid (within 0.05) for at most a third of the grid's
//! attack work, decides on full-set numbers only and keeps screened-only α apart; bad
//! search flags fail with one clear paragraph. A fine-tuned model is made by `rift finetune`
//! (2 epochs on 2000 demo digits), the sweep uses 1000 test digits and PGD-2.
mod common;

use common::{
    assert_failed, path_str, read_json, rift, rift_ok, tiny_mnist, DEMO_MODEL, EXIT_ERROR,
    EXIT_USAGE,
};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn interpolate_args<'a>(ft: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "interpolate",
        "--checkpoint",
        DEMO_MODEL,
        "--finetuned",
        ft,
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--limit",
        "1000",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--output",
        out,
    ]
}

#[test]
fn search_picks_the_grid_alpha_for_a_third_of_the_attack_work() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 2000, 1000);
    let ft = t.join("ft.safetensors");
    rift_ok(&[
        "finetune",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(&data),
        "--layer",
        "layer2.1.conv2",
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--limit",
        "200",
        "--save",
        path_str(&ft),
        "--device",
        "cpu",
    ]);
    let (grid_json, search_json) = (t.join("grid.json"), t.join("search.json"));
    rift_ok(&interpolate_args(
        path_str(&ft),
        path_str(&data),
        path_str(&grid_json),
    ));
    let mut args = interpolate_args(path_str(&ft), path_str(&data), path_str(&search_json));
    args.push("--search");
    let stdout = rift_ok(&args);
    let grid = read_json(&grid_json);
    let search = read_json(&search_json);

    // The grid over two devices (two CPU threads here) equals the single-device grid to
    // the last digit: random starts are keyed by sample, not by thread.
    let multi_json = t.join("multi.json");
    let mut multi = interpolate_args(path_str(&ft), path_str(&data), path_str(&multi_json));
    multi.extend(["--devices", "cpu,cpu"]);
    rift_ok(&multi);
    let multi = read_json(&multi_json);
    assert_eq!(multi["points"], grid["points"]);
    assert_eq!(multi["chosen_alpha"], grid["chosen_alpha"]);

    // The grid's result is as before: no search record.
    assert!(grid.get("search").is_none(), "{grid}");
    assert_eq!(grid["points"].as_array().unwrap().len(), 11);

    // Same choice within 0.05, at most a third of the grid's attack work.
    let (a_grid, a_search) = (f(&grid["chosen_alpha"]), f(&search["chosen_alpha"]));
    assert!(
        (a_grid - a_search).abs() <= 0.05 + 1e-9,
        "grid chose {a_grid}, search {a_search}\n{stdout}"
    );
    let s = &search["search"];
    let (work, grid_work) = (f(&s["attacked_samples"]), f(&s["grid_attacked_samples"]));
    assert_eq!(grid_work, 11.0 * 1000.0);
    assert!(work * 3.0 <= grid_work, "{work} of {grid_work}\n{stdout}");
    assert!((f(&s["work_ratio"]) - work / grid_work).abs() < 1e-9);
    assert!(
        stdout.contains("attack work:") && stdout.contains("<- chosen"),
        "{stdout}"
    );

    // The rule saw full-set points only: α = 0 and the chosen α among them, every one on
    // all 1000 samples with its interval around it; screened-only α are apart.
    let full_n = 1000.0;
    let points = search["points"].as_array().unwrap();
    let alphas: Vec<f64> = points.iter().map(|p| f(&p["alpha"])).collect();
    assert!(
        alphas.contains(&0.0) && alphas.contains(&a_search),
        "{alphas:?}"
    );
    assert!(points.iter().all(|p| f(&p["n"]) == full_n));
    for p in s["full"].as_array().unwrap() {
        assert_eq!((f(&p["clean_n"]), f(&p["robust_n"])), (full_n, full_n));
        for (acc, ci) in [("clean_acc", "clean_ci"), ("robust_acc", "robust_ci")] {
            let (lo, hi) = (f(&p[ci][0]), f(&p[ci][1]));
            assert!(lo <= f(&p[acc]) && f(&p[acc]) <= hi && hi - lo < 5.0, "{p}");
        }
    }
    let only: Vec<f64> = s["screened_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(f)
        .collect();
    assert!(!only.is_empty() && !only.contains(&0.0) && !only.contains(&a_search));
    let subset_n = f(&s["subset_n"]);
    assert!(subset_n >= 50.0 && subset_n < full_n, "{subset_n}");
    for p in s["screened"].as_array().unwrap() {
        assert_eq!(
            (f(&p["clean_n"]), f(&p["robust_n"])),
            (full_n, subset_n),
            "{p}"
        );
    }
    for a in &only {
        assert!(
            !alphas.contains(a),
            "screened-only α {a} among the deciding points"
        );
    }
    // Every screened α against α = 0 on the same samples, with a verdict; the chosen one
    // complete (a point interval), rejected ones with intervals wholly below -tolerance
    // at the decision level (so at 95 % too).
    let paired = s["paired"].as_array().unwrap();
    assert_eq!(paired.len(), 10, "{s}");
    for p in paired {
        let (d, lo, hi) = (f(&p["diff"]), f(&p["ci"][0]), f(&p["ci"][1]));
        assert!(lo <= d && d <= hi, "{p}");
        let verdict = p["verdict"].as_str().unwrap();
        if f(&p["alpha"]) == a_search {
            assert_eq!(
                (verdict, f(&p["samples"]), lo, hi),
                ("chosen", full_n, d, d)
            );
        } else if verdict.starts_with("rejected") {
            assert!(hi < -0.1, "{p}");
        }
    }
    assert_eq!(f(&s["decision_confidence"]), 0.99);
    // Clean accuracy needs no attack: the search has it on the full set for every α, and
    // it equals the grid's (same samples, no randomness).
    for g in grid["points"].as_array().unwrap() {
        let a = f(&g["alpha"]);
        let sp = s["screened"]
            .as_array()
            .unwrap()
            .iter()
            .chain(s["full"].as_array().unwrap())
            .find(|p| f(&p["alpha"]) == a)
            .unwrap_or_else(|| panic!("α {a} not in the search"));
        assert!(
            (f(&sp["clean_acc"]) - f(&g["clean_acc"])).abs() < 1e-9,
            "α {a}"
        );
    }
}

#[test]
fn bad_search_flags_fail_clearly() {
    // (flags, text stderr must hold, exit status: 2 where clap refuses the line)
    let cases: [(&[&str], &str, i32); 5] = [
        (
            &["--search", "--search-subset", "0"],
            "is not a subset size",
            EXIT_ERROR,
        ),
        (
            &["--search", "--search-subset", "1.5"],
            "is not a subset size",
            EXIT_ERROR,
        ),
        (
            &["--search", "--search-budget", "1.5"],
            "--search-budget",
            EXIT_ERROR,
        ),
        (&["--search-subset", "0.1"], "--search", EXIT_USAGE),
        (
            &["--search", "--devices", "cpu,cpu"],
            "--devices",
            EXIT_ERROR,
        ),
    ];
    for (extra, needle, code) in cases {
        let mut args = interpolate_args("missing-ft.safetensors", "missing-data", "x.json");
        args.extend_from_slice(extra);
        assert_failed(&rift(&args), code, &[needle]);
    }
}
