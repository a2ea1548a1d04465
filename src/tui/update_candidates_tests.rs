//! Pure `update` tests of several candidates in one session: Enter on another module
//! adds one, the compare view switches between them, the accepted α is per candidate,
//! and a resumed `rift compare` directory opens on its candidates.
use super::compare_rows::{compare_rows, AlphaKind};
use super::state::State;
use super::update::tests::{after_mrc, engine, finished, point, state};
use super::update::{update, Cmd, Msg};
use crate::engine::rift::events::{Event, Stage, StageAbout};
use crate::engine::rift::mrc::results::SweepPoint;
use crate::jobs::{CandidateSummary, JobCommand, JobEvent};
use crate::report::session::Session;

fn example() -> Session {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/example-demo");
    Session::load(&dir).expect("example session")
}

fn summary(
    label: &str,
    points: Vec<SweepPoint>,
    accepted: Option<f64>,
    shown: bool,
) -> CandidateSummary {
    CandidateSummary {
        label: label.into(),
        modules: label.split('+').map(str::to_string).collect(),
        trained_params: 100,
        points,
        accepted,
        dir: if shown {
            ".".into()
        } else {
            format!("candidates/{label}")
        },
        shown,
    }
}

fn curve(gain: f64) -> Vec<SweepPoint> {
    vec![
        point(0.0, 80.0, 50.0),
        point(0.5, 80.0 + gain, 49.95),
        point(1.0, 80.0 + 2.0 * gain, 40.0),
    ]
}

/// `name` fine-tuned (as the worker reports it) and swept with `curve(gain)`.
fn fine_tuned(s: &mut State, name: &str, gain: f64) {
    let about = StageAbout::Finetune {
        layers: vec![name.into()],
        epochs: 1,
        from_epoch: 0,
        lr: 0.01,
    };
    engine(s, Event::started(Stage::Finetune, about));
    let next = finished(s, Stage::Finetune);
    assert_eq!(next, Some(Cmd::Job(JobCommand::StartSweep)));
    engine(s, Event::started_text(Stage::Interpolate, "3 α"));
    for p in curve(gain) {
        engine(s, Event::SweepPoint { point: p });
    }
    finished(s, Stage::Interpolate);
}

fn job(s: &mut State, e: JobEvent) -> Option<Cmd> {
    update(s, Msg::Job(e))
}

/// Two modules scored; `conv1` fine-tuned and swept, α 0.5 accepted, listed by the worker.
fn one_candidate() -> State {
    let mut s = after_mrc();
    s.select_module("conv1");
    assert!(update(&mut s, Msg::FineTune).is_some());
    fine_tuned(&mut s, "conv1", 1.0);
    job(
        &mut s,
        JobEvent::Accepted {
            alpha: 0.5,
            path: "s/chosen.pth".into(),
        },
    );
    finished(&mut s, Stage::Accept);
    job(
        &mut s,
        JobEvent::Candidates(vec![summary("conv1", curve(1.0), Some(0.5), true)]),
    );
    s
}

#[test]
fn enter_on_another_module_adds_a_candidate_and_keeps_the_first() {
    let mut s = one_candidate();
    s.select_module("fc");
    assert_eq!(
        update(&mut s, Msg::FineTune),
        Some(Cmd::Job(JobCommand::StartFinetune {
            layers: vec!["fc".into()],
            lr: s.lr
        }))
    );
    // The worker puts a fresh session on display before fine-tuning it.
    let mut fresh = example();
    fresh.finetune = None;
    fresh.interpolation = None;
    fresh.chosen = None;
    fresh.settings.layer = "fc".into();
    job(&mut s, JobEvent::CandidateShown(Box::new(fresh)));
    assert!(s.sweep.is_empty() && s.accepted_alpha.is_none() && s.ft_layers.is_empty());
    assert!(!s.modules.is_empty(), "MRC is shared and stays");
    fine_tuned(&mut s, "fc", 0.5);
    let rows = compare_rows(&s);
    let labels: Vec<(&str, bool)> = rows.iter().map(|r| (r.label.as_str(), r.shown)).collect();
    assert_eq!(labels, vec![("conv1", false), ("fc", true)]);
    assert_eq!(rows[0].points, curve(1.0), "the first keeps its α curve");
    let d0 = rows[0].delta().unwrap();
    assert_eq!((d0.alpha, d0.kind), (0.5, AlphaKind::Accepted));
    assert!((d0.clean - 1.0).abs() < 1e-12 && (d0.robust + 0.05).abs() < 1e-12);
    // The new one has nothing accepted: the rule's α (0.5, within 0.1 of AT) stands in.
    let d1 = rows[1].delta().unwrap();
    assert_eq!((d1.alpha, d1.kind), (0.5, AlphaKind::Rule));
    assert!((d1.clean - 0.5).abs() < 1e-12);
}

