//! Rendered frames of the explorer (ratatui `TestBackend` + insta) in its empty, running
//! and finished states, at 80×24 and 160×48; colours checked cell by cell for two themes.
use rift::engine::rift::events::{Event, Stage, StageAbout};
use rift::engine::rift::mrc::results::{FinetuneEpoch, SweepPoint};
use rift::jobs::JobEvent;
use rift::tui::theme::Theme;
use rift::tui::{update, view, Msg, State};

mod common;
use common::tui::{cell_colour, colour_map, ev, render, score};

fn empty() -> State {
    State::new(0.01, 0.1, 4, vec!["default".into(), "light".into()])
}

/// MRC half way: baseline known, three modules scored, a fourth ascending.
fn running() -> State {
    let mut s = empty();
    update(&mut s, Msg::Start);
    ev(
        &mut s,
        Event::started(
            Stage::Load,
            StageAbout::Model {
                arch: "resnet18-w8".into(),
                params: 176258,
                modules: 21,
                normalization: String::new(),
                device: "cpu".into(),
                zoo: None,
            },
        ),
    );
    ev(
        &mut s,
        Event::Baseline {
            clean_acc: 97.5,
            robust_acc: 81.25,
            n: 400,
        },
    );
    ev(&mut s, Event::started_text(Stage::Mrc, "6 modules"));
    for (n, d, m) in [
        ("conv1", 0, 0.42),
        ("layer1.0.conv1", 1, 0.08),
        ("layer1.0.conv2", 2, 0.17),
    ] {
        ev(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    // Progress a while after the stage started (units reported in the stage's first tick
    // count as done before it): 3 modules in 30 s.
    update(&mut s, Msg::Tick(20.0));
    ev(
        &mut s,
        Event::Progress {
            stage: Stage::Mrc,
            done: 3,
            total: 6,
        },
    );
    ev(
        &mut s,
        Event::ModuleEpoch {
            module: "layer2.0.conv1".into(),
            epoch: 1,
            loss: 0.9,
            acc: 60.0,
        },
    );
    update(&mut s, Msg::Tick(30.0));
    s
}

/// Screening done (a first-order estimate for every module, not in the paper), exact MRC
/// of the two lowest estimates done: estimate bars drawn apart from exact ones.
fn screening() -> State {
    let mut s = empty();
    update(&mut s, Msg::Start);
    for (n, d, e) in [
        ("conv1", 0, 0.03),
        ("layer1.0.conv1", 1, 0.02),
        ("layer1.0.conv2", 2, 0.05),
        ("layer2.0.conv1", 3, 0.09),
        ("layer3.0.conv1", 4, 0.12),
        ("fc", 5, 0.07),
    ] {
        ev(
            &mut s,
            Event::ModuleEstimated {
                module: n.into(),
                depth: d,
                estimate: e,
                estimate_step: None,
                kind: "conv".into(),
                shape: vec![16, 8, 3, 3],
                params: 1152,
            },
        );
    }
    ev(
        &mut s,
        Event::started_text(Stage::Mrc, "exact MRC of 6 modules, lowest estimate first"),
    );
    for (n, d, m) in [("layer1.0.conv1", 1, 0.08), ("conv1", 0, 0.42)] {
        ev(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    update(&mut s, Msg::Down);
    update(&mut s, Msg::Down);
    s
}

/// MRC finished; fine-tuning the recommended module, half way.
fn finetuning() -> State {
    let mut s = running();
    for (n, d, m) in [
        ("layer2.0.conv1", 3, 0.25),
        ("layer3.0.conv1", 4, 0.31),
        ("fc", 5, 0.66),
    ] {
        ev(
            &mut s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    update(&mut s, Msg::Job(JobEvent::Finished { stage: Stage::Mrc }));
    update(&mut s, Msg::FineTune);
    ev(
        &mut s,
        Event::started(
            Stage::Finetune,
            StageAbout::Finetune {
                layers: vec!["layer1.0.conv1".into()],
                lr: 0.01,
                epochs: 4,
                from_epoch: 0,
            },
        ),
    );
    for i in 0..100 {
        let loss = 1.0 / (1.0 + i as f64 / 20.0) + 0.05 * ((i * 7 % 5) as f64);
        ev(
            &mut s,
            Event::FinetuneIter {
                epoch: i / 50,
                iter: i,
                loss,
                lr: 0.01,
            },
        );
    }
    for e in 0..2 {
        let log = FinetuneEpoch {
            epoch: e,
            lr: 0.01,
            train_loss: 0.5,
            train_acc: 80.0 + e as f64,
            val_acc: Some(81.0 + e as f64),
            test_acc: None,
        };
        ev(&mut s, Event::FinetuneEpoch { log });
    }
    update(&mut s, Msg::Tick(45.0));
    ev(
        &mut s,
        Event::Progress {
            stage: Stage::Finetune,
            done: 100,
            total: 200,
        },
    );
    update(&mut s, Msg::Tick(60.0));
    s
}

const SWEEP: [(f64, f64, f64); 5] = [
    (0.0, 97.5, 81.25),
    (0.25, 97.9, 81.2),
    (0.5, 98.2, 81.0),
    (0.75, 98.3, 79.5),
    (1.0, 98.4, 77.0),
];

fn sweep_point(s: &mut State, (a, c, r): (f64, f64, f64)) {
    ev(
        s,
        Event::SweepPoint {
            point: SweepPoint {
                alpha: a,
                clean_acc: c,
                robust_acc: r,
                n: 400,
            },
        },
    );
}

/// Fine-tuning done; the α sweep has two of its five points.
fn sweeping() -> State {
    let mut s = finetuning();
    for i in 100..200 {
        let loss = 1.0 / (1.0 + i as f64 / 20.0) + 0.05 * ((i * 7 % 5) as f64);
        ev(
            &mut s,
            Event::FinetuneIter {
                epoch: i / 50,
                iter: i,
                loss,
                lr: 0.01,
            },
        );
    }
    for e in 2..4 {
        let log = FinetuneEpoch {
            epoch: e,
            lr: 0.01,
            train_loss: 0.5,
            train_acc: 80.0 + e as f64,
            val_acc: Some(81.0 + e as f64),
            test_acc: None,
        };
        ev(&mut s, Event::FinetuneEpoch { log });
    }
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::Finetune,
        }),
    );
    ev(
        &mut s,
        Event::started_text(Stage::Interpolate, "5 α values, 0 refinement rounds"),
    );
    for p in &SWEEP[..2] {
        sweep_point(&mut s, *p);
    }
    ev(
        &mut s,
        Event::Progress {
            stage: Stage::Interpolate,
            done: 2,
            total: 5,
        },
    );
    s
}

/// Everything done: MRC, fine-tuning, the sweep, an accepted α.
fn finished() -> State {
    let mut s = sweeping();
    for p in &SWEEP[2..] {
        sweep_point(&mut s, *p);
    }
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::Interpolate,
        }),
    );
    update(&mut s, Msg::AlphaRight);
    update(
        &mut s,
        Msg::Job(JobEvent::Accepted {
            alpha: 0.75,
            path: "sessions/demo/chosen.pth".into(),
        }),
    );
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::Accept,
        }),
    );
    s
}

