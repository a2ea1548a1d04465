//! Pure `update` tests of what the explorer does while a job runs: `s` and `a` become
//! requests the worker serves between batches (the job keeps running), OOD of an α
//! accepted meanwhile follows the job, the recommendation stays provisional until the
//! modules it is compared against are exact, and the follower's notes reach the status.
use super::state::State;
use super::update::tests::{engine, estimated, point, score, state};
use super::update::{update, Cmd, Msg};
use crate::engine::rift::events::{Event, Stage};
use crate::jobs::{JobCommand, JobEvent, JobRequest};

fn job(s: &mut State, e: JobEvent) -> Option<Cmd> {
    update(s, Msg::Job(e))
}

/// Three modules screened (estimates), MRC started.
fn screened(s: &mut State) {
    update(s, Msg::Start);
    for (name, depth, e) in [("conv1", 0, 0.3), ("layer1", 1, 0.1), ("fc", 2, 0.6)] {
        estimated(s, name, depth, e);
    }
}

/// MRC done on one module, fine-tuned, and a sweep running with α = 0 and 0.5 measured;
/// the α cursor on 0.5.
fn sweeping() -> State {
    let mut s = state();
    update(&mut s, Msg::Start);
    engine(
        &mut s,
        Event::ModuleScored {
            score: score("conv1", 0, 0.2),
        },
    );
    job(&mut s, JobEvent::Finished { stage: Stage::Mrc });
    assert!(update(&mut s, Msg::FineTune).is_some());
    let next = job(
        &mut s,
        JobEvent::Finished {
            stage: Stage::Finetune,
        },
    );
    assert_eq!(next, Some(Cmd::Job(JobCommand::StartSweep)));
    engine(&mut s, Event::started_text(Stage::Interpolate, "3 α"));
    for p in [point(0.0, 80.0, 50.0), point(0.5, 82.0, 49.95)] {
        engine(&mut s, Event::SweepPoint { point: p });
    }
    // The α cursor moves over the points measured so far.
    update(&mut s, Msg::AlphaRight);
    assert_eq!(s.alpha_cursor, Some(0.5));
    s
}

#[test]
fn save_while_a_sweep_runs_is_a_request_and_the_job_goes_on() {
    let mut s = sweeping();
    assert_eq!(
        update(&mut s, Msg::Save),
        Some(Cmd::Job(JobCommand::Request(JobRequest::Save)))
    );
    assert!(s.busy, "the sweep is still running");
    assert!(s.status.contains("continues"), "{}", s.status);
    job(
        &mut s,
        JobEvent::Saved {
            dir: "sessions/x".into(),
        },
    );
    assert!(!s.unsaved && s.busy);
    assert_eq!(
        s.job.as_ref().map(|j| j.stage),
        Some(Stage::Interpolate),
        "the running job is still shown"
    );
    engine(
        &mut s,
        Event::SweepPoint {
            point: point(1.0, 84.0, 45.0),
        },
    );
    assert!(s.unsaved, "a point after the save is unsaved again");
    job(
        &mut s,
        JobEvent::Finished {
            stage: Stage::Interpolate,
        },
    );
    assert!(!s.busy);
}

#[test]
fn accept_of_a_measured_alpha_while_the_sweep_runs() {
    let mut s = sweeping();
    assert_eq!(
        update(&mut s, Msg::Accept),
        Some(Cmd::Job(JobCommand::Request(JobRequest::Accept {
            alpha: 0.5
        })))
    );
    assert!(s.busy && s.pending.is_none());
    let after = job(
        &mut s,
        JobEvent::Accepted {
            alpha: 0.5,
            path: "x/chosen.pth".into(),
        },
    );
    assert_eq!(after, None, "no corrupted set: nothing follows");
    assert_eq!(s.accepted_alpha, Some(0.5));
    assert_eq!(s.requested_accept, None);
    assert!(s.busy);
}

#[test]
fn ood_of_an_alpha_accepted_meanwhile_follows_the_job() {
    let mut s = sweeping();
    s.ood_enabled = true;
    update(&mut s, Msg::Accept);
    job(
        &mut s,
        JobEvent::Accepted {
            alpha: 0.5,
            path: "x/chosen.pth".into(),
        },
    );
    assert!(s.pending.is_some(), "OOD waits for the sweep");
    assert_eq!(
        job(
            &mut s,
            JobEvent::Finished {
                stage: Stage::Interpolate
            }
        ),
        Some(Cmd::Job(JobCommand::StartOod { alpha: 0.5 }))
    );
    // Served by the idle worker (the sweep ended first): OOD starts at once.
    let mut s = sweeping();
    s.ood_enabled = true;
    update(&mut s, Msg::Accept);
    job(
        &mut s,
        JobEvent::Finished {
            stage: Stage::Interpolate,
        },
    );
    assert!(!s.busy);
    let alpha = s.requested_accept.expect("the request is outstanding");
    assert_eq!(
        job(
            &mut s,
            JobEvent::Accepted {
                alpha,
                path: "x/chosen.pth".into(),
            }
        ),
        Some(Cmd::Job(JobCommand::StartOod { alpha }))
    );
}

