use super::*;
use crate::engine::rift::mrc::results::{FinetuneEpoch, ModuleScore, SweepPoint};
use crate::tui::keys::to_msg;
use crate::tui::state::SortOrder;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub(crate) fn state() -> State {
    State::new(0.01, 0.1, 6, vec!["default".into(), "light".into()])
}

pub(crate) fn score(name: &str, depth: usize, mrc: f64) -> ModuleScore {
    ModuleScore {
        name: name.into(),
        depth,
        kind: "conv".into(),
        shape: vec![8, 8, 3, 3],
        params: 576,
        mrc,
        robust_acc_drop: 1.5,
        epoch_losses: vec![0.5, 0.7],
        epoch_accs: vec![80.0, 78.0],
        recommended: false,
        estimate: None,
        estimate_step: None,
    }
}

pub(crate) fn point(alpha: f64, clean: f64, robust: f64) -> SweepPoint {
    SweepPoint {
        alpha,
        clean_acc: clean,
        robust_acc: robust,
        n: 100,
    }
}

pub(crate) fn engine(s: &mut State, e: Event) -> Option<Cmd> {
    update(s, Msg::Job(JobEvent::Engine(e)))
}

pub(crate) fn finished(s: &mut State, stage: Stage) -> Option<Cmd> {
    update(s, Msg::Job(JobEvent::Finished { stage }))
}

