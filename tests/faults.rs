//! Faults, tested (issue 23, part 5): the suite injects faults into real `rift run` and
//! `rift compare` sessions and checks each session afterwards.
//!
//! - Signals (faults/signals.rs): SIGKILL, SIGTERM and SIGINT while a stage is under way;
//!   continuing with the same command gives the uninterrupted result, bit for bit.
//! - Disk (faults/disk.rs): a full disk (a small tmpfs) and a read-only directory (a tmpfs
//!   remounted read-only): a clear error naming the file, nothing half-written, the
//!   complete files intact.
//! - Corrupt files (faults/corrupt.rs): a truncated or garbage session file, partial MRC
//!   file, candidate file or weights is refused, named, and left as it was.
//!
//! It ends with one line, `faults injected: N, sessions intact: M`, and fails unless every
//! injected fault left its session intact.
mod common;
#[path = "faults/corrupt.rs"]
mod corrupt;
#[path = "faults/disk.rs"]
mod disk;
#[path = "faults/session_diff.rs"]
mod session_diff;
#[path = "faults/signals.rs"]
mod signals;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many faults were injected and how many sessions came through intact, with what
/// went wrong for the others.
#[derive(Default)]
pub struct Tally {
    injected: AtomicUsize,
    intact: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    pub fn injected(&self) {
        self.injected.fetch_add(1, Ordering::SeqCst);
    }
    pub fn intact(&self) {
        self.intact.fetch_add(1, Ordering::SeqCst);
    }
    pub fn failed(&self, why: String) {
        eprintln!("FAULT NOT SURVIVED: {why}");
        self.failures.lock().unwrap().push(why);
    }
    /// A check of one injected fault: intact when `result` is Ok.
    pub fn check(&self, result: Result<(), String>) {
        match result {
            Ok(()) => self.intact(),
            Err(e) => self.failed(e),
        }
    }
}

/// One test, so that the closing line counts every fault: the parts run one after the
/// other (each keeps the machine's two cores busy on its own), the signal cases first:
/// their uninterrupted reference sessions are what the other parts damage and compare
/// with.
#[test]
fn faults_injected_sessions_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::tiny_mnist(dir.path(), 128, 96);
    // The corrupted set the runs' OOD stage reads (`--ood-dataset mnist-c`).
    common::tiny_mnist_c(&data, 8);
    let tally = Tally::default();
    let started = std::time::Instant::now();
    let (run, compare) =
        signals::signals_in_every_stage(&dir.path().join("signals"), &data, &tally);
    corrupt::corrupt_files(&dir.path().join("corrupt"), &run, &compare, &data, &tally);
    disk::full_disk_and_read_only(&dir.path().join("disk"), &data, &run, &tally);
    let (n, m) = (
        tally.injected.load(Ordering::SeqCst),
        tally.intact.load(Ordering::SeqCst),
    );
    let failures = tally.failures.into_inner().unwrap();
    // Straight to the process's stderr, not through eprintln!, which the test harness
    // captures: `make test` shows the line whether the test passes or not.
    let _ = writeln!(
        std::io::stderr(),
        "faults injected: {n}, sessions intact: {m} ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n > 0, "no fault was injected");
    assert_eq!(m, n, "every injected fault must leave its session intact");
}
