//! `s` and `a` while a job runs: the worker serves them between the running job's steps
//! and the job goes on to its end (on the bundled demo model with tiny settings).
mod common;

use common::jobs::{demo_job_setup, until_end};
use common::{path_str, run_python, DEMO_MODEL};
use rift::engine::rift::events::{Event, Stage};
use rift::jobs::{JobCommand, JobEvent, JobRequest, Worker};
use rift::report::session::Session;
use std::path::PathBuf;
use tokio::sync::mpsc::UnboundedReceiver;

/// α from 0 to 1 in steps of 0.2: each point takes a good part of a second here, so
/// requests sent after the first point arrive while the sweep runs.
fn grid() -> Vec<f64> {
    vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
}

fn setup(session: PathBuf) -> rift::jobs::JobSetup {
    let mut setup = demo_job_setup(session);
    setup.pipeline.sweep.alphas = grid();
    setup.settings.alphas = grid();
    setup
}

/// The next event other than the candidate list the worker sends after every job.
fn next(rx: &mut UnboundedReceiver<JobEvent>) -> JobEvent {
    loop {
        match rx.blocking_recv().expect("the worker ended early") {
            JobEvent::Candidates(_) => {}
            e => return e,
        }
    }
}

fn swept(events: &[JobEvent]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::SweepPoint { point }) => Some(point.alpha),
            _ => None,
        })
        .collect()
}

#[test]
fn save_and_accept_while_the_sweep_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("s");
    let (mut handle, mut rx) = Worker::spawn(setup(session.clone())).unwrap();
    let mut seen = Vec::new();

    // `a` while fine-tuning runs (asked with the job, so served at its first event): the
    // endpoints are being replaced, so it is refused and the fine-tune goes on.
    handle.send(JobCommand::StartFinetune {
        layers: vec!["linear".into()],
        lr: 0.01,
    });
    handle.send(JobCommand::Request(JobRequest::Accept { alpha: 0.5 }));
    let end = until_end(&mut rx, &mut seen);
    assert_eq!(
        end,
        JobEvent::Finished {
            stage: Stage::Finetune
        }
    );
    let refused = seen.iter().find_map(|e| match e {
        JobEvent::RequestFailed(m) => Some(m.clone()),
        _ => None,
    });
    let refused = refused.expect("the accept during fine-tuning was refused");
    assert!(refused.contains("fine-tuning"), "{refused}");

    // The sweep: once α > 0 has a point, save and accept while it runs.
    seen.clear();
    handle.send(JobCommand::StartSweep);
    let measured = loop {
        let e = next(&mut rx);
        seen.push(e.clone());
        if let JobEvent::Engine(Event::SweepPoint { point }) = &e {
            if point.alpha > 0.0 {
                break point.alpha;
            }
        }
        assert!(
            !matches!(e, JobEvent::Finished { .. } | JobEvent::Failed(_)),
            "{e:?}"
        );
    };
    handle.send(JobCommand::Request(JobRequest::Save));
    handle.send(JobCommand::Request(JobRequest::Accept { alpha: measured }));
    let end = until_end(&mut rx, &mut seen);
    assert_eq!(
        end,
        JobEvent::Finished {
            stage: Stage::Interpolate
        },
        "the sweep ran to its end"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, JobEvent::RequestFailed(_))),
        "{seen:?}"
    );
    assert_eq!(swept(&seen), grid(), "every α of the grid, in order");
    // Every batch of an α point is an event, where requests are served: 16 samples in
    // batches of 8 give two per point (no baseline ran here, so α = 0 is measured too).
    let beats = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                JobEvent::Engine(Event::Batch {
                    stage: Stage::Interpolate
                })
            )
        })
        .count();
    assert_eq!(beats, 2 * grid().len(), "{seen:?}");

    // The save came while the sweep ran, and holds exactly the points before it.
    let saved_at = seen
        .iter()
        .position(|e| matches!(e, JobEvent::Saved { .. }))
        .expect("a Saved event");
    let before = swept(&seen[..saved_at]);
    assert!(
        before.len() >= 2 && before.len() < grid().len(),
        "saved after {} of {} points: not during the sweep",
        before.len(),
        grid().len()
    );
    let partial = Session::load(&session).unwrap();
    let interp = partial.interpolation.expect("the points so far");
    let in_file: Vec<f64> = interp.points.iter().map(|p| p.alpha).collect();
    assert_eq!(in_file, before);
    assert!(partial.finetune.is_some() && partial.finetuned_weights.is_some());
    assert!(session.join("report.md").exists());
    let accepted = seen.iter().find_map(|e| match e {
        JobEvent::Accepted { alpha, path } => Some((*alpha, path.clone())),
        _ => None,
    });
    let (alpha, path) = accepted.expect("an Accepted event");
    assert_eq!(alpha, measured);
    assert!(path.ends_with("chosen.pth"), "{path}");

    // chosen.safetensors is AT + α(FT − AT), as PyTorch computes it from the AT checkpoint
    // and the fine-tuned weights the save wrote.
    let check = run_python(
        r#"
import sys, torch
from safetensors.torch import load_file
at, ft, chosen = (load_file(p) for p in sys.argv[1:4])
alpha = float(sys.argv[4])
assert set(chosen) == set(ft), (sorted(set(chosen) ^ set(ft)))
changed = 0
for k, a in at.items():
    f, c = ft[k], chosen[k]
    if a.is_floating_point():
        want = a * (1 - alpha) + f * alpha
    else:
        want = a if alpha < 0.5 else f
    assert torch.allclose(c, want.to(c.dtype), rtol=1e-5, atol=1e-6), k
    changed += int(not torch.equal(a.to(c.dtype), c))
print(changed)
"#,
        &[
            DEMO_MODEL,
            path_str(&session.join("finetuned.safetensors")),
            path_str(&session.join("chosen.safetensors")),
            &alpha.to_string(),
        ],
    );
    let changed: usize = check.trim().parse().unwrap();
    assert!(changed > 0, "the chosen weights differ from AT somewhere");

    // After the sweep, a plain save keeps the α accepted during it and every point.
    handle.send(JobCommand::Save);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Save }
    );
    let full = Session::load(&session).unwrap();
    assert_eq!(full.chosen.map(|c| c.alpha), Some(measured));
    let interp = full.interpolation.unwrap();
    assert_eq!(interp.chosen_alpha, measured);
    assert_eq!(interp.points.len(), grid().len());

    // A request while idle is served at once, without a Finished.
    handle.send(JobCommand::Request(JobRequest::Save));
    assert!(matches!(next(&mut rx), JobEvent::Saved { .. }));
    handle.shutdown();
}

