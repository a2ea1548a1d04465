//! `rift run --final-eval autoattack|LIST` (issue 12) on the bundled demo model: a session
//! that finished without it runs only the final evaluation when continued with it; the AT
//! model's numbers equal `rift eval --attack autoattack` on the same samples and flags and
//! the chosen model's equal `rift eval` of the written chosen weights (rift's eval is
//! checked against pyautoattack in tests/autoattack.rs); the difference and its paired
//! interval in session.yaml equal a recomputation (in Python, from the per-sample
//! verdicts of both `rift eval` runs); a finished final evaluation is not redone; bad
//! flags fail before any compute.
//!
//! Budgets are far below the published ones (APGD 5 iterations, 2 targets, FAB 5
//! iterations, Square 30 queries, 24 samples): the test checks the plumbing and the
//! agreement between the two paths, not AutoAttack's strength.
mod common;

use common::{
    assert_failed, path_str, rift, rift_ok, run_python, stderr_of, tiny_mnist, DEMO_MODEL,
    EXIT_ERROR, EXIT_USAGE,
};
use serde_json::Value;
use std::path::Path;

const BUDGETS: [&str; 8] = [
    "--apgd-iters",
    "5",
    "--targets",
    "2",
    "--fab-iters",
    "5",
    "--square-queries",
    "30",
];
const FINAL_N: &str = "24";

fn run_args(session: &str, data: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<&str> = vec![
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--session",
        session,
        "--limit",
        "256",
        "--adv-limit",
        "32",
        "--steps",
        "2",
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--modules",
        "linear",
        "--mrc-epochs",
        "1",
        "--layer",
        "linear",
        "--lr",
        "0.05",
        "--epochs",
        "1",
        "--alphas",
        "0,0.5",
        "--device",
        "cpu",
    ];
    v.extend_from_slice(extra);
    v.into_iter().map(str::to_string).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn final_args() -> Vec<&'static str> {
    let mut v = vec!["--final-eval", "autoattack", "--final-limit", FINAL_N];
    v.extend_from_slice(&BUDGETS);
    v
}

/// `rift eval --attack autoattack` of `checkpoint` with the run's flags; returns its output
/// and the robust sample indices its state file records.
fn eval_autoattack(checkpoint: &Path, data: &str, dir: &Path, name: &str) -> (Value, Vec<u64>) {
    let out = dir.join(format!("{name}.json"));
    let state = dir.join(format!("{name}_state.json"));
    let mut args = vec![
        "eval",
        "--checkpoint",
        path_str(checkpoint),
        "--dataset",
        "mnist",
        "--data-dir",
        data,
        "--limit",
        FINAL_N,
        "--eps",
        "0.1",
        "--step",
        "0.05",
        "--steps",
        "2",
        "--seed",
        "0",
        "--attack",
        "autoattack",
        "--device",
        "cpu",
        "--state",
        path_str(&state),
        "--output",
        path_str(&out),
    ];
    args.extend_from_slice(&BUDGETS);
    rift_ok(&args);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (v, robust_of_state(&state))
}

/// The samples every attack left robust, from an AutoAttack state file.
fn robust_of_state(path: &Path) -> Vec<u64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let finished = v["finished"].as_array().unwrap();
    assert_eq!(finished.len(), 4, "{path:?}: every attack finished");
    finished[3]["robust"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect()
}

fn yaml(path: &Path) -> Value {
    let y: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::to_value(y).unwrap()
}