#[test]
fn refused_and_failed_requests_leave_the_job_alone() {
    let mut s = sweeping();
    assert!(update(&mut s, Msg::Accept).is_some());
    assert_eq!(s.requested_accept, Some(0.5));
    job(
        &mut s,
        JobEvent::RequestFailed("α = 0.5 is not measured yet".into()),
    );
    assert!(s.busy, "the job is unaffected");
    assert_eq!(s.requested_accept, None);
    assert_eq!(s.error.as_deref(), Some("α = 0.5 is not measured yet"));
    // While fine-tuning replaces the endpoints, `a` is refused here already.
    let mut s = sweeping();
    engine(&mut s, Event::started_text(Stage::Finetune, "conv1"));
    // (Its start clears the sweep; a cursor left over from it must not be accepted.)
    s.alpha_cursor = Some(0.5);
    assert_eq!(update(&mut s, Msg::Accept), None);
    assert!(s.status.contains("fine-tuning"), "{}", s.status);
    // Read-only: nothing is sent, busy or not.
    let mut s = sweeping();
    s.read_only = Some("run".into());
    assert_eq!(update(&mut s, Msg::Save), None);
    assert_eq!(update(&mut s, Msg::Accept), None);
    assert!(s.status.contains("read-only"), "{}", s.status);
}

#[test]
fn save_during_exact_mrc_no_longer_pauses_it() {
    let mut s = state();
    update(&mut s, Msg::Start);
    engine(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 3 modules"),
    );
    assert_eq!(
        update(&mut s, Msg::Save),
        Some(Cmd::Job(JobCommand::Request(JobRequest::Save)))
    );
    assert!(s.pending.is_none() && !s.mrc_paused && s.busy);
}

#[test]
fn the_recommendation_is_provisional_until_its_rivals_are_exact() {
    let mut s = state();
    screened(&mut s);
    engine(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 3 modules"),
    );
    assert_eq!(s.provisional(), None, "nothing to recommend yet");
    engine(
        &mut s,
        Event::ModuleScored {
            score: score("layer1", 1, 0.4),
        },
    );
    let p = s.provisional().expect("1 of 3 exact");
    assert_eq!((p.exact, p.of), (1, 3));
    engine(
        &mut s,
        Event::Progress {
            stage: Stage::Mrc,
            done: 1,
            total: 3,
        },
    );
    assert!(s
        .recommendation_label()
        .contains("provisional, 1 of 3 modules exact"));
    for (name, depth, m) in [("conv1", 0, 0.2), ("fc", 2, 0.9)] {
        engine(
            &mut s,
            Event::ModuleScored {
                score: score(name, depth, m),
            },
        );
    }
    assert_eq!(s.recommended.as_deref(), Some("conv1"));
    assert_eq!(s.provisional(), None, "every module is exact");
    assert_eq!(s.recommendation_label(), "lowest MRC: recommended (Enter)");
}

/// `--screen 2`: the recommendation is final once the two chosen modules are exact, though
/// the third only has an estimate; a paused MRC keeps it provisional.
#[test]
fn with_screening_only_the_chosen_modules_count() {
    let mut s = state();
    screened(&mut s);
    engine(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 2 modules"),
    );
    engine(
        &mut s,
        Event::ModuleScored {
            score: score("layer1", 1, 0.4),
        },
    );
    let progress = |done| Event::Progress {
        stage: Stage::Mrc,
        done,
        total: 2,
    };
    engine(&mut s, progress(1));
    assert_eq!(s.provisional().map(|p| (p.exact, p.of)), Some((1, 2)));
    // Paused for another job and continued: still provisional meanwhile.
    job(&mut s, JobEvent::Cancelled);
    assert!(s.provisional().is_some());
    engine(
        &mut s,
        Event::ModuleScored {
            score: score("conv1", 0, 0.2),
        },
    );
    engine(&mut s, progress(2));
    assert_eq!(s.provisional(), None);
    job(&mut s, JobEvent::Finished { stage: Stage::Mrc });
    assert_eq!(s.provisional(), None);
}

#[test]
fn notes_from_the_follower_reach_the_status_line() {
    let mut s = state();
    s.read_only = Some("run".into());
    job(
        &mut s,
        JobEvent::Note("waiting for run (the run has not created it yet; q quits) …".into()),
    );
    assert!(s.status.starts_with("waiting for run"), "{}", s.status);
    assert!(s.error.is_none());
    assert_eq!(
        update(&mut s, Msg::Quit),
        Some(Cmd::Quit),
        "q quits while waiting"
    );
}
