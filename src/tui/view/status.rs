//! The status bar: the device, the running job with a progress bar, its rate and time
//! left, errors, and the active keys. Both lines drop their least important pieces whole
//! when the screen is narrow (`fit_pieces`), so no word is cut at the edge.
use super::{fit_pieces, Piece};
use crate::engine::rift::events::Stage;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Cells of the progress bar.
const GAUGE: usize = 12;

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let [top, keys] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let width = usize::from(area.width);
    let mut p = Vec::new();
    if !s.device.is_empty() {
        p.push(Piece::new(format!("{} │ ", s.device), t.key, 4));
    }
    if let Some(err) = &s.error {
        p.push(Piece::new(format!("error: {err}"), t.error, 9));
    } else if let Some(j) = &s.job {
        p.push(Piece::new(j.stage.to_string(), t.status, 9));
        if let Some(pr) = s.progress() {
            let unit = unit(j.stage);
            if let Some(frac) = pr.frac {
                let filled = ((frac * GAUGE as f64).round() as usize).min(GAUGE);
                let bar = format!(" {}{}", "█".repeat(filled), "░".repeat(GAUGE - filled));
                p.push(Piece::new(bar, t.gauge, 5));
                p.push(Piece::new(format!(" {:>3.0}%", frac * 100.0), t.status, 8));
                p.push(Piece::new(format!(" {}/{}", j.done, j.total), t.status, 2));
            } else if j.done > 0 {
                p.push(Piece::new(format!(" {} {unit}", j.done), t.status, 3));
            }
            if let Some(rate) = pr.rate {
                p.push(Piece::new(
                    format!(" · {}", fmt_rate(rate, unit)),
                    t.status,
                    6,
                ));
            }
            if let Some(left) = pr.left {
                p.push(Piece::new(
                    format!(" · {} left", fmt_secs(left)),
                    t.status,
                    7,
                ));
            }
        }
        if !s.status.is_empty() {
            // What the job is; the stage name already says most of it.
            p.push(Piece::new(format!("  {}", s.status), t.status, 3));
        }
    } else {
        p.push(Piece::new(s.status.clone(), t.status, 9));
    }
    if s.unsaved && s.read_only.is_none() {
        p.push(Piece::new("  [unsaved]", t.status, 8));
    }
    frame.render_widget(Paragraph::new(fit_pieces(p, width)).style(t.status), top);
    frame.render_widget(Paragraph::new(key_hints(s, t, width)).style(t.status), keys);
}

/// The keys that work now, the least used dropped first on narrow screens.
fn key_hints(s: &State, t: &Theme, width: usize) -> Line<'static> {
    let read_only: &[(&str, &str, u8)] = &[
        ("j/k", "module", 9),
        ("o", "sort", 3),
        ("h/l", "α", 8),
        ("v", "α view", 4),
        ("t", "theme", 2),
        ("?", "help", 9),
        ("q", "quit", 9),
        ("", "· read-only", 9),
    ];
    let full: &[(&str, &str, u8)] = &[
        ("j/k", "module", 9),
        ("⏎", "fine-tune", 9),
        ("[/]", "lr", 2),
        ("h/l", "α", 8),
        ("v", "α view", 3),
        ("a", "accept", 7),
        ("s", "save", 7),
        ("c", "cancel", 4),
        ("?", "help", 9),
        ("q", "quit", 9),
    ];
    let compare: &[(&str, &str, u8)] = &[
        ("j/k", "candidate", 9),
        ("⏎", "show it", 9),
        ("m/Esc", "close", 9),
        ("s", "save", 7),
        ("?", "help", 9),
        ("q", "quit", 9),
    ];
    let mut hints: Vec<(&str, &str, u8)> = if s.compare_view {
        compare.to_vec()
    } else if s.read_only.is_some() {
        read_only.to_vec()
    } else {
        full.to_vec()
    };
    // The compare view's key once the session has a candidate to compare.
    if !s.compare_view && !s.candidates.is_empty() {
        hints.insert(hints.len() - 2, ("m", "compare", 6));
    }
    let pairs: Vec<Piece> = hints
        .iter()
        .map(|(key, what, rank)| Piece {
            spans: vec![
                Span::styled(*key, t.key),
                Span::styled(format!(" {what} "), t.status),
            ],
            rank: *rank,
        })
        .collect();
    fit_pieces(pairs, width)
}

/// What a stage's `Progress` counts.
pub fn unit(stage: Stage) -> &'static str {
    match stage {
        Stage::Baseline | Stage::Candidate => "img",
        Stage::Mrc | Stage::ScreenStep => "module",
        Stage::Finetune => "it",
        Stage::Interpolate | Stage::Refine => "α",
        Stage::Ood | Stage::OodAt | Stage::OodChosen => "corruption",
        Stage::FinalEval => "pt",
        Stage::AdvSet | Stage::Screen | Stage::TrainAt => "batch",
        Stage::Load | Stage::Accept | Stage::Save => "step",
    }
}

/// Units per second, or seconds per unit when a unit takes longer than a second (an
/// MRC module), so the number is never a small fraction.
pub fn fmt_rate(per_sec: f64, unit: &str) -> String {
    if per_sec >= 1.0 {
        format!("{per_sec:.1} {unit}/s")
    } else {
        format!("{:.1} s/{unit}", 1.0 / per_sec.max(1e-9))
    }
}

pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
