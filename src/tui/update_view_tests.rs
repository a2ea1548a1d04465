//! Pure `update` tests of what the explorer's views read: the α view key, the rate and
//! time left of long jobs, epoch boundaries of the fine-tuning chart, and the status
//! lines of the follower and of an accepted α.
use super::*;
use crate::engine::rift::mrc::results::SweepPoint;
use crate::tui::keys::to_msg;
use crate::tui::state::AlphaView;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn state() -> State {
    State::new(0.01, 0.5, 3, vec!["default".into()])
}

fn engine(s: &mut State, e: Event) -> Option<Cmd> {
    update(s, Msg::Job(JobEvent::Engine(e)))
}

fn progress(s: &mut State, stage: Stage, done: usize, total: usize) {
    engine(s, Event::Progress { stage, done, total });
}

#[test]
fn v_switches_the_alpha_view_and_back() {
    let mut s = state();
    assert_eq!(s.alpha_view, AlphaView::Delta);
    let v = KeyEvent::new(KeyCode::Char('v'), KeyModifiers::NONE);
    let msg = to_msg(v, &s).expect("v is bound");
    assert_eq!(msg, Msg::AlphaView);
    assert_eq!(
        update(&mut s, msg.clone()),
        None,
        "a view change starts nothing"
    );
    assert_eq!(s.alpha_view, AlphaView::Plane);
    update(&mut s, msg);
    assert_eq!(s.alpha_view, AlphaView::Delta);
    // A follower may look at either view too.
    s.read_only = Some("sessions/run".into());
    update(&mut s, Msg::AlphaView);
    assert_eq!(s.alpha_view, AlphaView::Plane);
    // The help overlay lists the key.
    assert!(crate::tui::keys::HELP.iter().any(|(k, _)| *k == "v"));
}

#[test]
fn the_delta_baseline_is_the_alpha_zero_point_else_the_at_baseline() {
    let mut s = state();
    engine(
        &mut s,
        Event::Baseline {
            clean_acc: 90.0,
            robust_acc: 50.0,
            n: 100,
        },
    );
    assert_eq!(s.alpha_baseline(), Some((90.0, 50.0)));
    let point = |alpha, clean_acc, robust_acc| SweepPoint {
        alpha,
        clean_acc,
        robust_acc,
        n: 100,
    };
    for p in [point(0.5, 91.5, 49.75), point(0.0, 90.25, 50.5)] {
        engine(&mut s, Event::SweepPoint { point: p });
    }
    // The sweep's own α = 0 point (same samples as the others) wins over the baseline.
    assert_eq!(s.alpha_baseline(), Some((90.25, 50.5)));
    assert_eq!(
        s.alpha_deltas(),
        vec![(0.0, 0.0, 0.0), (0.5, 91.5 - 90.25, 49.75 - 50.5)]
    );
}

/// Rate and time left for a long job, from `Progress` and the `Tick` clock only.
#[test]
fn long_jobs_have_a_rate_and_time_left() {
    let mut s = state();
    update(&mut s, Msg::Tick(100.0));
    engine(&mut s, Event::started_text(Stage::Finetune, "conv1"));
    update(&mut s, Msg::Tick(104.0));
    progress(&mut s, Stage::Finetune, 20, 120);
    let p = s.progress().expect("a job runs");
    assert_eq!(p.frac, Some(20.0 / 120.0));
    assert_eq!(p.rate, Some(5.0));
    assert_eq!(p.left, Some(20.0));
    // Between events the clock runs on: the same work over more time.
    update(&mut s, Msg::Tick(110.0));
    let p = s.progress().expect("a job runs");
    assert_eq!(p.rate, Some(2.0));
    assert_eq!(p.left, Some(50.0));
}

/// A continued MRC first reports the modules it already has (in the tick it starts):
/// they do not make the rate look fast.
#[test]
fn units_done_before_the_stage_do_not_count_in_the_rate() {
    let mut s = state();
    update(&mut s, Msg::Tick(50.0));
    engine(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 11 modules"),
    );
    progress(&mut s, Stage::Mrc, 10, 21);
    assert_eq!(s.mrc_total, 21);
    update(&mut s, Msg::Tick(60.0));
    let p = s.progress().expect("a job runs");
    assert_eq!(p.frac, Some(10.0 / 21.0));
    assert_eq!(p.rate, None, "no module of this run is done yet");
    progress(&mut s, Stage::Mrc, 12, 21);
    update(&mut s, Msg::Tick(70.0));
    let p = s.progress().expect("a job runs");
    assert_eq!(p.rate, Some(0.1), "2 modules in 20 s");
    assert!((p.left.expect("time left") - 90.0).abs() < 1e-9);
    // Before any Progress the total is unknown: no fraction to show.
    engine(
        &mut s,
        Event::started_text(Stage::Interpolate, "5 α values"),
    );
    assert_eq!(s.progress().map(|p| p.frac), Some(None));
}

#[test]
fn epoch_boundaries_follow_the_iterations() {
    let mut s = state();
    let about = crate::engine::rift::events::StageAbout::Finetune {
        layers: vec!["conv1".into()],
        lr: 0.01,
        epochs: 3,
        from_epoch: 0,
    };
    engine(&mut s, Event::started(Stage::Finetune, about));
    for epoch in 0..3 {
        for iter in 0..7 {
            let loss = 1.0 / (1 + epoch * 7 + iter) as f64;
            engine(
                &mut s,
                Event::FinetuneIter {
                    epoch,
                    iter,
                    loss,
                    lr: 0.01,
                },
            );
        }
    }
    assert_eq!(s.ft_iters, 21);
    assert_eq!(s.ft_epoch_starts, vec![0, 7, 14]);
    // A new fine-tuning starts from nothing.
    let about = crate::engine::rift::events::StageAbout::Finetune {
        layers: vec!["fc".into()],
        lr: 0.01,
        epochs: 1,
        from_epoch: 0,
    };
    engine(&mut s, Event::started(Stage::Finetune, about));
    assert_eq!((s.ft_iters, s.ft_epoch_starts.len()), (0, 0));
}

/// The follower cannot fine-tune: MRC's end does not offer Enter there.
#[test]
fn a_followed_mrc_ends_without_a_key_to_press() {
    let mut s = state();
    s.read_only = Some("sessions/run".into());
    engine(&mut s, Event::started_text(Stage::Mrc, "21 modules"));
    update(&mut s, Msg::Job(JobEvent::Finished { stage: Stage::Mrc }));
    assert_eq!(s.status, "MRC done");
    let mut own = state();
    update(&mut own, Msg::Start);
    update(&mut own, Msg::Job(JobEvent::Finished { stage: Stage::Mrc }));
    assert!(own.status.contains("Enter"), "{}", own.status);
}

/// Accepting writes the weights but not the session: the status says what was written
/// and what `s` still saves; saving clears the unsaved mark.
#[test]
fn accepted_then_saved_reads_consistently() {
    let mut s = state();
    let accepted = JobEvent::Accepted {
        alpha: 0.4,
        path: "/tmp/sessions/demo/chosen.pth".into(),
    };
    update(&mut s, Msg::Job(accepted));
    assert!(s.unsaved);
    assert_eq!(
        s.status,
        "α = 0.4 accepted: wrote chosen.pth; s saves the session"
    );
    let saved = JobEvent::Saved {
        dir: "/tmp/sessions/demo".into(),
    };
    update(&mut s, Msg::Job(saved));
    assert!(!s.unsaved);
    assert!(s.status.starts_with("session saved"), "{}", s.status);
}
