//! What the AutoAttack tests share: the reference script (pyautoattack 0.2.0 through
//! `tests/py/autoattack_ref.py`), its trained CIFAR-shaped fixture, and the flags of
//! AutoAttack's budgets. The reference runs with its memo (`tests/py/ref_cache.py`) in the
//! venv's folder, so a second run on a machine reuses what PyTorch computed for the same
//! code, inputs and arguments; the benchmarks never use it.
use super::{path_str, python, stderr_of};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const REFERENCE: &str = "tests/py/autoattack_ref.py";

/// rift's flags for APGD iterations, targets of APGD-T/FAB-T, FAB iterations and Square
/// queries, in the reference's argument order.
pub const BUDGET_FLAGS: [&str; 4] = [
    "--apgd-iters",
    "--targets",
    "--fab-iters",
    "--square-queries",
];

/// `--apgd-iters A --targets T --fab-iters F --square-queries Q` for `[A, T, F, Q]`.
pub fn budget_args<S: AsRef<str>>(budgets: &[S]) -> Vec<&str> {
    BUDGET_FLAGS
        .iter()
        .zip(budgets)
        .flat_map(|(flag, v)| [*flag, v.as_ref()])
        .collect()
}

/// The reference's memo: beside the venv, which outlives clones and runs like the venv.
fn memo_dir() -> Option<PathBuf> {
    let venv = python().parent()?.parent()?.to_path_buf();
    Some(venv.join("reference-cache"))
}

fn reference_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(python());
    c.arg(REFERENCE).args(args);
    if let Some(dir) = memo_dir() {
        c.env("RIFT_REF_CACHE", dir);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The reference with `args` (and extra environment); its last line of output as JSON.
pub fn reference(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = reference_command(args, env)
        .output()
        .expect("cannot start the venv python; run .ci/bootstrap");
    assert!(
        out.status.success(),
        "reference {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("reference output {text}: {e}"))
}

/// `autoattack_ref.py train DIR N [WIDTH]`: the CIFAR-shaped task's test batch and its
/// adversarially trained ResNet18 in a new folder (kept for the whole run).
pub fn trained_fixture(n: &str, width: Option<&str>) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut args = vec!["train", path_str(&dir), n];
    args.extend(width);
    let out = reference_command(&args, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    dir
}

/// The model file of a `trained_fixture`.
pub fn fixture_model(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}
