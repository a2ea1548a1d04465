//! Corrupt files in a finished session: a truncated (at a byte or at a line) or garbage
//! `session.yaml`, `mrc_partial.yaml`, `finetuned.safetensors`, chosen weights
//! (`chosen.safetensors`, `chosen.pth`), a candidate's `candidate.yaml` or `session.yaml`.
//! Continuing with the same command is refused (exit 1, no panic) with the file named, and
//! every file of the session keeps its bytes: the corrupt file is not overwritten and
//! nothing is recomputed (a stage that ran would append to `events.jsonl`).
//!
//! `events.jsonl` is the exception, by decision: it is a log that rift appends to and
//! never reads back to decide what to compute (`commands/run.rs::EventLog`; only `rift tui
//! --follow` reads it, and it skips a line it cannot parse with a warning). A torn last
//! line (a SIGKILL mid-append) or garbage there cannot mix into a result, so refusing the
//! session would only stand in the way of its work: the run continues, the old bytes stay
//! as they are at the start of the file, this run's events start on a line of their own,
//! and the session's results are those it had.
use crate::common::{path_str, stderr_of, PANIC_HOOK_TEXT};
use crate::session_diff::differences;
use crate::signals::{compare_args, run_args, run_to_end as rift};
use crate::Tally;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir` with its bytes (the lock aside: it is empty and taken by each
/// run).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if e.file_name() != ".rift-lock" {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A copy of the finished session `from` at `to/NAME` (NAME: `from`'s own directory
/// name, which is the session's name).
pub fn copy_session(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a {} failed", from.display());
    to.join(from.file_name().unwrap())
}

#[derive(Clone, Copy)]
enum Damage {
    /// The first half of the file's bytes.
    Truncated,
    /// The first half of the file's lines: for YAML, often still YAML, with the fields
    /// after the cut missing.
    LinesCut,
    /// Bytes that are no format at all.
    Garbage,
}

impl Damage {
    fn apply(self, path: &Path) {
        let bytes = match self {
            Damage::Truncated => {
                let b = std::fs::read(path).unwrap();
                b[..b.len() / 2].to_vec()
            }
            Damage::LinesCut => {
                let text = std::fs::read_to_string(path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let kept = &lines[..lines.len() / 2];
                format!("{}\n", kept.join("\n")).into_bytes()
            }
            Damage::Garbage => b"\x00\xff{[ not: a: file: rift: wrote\n\x13\x37".to_vec(),
        };
        std::fs::write(path, bytes).unwrap();
    }
    fn name(self) -> &'static str {
        match self {
            Damage::Truncated => "truncated",
            Damage::LinesCut => "cut-at-a-line",
            Damage::Garbage => "garbage",
        }
    }
}

/// Damages `file` in a copy of `finished`, runs `args_of(copy)` and checks the refusal.
fn refused(
    finished: &Path,
    base: &Path,
    file: &str,
    damage: Damage,
    args_of: fn(&Path, &Path) -> Vec<String>,
    data: &Path,
) -> Result<(), String> {
    let what = format!("{} {file}", damage.name());
    let session = copy_session(finished, &base.join(format!("{}-{}", file, damage.name())));
    let path = session.join(file);
    damage.apply(&path);
    let before = snapshot(&session);
    let out = rift(&args_of(&session, data));
    let err = stderr_of(&out);
    if out.status.code() != Some(1) {
        return Err(format!(
            "{what}: exit {} instead of a refusal (1):\n{err}",
            out.status
        ));
    }
    if err.contains(PANIC_HOOK_TEXT) || err.contains("panicked") {
        return Err(format!("{what}: rift panicked:\n{err}"));
    }
    if !err.contains(path_str(&path)) {
        return Err(format!(
            "{what}: the error does not name {}:\n{err}",
            path.display()
        ));
    }
    let after = snapshot(&session);
    if after != before {
        let changed: Vec<_> = after
            .keys()
            .chain(before.keys())
            .filter(|k| after.get(*k) != before.get(*k))
            .collect();
        return Err(format!("{what}: refused, but files changed: {changed:?}"));
    }
    Ok(())
}

/// The `events.jsonl` decision (see the module's comment): the run continues, the damaged
/// bytes are kept as the start of the file, the new events are whole lines of their own,
/// and the results are the finished session's.
fn damaged_log_continues(
    finished: &Path,
    base: &Path,
    damage: &[u8],
    name: &str,
    data: &Path,
) -> Result<(), String> {
    let what = format!("{name} events.jsonl");
    let session = copy_session(finished, &base.join(format!("events-{name}")));
    let log = session.join("events.jsonl");
    let mut old = std::fs::read(&log).unwrap();
    old.extend_from_slice(damage);
    std::fs::write(&log, &old).unwrap();
    let out = rift(&run_args(&session, data));
    if !out.status.success() {
        return Err(format!(
            "{what}: the run failed ({}):\n{}",
            out.status,
            stderr_of(&out)
        ));
    }
    let now = std::fs::read(&log).unwrap();
    if !now.starts_with(&old) {
        return Err(format!("{what}: the damaged log was rewritten"));
    }
    let added = String::from_utf8_lossy(&now[old.len()..]).into_owned();
    let Some(new_lines) = added.strip_prefix('\n') else {
        return Err(format!(
            "{what}: the new events do not start on a line of their own"
        ));
    };
    if new_lines.is_empty() || !new_lines.ends_with('\n') {
        return Err(format!("{what}: no whole new event lines: {new_lines:?}"));
    }
    for l in new_lines.lines() {
        if serde_json::from_str::<serde_json::Value>(l).is_err() {
            return Err(format!("{what}: a new line is not JSON: {l:?}"));
        }
    }
    let diff = differences(finished, &session);
    if !diff.is_empty() {
        return Err(format!("{what}: the results changed: {diff:?}"));
    }
    Ok(())
}

/// Every corrupt-file case on copies of the finished reference sessions of the signal
/// cases (`run`: a `rift run` session, `compare`: a `rift compare` one).
pub fn corrupt_files(dir: &Path, run: &Path, compare: &Path, data: &Path, tally: &Tally) {
    use Damage::{Garbage, LinesCut, Truncated};
    for (file, damage) in [
        ("session.yaml", Truncated),
        ("session.yaml", LinesCut),
        ("session.yaml", Garbage),
        ("mrc_partial.yaml", Garbage),
        ("finetuned.safetensors", Truncated),
        ("chosen.safetensors", Truncated),
        ("chosen.safetensors", Garbage),
        ("chosen.pth", Truncated),
    ] {
        tally.injected();
        tally.check(refused(run, dir, file, damage, run_args, data));
    }
    for (file, damage) in [
        ("candidates/rift/candidate.yaml", Truncated),
        ("candidates/last/candidate.yaml", Garbage),
        ("candidates/rift/session.yaml", LinesCut),
        ("session.yaml", Truncated),
        ("candidates/last/chosen.safetensors", Truncated),
    ] {
        tally.injected();
        tally.check(refused(compare, dir, file, damage, compare_args, data));
    }
    // A SIGKILL mid-append: half an event, no newline. And a log that is garbage.
    for (damage, name) in [
        (&br#"{"event":"stage_started","sta"#[..], "torn"),
        (&b"\x00\xffnot json at all"[..], "garbage"),
    ] {
        tally.injected();
        tally.check(damaged_log_continues(run, dir, damage, name, data));
    }
}
