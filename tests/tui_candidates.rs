//! Several candidates in one explorer session, through the worker (demo model, tiny
//! settings): Enter on a second module keeps the first candidate (saved in the session's
//! own directory) and fine-tunes the second under `candidates/`; each keeps its α curve
//! and its own accepted α; showing the first again reads its weights back from disk and
//! gives the very same θ(α); a `rift compare` directory lists its candidates.
mod common;

use common::jobs::{demo_job_setup as setup, until_end};
use common::{demo_run_args, rift_ok};
use rift::engine::rift::events::{Event, Stage};
use rift::jobs::{CandidateSummary, JobCommand, JobEvent, Worker};
use rift::report::session::Session;
use std::path::Path;
use tokio::sync::mpsc::UnboundedReceiver;

/// Runs `cmd` and returns every event up to and including its end.
fn job(
    handle: &mut rift::jobs::JobHandle,
    rx: &mut UnboundedReceiver<JobEvent>,
    cmd: JobCommand,
) -> Vec<JobEvent> {
    handle.send(cmd);
    let mut seen = Vec::new();
    match until_end(rx, &mut seen) {
        JobEvent::Finished { .. } => seen,
        end => panic!("the job ended with {end:?}"),
    }
}

/// The candidate list the worker sends after a job.
fn listed(rx: &mut UnboundedReceiver<JobEvent>) -> Vec<CandidateSummary> {
    loop {
        match rx.blocking_recv().expect("the worker ended early") {
            JobEvent::Candidates(list) => return list,
            // The model loading at start.
            JobEvent::Finished { stage: Stage::Load } | JobEvent::Engine(_) => {}
            other => panic!("expected the candidate list, got {other:?}"),
        }
    }
}

fn finetune(layer: &str) -> JobCommand {
    JobCommand::StartFinetune {
        layers: vec![layer.into()],
        lr: 0.01,
    }
}

fn shown_session(events: &[JobEvent]) -> Option<&Session> {
    events.iter().find_map(|e| match e {
        JobEvent::CandidateShown(s) => Some(&**s),
        _ => None,
    })
}

fn session(dir: &Path) -> Session {
    Session::load(dir).expect("a saved session")
}

