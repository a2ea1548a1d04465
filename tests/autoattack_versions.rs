//! `rift eval --attack autoattack --version standard|plus|rand`: each version runs the
//! reference's attacks in the reference's order with its budgets (pyautoattack 0.2.0's
//! `_set_version`), records them in the output, and refuses to be combined with a list.
//! Tiny budgets on a few demo digits: this checks the plumbing; the attacks themselves are
//! compared with pyautoattack in tests/autoattack.rs and tests/autoattack_l2.rs.
mod common;

use common::{assert_failed, demo_args, path_str, rift_bin, EXIT_ERROR};
use std::process::{Command, Output};

fn run(extra: &[&str]) -> Output {
    let mut args = demo_args(
        "eval",
        &[
            "--limit",
            "6",
            "--batch-size",
            "6",
            "--eps",
            "0.1",
            "--apgd-iters",
            "3",
            "--targets",
            "2",
            "--fab-iters",
            "3",
            "--square-queries",
            "5",
        ],
    );
    args.extend_from_slice(extra);
    Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "2")
        .output()
        .unwrap()
}

fn version(name: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.json");
    let o = run(&[
        "--attack",
        "autoattack",
        "--version",
        name,
        "--output",
        path_str(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr_of(&o));
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

#[test]
fn versions_run_the_reference_attacks_with_its_budgets() {
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["autoattack"]["attacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["attack"].as_str().unwrap().to_string())
            .collect()
    };
    let plus = version("plus");
    let cfg = &plus["attack"]["autoattack"];
    assert_eq!(cfg["version"], "plus");
    assert_eq!(
        names(&plus),
        ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
    );
    assert_eq!(
        (cfg["apgd_restarts"].as_u64(), cfg["fab_restarts"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(plus["attack"]["name"], "autoattack-plus");
    let rand = version("rand");
    assert_eq!(names(&rand), ["apgd-ce", "apgd-dlr"]);
    assert_eq!(rand["attack"]["autoattack"]["eot_iter"], 20);
    let standard = version("standard");
    assert_eq!(names(&standard), ["apgd-ce", "apgd-t", "fab-t", "square"]);
    assert_eq!(standard["attack"]["autoattack"]["eot_iter"], 1);
    // Per point: robust flags and the attack that broke each point.
    let per = &plus["per_sample"];
    assert_eq!(per["robust"].as_array().unwrap().len(), 6);
    assert_eq!(per["broken_by"].as_array().unwrap().len(), 6);
}

#[test]
fn a_version_with_a_list_of_attacks_is_refused() {
    assert_failed(
        &run(&["--attack", "apgd-ce,square", "--version", "plus"]),
        EXIT_ERROR,
        &["--version plus", "--attack autoattack"],
    );
    assert_failed(
        &run(&["--attack", "autoattack", "--version", "fast"]),
        2,
        &["standard, plus or rand"],
    );
}
