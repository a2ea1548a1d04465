//! The explorer's compare view (`m`): three candidates' table and their α paths in one
//! clean-vs-robust plane, drawn on a `TestBackend` at 80×24 and 160×48 (insta snapshots),
//! its colours for two themes, the table's Δ numbers read back from the screen against
//! the candidates' own curves, and each label in its path's colour.
use rift::engine::rift::events::{Event, Stage, StageAbout};
use rift::engine::rift::mrc::results::SweepPoint;
use rift::jobs::{CandidateSummary, JobEvent};
use rift::tui::compare_rows::compare_rows;
use rift::tui::theme::Theme;
use rift::tui::view::compare::series_colour;
use rift::tui::{update, Msg, State};

mod common;
use common::tui::{colour_map, ev, finish, render, screen_rows, three_modules_scored};

const TOLERANCE: f64 = 0.5;

/// (α, clean %, robust %) of three candidates from the same AT point.
fn curve(gain: f64, loss: f64) -> Vec<SweepPoint> {
    (0..=4)
        .map(|i| {
            let a = f64::from(i) / 4.0;
            SweepPoint {
                alpha: a,
                clean_acc: 84.2 + gain * a - 0.4 * gain * a * a,
                robust_acc: 52.6 - loss * a * a,
                n: 1000,
            }
        })
        .collect()
}

fn summary(label: &str, points: Vec<SweepPoint>, accepted: Option<f64>) -> CandidateSummary {
    CandidateSummary {
        label: label.into(),
        modules: vec![label.into()],
        trained_params: 36_928,
        points,
        accepted,
        dir: format!("candidates/{label}"),
        shown: false,
    }
}

/// MRC done; `layer2.1.conv2` fine-tuned and swept (on display), `linear` and
/// `conv1` finished earlier (`linear` with an accepted α); the compare view open.
fn compared() -> State {
    let mut s = State::new(0.01, TOLERANCE, 2, vec!["default".into()]);
    three_modules_scored(&mut s, "cpu");
    update(&mut s, Msg::FineTune);
    let about = StageAbout::Finetune {
        layers: vec!["layer2.1.conv2".into()],
        lr: 0.01,
        epochs: 2,
        from_epoch: 0,
    };
    ev(&mut s, Event::started(Stage::Finetune, about));
    finish(&mut s, Stage::Finetune);
    ev(
        &mut s,
        Event::started_text(Stage::Interpolate, "5 α values"),
    );
    for point in curve(2.0, 1.2) {
        ev(&mut s, Event::SweepPoint { point });
    }
    finish(&mut s, Stage::Interpolate);
    let mut shown = summary("layer2.1.conv2", curve(2.0, 1.2), None);
    shown.shown = true;
    shown.dir = ".".into();
    let list = vec![
        shown,
        summary("linear", curve(1.0, 0.3), Some(0.75)),
        summary("conv1", curve(0.6, 3.0), None),
    ];
    update(&mut s, Msg::Job(JobEvent::Candidates(list)));
    update(&mut s, Msg::CompareView);
    update(&mut s, Msg::Down);
    assert!(s.compare_view);
    s
}

#[test]
fn compare_view_frames() {
    let theme = Theme::load("default").unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        let t = render(&compared(), &theme, w, h);
        insta::assert_snapshot!(format!("compare_view_{w}x{h}"), t.backend());
    }
}

#[test]
fn compare_view_colour_maps_for_two_themes() {
    for name in ["default", "colorblind"] {
        let theme = Theme::load(name).unwrap();
        let t = render(&compared(), &theme, 80, 24);
        insta::assert_snapshot!(
            format!("compare_view_colours_{name}_80x24"),
            colour_map(&t, &theme)
        );
    }
}

/// Each candidate's row on screen holds its α and the changes at that α from its own
/// curve's AT point (rounded as shown), and its label is drawn in its path's colour.
#[test]
fn table_numbers_and_colours_come_from_each_curve() {
    let s = compared();
    for name in ["default", "light"] {
        let theme = Theme::load(name).unwrap();
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&s, &theme, w, h);
            let screen = screen_rows(&t);
            let buf = t.backend().buffer();
            for (i, r) in compare_rows(&s).iter().enumerate() {
                let d = r.delta().expect("every candidate has an α");
                let y = screen
                    .iter()
                    .position(|row| row.contains(&r.label) && row.contains(['◆', '★']))
                    .unwrap_or_else(|| panic!("{} not on screen:\n{}", r.label, screen.join("\n")));
                let row = &screen[y];
                // The table's half of the row (the plot's panel follows at `││`).
                let table = row.split("││").next().unwrap_or(row);
                let nums: Vec<f64> = table
                    .split_whitespace()
                    .map(|w| w.trim_matches('│'))
                    .filter_map(|w| w.trim_end_matches(['★', '◆']).parse().ok())
                    .collect();
                let want = [d.clean, d.robust];
                let shown: Vec<f64> = want
                    .iter()
                    .map(|v| format!("{v:.2}").parse().unwrap())
                    .collect();
                assert!(
                    nums.ends_with(&shown),
                    "{name} {w}x{h} {}: {nums:?} should end with {shown:?}",
                    r.label
                );
                let x = row[..row.find(&r.label).unwrap()].chars().count() as u16;
                assert_eq!(
                    buf[(x, y as u16)].fg,
                    series_colour(&theme, i),
                    "{name}: {}'s label in its path colour",
                    r.label
                );
            }
            // The accepted α (linear's) and the rule's (the other two) are marked apart.
            let text = screen.join("\n");
            assert!(text.contains("0.75★"), "{text}");
            assert!(text.matches('◆').count() >= 2, "{text}");
        }
    }
}

/// The view is left with `m` or Esc, and the panels it covered come back.
#[test]
fn the_view_closes_and_the_panels_return() {
    let mut s = compared();
    let theme = Theme::load("default").unwrap();
    let open = screen_rows(&render(&s, &theme, 80, 24)).join("\n");
    assert!(open.contains("Candidates"), "{open}");
    update(&mut s, Msg::CompareView);
    let closed = screen_rows(&render(&s, &theme, 80, 24)).join("\n");
    assert!(!closed.contains("Candidates"), "{closed}");
    assert!(
        closed.contains("Fine-tuning") || closed.contains("fine-tun"),
        "{closed}"
    );
}
