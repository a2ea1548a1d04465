//! Helpers shared by the integration tests: the venv's Python (real PyTorch 2.11, numpy,
//! pillow) writes fixtures and reference numbers, and the one built `rift` binary is run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The venv python made by `.ci/bootstrap` (override with `RIFT_PYTHON`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RIFT_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/rift/torch-2.11.0/bin/python3")
}

/// Runs a Python script given as a string with `args`; panics with its stderr on failure.
/// Returns stdout.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("cannot start the venv python; run .ci/bootstrap");
    if !out.status.success() {
        panic!(
            "python failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release binary that `make test` builds before the suite (`cargo test --release`
/// builds it too: integration tests of a package get `CARGO_BIN_EXE_<name>`).
pub fn rift_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rift"))
}

/// Runs `rift` with `args`, returning the whole output (never panics on failure).
pub fn rift(args: &[&str]) -> Output {
    Command::new(rift_bin())
        .args(args)
        .env("RIFT_THREADS", "2")
        .output()
        .expect("cannot run the rift binary")
}

/// Runs `rift` and panics with its output unless it succeeds; returns stdout.
pub fn rift_ok(args: &[&str]) -> String {
    let out = rift(args);
    if !out.status.success() {
        panic!(
            "rift {:?} failed ({}):\n{}\n{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts that `out`, the output of `rift args`, is a clean failure: a non-zero exit, no
/// panic, and stderr mentioning each of `must_mention`. Returns stderr.
pub fn assert_failed_cleanly(out: &Output, args: &[&str], must_mention: &[&str]) -> String {
    let err = stderr_of(out);
    assert!(!out.status.success(), "rift {args:?} should fail: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "rift {args:?} panicked: {err}"
    );
    for m in must_mention {
        assert!(
            err.contains(m),
            "rift {args:?}: stderr should mention `{m}`:\n{err}"
        );
    }
    err
}