/// The session's record of one model equals `rift eval`'s report: clean, each attack's
/// cumulative robust accuracy, final robust accuracy, n and ε.
fn assert_same_report(session: &Value, eval: &Value, which: &str) {
    let aa = &eval["autoattack"];
    for key in ["n", "clean_correct", "robust_correct"] {
        assert_eq!(session[key], aa[key], "{which}: {key}");
    }
    for key in ["clean_acc", "robust_acc", "eps"] {
        let (a, b) = (session[key].as_f64().unwrap(), aa[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{which}: {key} {a} vs {b}");
    }
    let (s, e) = (
        session["attacks"].as_array().unwrap(),
        aa["attacks"].as_array().unwrap(),
    );
    assert_eq!(s.len(), 4, "{which}: four attacks");
    for (a, b) in s.iter().zip(e) {
        assert_eq!(a["attack"], b["attack"], "{which}");
        assert_eq!(a["robust"], b["robust"], "{which}: {}", a["attack"]);
        assert_eq!(a["evaluated"], b["evaluated"], "{which}: {}", a["attack"]);
    }
}

/// Newcombe's paired hybrid score interval (method 10), written independently of rift:
/// prints θ, lower, upper in points for robust flags of chosen (first) and AT (second).
const NEWCOMBE: &str = r#"
import json, math, sys
n = int(sys.argv[1]); at = set(json.loads(sys.argv[2])); ch = set(json.loads(sys.argv[3]))
a = sum(1 for i in range(n) if i in ch and i in at)
b = sum(1 for i in range(n) if i in ch and i not in at)
c = sum(1 for i in range(n) if i not in ch and i in at)
d = n - a - b - c
z = 1.959963984540054
def wilson(k):
    p = k / n; den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (0.0 if k == 0 else mid - half, 1.0 if k == n else mid + half)
p1, p2 = (a + b) / n, (a + c) / n
l1, u1 = wilson(a + b); l2, u2 = wilson(a + c)
m = (a + b) * (c + d) * (a + c) * (b + d)
phi = (a * d - b * c) / math.sqrt(m) if m > 0 else 0.0
t = p1 - p2
lo = t - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
hi = t + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
print(json.dumps([100 * t, max(-100.0, 100 * lo), min(100.0, 100 * hi), b, c]))
"#;

#[test]
fn final_eval_runs_once_and_agrees_with_rift_eval() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 256, 256);
    let data = path_str(&data);
    let s = t.join("s");
    let session = path_str(&s);

    // 1. The pipeline without a final evaluation.
    rift_ok(&strs(&run_args(session, data, &[])));
    let before = yaml(&s.join("session.yaml"));
    assert!(before.get("final_eval").is_none());
    let alpha = before["chosen"]["alpha"].as_f64().unwrap();
    // These settings choose α = 0.5 (seeded data and fine-tuning), so the chosen model is
    // not the AT model and its cross-check below means something.
    assert!(
        alpha > 0.0,
        "α = 0 chosen: the chosen-model check would repeat the AT one"
    );

    // 2. Continued with --final-eval: only the final evaluation runs.
    let out = rift(&strs(&run_args(session, data, &final_args())));
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    for stage in ["== baseline", "== mrc", "== finetune", "== interpolate"] {
        assert!(!err.contains(stage), "{stage} ran again:\n{err}");
    }
    assert!(err.contains("== final_eval"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chosen − AT robust"), "{stdout}");
    let sv = yaml(&s.join("session.yaml"));
    let fe = &sv["final_eval"];
    assert_eq!(fe["n"].as_u64(), Some(24));
    assert_eq!(fe["attacks"], "autoattack");
    assert_eq!(fe["alpha"].as_f64(), Some(alpha));
    assert_eq!(fe["config"]["eps"].as_f64(), Some(0.1));
    assert_eq!(fe["config"]["seed"].as_u64(), Some(0));
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(report.contains("## AutoAttack"), "{report}");

    // 3. The AT model's numbers are `rift eval`'s on the same samples and flags; the
    //    chosen model's are `rift eval`'s of the written chosen weights.
    let (at_eval, at_robust) = eval_autoattack(Path::new(DEMO_MODEL), data, t, "at");
    assert_same_report(&fe["at"], &at_eval, "AT");
    let chosen_file = s.join(sv["chosen"]["safetensors"].as_str().unwrap());
    let (ch_eval, ch_robust) = eval_autoattack(&chosen_file, data, t, "chosen");
    assert_same_report(&fe["chosen"], &ch_eval, "chosen");
    // The session directory's state files hold the same per-sample verdicts.
    assert_eq!(robust_of_state(&s.join("final_eval_at.json")), at_robust);
    assert_eq!(
        robust_of_state(&s.join("final_eval_chosen.json")),
        ch_robust
    );

    // 4. The difference and its interval, recomputed from the per-sample verdicts.
    let r: Vec<f64> = serde_json::from_str(&run_python(
        NEWCOMBE,
        &[
            FINAL_N,
            &serde_json::to_string(&at_robust).unwrap(),
            &serde_json::to_string(&ch_robust).unwrap(),
        ],
    ))
    .unwrap();
    let d = &fe["difference"];
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(close(&d["points"], r[0]), "{d} vs {r:?}");
    assert!(close(&d["ci95"][0], r[1]), "{d} vs {r:?}");
    assert!(close(&d["ci95"][1], r[2]), "{d} vs {r:?}");
    assert_eq!(d["chosen_only"].as_f64(), Some(r[3]));
    assert_eq!(d["at_only"].as_f64(), Some(r[4]));
    let diff =
        fe["chosen"]["robust_acc"].as_f64().unwrap() - fe["at"]["robust_acc"].as_f64().unwrap();
    assert!(close(&d["points"], diff));

    // 5. Run again: nothing is redone, the result stays.
    let state_time = std::fs::metadata(s.join("final_eval_chosen.json"))
        .and_then(|m| m.modified())
        .unwrap();
    let out = rift(&strs(&run_args(session, data, &final_args())));
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("== final_eval"),
        "the final evaluation ran again:\n{err}"
    );
    assert_eq!(yaml(&s.join("session.yaml"))["final_eval"], *fe);
    let again = std::fs::metadata(s.join("final_eval_chosen.json"))
        .and_then(|m| m.modified())
        .unwrap();
    assert_eq!(state_time, again);

    // 6. `rift report` re-renders the same section from session.yaml.
    std::fs::remove_file(s.join("report.md")).unwrap();
    let shown = rift_ok(&["report", session]);
    assert!(shown.contains("chosen − AT robust"), "{shown}");
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    assert!(report.contains("## AutoAttack"), "{report}");
}

#[test]
fn bad_final_eval_flags_fail_before_compute() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s");
    let session = path_str(&s);
    let check = |extra: &[&str], code: i32, needles: &[&str]| {
        let out = rift(&strs(&run_args(session, "assets/demo", extra)));
        let err = assert_failed(&out, code, needles);
        assert!(!err.contains("== baseline"), "compute started:\n{err}");
    };
    check(
        &["--final-eval", "apgd-ce,fgsm"],
        EXIT_USAGE,
        &["--final-eval", "unknown attack `fgsm`"],
    );
    check(
        &["--final-eval", "autoattack", "--final-limit", "0"],
        EXIT_USAGE,
        &["--final-limit", "at least 1"],
    );
    check(&["--final-limit", "100"], EXIT_USAGE, &["--final-eval"]);
    check(
        &["--final-eval", "square", "--square-queries", "0"],
        EXIT_ERROR,
        &["--square-queries", "at least 1"],
    );
    check(
        &["--final-eval", "apgd-t", "--targets", "10"],
        EXIT_ERROR,
        &["--final-eval", "target classes"],
    );
}
