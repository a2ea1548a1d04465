//! Helpers of the explorer's frame tests (`tui_snapshots.rs`, `tui_views.rs`): feeding
//! engine events to the pure `update`, drawing a frame on a `TestBackend`, and reading
//! its colours back.
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use rift::engine::rift::events::{Event, Stage, StageAbout};
use rift::engine::rift::mrc::results::ModuleScore;
use rift::jobs::JobEvent;
use rift::tui::theme::Theme;
use rift::tui::{update, view, Msg, State};

pub fn ev(s: &mut State, e: Event) {
    update(s, Msg::Job(JobEvent::Engine(e)));
}

pub fn render(s: &State, theme: &Theme, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, s, theme)).unwrap();
    t
}

/// The frame's colours as letters, one per distinct (fg, bg) pair, with a legend naming
/// the theme fields each colour comes from: a snapshot of where every colour goes.
pub fn colour_map(t: &Terminal<TestBackend>, theme: &Theme) -> String {
    let buf = t.backend().buffer();
    let mut pairs: Vec<(Color, Color)> = Vec::new();
    let mut rows = Vec::new();
    for y in 0..buf.area.height {
        let mut row = String::new();
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            let i = match pairs.iter().position(|p| *p == (c.fg, c.bg)) {
                Some(i) => i,
                None => {
                    pairs.push((c.fg, c.bg));
                    pairs.len() - 1
                }
            };
            row.push(char::from(b'a' + (i % 26) as u8));
        }
        rows.push(row);
    }
    let roles = |c: Color| -> String {
        let named = [
            ("base", theme.base),
            ("text", theme.text),
            ("muted", theme.muted),
            ("border", theme.border),
            ("title", theme.title),
            ("selected", theme.selected),
            ("recommended", theme.recommended),
            ("bar", theme.bar),
            ("bar_running", theme.bar_running),
            ("clean", theme.clean),
            ("robust", theme.robust),
            ("baseline", theme.baseline),
            ("chosen", theme.chosen),
            ("accepted", theme.accepted),
            ("tolerance", theme.tolerance),
            ("cursor", theme.cursor),
            ("error", theme.error),
            ("ok", theme.ok),
            ("status", theme.status),
            ("gauge", theme.gauge),
            ("key", theme.key),
        ];
        let v: Vec<&str> = named
            .iter()
            .filter(|(_, st)| st.fg == Some(c) || st.bg == Some(c))
            .map(|(n, _)| *n)
            .collect();
        format!("{c:?} ({})", v.join("/"))
    };
    for (i, (fg, bg)) in pairs.iter().enumerate() {
        rows.push(format!(
            "{} = fg {} on bg {}",
            char::from(b'a' + (i % 26) as u8),
            roles(*fg),
            roles(*bg)
        ));
    }
    rows.join("\n")
}

/// The first cell whose symbol is `sym` in the row holding `text`.
pub fn cell_colour(t: &Terminal<TestBackend>, text: &str, sym: &str) -> (Color, Color) {
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

/// An exact MRC score of a 16×8×3×3 conv module (robust drop: ten times the MRC).
pub fn score(name: &str, depth: usize, mrc: f64) -> ModuleScore {
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

/// The worker's end of a job.
pub fn finish(s: &mut State, stage: Stage) {
    update(s, Msg::Job(JobEvent::Finished { stage }));
}

/// A preact-resnet18 on `device` loaded and three modules scored exactly — conv1 0.9,
/// layer2.1.conv2 0.12 (the recommendation), linear 0.7 — with MRC finished.
pub fn three_modules_scored(s: &mut State, device: &str) {
    update(s, Msg::Start);
    let model = StageAbout::Model {
        arch: "preact-resnet18".into(),
        params: 11_171_146,
        modules: 21,
        normalization: String::new(),
        device: device.into(),
        zoo: None,
    };
    ev(s, Event::started(Stage::Load, model));
    ev(s, Event::started_text(Stage::Mrc, "3 modules"));
    for (n, d, m) in [
        ("conv1", 0, 0.9),
        ("layer2.1.conv2", 1, 0.12),
        ("linear", 2, 0.7),
    ] {
        ev(
            s,
            Event::ModuleScored {
                score: score(n, d, m),
            },
        );
    }
    finish(s, Stage::Mrc);
}

/// Every screen row as text.
pub fn screen_rows(t: &Terminal<TestBackend>) -> Vec<String> {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect()
        })
        .collect()
}