/// The AutoAttack check (`e`) of the accepted α: running on the accepted model, then done.
fn autoattack(done: bool) -> State {
    use rift::engine::autoattack::ensemble::AaUpdate;
    use rift::engine::rift::events::OodModel;
    let mut s = finished();
    update(&mut s, Msg::AutoAttack);
    let about = |model| StageAbout::FinalEval {
        model,
        alpha: 0.75,
        attacks: "autoattack".into(),
        n: 400,
    };
    ev(
        &mut s,
        Event::started(Stage::FinalEval, about(OodModel::At)),
    );
    ev(
        &mut s,
        Event::started(Stage::FinalEval, about(OodModel::Chosen)),
    );
    update(&mut s, Msg::Tick(100.0));
    let started = AaUpdate::Started {
        attack: "apgd-t".into(),
        points: 300,
        done: 0,
    };
    ev(&mut s, Event::AutoAttack { update: started });
    update(&mut s, Msg::Tick(160.0));
    let progress = AaUpdate::Progress {
        attack: "apgd-t".into(),
        done: 120,
        total: 300,
    };
    ev(&mut s, Event::AutoAttack { update: progress });
    if done {
        let summary = rift::engine::rift::final_eval::FinalEvalSummary {
            alpha: 0.75,
            n: 400,
            attacks: "autoattack".into(),
            at_clean: 97.5,
            at_robust: 78.25,
            chosen_clean: 98.0,
            chosen_robust: 77.5,
            difference: -0.75,
            ci95: [-2.31, 0.8],
        };
        ev(&mut s, Event::FinalEval { summary });
        let stage = Stage::FinalEval;
        update(&mut s, Msg::Job(JobEvent::Finished { stage }));
    }
    s
}

