//! Damaged or unreadable inputs are refused with the file named, never quietly replaced
//! by a fallback: fine-tuned weights a run would continue from, the OOD directory, a
//! `rift compare` candidate's files; the explorer lists what it cannot read as warnings.
mod common;

use common::jobs::{demo_job_setup, until_end};
use common::*;
use rift::engine::rift::events::{Event, Stage};
use rift::jobs::{JobCommand, JobEvent, Worker};
use rift::report::session::Session;
use std::path::Path;

/// The events a refused run wrote: none of a stage's.
fn assert_no_stage_ran(session: &Path) {
    let events = std::fs::read_to_string(session.join("events.jsonl")).unwrap_or_default();
    assert!(
        !events.contains("baseline") && !events.contains("finetune"),
        "a stage ran before the check:\n{events}"
    );
}

#[test]
fn corrupt_finetuned_weights_are_refused_then_deleting_them_fine_tunes_again() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let data = tiny_mnist(t, 128, 96);
    let s = t.join("s");
    let args = demo_run_args(&s, &data, &[]);
    rift_ok(&args);
    let weights = s.join("finetuned.safetensors");
    let whole = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &whole[..whole.len() / 2]).unwrap();
    let before = Session::load(&s).unwrap();

    let out = rift(&args);
    let shown = weights.display().to_string();
    let delete = format!("delete {shown} to fine-tune again");
    assert_failed(&out, EXIT_ERROR, &[&shown, &delete]);
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        &whole[..whole.len() / 2],
        "the refused file was written over"
    );
    let after = Session::load(&s).unwrap();
    assert_eq!(after.finetune, before.finetune);
    assert_eq!(after.interpolation, before.interpolation);

    // What the error says to do: fine-tuning runs again and the session is complete.
    std::fs::remove_file(&weights).unwrap();
    let out = rift(&args);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("are gone: fine-tuning again"), "{err}");
    assert_eq!(std::fs::read(&weights).unwrap().len(), whole.len());
    assert!(Session::load(&s).unwrap().chosen.is_some());
}

#[test]
fn an_unreadable_ood_directory_is_refused_before_any_stage() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let file = t.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let link = t.join("broken-link");
    std::os::unix::fs::symlink(t.join("gone"), &link).unwrap();
    for (ood_dir, what) in [(&file, "is not a directory"), (&link, "cannot read")] {
        let s = t.join(format!(
            "s-{}",
            ood_dir.file_name().unwrap().to_string_lossy()
        ));
        let extra = ["--ood-dataset", "cifar10-c", "--ood-dir", path_str(ood_dir)];
        let out = rift(&demo_run_args(&s, Path::new("assets/demo"), &extra));
        let shown = ood_dir.display().to_string();
        assert_failed(&out, EXIT_ERROR, &[&shown, what, "--ood-dir"]);
        assert_no_stage_ran(&s);
    }
}

#[test]
fn a_damaged_candidate_stops_compare_before_any_stage_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let mut args = demo_run_args(&t.join("c"), Path::new("assets/demo"), &[]);
    args[0] = "compare".into();
    args.extend(["--candidates".into(), "rift,all".into()]);
    let cdir = t.join("c/candidates/all");
    std::fs::create_dir_all(&cdir).unwrap();
    for (file, text) in [
        ("candidate.yaml", "candidate: [unclosed"),
        ("session.yaml", "name: {{"),
    ] {
        let path = cdir.join(file);
        std::fs::write(&path, text).unwrap();
        let out = rift(&args);
        let shown = path.display().to_string();
        assert_failed(&out, EXIT_ERROR, &[&shown, "candidate all"]);
        assert_no_stage_ran(&t.join("c"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn the_explorer_warns_of_a_candidate_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let damaged = root.join("candidates/conv1/session.yaml");
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, "name: {{").unwrap();
    let (handle, mut rx) = Worker::spawn(demo_job_setup(root)).unwrap();
    handle.send(JobCommand::Save);
    let mut seen = Vec::new();
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Save }
    );
    let shown = damaged.display().to_string();
    let warned = seen.iter().any(
        |e| matches!(e, JobEvent::Engine(Event::Warning { message }) if message.contains(&shown)),
    );
    assert!(warned, "no warning naming {shown}: {seen:?}");
    assert_eq!(std::fs::read_to_string(&damaged).unwrap(), "name: {{");
}