#[test]
fn two_candidates_keep_their_curves_and_accepted_alphas() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let (mut handle, mut rx) = Worker::spawn(setup(root.clone())).unwrap();
    assert!(
        listed(&mut rx).is_empty(),
        "no candidates before fine-tuning"
    );

    // The first candidate lives in the session's own directory, as before.
    let events = job(&mut handle, &mut rx, finetune("linear"));
    assert!(
        shown_session(&events).is_none(),
        "the first stays on display"
    );
    listed(&mut rx);
    job(&mut handle, &mut rx, JobCommand::StartSweep);
    listed(&mut rx);
    job(&mut handle, &mut rx, JobCommand::Accept { alpha: 0.5 });
    let first = listed(&mut rx);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].label.as_str(), first[0].dir.as_str()),
        ("linear", ".")
    );
    assert!(first[0].shown);
    assert_eq!(first[0].accepted, Some(0.5));
    assert_eq!(first[0].points.len(), 3);
    let linear_curve = first[0].points.clone();
    let chosen_before = std::fs::read(root.join("chosen.safetensors")).unwrap();

    // Enter on another module: the first is saved where it lives, the new one starts
    // empty under candidates/.
    let events = job(&mut handle, &mut rx, finetune("conv1"));
    let fresh = shown_session(&events).expect("the new candidate is shown");
    assert!(fresh.finetune.is_none() && fresh.interpolation.is_none());
    let saved = session(&root);
    assert_eq!(saved.finetune.as_ref().unwrap().layers, vec!["linear"]);
    assert_eq!(saved.chosen.as_ref().map(|c| c.alpha), Some(0.5));
    assert_eq!(saved.interpolation.as_ref().unwrap().points, linear_curve);
    assert!(root.join("finetuned.safetensors").is_file());
    listed(&mut rx);
    job(&mut handle, &mut rx, JobCommand::StartSweep);
    listed(&mut rx);
    job(&mut handle, &mut rx, JobCommand::Accept { alpha: 1.0 });
    let two = listed(&mut rx);
    let labels: Vec<(&str, &str, bool)> = two
        .iter()
        .map(|c| (c.label.as_str(), c.dir.as_str(), c.shown))
        .collect();
    assert_eq!(
        labels,
        vec![("linear", ".", false), ("conv1", "candidates/conv1", true)]
    );
    assert_eq!(two[0].points, linear_curve, "the first keeps its α curve");
    assert_eq!(two[0].accepted, Some(0.5));
    assert_eq!(two[1].accepted, Some(1.0), "accepted α per candidate");
    // Both curves start at the same AT point (same samples, same attack).
    assert_eq!(two[0].points[0], two[1].points[0]);
    job(&mut handle, &mut rx, JobCommand::Save);
    listed(&mut rx);
    let conv = session(&root.join("candidates/conv1"));
    assert_eq!(conv.finetune.as_ref().unwrap().layers, vec!["conv1"]);
    assert_eq!(conv.chosen.as_ref().map(|c| c.alpha), Some(1.0));
    assert!(root.join("candidates/conv1/chosen.pth").is_file());
    assert_eq!(session(&root).chosen.as_ref().map(|c| c.alpha), Some(0.5));

    // Show the first again: its panels come back from its session and its weights from
    // disk, giving byte for byte the θ(0.5) written before.
    let events = job(
        &mut handle,
        &mut rx,
        JobCommand::ShowCandidate {
            label: "linear".into(),
        },
    );
    let back = shown_session(&events).expect("the first candidate is shown");
    assert_eq!(back.interpolation.as_ref().unwrap().points, linear_curve);
    assert_eq!(back.chosen.as_ref().map(|c| c.alpha), Some(0.5));
    assert_eq!(
        events.last(),
        Some(&JobEvent::Finished {
            stage: Stage::Candidate
        })
    );
    let after = listed(&mut rx);
    assert!(after[0].shown && !after[1].shown);
    std::fs::remove_file(root.join("chosen.safetensors")).unwrap();
    job(&mut handle, &mut rx, JobCommand::Accept { alpha: 0.5 });
    assert_eq!(
        std::fs::read(root.join("chosen.safetensors")).unwrap(),
        chosen_before
    );
    listed(&mut rx);

    // A new candidate whose fine-tuning is cancelled leaves nothing behind once another
    // is shown.
    handle.send(finetune("layer1.0.conv1"));
    loop {
        let e = rx.blocking_recv().expect("the worker ended early");
        if matches!(e, JobEvent::Engine(Event::FinetuneIter { .. })) {
            break;
        }
    }
    handle.cancel();
    loop {
        match rx.blocking_recv().expect("the worker ended early") {
            JobEvent::Cancelled => break,
            JobEvent::Finished { stage } => panic!("{stage:?} finished, not cancelled"),
            _ => {}
        }
    }
    let listed_now = listed(&mut rx);
    assert_eq!(
        listed_now.len(),
        3,
        "the new one is on display: {listed_now:?}"
    );
    assert!(listed_now[2].shown && listed_now[2].points.is_empty());

    // Fine-tuning the second's module again refits that candidate, no third one.
    job(&mut handle, &mut rx, finetune("conv1"));
    assert!(
        !root.join("candidates/layer1.0.conv1").exists(),
        "the cancelled candidate was not saved"
    );
    let again = listed(&mut rx);
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[1].shown && again[1].points.is_empty());
    handle.send(JobCommand::Shutdown);
}

#[test]
fn a_compare_directory_lists_its_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cmp");
    let data = Path::new("assets/demo");
    let mut args = demo_run_args(&dir, data, &["--candidates", "last,conv1", "--refine", "0"]);
    args[0] = "compare".into();
    rift_ok(&args);
    let cmp: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("compare.yaml")).unwrap()).unwrap();
    let mut s = setup(dir.clone());
    s.resume = Some(session(&dir));
    let (mut handle, mut rx) = Worker::spawn(s).unwrap();
    let list = listed(&mut rx);
    let labels: Vec<&str> = list.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        vec!["last", "conv1"],
        "the order the comparison ran them"
    );
    for c in &list {
        assert!(!c.shown, "the comparison's own session is on display");
        let row = cmp["candidates"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["candidate"].as_str() == Some(c.label.as_str()))
            .expect("a row per candidate");
        let alphas: Vec<f64> = row["points"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["alpha"].as_f64().unwrap())
            .collect();
        assert_eq!(c.points.iter().map(|p| p.alpha).collect::<Vec<_>>(), alphas);
        let robust: Vec<f64> = row["points"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["robust_acc"].as_f64().unwrap())
            .collect();
        assert_eq!(
            c.points.iter().map(|p| p.robust_acc).collect::<Vec<_>>(),
            robust
        );
    }
    let events = job(
        &mut handle,
        &mut rx,
        JobCommand::ShowCandidate {
            label: "last".into(),
        },
    );
    let shown = shown_session(&events).expect("shown");
    assert_eq!(shown.finetune.as_ref().unwrap().layers, vec!["linear"]);
    let list = listed(&mut rx);
    assert!(list.iter().any(|c| c.label == "last" && c.shown));
    handle.send(JobCommand::Shutdown);
}