#[test]
fn the_compare_view_switches_candidates_and_accepts_per_candidate() {
    let mut s = one_candidate();
    // The worker's list once `fc` is the second candidate, on display.
    s.select_module("fc");
    update(&mut s, Msg::FineTune);
    fine_tuned(&mut s, "fc", 0.5);
    job(
        &mut s,
        JobEvent::Candidates(vec![
            summary("conv1", curve(1.0), Some(0.5), false),
            summary("fc", curve(0.5), None, true),
        ]),
    );
    // Accepting on `fc` is its own: conv1's stays 0.5.
    s.alpha_cursor = Some(1.0);
    assert_eq!(
        update(&mut s, Msg::Accept),
        Some(Cmd::Job(JobCommand::Accept { alpha: 1.0 }))
    );
    job(
        &mut s,
        JobEvent::Accepted {
            alpha: 1.0,
            path: "s/candidates/fc/chosen.pth".into(),
        },
    );
    finished(&mut s, Stage::Accept);
    let rows = compare_rows(&s);
    assert_eq!((rows[0].accepted, rows[1].accepted), (Some(0.5), Some(1.0)));

    // `m` opens the view on the candidate on display; ↑ selects conv1, the module
    // cursor does not move; Enter asks the worker to show it.
    let module_cursor = s.cursor;
    update(&mut s, Msg::CompareView);
    assert!(s.compare_view);
    assert_eq!(s.candidate_cursor, 1);
    update(&mut s, Msg::Up);
    assert_eq!((s.candidate_cursor, s.cursor), (0, module_cursor));
    update(&mut s, Msg::Up);
    assert_eq!(s.candidate_cursor, 0, "stays on the first");
    assert_eq!(
        update(&mut s, Msg::ShowCandidate),
        Some(Cmd::Job(JobCommand::ShowCandidate {
            label: "conv1".into()
        }))
    );
    // The worker answers with conv1's saved session.
    let mut saved = example();
    let layers = saved.finetune.as_ref().unwrap().layers.clone();
    let points = saved.interpolation.as_ref().unwrap().points.clone();
    let accepted = saved.chosen.as_ref().map(|c| c.alpha);
    saved.ood_chosen = None;
    job(&mut s, JobEvent::CandidateShown(Box::new(saved)));
    finished(&mut s, Stage::Candidate);
    assert!(!s.compare_view && !s.busy);
    assert_eq!(s.ft_layers, layers);
    assert_eq!(s.sweep, points);
    assert_eq!(s.accepted_alpha, accepted);
    assert_eq!(s.alpha_cursor, accepted);
    assert!(s.status.contains("showing candidate"), "{}", s.status);
    // Enter on the candidate already shown just closes the view.
    job(
        &mut s,
        JobEvent::Candidates(vec![
            summary("conv1", points.clone(), accepted, true),
            summary("fc", curve(0.5), Some(1.0), false),
        ]),
    );
    update(&mut s, Msg::CompareView);
    assert_eq!(s.candidate_cursor, 0);
    assert_eq!(update(&mut s, Msg::ShowCandidate), None);
    assert!(!s.compare_view);
    // Esc also closes it.
    update(&mut s, Msg::CompareView);
    update(&mut s, Msg::Dismiss);
    assert!(!s.compare_view);
}

#[test]
fn a_resumed_comparison_opens_on_its_candidates() {
    let mut s = state();
    let mut root = example();
    root.finetune = None;
    root.interpolation = None;
    root.chosen = None;
    super::restore::restore(&mut s, &root);
    assert!(s.ft_layers.is_empty());
    job(
        &mut s,
        JobEvent::Candidates(vec![
            summary("all", curve(2.0), None, false),
            summary("rift", curve(1.0), Some(0.5), false),
        ]),
    );
    assert!(
        s.compare_view,
        "nothing else to show: the view opens by itself"
    );
    assert!(s.status.starts_with("2 candidates"), "{}", s.status);
    assert_eq!(compare_rows(&s).len(), 2);
    // A session with a candidate on display stays as it was.
    let mut s = one_candidate();
    s.candidates.clear();
    job(
        &mut s,
        JobEvent::Candidates(vec![summary("conv1", curve(1.0), Some(0.5), true)]),
    );
    assert!(!s.compare_view);
}

#[test]
fn a_follower_cannot_switch_candidates() {
    let mut s = one_candidate();
    s.read_only = Some("runs/x".into());
    s.candidates.push(summary("fc", curve(0.5), None, false));
    update(&mut s, Msg::CompareView);
    update(&mut s, Msg::Down);
    assert_eq!(update(&mut s, Msg::ShowCandidate), None);
    assert!(s.status.contains("read-only"), "{}", s.status);
}

#[test]
fn following_a_comparison_keeps_every_candidates_curve() {
    let mut s = state();
    s.read_only = Some("runs/cmp".into());
    for (i, (label, gain)) in [("rift", 1.0), ("last", 0.5)].into_iter().enumerate() {
        let about = StageAbout::Candidate {
            label: label.into(),
            index: i + 1,
            total: 2,
            modules: vec![format!("{label}.module")],
        };
        engine(&mut s, Event::started(Stage::Candidate, about));
        let ft = StageAbout::Finetune {
            layers: vec![format!("{label}.module")],
            epochs: 1,
            from_epoch: 0,
            lr: 0.01,
        };
        engine(&mut s, Event::started(Stage::Finetune, ft));
        for p in curve(gain) {
            engine(&mut s, Event::SweepPoint { point: p });
        }
    }
    let rows = compare_rows(&s);
    let got: Vec<(&str, bool, usize)> = rows
        .iter()
        .map(|r| (r.label.as_str(), r.shown, r.points.len()))
        .collect();
    assert_eq!(got, vec![("rift", false, 3), ("last", true, 3)]);
    assert_eq!(rows[0].points, curve(1.0));
    assert_eq!(rows[1].points, curve(0.5));
}
