//! A full disk and a read-only directory, made real: the test mounts a small tmpfs (it
//! runs as root in CI and here) and, for read-only, remounts it `ro`. A test that cannot
//! mount fails: it never skips.
//!
//! - Full disk: `rift run` on a 1.2 MB tmpfs fills it while it writes weights (the
//!   unfinished fine-tuning's state, the fine-tuned or the chosen model). It must fail
//!   (exit 1, no panic) naming the session file it could not write; leave no temporary
//!   file and no half-written file (`session.yaml` parses and holds the stages finished so
//!   far, each equal to the uninterrupted run's; every weights file there has the
//!   uninterrupted run's bytes, the unfinished fine-tuning's state aside); and, once space
//!   is freed (remounted larger), the same command finishes the session equal to the
//!   uninterrupted one.
//! - Read-only: continuing a finished session in a read-only directory, and starting one
//!   under a read-only directory, fail (exit 1, no panic) naming the file or directory;
//!   nothing in the session changes, and once writable again the session continues intact.
use crate::common::{path_str, stderr_of, PANIC_HOOK_TEXT};
use crate::corrupt::copy_session;
use crate::session_diff::{differences, first_difference, result_files, result_value};
use crate::signals::{run_args, run_to_end as rift};
use crate::Tally;
use rift::engine::rift::finetune::progress::PARTIAL_FINETUNE;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tmpfs mounted at `path` for the guard's life; unmounted on drop, a panic included.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            path_str(path),
        ]);
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
    fn remount(&self, options: &str) {
        mount(&["-o", &format!("remount,{options}"), path_str(&self.path)]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn mount(args: &[&str]) {
    let out = Command::new("mount")
        .args(args)
        .output()
        .expect("cannot run mount");
    assert!(
        out.status.success(),
        "mount {args:?} failed: the disk faults cannot be injected without it (run the suite as root):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A clean failure: exit 1, no panic, `needle` in stderr.
fn failed_naming(out: &Output, what: &str, needle: &str) -> Result<String, String> {
    let err = stderr_of(out);
    if out.status.code() != Some(1) {
        return Err(format!("{what}: exit {} instead of 1:\n{err}", out.status));
    }
    if err.contains(PANIC_HOOK_TEXT) || err.contains("panicked") {
        return Err(format!("{what}: rift panicked:\n{err}"));
    }
    if !err.contains(needle) {
        return Err(format!("{what}: the error does not name {needle}:\n{err}"));
    }
    Ok(err)
}

/// Temporary files (`atomic_write`'s `.NAME.tmpPID`, the checkpoint writer's
/// `.NAME.tmp-PID-N`) left under `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .collect()
}

/// Each stage `session.yaml` holds equals the reference's, and each weights file present
/// has the reference's bytes: nothing half-written, nothing from another state.
fn consistent_with(reference: &Path, session: &Path) -> Result<(), String> {
    let (want, have) = (
        result_value(&reference.join("session.yaml"))?,
        result_value(&session.join("session.yaml"))?,
    );
    for (key, value) in have.as_object().unwrap() {
        match want.get(key) {
            _ if value.is_null() => {}
            Some(w) if w == value => {}
            Some(w) => {
                return Err(format!(
                    "session.yaml's {key} is not the uninterrupted run's: {}",
                    first_difference(w, value, key)
                ))
            }
            None => {
                return Err(format!(
                    "session.yaml's {key} is not in the uninterrupted run's"
                ))
            }
        }
    }
    for f in result_files(session) {
        // The unfinished fine-tuning is no result but the state a rerun continues from
        // (written atomically, gone once the fine-tuned weights are saved): a run that
        // stopped before that holds one and the finished reference does not. That the
        // rerun then ends at the reference's results is checked after the disk is freed.
        if f.as_os_str() == PARTIAL_FINETUNE {
            continue;
        }
        if f.extension().is_some_and(|e| e == "safetensors")
            && std::fs::read(session.join(&f)).ok() != std::fs::read(reference.join(&f)).ok()
        {
            return Err(format!("{} is not the uninterrupted run's", f.display()));
        }
    }
    Ok(())
}

fn full_disk(dir: &Path, data: &Path, reference: &Path) -> Result<(), String> {
    let what = "a full disk";
    let disk = Tmpfs::mount(&dir.join("full"), "1200k");
    let session = disk.path.join("s");
    let args = run_args(&session, data);
    let out = rift(&args);
    let err = failed_naming(&out, what, path_str(&session))?;
    // The error is rift's own paragraph on a line of its own: it names the file and says
    // the disk is full, with nothing (a library's own complaint) glued in front of it.
    let said = err.lines().any(|l| {
        l.starts_with("error: cannot write ")
            && l.contains(path_str(&session))
            && l.contains("No space left on device")
    });
    if !said {
        return Err(format!(
            "{what}: no `error: cannot write FILE: … No space left on device` line:\n{err}"
        ));
    }
    let left = leftovers(&session);
    if !left.is_empty() {
        return Err(format!("{what}: temporary files left: {left:?}"));
    }
    consistent_with(reference, &session).map_err(|e| format!("{what}: {e}"))?;
    disk.remount("size=64m");
    continues_intact(
        &format!("{what}, once space is freed"),
        &args,
        reference,
        &session,
    )
}

/// The same command, run again once the fault is gone, finishes the session equal to the
/// uninterrupted one.
fn continues_intact(
    what: &str,
    args: &[String],
    reference: &Path,
    session: &Path,
) -> Result<(), String> {
    let out = rift(args);
    if !out.status.success() {
        return Err(format!("{what}: continuing failed:\n{}", stderr_of(&out)));
    }
    let diff = differences(reference, session);
    if !diff.is_empty() {
        return Err(format!("{what}: the continued session differs: {diff:?}"));
    }
    Ok(())
}

fn read_only_session(dir: &Path, data: &Path, reference: &Path) -> Result<(), String> {
    let what = "a read-only session directory";
    let disk = Tmpfs::mount(&dir.join("ro"), "64m");
    let session = copy_session(reference, &disk.path);
    disk.remount("ro");
    let args = run_args(&session, data);
    let out = rift(&args);
    failed_naming(&out, what, path_str(&session))?;
    disk.remount("rw");
    let diff = differences(reference, &session);
    if !diff.is_empty() {
        return Err(format!("{what}: the session changed: {diff:?}"));
    }
    continues_intact(
        &format!("{what}, once writable"),
        &args,
        reference,
        &session,
    )
}

fn read_only_parent(dir: &Path, data: &Path) -> Result<(), String> {
    let what = "a session under a read-only directory";
    let disk = Tmpfs::mount(&dir.join("ro-parent"), "1m");
    disk.remount("ro");
    let session = disk.path.join("s");
    let out = rift(&run_args(&session, data));
    failed_naming(&out, what, path_str(&session))?;
    if session.exists() {
        return Err(format!("{what}: {} exists", session.display()));
    }
    Ok(())
}

/// The disk cases, against the finished reference `rift run` session of the signal cases.
pub fn full_disk_and_read_only(dir: &Path, data: &Path, reference: &Path, tally: &Tally) {
    tally.injected();
    tally.check(full_disk(dir, data, reference));
    tally.injected();
    tally.check(read_only_session(dir, data, reference));
    tally.injected();
    tally.check(read_only_parent(dir, data));
}