/// A followed headless run (`--follow`): read-only keys.
fn following() -> State {
    let mut s = empty();
    s.read_only = Some("sessions/run".into());
    ev(&mut s, Event::started_text(Stage::Mrc, "6 modules"));
    ev(
        &mut s,
        Event::ModuleScored {
            score: score("conv1", 0, 0.42),
        },
    );
    s
}

#[test]
fn frames() {
    let theme = Theme::load("default").unwrap();
    for (name, s) in [
        ("empty", empty()),
        ("running", running()),
        ("screening", screening()),
        ("finetuning", finetuning()),
        ("sweeping", sweeping()),
        ("finished", finished()),
        ("autoattack", autoattack(false)),
        ("autoattack_done", autoattack(true)),
    ] {
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&s, &theme, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
        }
    }
    let t = render(&finished(), &theme, 200, 60);
    insta::assert_snapshot!("finished_200x60", t.backend());
    let t = render(&following(), &theme, 80, 24);
    insta::assert_snapshot!("following_80x24", t.backend());
}

#[test]
fn colour_maps_for_two_themes() {
    for name in ["default", "colorblind"] {
        let theme = Theme::load(name).unwrap();
        for (state, s) in [("running", running()), ("finished", finished())] {
            let t = render(&s, &theme, 80, 24);
            insta::assert_snapshot!(
                format!("colours_{state}_{name}_80x24"),
                colour_map(&t, &theme)
            );
        }
    }
}

/// Mouse clicks land where the bars and the α chart are drawn.
#[test]
fn clicks_hit_bars_and_alpha_points() {
    let s = finished();
    let area = ratatui::layout::Rect::new(0, 0, 120, 40);
    let a = view::areas(area);
    // The first bar is on the panel's first inner row; each row down is the next module.
    assert_eq!(
        view::hit(area, &s, a.bars.x + 3, a.bars.y + 1),
        Some(Msg::SelectModule(0))
    );
    assert_eq!(
        view::hit(area, &s, a.bars.x + 3, a.bars.y + 3),
        Some(Msg::SelectModule(2))
    );
    assert_eq!(
        view::hit(area, &s, a.bars.x + 3, a.bars.bottom() - 1),
        None,
        "the border"
    );
    // The α chart: its left end is α 0, its right end α 1.
    let row = a.alpha.y + a.alpha.height / 2;
    let left = view::hit(area, &s, a.alpha.x + 6, row);
    let right = view::hit(area, &s, a.alpha.right() - 2, row);
    let mut t = s.clone();
    for (msg, want) in [(left, 0.0), (right, 1.0)] {
        let msg = msg.expect("a click on the chart selects an α");
        update(&mut t, msg);
        assert_eq!(t.alpha_cursor, Some(want));
    }
    // Nothing else takes clicks; neither do overlays.
    assert_eq!(
        view::hit(area, &s, a.finetune.x + 2, a.finetune.y + 2),
        None
    );
    let mut h = s.clone();
    update(&mut h, Msg::Help);
    assert_eq!(view::hit(area, &h, a.bars.x + 3, a.bars.y + 1), None);
}

#[test]
fn help_and_quit_overlays() {
    let theme = Theme::load("default").unwrap();
    let mut s = finished();
    update(&mut s, Msg::Help);
    insta::assert_snapshot!("help_80x24", render(&s, &theme, 80, 24).backend());
    update(&mut s, Msg::Dismiss);
    update(&mut s, Msg::Quit);
    insta::assert_snapshot!("quit_80x24", render(&s, &theme, 80, 24).backend());
}

#[test]
fn colours_come_from_the_theme() {
    for name in ["default", "light"] {
        let theme = Theme::load(name).unwrap();
        let s = finished();
        let t = render(&s, &theme, 80, 24);
        // The recommended module's bar, a plain module's bar, the background, the keys.
        assert_eq!(
            cell_colour(&t, "layer1.0.conv1", "█").0,
            theme.recommended.fg.unwrap(),
            "{name}"
        );
        assert_eq!(
            cell_colour(&t, "conv1 ", "█").0,
            theme.bar.fg.unwrap(),
            "{name}"
        );
        let buf = t.backend().buffer();
        assert_eq!(buf[(0, 0)].bg, theme.base.bg.unwrap(), "{name}");
        assert_eq!(buf[(0, 0)].fg, theme.border.fg.unwrap(), "{name}");
        let (fg, bg) = cell_colour(&t, "j/k", "j");
        assert_eq!(
            (fg, bg),
            (theme.key.fg.unwrap(), theme.status.bg.unwrap()),
            "{name}"
        );
    }
    assert_ne!(
        Theme::load("default").unwrap().base,
        Theme::load("light").unwrap().base
    );
}
