//! Pure `update` tests of the explorer's AutoAttack check (`e`): starting it, per-attack
//! progress with throughput and time left, the result in the state, cancelling.
use super::*;
use crate::engine::autoattack::ensemble::AttackOutcome;
use crate::engine::rift::events::Event;
use crate::jobs::JobEvent;
use crate::tui::keys::{to_msg, HELP};
use crate::tui::update::{update, Cmd, Msg};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn state() -> State {
    State::new(0.01, 0.1, 6, vec!["default".into()])
}

fn engine(s: &mut State, e: Event) -> Option<Cmd> {
    update(s, Msg::Job(JobEvent::Engine(e)))
}

fn aa(s: &mut State, u: AaUpdate) {
    engine(s, Event::AutoAttack { update: u });
}

fn stage(s: &mut State, model: OodModel) {
    engine(
        s,
        Event::started(
            Stage::FinalEval,
            StageAbout::FinalEval {
                model,
                alpha: if model == OodModel::At { 0.0 } else { 0.5 },
                attacks: "autoattack".into(),
                n: 100,
            },
        ),
    );
}

fn outcome(attack: &str, robust_acc: f64) -> AaUpdate {
    AaUpdate::Finished {
        outcome: AttackOutcome {
            attack: attack.into(),
            robust_acc,
            robust: robust_acc as usize,
            evaluated: 100,
            seconds: 1.0,
            resumed: false,
        },
    }
}

fn summary() -> FinalEvalSummary {
    FinalEvalSummary {
        alpha: 0.5,
        n: 100,
        attacks: "autoattack".into(),
        at_clean: 80.0,
        at_robust: 45.0,
        chosen_clean: 83.0,
        chosen_robust: 44.0,
        difference: -1.0,
        ci95: [-3.5, 1.4],
    }
}

/// An idle explorer with α = 0.5 accepted.
fn accepted() -> State {
    let mut s = state();
    s.accepted_alpha = Some(0.5);
    s
}

#[test]
fn e_is_a_listed_key_for_the_check() {
    let s = state();
    let key = KeyEvent::new(KeyCode::Char('e'), KeyModifiers::NONE);
    assert_eq!(to_msg(key, &s), Some(Msg::AutoAttack));
    assert!(HELP
        .iter()
        .any(|(k, what)| *k == "e" && what.contains("AutoAttack")));
}

#[test]
fn needs_an_accepted_alpha() {
    let mut s = state();
    assert_eq!(update(&mut s, Msg::AutoAttack), None);
    assert!(!s.busy);
    assert!(s.status.contains("accept an α first"), "{}", s.status);
}

#[test]
fn starts_the_worker_job_on_the_accepted_alpha() {
    let mut s = accepted();
    assert_eq!(
        update(&mut s, Msg::AutoAttack),
        Some(Cmd::Job(JobCommand::StartFinalEval { alpha: 0.5 }))
    );
    assert!(s.busy);
    // A second press while it runs starts nothing.
    assert_eq!(update(&mut s, Msg::AutoAttack), None);
}

#[test]
fn read_only_explorer_starts_nothing() {
    let mut s = accepted();
    s.read_only = Some("sessions/x".into());
    assert_eq!(update(&mut s, Msg::AutoAttack), None);
    assert!(!s.busy);
}

