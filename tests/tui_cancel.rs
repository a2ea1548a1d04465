//! A cancel is never lost: it reaches a job the worker has not taken yet (its flag travels
//! with the command), stops the jobs queued before it without running them, and leaves
//! the jobs sent after it alone. Deterministic: the worker is held in its model loading,
//! or busy with a running job, while the commands are sent and cancelled.
mod common;

use common::jobs::{demo_job_setup, until_end};
use rift::engine::rift::events::{Event, Stage};
use rift::jobs::{JobCommand, JobEvent, Worker};

/// The stages the events in `seen` started (other than loading the model).
fn started(seen: &[JobEvent]) -> Vec<Stage> {
    seen.iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::StageStarted { stage, .. }) if *stage != Stage::Load => {
                Some(*stage)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_cancel_before_the_worker_takes_the_job_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = demo_job_setup(dir.path().join("s"));
    // The worker cannot take a command before it has loaded the model: hold it there.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let load = setup.load;
    setup.load = Box::new(move || {
        let _ = wait.recv();
        load()
    });
    let (handle, mut rx) = Worker::spawn(setup).unwrap();
    handle.send(JobCommand::StartMrc);
    handle.cancel();
    go.send(()).unwrap();
    let mut seen = Vec::new();
    assert_eq!(until_end(&mut rx, &mut seen), JobEvent::Cancelled);
    assert_eq!(started(&seen), [], "the cancelled job ran: {seen:?}");

    // A job sent after the cancel runs.
    let mut seen = Vec::new();
    handle.send(JobCommand::StartMrc);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Mrc }
    );
    assert!(started(&seen).contains(&Stage::Mrc), "{seen:?}");
}

#[test]
fn a_cancel_stops_the_running_job_and_the_one_queued_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut rx) = Worker::spawn(demo_job_setup(dir.path().join("s"))).unwrap();
    handle.send(JobCommand::StartMrc);
    // MRC is running once its first stage has started.
    let mut seen = Vec::new();
    while !started(&seen).contains(&Stage::Baseline) {
        seen.push(rx.blocking_recv().expect("the worker ended early"));
    }
    handle.send(JobCommand::StartFinetune {
        layers: vec!["linear".into()],
        lr: 0.01,
    });
    handle.cancel();
    assert_eq!(until_end(&mut rx, &mut seen), JobEvent::Cancelled);
    let mut queued = Vec::new();
    assert_eq!(until_end(&mut rx, &mut queued), JobEvent::Cancelled);
    assert_eq!(
        started(&queued),
        [],
        "the job queued before the cancel ran: {queued:?}"
    );
}
