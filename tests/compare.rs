//! `rift compare` on the demo model: the shared AT point, what each candidate trains
//! (checked by PyTorch reading the written weights), seeded random candidates, the
//! exports against compare.yaml, resumption without refitting, and bad lists refused
//! before any compute.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODULES: &str = "conv1,layer1.0.conv1,layer2.0.shortcut.0,layer3.1.conv2,linear";

fn compare_args(session: &Path, data: &Path, candidates: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "compare",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        path_str(data),
        "--session",
        path_str(session),
        "--candidates",
        candidates,
        "--limit",
        "96",
        "--adv-limit",
        "64",
        "--steps",
        "2",
        "--eps",
        "0.2",
        "--step",
        "0.1",
        "--modules",
        MODULES,
        "--mrc-epochs",
        "2",
        "--epochs",
        "1",
        "--lr",
        "0.05",
        "--alphas",
        "0,0.5,1",
        "--refine",
        "0",
        "--tolerance",
        "5",
        "--device",
        "cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// PyTorch's view of the weights: the demo model's parameter count (state entries that are
/// not BatchNorm statistics) and, per fine-tuned file, which parameters differ from AT.
fn changed_parameters(files: &[PathBuf]) -> Value {
    let script = r#"
import sys, json
import torch
from safetensors.torch import load_file
at = load_file(sys.argv[1])
stats = ("running_mean", "running_var", "num_batches_tracked")
params = [k for k in at if not k.endswith(stats)]
out = {"params": sum(at[k].numel() for k in params), "param_keys": sorted(params), "changed": {}}
for path in sys.argv[2:]:
    ft = load_file(path)
    out["changed"][path] = sorted(k for k in params if not torch.equal(at[k], ft[k]))
print(json.dumps(out))
"#;
    let mut args: Vec<&str> = vec![DEMO_MODEL];
    args.extend(files.iter().map(|p| path_str(p)));
    serde_json::from_str(run_python(script, &args).trim()).unwrap()
}

#[test]
fn compare_runs_every_default_candidate_on_the_demo_model() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 256, 96);
    let s = t.join("cmp");
    let (csv, tex) = (t.join("table.csv"), t.join("table.tex"));
    let args = compare_args(
        &s,
        &data,
        "rift,highest,last,all,lowest:3,random",
        &["--csv", path_str(&csv), "--latex", path_str(&tex)],
    );
    let out = rift_ok(&args);
    assert!(out.contains("candidate"), "{out}");

    let cmp = yaml(&s.join("compare.yaml"));
    let shared = yaml(&s.join("session.yaml"));
    let (at_clean, at_robust) = (f(&cmp["at"]["clean"]), f(&cmp["at"]["robust"]));
    assert_eq!(at_clean, f(&shared["baseline"]["clean_acc"]));
    assert_eq!(at_robust, f(&shared["baseline"]["robust_acc"]));
    let rows = cmp["candidates"].as_array().unwrap();
    let labels: Vec<&str> = rows
        .iter()
        .map(|r| r["candidate"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["rift", "highest", "last", "all", "lowest:3", "random"]
    );

    // MRC ranks: rift = lowest, highest = highest, lowest:3 = the three lowest.
    let ranked: Vec<&str> = shared["mrc"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let modules_of = |i: usize| -> Vec<&str> {
        rows[i]["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect()
    };
    assert_eq!(modules_of(0), [ranked[0]]);
    assert_eq!(modules_of(1), [ranked[ranked.len() - 1]]);
    assert_eq!(modules_of(2), ["linear"]);
    assert_eq!(modules_of(4), ranked[..3].to_vec());

    for r in rows {
        let name = r["candidate"].as_str().unwrap();
        // The α = 0 point of every candidate is the AT model, exactly.
        let points = r["points"].as_array().unwrap();
        let zero = points.iter().find(|p| f(&p["alpha"]) == 0.0).unwrap();
        assert_eq!(f(&zero["clean_acc"]), at_clean, "{name}");
        assert_eq!(f(&zero["robust_acc"]), at_robust, "{name}");
        // The paired evaluation at the chosen α reproduces that α's sweep point.
        let alpha = f(&r["chosen_alpha"]);
        let chosen = points.iter().find(|p| f(&p["alpha"]) == alpha).unwrap();
        assert_eq!(f(&r["clean"]["value"]), f(&chosen["clean_acc"]), "{name}");
        assert_eq!(f(&r["robust"]["value"]), f(&chosen["robust_acc"]), "{name}");
        for q in ["clean", "robust"] {
            let c = &r[q];
            assert!(
                (f(&c["value"]) - f(&cmp["at"][q]) - f(&c["change"])).abs() < 1e-9,
                "{name} {q}"
            );
            let ci = c["ci95"].as_array().unwrap();
            assert!(f(&ci[0]) <= f(&c["change"]) && f(&c["change"]) <= f(&ci[1]));
        }
        // Each candidate is a complete session of its own.
        let cs = yaml(&s.join(r["session"].as_str().unwrap()).join("session.yaml"));
        assert_eq!(f(&cs["interpolation"]["chosen_alpha"]), alpha, "{name}");
    }

    // What each candidate trained, as PyTorch sees the written weights.
    let ft = |label: &str| {
        s.join("candidates")
            .join(label)
            .join("finetuned.safetensors")
    };
    let torch = changed_parameters(&[ft("all"), ft("last"), ft("rift")]);
    let param_keys: Vec<&str> = torch["param_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let changed = |label: &str| -> Vec<String> {
        torch["changed"][path_str(&ft(label))]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(changed("all"), param_keys, "`all` trains every parameter");
    assert_eq!(rows[3]["trained_params"].as_i64(), torch["params"].as_i64());
    assert_eq!(changed("last"), ["linear.bias", "linear.weight"]);
    let own: Vec<String> = param_keys
        .iter()
        .filter(|k| k.starts_with(&format!("{}.", ranked[0])))
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        changed("rift"),
        own,
        "rift trains its module and nothing else"
    );

    // random: the same module for the same seed, in another comparison too.
    let s2 = t.join("cmp2");
    rift_ok(&compare_args(&s2, &data, "random:0", &[]));
    let again = yaml(&s2.join("compare.yaml"));
    assert_eq!(again["candidates"][0]["modules"], rows[5]["modules"]);
    assert_eq!(rows[5]["seed"].as_u64(), Some(0));

    // CSV: the same numbers as compare.yaml, at full precision.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let body: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(body[0][0], "at");
    assert_eq!(body[0][col("clean")].parse::<f64>().unwrap(), at_clean);
    for (r, line) in rows.iter().zip(&body[1..]) {
        assert_eq!(line[0], r["candidate"].as_str().unwrap());
        assert_eq!(
            line[col("trained_params")].parse::<i64>().unwrap(),
            r["trained_params"].as_i64().unwrap()
        );
        assert_eq!(
            line[col("chosen_alpha")].parse::<f64>().unwrap(),
            f(&r["chosen_alpha"])
        );
        for q in ["clean", "robust"] {
            assert_eq!(line[col(q)].parse::<f64>().unwrap(), f(&r[q]["value"]));
            assert_eq!(
                line[col(&format!("{q}_change"))].parse::<f64>().unwrap(),
                f(&r[q]["change"])
            );
            assert_eq!(
                line[col(&format!("{q}_ci_low"))].parse::<f64>().unwrap(),
                f(&r[q]["ci95"][0])
            );
        }
    }
    // LaTeX: each candidate's row carries its values as papers print them.
    let latex = std::fs::read_to_string(&tex).unwrap();
    assert!(latex.contains("\\begin{tabular}") && latex.contains("\\bottomrule"));
    for r in rows {
        let cell = format!(
            "{:.2} ({:+.2} [{:+.2}, {:+.2}])",
            f(&r["robust"]["value"]),
            f(&r["robust"]["change"]),
            f(&r["robust"]["ci95"][0]),
            f(&r["robust"]["ci95"][1])
        );
        let row = latex
            .lines()
            .find(|l| l.starts_with(&r["candidate"].as_str().unwrap().replace('_', "\\_")))
            .unwrap_or_else(|| panic!("no LaTeX row for {}", r["candidate"]));
        assert!(row.contains(&cell), "{row} lacks {cell}");
    }
    // The report's table and the trade-off figure.
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(report.contains("## Candidates compared"));
    for ext in ["png", "svg"] {
        assert!(
            std::fs::metadata(s.join(format!("compare.{ext}")))
                .unwrap()
                .len()
                > 1000
        );
    }
}

#[test]
fn a_killed_compare_resumes_without_refitting_finished_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 256, 96);
    let s = t.join("cmp");
    let mut args = compare_args(&s, &data, "last,all", &[]);
    // A finer grid, so the second candidate is still running when the first is done.
    let i = args.iter().position(|a| a == "--alphas").unwrap();
    args[i + 1] = "0,0.25,0.5,0.75,1".into();
    let mut child = Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = s.join("candidates/last/candidate.yaml");
    let start = Instant::now();
    while !first.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the first candidate never finished"
        );
        assert!(child.try_wait().unwrap().is_none(), "compare exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !s.join("candidates/all/candidate.yaml").exists(),
        "the kill came after the second candidate finished: nothing left to resume"
    );
    let weights = s.join("candidates/last/finetuned.safetensors");
    let before = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let row_before = yaml(&first);

    let out = rift(&args);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("candidate last is finished"), "{err}");
    assert!(
        !err.contains("1/2 last"),
        "the finished candidate started again:\n{err}"
    );
    assert!(err.contains("2/2 all"), "{err}");
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        before
    );
    let cmp = yaml(&s.join("compare.yaml"));
    assert_eq!(cmp["candidates"][0], row_before);
    assert_eq!(cmp["candidates"][1]["candidate"].as_str(), Some("all"));
}

#[test]
fn bad_candidate_lists_are_refused_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 16, 16);
    let s = t.join("cmp");
    let run = |candidates: &str, extra: &[&str]| rift(&compare_args(&s, &data, candidates, extra));
    assert_failed(&run("lowest:0", &[]), EXIT_USAGE, &["lowest:K"]);
    assert_failed(&run("rift,rift", &[]), EXIT_USAGE, &["twice"]);
    assert_failed(
        &run("rift,layer9.conv", &[]),
        EXIT_ERROR,
        &["layer9.conv", "not a candidate keyword", "layer1.0.conv1"],
    );
    assert_failed(
        &run("lowest:6", &[]),
        EXIT_ERROR,
        &["lowest:6", "MRC scores only 5"],
    );
    assert_failed(
        &run("rift", &["--layer", "conv1"]),
        EXIT_ERROR,
        &["--candidates"],
    );
    assert_failed(&run("rift", &["--screen", "2"]), EXIT_ERROR, &["--screen"]);
    // Nothing was computed: no session file, no baseline.
    assert!(!s.join("session.yaml").exists());
}
