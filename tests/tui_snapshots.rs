//! Rendered frames of the explorer (ratatui `TestBackend` + insta) in its empty, running
//! and finished states, at 80×24 and 160×48; colours checked cell by cell for two themes.
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use rift::engine::rift::events::Event;
use rift::engine::rift::results::{FinetuneEpoch, ModuleScore, SweepPoint};
use rift::jobs::JobEvent;
use rift::tui::theme::Theme;
use rift::tui::{update, view, Msg, State};

fn score(name: &str, depth: usize, mrc: f64) -> ModuleScore {
    ModuleScore {
        name: name.into(),
        depth,
        kind: "conv".into(),
        shape: vec![16, 8, 3, 3],
        params: 1152,
        mrc,
        robust_acc_drop: mrc * 10.0,
        epoch_losses: vec![0.61, 0.72, 0.70],
        epoch_accs: vec![70.0, 66.0, 67.0],
        recommended: false,
        estimate: None,
        estimate_step: None,
    }
}

fn ev(s: &mut State, e: Event) {
    update(s, Msg::Job(JobEvent::Engine(e)));
}

fn empty() -> State {
    State::new(0.01, 0.1, 4, vec!["default".into(), "light".into()])
}

/// MRC half way: baseline known, three modules scored, a fourth ascending.
fn running() -> State {
    let mut s = empty();
    update(&mut s, Msg::Start);
    ev(
        &mut s,
        Event::StageStarted {
            stage: "load".into(),
            detail: "resnet18-w8 (176258 parameters, 21 modules) on cpu".into(),
        },
    );
    ev(
        &mut s,
        Event::Baseline {
            clean_acc: 97.5,
            robust_acc: 81.25,
            n: 400,
        },
    );
    ev(
        &mut s,
        Event::StageStarted {
            stage: "mrc".into(),
            detail: "6 modules".into(),
        },
    );
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
    ev(
        &mut s,
        Event::Progress {
            stage: "mrc".into(),
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

/// Everything done: MRC, fine-tuning, the sweep, an accepted α.
fn finished() -> State {
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
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: "mrc".into(),
        }),
    );
    update(&mut s, Msg::FineTune);
    ev(
        &mut s,
        Event::StageStarted {
            stage: "finetune".into(),
            detail: "layer1.0.conv1 at lr 0.01 for 4 epochs".into(),
        },
    );
    for i in 0..200 {
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
    for e in 0..4 {
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
            stage: "finetune".into(),
        }),
    );
    for (a, c, r) in [
        (0.0, 97.5, 81.25),
        (0.25, 97.9, 81.2),
        (0.5, 98.2, 81.0),
        (0.75, 98.3, 79.5),
        (1.0, 98.4, 77.0),
    ] {
        ev(
            &mut s,
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
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: "sweep".into(),
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
            stage: "accept".into(),
        }),
    );
    s
}

fn render(s: &State, theme: &Theme, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, s, theme)).unwrap();
    t
}

#[test]
fn frames() {
    let theme = Theme::load("default").unwrap();
    for (name, s) in [
        ("empty", empty()),
        ("running", running()),
        ("finished", finished()),
    ] {
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&s, &theme, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
        }
    }
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

/// The first cell whose symbol is `sym` in the row holding `text`.
fn cell_colour(t: &Terminal<TestBackend>, text: &str, sym: &str) -> (Color, Color) {
    let buf = t.backend().buffer();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(pos) = row.find(text) {
            let start = row[..pos].chars().count() as u16;
            for x in start..buf.area.width {
                if buf[(x, y)].symbol() == sym {
                    return (buf[(x, y)].fg, buf[(x, y)].bg);
                }
            }
        }
    }
    panic!("no `{sym}` on the row of `{text}`");
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