/// Baseline and three modules scored; MRC finished.
pub(crate) fn after_mrc() -> State {
    let mut s = state();
    update(&mut s, Msg::Start);
    for (n, d, m) in [
        ("conv1", 0, 0.5),
        ("layer1.0.conv1", 1, 0.1),
        ("fc", 2, 0.9),
    ] {
        engine(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    finished(&mut s, Stage::Mrc);
    s
}

#[test]
fn start_asks_for_mrc_once() {
    let mut s = state();
    assert_eq!(
        update(&mut s, Msg::Start),
        Some(Cmd::Job(JobCommand::StartMrc))
    );
    assert!(s.busy);
    assert_eq!(update(&mut s, Msg::Start), None, "a second job waits");
    // Loading finishing does not end the queued job.
    finished(&mut s, Stage::Load);
    assert!(s.busy);
}

#[test]
fn mrc_events_fill_bars_and_cursor_lands_on_recommended() {
    let mut s = state();
    update(&mut s, Msg::Start);
    engine(
        &mut s,
        Event::Baseline {
            clean_acc: 90.0,
            robust_acc: 50.0,
            n: 10,
        },
    );
    engine(
        &mut s,
        Event::AdvSetReady {
            n: 10,
            loss: 1.0,
            acc: 40.0,
        },
    );
    engine(
        &mut s,
        Event::ModuleEpoch {
            module: "conv1".into(),
            epoch: 0,
            loss: 1.2,
            acc: 30.0,
        },
    );
    assert_eq!(s.mrc_running.as_ref().map(|r| r.epoch), Some(0));
    engine(
        &mut s,
        Event::Progress {
            stage: Stage::Mrc,
            done: 0,
            total: 3,
        },
    );
    for (n, d, m) in [
        ("conv1", 0, 0.5),
        ("layer1.0.conv1", 1, 0.1),
        ("fc", 2, 0.9),
    ] {
        engine(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    assert!(s.mrc_running.is_none());
    assert_eq!(s.baseline, Some((90.0, 50.0, 10)));
    assert_eq!(s.adv_set, Some((10, 1.0, 40.0)));
    assert_eq!(s.mrc_total, 3);
    assert_eq!(s.recommended.as_deref(), Some("layer1.0.conv1"));
    assert_eq!(finished(&mut s, Stage::Mrc), None);
    // The worker wrote every score as it came (and the result at the end).
    assert!(!s.busy && s.mrc_done && !s.unsaved);
    assert_eq!(
        s.selected_module().map(|m| m.name.as_str()),
        Some("layer1.0.conv1")
    );
}

#[test]
fn navigation_and_sort_keep_the_selection() {
    let mut s = after_mrc();
    update(&mut s, Msg::Up);
    update(&mut s, Msg::Up);
    assert_eq!(s.cursor, 0);
    update(&mut s, Msg::Down);
    update(&mut s, Msg::Down);
    update(&mut s, Msg::Down);
    assert_eq!(s.cursor, 2);
    assert_eq!(s.selected_module().map(|m| m.name.as_str()), Some("fc"));
    update(&mut s, Msg::Sort);
    assert_eq!(s.sort, SortOrder::Mrc);
    assert_eq!(s.selected_module().map(|m| m.name.as_str()), Some("fc"));
    assert_eq!(s.cursor, 2);
    update(&mut s, Msg::Up);
    assert_eq!(s.selected_module().map(|m| m.name.as_str()), Some("conv1"));
}

#[test]
fn enter_fine_tunes_then_the_sweep_follows() {
    let mut s = state();
    assert_eq!(update(&mut s, Msg::FineTune), None, "nothing scored");
    let mut s = after_mrc();
    update(&mut s, Msg::LrUp);
    assert_eq!(s.lr, 0.02);
    update(&mut s, Msg::LrDown);
    update(&mut s, Msg::LrDown);
    assert_eq!(s.lr, 0.005);
    let cmd = update(&mut s, Msg::FineTune);
    assert_eq!(
        cmd,
        Some(Cmd::Job(JobCommand::StartFinetune {
            layers: vec!["layer1.0.conv1".into()],
            lr: 0.005
        }))
    );
    engine(
        &mut s,
        Event::started(
            Stage::Finetune,
            StageAbout::Finetune {
                layers: vec!["layer1.0.conv1".into()],
                lr: 0.005,
                epochs: 6,
                from_epoch: 0,
            },
        ),
    );
    assert_eq!(s.ft_layers, vec!["layer1.0.conv1".to_string()]);
    engine(
        &mut s,
        Event::FinetuneIter {
            epoch: 0,
            iter: 0,
            loss: 0.9,
            lr: 0.005,
        },
    );
    let log = FinetuneEpoch {
        epoch: 0,
        lr: 0.005,
        train_loss: 0.9,
        train_acc: 70.0,
        val_acc: Some(71.0),
        test_acc: None,
    };
    engine(&mut s, Event::FinetuneEpoch { log });
    assert_eq!((s.ft_losses.len(), s.ft_epochs.len()), (1, 1));
    assert_eq!(
        finished(&mut s, Stage::Finetune),
        Some(Cmd::Job(JobCommand::StartSweep))
    );
    assert!(s.busy && s.ft_done);
}

#[test]
fn lr_is_bounded() {
    let mut s = state();
    for _ in 0..40 {
        update(&mut s, Msg::LrUp);
    }
    assert_eq!(s.lr, LR_MAX);
    for _ in 0..80 {
        update(&mut s, Msg::LrDown);
    }
    assert_eq!(s.lr, LR_MIN);
}

#[test]
fn losses_stay_bounded() {
    let mut s = state();
    for i in 0..3000 {
        engine(
            &mut s,
            Event::FinetuneIter {
                epoch: 0,
                iter: i,
                loss: 1.0,
                lr: 0.01,
            },
        );
    }
    assert!(s.ft_losses.len() <= crate::tui::state::MAX_LOSSES);
    assert!(s.ft_stride > 1);
}

fn after_sweep() -> State {
    let mut s = after_mrc();
    update(&mut s, Msg::FineTune);
    finished(&mut s, Stage::Finetune);
    for p in [
        point(0.0, 80.0, 50.0),
        point(0.5, 82.0, 49.95),
        point(1.0, 84.0, 45.0),
    ] {
        engine(&mut s, Event::SweepPoint { point: p });
    }
    finished(&mut s, Stage::Interpolate);
    s
}

#[test]
fn sweep_points_alpha_cursor_refine_accept() {
    let mut s = after_sweep();
    assert_eq!(s.best_alpha, Some(0.5));
    assert_eq!(s.alpha_cursor, Some(0.5));
    update(&mut s, Msg::AlphaRight);
    update(&mut s, Msg::AlphaRight);
    assert_eq!(s.alpha_cursor, Some(1.0));
    update(&mut s, Msg::AlphaLeft);
    update(&mut s, Msg::AlphaLeft);
    update(&mut s, Msg::AlphaLeft);
    assert_eq!(s.alpha_cursor, Some(0.0));
    update(&mut s, Msg::AlphaRight);
    assert_eq!(
        update(&mut s, Msg::Refine),
        Some(Cmd::Job(JobCommand::Refine { around: 0.5 }))
    );
    engine(
        &mut s,
        Event::SweepPoint {
            point: point(0.25, 81.0, 50.0),
        },
    );
    finished(&mut s, Stage::Refine);
    assert_eq!(s.sweep.len(), 4);
    assert_eq!(s.alpha_cursor, Some(0.5), "refining keeps the cursor");
    assert_eq!(
        update(&mut s, Msg::Accept),
        Some(Cmd::Job(JobCommand::Accept { alpha: 0.5 }))
    );
    update(
        &mut s,
        Msg::Job(JobEvent::Accepted {
            alpha: 0.5,
            path: "x/chosen.pth".into(),
        }),
    );
    finished(&mut s, Stage::Accept);
    assert_eq!(s.accepted_alpha, Some(0.5));
}

#[test]
fn accept_and_refine_need_a_sweep() {
    let mut s = state();
    assert_eq!(update(&mut s, Msg::Accept), None);
    assert_eq!(update(&mut s, Msg::Refine), None);
    update(&mut s, Msg::AlphaLeft);
    assert_eq!(s.alpha_cursor, None);
}

#[test]
fn save_clears_unsaved_and_quit_asks_first() {
    let unsaved = || {
        let mut s = after_mrc();
        s.unsaved = true; // a fine-tuning epoch or an α point, say
        s
    };
    let mut s = unsaved();
    assert_eq!(update(&mut s, Msg::Quit), None);
    assert!(s.confirm_quit && !s.quit);
    update(&mut s, Msg::Dismiss);
    assert!(!s.confirm_quit);
    assert_eq!(update(&mut s, Msg::Save), Some(Cmd::Job(JobCommand::Save)));
    update(
        &mut s,
        Msg::Job(JobEvent::Saved {
            dir: "sessions/x".into(),
        }),
    );
    finished(&mut s, Stage::Save);
    assert!(!s.unsaved);
    assert_eq!(update(&mut s, Msg::Quit), Some(Cmd::Quit));
    assert!(s.quit);
    let mut s = unsaved();
    update(&mut s, Msg::Quit);
    assert_eq!(update(&mut s, Msg::ConfirmQuit), Some(Cmd::Quit));
    let mut s = unsaved();
    assert_eq!(update(&mut s, Msg::ForceQuit), Some(Cmd::Quit));
    // A running job's progress is not on disk: q asks then too.
    let mut s = after_mrc();
    s.busy = true;
    assert_eq!(update(&mut s, Msg::Quit), None);
    assert!(s.confirm_quit);
}

#[test]
fn cancel_failures_and_the_worker_ending() {
    let mut s = state();
    assert_eq!(update(&mut s, Msg::Cancel), None);
    update(&mut s, Msg::Start);
    assert_eq!(update(&mut s, Msg::Cancel), Some(Cmd::Cancel));
    update(&mut s, Msg::Job(JobEvent::Cancelled));
    assert!(!s.busy);
    update(&mut s, Msg::Start);
    update(&mut s, Msg::Job(JobEvent::Failed("no data".into())));
    assert_eq!(s.error.as_deref(), Some("no data"));
    assert!(!s.busy);
    engine(
        &mut s,
        Event::Warning {
            message: "diverged".into(),
        },
    );
    assert!(s.status.contains("diverged"));
    engine(
        &mut s,
        Event::Failed {
            message: "bad".into(),
        },
    );
    assert_eq!(s.error.as_deref(), Some("bad"));
    update(&mut s, Msg::WorkerGone);
    assert!(s.worker_gone);
    assert_eq!(update(&mut s, Msg::Start), None);
}

#[test]
fn theme_help_tick_and_progress() {
    let mut s = state();
    update(&mut s, Msg::NextTheme);
    assert_eq!(s.theme_name(), "light");
    update(&mut s, Msg::NextTheme);
    assert_eq!(s.theme, 0);
    update(&mut s, Msg::Help);
    assert!(s.help);
    update(&mut s, Msg::Help);
    assert!(!s.help);
    update(&mut s, Msg::Tick(10.0));
    engine(&mut s, Event::started_text(Stage::Baseline, String::new()));
    // A unit reported in the tick the stage started counts as done before it (see
    // `JobStatus::record`): this one comes a tick later.
    update(&mut s, Msg::Tick(11.0));
    engine(
        &mut s,
        Event::Progress {
            stage: Stage::Baseline,
            done: 1,
            total: 4,
        },
    );
    update(&mut s, Msg::Tick(12.0));
    let p = s.progress().unwrap();
    assert_eq!(p.frac, Some(0.25));
    assert_eq!(p.rate, Some(0.5));
    assert_eq!(p.left, Some(6.0));
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn every_key_maps() {
    let s = state();
    let cases = [
        (KeyCode::Char('j'), Msg::Down),
        (KeyCode::Down, Msg::Down),
        (KeyCode::Char('k'), Msg::Up),
        (KeyCode::Up, Msg::Up),
        (KeyCode::Enter, Msg::FineTune),
        (KeyCode::Char('['), Msg::LrDown),
        (KeyCode::Char(']'), Msg::LrUp),
        (KeyCode::Char('h'), Msg::AlphaLeft),
        (KeyCode::Left, Msg::AlphaLeft),
        (KeyCode::Char('l'), Msg::AlphaRight),
        (KeyCode::Right, Msg::AlphaRight),
        (KeyCode::Char('r'), Msg::Refine),
        (KeyCode::Char('a'), Msg::Accept),
        (KeyCode::Char('s'), Msg::Save),
        (KeyCode::Char('o'), Msg::Sort),
        (KeyCode::Char('t'), Msg::NextTheme),
        (KeyCode::Char('c'), Msg::Cancel),
        (KeyCode::Char('?'), Msg::Help),
        (KeyCode::Esc, Msg::Dismiss),
        (KeyCode::Char('q'), Msg::Quit),
    ];
    for (k, m) in cases {
        assert_eq!(to_msg(key(k), &s), Some(m), "{k:?}");
    }
    assert_eq!(to_msg(key(KeyCode::Char('z')), &s), None);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(to_msg(ctrl_c, &s), Some(Msg::ForceQuit));
    let mut s = after_mrc();
    s.unsaved = true;
    update(&mut s, Msg::Quit);
    assert_eq!(to_msg(key(KeyCode::Char('y')), &s), Some(Msg::ConfirmQuit));
    assert_eq!(to_msg(key(KeyCode::Char('n')), &s), Some(Msg::Dismiss));
    assert_eq!(to_msg(key(KeyCode::Char('s')), &s), Some(Msg::Save));
    let mut s = state();
    update(&mut s, Msg::Help);
    assert_eq!(to_msg(key(KeyCode::Char('x')), &s), Some(Msg::Dismiss));
}

#[test]
fn clicks_select_modules_and_the_nearest_alpha() {
    let mut s = after_sweep();
    update(&mut s, Msg::SelectModule(2));
    assert_eq!(s.cursor, 2);
    update(&mut s, Msg::SelectModule(99));
    assert_eq!(s.cursor, 2, "a click past the last bar changes nothing");
    update(&mut s, Msg::SelectAlpha(0.97));
    assert_eq!(s.alpha_cursor, Some(1.0));
    update(&mut s, Msg::SelectAlpha(0.3));
    assert_eq!(s.alpha_cursor, Some(0.5));
    let mut empty = state();
    update(&mut empty, Msg::SelectAlpha(0.3));
    assert_eq!(empty.alpha_cursor, None);
}

#[test]
fn a_followed_run_is_read_only() {
    let mut s = state();
    s.read_only = Some("sessions/x".into());
    engine(&mut s, Event::started_text(Stage::Mrc, "3 modules"));
    assert!(s.busy, "a followed stage shows as running");
    engine(
        &mut s,
        Event::ModuleScored {
            score: score("conv1", 0, 0.2),
        },
    );
    for msg in [Msg::FineTune, Msg::Save, Msg::Start] {
        assert_eq!(update(&mut s, msg), None);
        assert!(s.status.contains("read-only"), "{}", s.status);
    }
    s.sweep = vec![point(0.0, 80.0, 50.0)];
    s.alpha_cursor = Some(0.0);
    for msg in [Msg::Accept, Msg::Refine] {
        assert_eq!(update(&mut s, msg), None);
        assert!(s.status.contains("read-only"), "{}", s.status);
    }
    assert_eq!(update(&mut s, Msg::Cancel), None);
    // The end of fine-tuning in the followed run starts nothing here.
    assert_eq!(finished(&mut s, Stage::Finetune), None);
    // Nothing of this process is unsaved: q leaves at once.
    assert_eq!(update(&mut s, Msg::Quit), Some(Cmd::Quit));
}

#[test]
fn loading_alone_leaves_no_job_behind() {
    let mut s = state();
    engine(&mut s, Event::started_text(Stage::Load, "resnet18"));
    finished(&mut s, Stage::Load);
    assert_eq!(s.job, None);
    // While MRC is queued, the load finishing does not end it.
    let mut s = state();
    update(&mut s, Msg::Start);
    engine(&mut s, Event::started_text(Stage::Load, "resnet18"));
    finished(&mut s, Stage::Load);
    assert!(s.busy);
}

#[test]
fn accepting_with_a_corrupted_set_evaluates_ood() {
    use crate::engine::rift::mrc::results::CorruptionAcc;
    let corruption = |name: &str, acc: f64| CorruptionAcc {
        name: name.into(),
        acc,
        by_severity: Default::default(),
        n: 100,
    };
    let mut s = after_sweep();
    s.ood_enabled = true;
    update(&mut s, Msg::Accept);
    update(
        &mut s,
        Msg::Job(JobEvent::Accepted {
            alpha: 0.5,
            path: "x".into(),
        }),
    );
    assert_eq!(
        finished(&mut s, Stage::Accept),
        Some(Cmd::Job(JobCommand::StartOod { alpha: 0.5 }))
    );
    for ((model, alpha), accs) in [
        ((OodModel::At, 0.0), [60.0, 70.0]),
        ((OodModel::Chosen, 0.5), [64.0, 72.0]),
    ] {
        engine(
            &mut s,
            Event::started(
                Stage::Ood,
                StageAbout::Ood {
                    model,
                    alpha,
                    corruptions: 2,
                },
            ),
        );
        for (name, acc) in ["fog", "snow"].iter().zip(accs) {
            engine(
                &mut s,
                Event::Corruption {
                    result: corruption(name, acc),
                },
            );
        }
    }
    finished(&mut s, Stage::Ood);
    assert_eq!(s.ood_means(), (Some(65.0), Some(68.0)));
    assert!(!s.busy);
    // Without a corrupted set, accepting starts nothing more.
    let mut s = after_sweep();
    update(&mut s, Msg::Accept);
    assert_eq!(finished(&mut s, Stage::Accept), None);
}

pub(crate) fn estimated(s: &mut State, name: &str, depth: usize, estimate: f64) {
    engine(
        s,
        Event::ModuleEstimated {
            module: name.into(),
            depth,
            estimate,
            estimate_step: None,
            kind: "conv".into(),
            shape: vec![8, 8, 3, 3],
            params: 576,
        },
    );
}