/// An α accepted while a sweep runs, then the sweep cancelled: the points measured and
/// the accepted α stay in the session (a later sweep continues from them).
#[test]
fn a_cancelled_sweep_keeps_its_points_and_the_alpha_accepted_during_it() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("s");
    let (mut handle, mut rx) = Worker::spawn(setup(session.clone())).unwrap();
    let mut seen = Vec::new();
    handle.send(JobCommand::StartFinetune {
        layers: vec!["linear".into()],
        lr: 0.01,
    });
    assert!(matches!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { .. }
    ));
    seen.clear();
    handle.send(JobCommand::StartSweep);
    let measured = loop {
        if let JobEvent::Engine(Event::SweepPoint { point }) = next(&mut rx) {
            if point.alpha > 0.0 {
                break point.alpha;
            }
        }
    };
    handle.send(JobCommand::Request(JobRequest::Accept { alpha: measured }));
    let accepted = loop {
        let e = next(&mut rx);
        seen.push(e.clone());
        if let JobEvent::Accepted { alpha, .. } = e {
            break alpha;
        }
    };
    assert_eq!(accepted, measured);
    handle.cancel();
    assert_eq!(until_end(&mut rx, &mut seen), JobEvent::Cancelled);
    let points = swept(&seen);
    handle.send(JobCommand::Save);
    assert_eq!(
        until_end(&mut rx, &mut seen),
        JobEvent::Finished { stage: Stage::Save }
    );
    let saved = Session::load(&session).unwrap();
    assert_eq!(saved.chosen.map(|c| c.alpha), Some(measured));
    let interp = saved.interpolation.expect("the measured points");
    let alphas: Vec<f64> = interp.points.iter().map(|p| p.alpha).collect();
    assert!(
        alphas.contains(&0.0) && alphas.contains(&measured),
        "{alphas:?}"
    );
    assert!(
        alphas.len() < grid().len(),
        "cancelled before the end: {alphas:?}"
    );
    assert!(
        points.iter().all(|a| alphas.contains(a)),
        "{points:?} {alphas:?}"
    );
    assert_eq!(interp.chosen_alpha, measured);
    handle.shutdown();
}
