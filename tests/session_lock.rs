//! One writer per session, through the binary: while a `rift run` writes a session, a
//! second `rift run`, a `rift compare` and the explorer on it are refused at once, naming
//! the first one's pid; `rift tui --follow` is not; once the first is killed (SIGKILL: no
//! cleanup runs), the next run takes its lock over and finishes the session.
mod common;

use common::*;
use rift::engine::session_lock::LOCK_FILE;
use rift::report::session::Session;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    let args = demo_run_args(&s, &data, &[]);
    let first_log = std::fs::File::create(t.join("first.log")).unwrap();
    let mut first = Command::new(rift_bin())
        .args(&args)
        .env("RIFT_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(first_log)
        .spawn()
        .unwrap();
    let pid = first.id();

    // The first run holds the lock once its record names it (before it loads the model).
    let lock = s.join(LOCK_FILE);
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid: {pid}"))) {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended before taking the lock: {}",
            std::fs::read_to_string(t.join("first.log")).unwrap()
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no lock record");
        std::thread::sleep(Duration::from_millis(20));
    }

    let pid_text = format!("pid {pid}");
    let needles = [
        "in use by another rift process",
        pid_text.as_str(),
        "rift tui --follow",
    ];
    let second = rift(&args);
    assert_failed(&second, EXIT_ERROR, &needles);
    let mut compare_args = args.clone();
    compare_args[0] = "compare".into();
    assert_failed(&rift(&compare_args), EXIT_ERROR, &needles);
    // The explorer needs a terminal before it gets as far as the lock: `script` gives it one.
    let mut explore = vec!["tui".to_string()];
    explore.extend(args[1..].iter().cloned());
    let line = std::iter::once(rift_bin().display().to_string())
        .chain(explore)
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("RIFT_THREADS", "2")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_ERROR), "explorer: {screen}");
    assert!(
        screen.contains("in use by another rift process") && screen.contains(&pid_text),
        "the explorer was not refused: {screen}"
    );
    // The follower only reads: no lock error (it stops later, for want of a terminal).
    let follow = rift(&["tui", "--follow", path_str(&s)]);
    let err = stderr_of(&follow);
    assert!(
        !err.contains("in use") && err.contains("terminal"),
        "rift tui --follow: {err}"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended during the checks: they proved nothing"
    );

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(std::fs::read_to_string(&lock)
        .unwrap()
        .contains(&format!("pid: {pid}")));
    let third = rift(&args);
    let err = stderr_of(&third);
    assert!(third.status.success(), "the third run failed: {err}");
    assert!(
        err.contains("takes the session over") && err.contains(&pid_text),
        "no takeover note naming pid {pid}: {err}"
    );
    assert!(Session::load(&s).unwrap().chosen.is_some(), "unfinished");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "",
        "a run that ended well leaves its lock file empty"
    );
}