#[test]
fn progress_per_attack_with_rate_and_time_left() {
    let mut s = accepted();
    update(&mut s, Msg::AutoAttack);
    stage(&mut s, OodModel::At);
    assert_eq!(s.aa.model, Some(OodModel::At));
    update(&mut s, Msg::Tick(10.0));
    aa(
        &mut s,
        AaUpdate::Started {
            attack: "apgd-ce".into(),
            points: 80,
            done: 0,
        },
    );
    update(&mut s, Msg::Tick(14.0));
    aa(
        &mut s,
        AaUpdate::Progress {
            attack: "apgd-ce".into(),
            done: 20,
            total: 80,
        },
    );
    let r = s.aa.running.clone().unwrap();
    assert_eq!(
        (r.model, r.attack.as_str(), r.done, r.total),
        (OodModel::At, "apgd-ce", 20, 80)
    );
    let (rate, left) = r.rate(s.now).unwrap();
    assert!((rate - 5.0).abs() < 1e-12 && (left - 12.0).abs() < 1e-12);
    // The status bar's bar and ETA follow the attack, not the whole check.
    let j = s.job.clone().unwrap();
    assert_eq!((j.stage, j.done, j.total), (Stage::FinalEval, 20, 80));
    assert_eq!(s.progress().unwrap().left, Some(12.0));
    aa(&mut s, outcome("apgd-ce", 50.0));
    assert!(s.aa.running.is_none());
    assert_eq!(s.aa.at_attacks, vec![("apgd-ce".to_string(), 50.0)]);
}

#[test]
fn a_resumed_attack_measures_only_fresh_points() {
    let mut s = accepted();
    update(&mut s, Msg::AutoAttack);
    stage(&mut s, OodModel::Chosen);
    aa(
        &mut s,
        AaUpdate::Started {
            attack: "square".into(),
            points: 100,
            done: 60,
        },
    );
    update(&mut s, Msg::Tick(4.0));
    aa(
        &mut s,
        AaUpdate::Progress {
            attack: "square".into(),
            done: 80,
            total: 100,
        },
    );
    let r = s.aa.running.clone().unwrap();
    let (rate, left) = r.rate(s.now).unwrap();
    assert!((rate - 5.0).abs() < 1e-12 && (left - 4.0).abs() < 1e-12);
    let j = s.job.clone().unwrap();
    assert_eq!((j.done, j.total), (20, 40));
}

#[test]
fn the_result_stays_after_the_job() {
    let mut s = accepted();
    update(&mut s, Msg::AutoAttack);
    stage(&mut s, OodModel::At);
    aa(&mut s, outcome("apgd-ce", 50.0));
    stage(&mut s, OodModel::Chosen);
    aa(&mut s, outcome("apgd-ce", 49.0));
    assert_eq!(s.aa.at_attacks.len(), 1, "the AT model's numbers stay");
    assert_eq!(s.aa.chosen_attacks, vec![("apgd-ce".to_string(), 49.0)]);
    engine(&mut s, Event::FinalEval { summary: summary() });
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::FinalEval,
        }),
    );
    assert!(!s.busy && s.job.is_none());
    assert_eq!(s.aa.result, Some(summary()));
    assert!(s.unsaved);
    assert!(s.status.contains("Δ -1.00 [-3.50, +1.40]"), "{}", s.status);
    // The next check starts clean.
    update(&mut s, Msg::AutoAttack);
    stage(&mut s, OodModel::At);
    assert_eq!(s.aa.result, None);
    assert!(s.aa.at_attacks.is_empty());
}

#[test]
fn cancel_key_stops_the_check() {
    let mut s = accepted();
    update(&mut s, Msg::AutoAttack);
    stage(&mut s, OodModel::At);
    aa(
        &mut s,
        AaUpdate::Started {
            attack: "fab-t".into(),
            points: 10,
            done: 0,
        },
    );
    let key = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
    let msg = to_msg(key, &s).unwrap();
    assert_eq!(update(&mut s, msg), Some(Cmd::Cancel));
    update(&mut s, Msg::Job(JobEvent::Cancelled));
    assert!(!s.busy && s.aa.running.is_none() && s.aa.result.is_none());
}

#[test]
fn fine_tuning_again_drops_the_check() {
    let mut s = accepted();
    engine(&mut s, Event::FinalEval { summary: summary() });
    engine(
        &mut s,
        Event::started(
            Stage::Finetune,
            StageAbout::Finetune {
                layers: vec!["fc".into()],
                lr: 0.01,
                epochs: 1,
                from_epoch: 0,
            },
        ),
    );
    assert_eq!(s.aa, AaCheck::default());
}
