//! The explorer's α views (changes from AT against α; the clean-vs-robust plane) and the
//! fine-tuning chart, drawn on a `TestBackend` at 80×24 and 160×48 (insta snapshots),
//! their colours for two themes, and the Δ numbers read back from the screen against the
//! state's own sweep points.
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use rift::engine::rift::events::{Event, Stage, StageAbout};
use rift::engine::rift::mrc::results::{FinetuneEpoch, SweepPoint};
use rift::jobs::JobEvent;
use rift::tui::state::AlphaView;
use rift::tui::theme::Theme;
use rift::tui::{update, Msg, State};

mod common;
use common::tui::{cell_colour, colour_map, ev, finish, render, screen_rows, three_modules_scored};

const TOLERANCE: f64 = 0.5;

/// (α, clean %, robust %): clean gains up to 1.4 points; robust holds within the
/// tolerance up to α = 0.4 and then falls, so the rule picks 0.4.
const SWEEP: [(f64, f64, f64); 11] = [
    (0.0, 84.2, 52.6),
    (0.1, 84.5, 52.7),
    (0.2, 84.9, 52.5),
    (0.3, 85.1, 52.4),
    (0.4, 85.3, 52.3),
    (0.5, 85.4, 52.0),
    (0.6, 85.5, 51.8),
    (0.7, 85.6, 51.5),
    (0.8, 85.5, 51.1),
    (0.9, 85.4, 50.6),
    (1.0, 85.2, 50.1),
];
const RULE: f64 = 0.4;
const ACCEPTED: f64 = 0.3;
const EPOCHS: usize = 3;
const ITERS: usize = 40;

/// A loss that falls with noise and steps down when the lr drops after epoch 2.
fn loss(i: usize) -> f64 {
    let lr_drop = if i >= 2 * ITERS { 0.15 } else { 0.0 };
    1.4 / (1.0 + i as f64 / 15.0) + 0.08 * ((i * 5 % 7) as f64 / 7.0) - lr_drop
}

/// MRC done; fine-tuning the recommended module, `epochs_done` of 3 epochs finished.
fn finetuning(epochs_done: usize) -> State {
    let mut s = State::new(0.01, TOLERANCE, EPOCHS, vec!["default".into()]);
    three_modules_scored(&mut s, "cuda:0");
    let baseline = Event::Baseline {
        clean_acc: SWEEP[0].1,
        robust_acc: SWEEP[0].2,
        n: 1000,
    };
    ev(&mut s, baseline);
    update(&mut s, Msg::FineTune);
    update(&mut s, Msg::Tick(100.0));
    let about = StageAbout::Finetune {
        layers: vec!["layer2.1.conv2".into()],
        lr: 0.01,
        epochs: EPOCHS,
        from_epoch: 0,
    };
    ev(&mut s, Event::started(Stage::Finetune, about));
    update(&mut s, Msg::Tick(101.0));
    // Half an epoch past the ones done (none past the last).
    let done = (epochs_done * ITERS + ITERS / 2).min(EPOCHS * ITERS);
    for i in 0..done {
        let (epoch, iter) = (i / ITERS, i % ITERS);
        let lr = if epoch >= 2 { 0.001 } else { 0.01 };
        let iteration = Event::FinetuneIter {
            epoch,
            iter,
            loss: loss(i),
            lr,
        };
        ev(&mut s, iteration);
        if iter + 1 == ITERS {
            let log = FinetuneEpoch {
                epoch,
                lr,
                train_loss: loss(i),
                train_acc: 61.0 + 2.0 * epoch as f64,
                val_acc: Some(60.5 + epoch as f64),
                test_acc: Some(84.0 + 0.25 * epoch as f64),
            };
            ev(&mut s, Event::FinetuneEpoch { log });
        }
    }
    let total = EPOCHS * ITERS;
    ev(
        &mut s,
        Event::Progress {
            stage: Stage::Finetune,
            done,
            total,
        },
    );
    update(&mut s, Msg::Tick(101.0 + done as f64 / 4.0));
    s
}

/// Everything measured: the sweep over 11 α, the rule's α, a different accepted α and
/// the cursor on a third one; in the given view.
fn swept(view: AlphaView) -> State {
    let mut s = finetuning(EPOCHS);
    finish(&mut s, Stage::Finetune);
    ev(
        &mut s,
        Event::started_text(Stage::Interpolate, "11 α values"),
    );
    for (alpha, clean_acc, robust_acc) in SWEEP {
        let point = SweepPoint {
            alpha,
            clean_acc,
            robust_acc,
            n: 1000,
        };
        ev(&mut s, Event::SweepPoint { point });
    }
    finish(&mut s, Stage::Interpolate);
    assert_eq!(s.best_alpha, Some(RULE), "the fixture's rule α");
    let accepted = JobEvent::Accepted {
        alpha: ACCEPTED,
        path: "sessions/cifar/chosen.pth".into(),
    };
    update(&mut s, Msg::Job(accepted));
    finish(&mut s, Stage::Accept);
    update(&mut s, Msg::SelectAlpha(0.2));
    if view == AlphaView::Plane {
        update(&mut s, Msg::AlphaView);
    }
    s
}

#[test]
fn alpha_views_and_finetune_chart_frames() {
    let theme = Theme::load("default").unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        for (name, s) in [
            ("delta", swept(AlphaView::Delta)),
            ("plane", swept(AlphaView::Plane)),
            ("finetune_running", finetuning(1)),
        ] {
            let t = render(&s, &theme, w, h);
            insta::assert_snapshot!(format!("views_{name}_{w}x{h}"), t.backend());
        }
    }
}

#[test]
fn alpha_view_colour_maps_for_two_themes() {
    for name in ["default", "colorblind"] {
        let theme = Theme::load(name).unwrap();
        for (view, s) in [
            ("delta", swept(AlphaView::Delta)),
            ("plane", swept(AlphaView::Plane)),
        ] {
            let t = render(&s, &theme, 80, 24);
            let map = colour_map(&t, &theme);
            insta::assert_snapshot!(format!("views_colours_{view}_{name}_80x24"), map);
        }
    }
}

/// The colours of every cell drawn with `sym`.
fn colours_of(t: &Terminal<TestBackend>, sym: &str) -> Vec<Color> {
    let buf = t.backend().buffer();
    let area = buf.area;
    let cells = (0..area.height).flat_map(|y| (0..area.width).map(move |x| (x, y)));
    cells
        .filter(|&xy| buf[xy].symbol() == sym)
        .map(|xy| buf[xy].fg)
        .collect()
}

/// The signed numbers in parentheses on the rows from the one holding `start` on (the
/// cursor's lines: `clean 85.30% (+1.10)`, `robust 52.30% (-0.30)`).
fn bracketed(rows: &[String], start: &str) -> Vec<f64> {
    let at = rows
        .iter()
        .position(|r| r.contains(start))
        .unwrap_or_else(|| {
            panic!("no `{start}` on screen:\n{}", rows.join("\n"));
        });
    let mut v = Vec::new();
    for r in &rows[at..(at + 2).min(rows.len())] {
        for part in r.split('(').skip(1) {
            if let Some(num) = part.split(')').next().and_then(|n| n.parse().ok()) {
                v.push(num);
            }
        }
    }
    v
}

/// The Δ lines under the chart are each point minus the AT point, taken here from the
/// state's own sweep data, for every α, in the wide (one line) and narrow (two) layouts.
#[test]
fn delta_numbers_are_point_minus_at_from_the_state() {
    let theme = Theme::load("default").unwrap();
    let mut s = swept(AlphaView::Delta);
    let at = s.sweep.iter().find(|p| p.alpha == 0.0).cloned().unwrap();
    assert_eq!((at.clean_acc, at.robust_acc), (SWEEP[0].1, SWEEP[0].2));
    let points = s.sweep.clone();
    assert_eq!(points.len(), SWEEP.len());
    for p in &points {
        update(&mut s, Msg::SelectAlpha(p.alpha));
        let want = [p.clean_acc - at.clean_acc, p.robust_acc - at.robust_acc];
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&s, &theme, w, h);
            let screen = screen_rows(&t);
            let got = bracketed(&screen, &format!("α {:.3} clean", p.alpha));
            assert_eq!(got.len(), 2, "α {} at {w}x{h}: {got:?}", p.alpha);
            for (g, want) in got.iter().zip(want) {
                // Shown with two decimals: the rounding of the exact difference.
                let shown: f64 = format!("{want:.2}").parse().unwrap();
                assert_eq!(*g, shown, "α {} at {w}x{h}", p.alpha);
            }
        }
    }
}

/// The rule's α and the accepted α have their own glyph and colour, both on screen at
/// once with a legend entry each, in both views and two themes; the tolerance too.
#[test]
fn rule_and_accepted_alpha_are_marked_apart() {
    for name in ["default", "light"] {
        let theme = Theme::load(name).unwrap();
        assert_ne!(theme.chosen.fg, theme.accepted.fg, "{name}");
        for view in [AlphaView::Delta, AlphaView::Plane] {
            let s = swept(view);
            let t = render(&s, &theme, 80, 24);
            let screen = screen_rows(&t).join("\n");
            assert!(screen.contains(&format!("◆ rule α {RULE:.3}")), "{screen}");
            let accepted = format!("★ accepted α {ACCEPTED:.3}");
            assert!(screen.contains(&accepted), "{screen}");
            // The legend entry, and every mark in the chart, in its own colour.
            for (sym, fg) in [("◆", theme.chosen.fg), ("★", theme.accepted.fg)] {
                let cells = colours_of(&t, sym);
                assert!(
                    cells.len() >= 2,
                    "{name} {view:?}: {sym} in legend and chart"
                );
                assert!(
                    cells.iter().all(|c| Some(*c) == fg),
                    "{name} {view:?} {sym}"
                );
            }
            let (tol, _) = cell_colour(&t, "┈", "┈");
            assert_eq!(Some(tol), theme.tolerance.fg, "{name} {view:?}");
        }
    }
}

/// A diverged run's NaN and infinite losses draw without a panic; the chart keeps the
/// finite ones.
#[test]
fn diverged_losses_still_draw() {
    let theme = Theme::load("default").unwrap();
    let mut s = finetuning(1);
    for loss in [f64::NAN, f64::INFINITY] {
        let iteration = Event::FinetuneIter {
            epoch: 1,
            iter: ITERS / 2,
            loss,
            lr: 0.01,
        };
        ev(&mut s, iteration);
    }
    for (w, h) in [(80, 24), (160, 48)] {
        let screen = screen_rows(&render(&s, &theme, w, h)).join("\n");
        assert!(screen.contains("iteration"), "{screen}");
    }
}
