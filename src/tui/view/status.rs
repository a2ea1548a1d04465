//! The status bar: the device, the running job with a progress bar and ETA, errors,
//! and the active keys.
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let [top, keys] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let mut spans = Vec::new();
    if !s.device.is_empty() {
        spans.push(Span::styled(format!("{} │ ", s.device), t.key));
    }
    if let Some(err) = &s.error {
        spans.push(Span::styled(format!("error: {err}"), t.error));
    } else if let Some(j) = &s.job {
        spans.push(Span::styled(format!("{} ", j.stage), t.status));
        if let Some((frac, eta)) = s.progress() {
            let w = 12usize;
            let filled = (frac * w as f64).round() as usize;
            spans.push(Span::styled("█".repeat(filled), t.gauge));
            spans.push(Span::styled("░".repeat(w - filled.min(w)), t.gauge));
            spans.push(Span::styled(format!(" {:>3.0}%", frac * 100.0), t.status));
            if let Some(eta) = eta {
                spans.push(Span::styled(format!(" ETA {}", fmt_secs(eta)), t.status));
            }
        }
        spans.push(Span::styled(format!("  {}", s.status), t.status));
    } else {
        spans.push(Span::styled(s.status.clone(), t.status));
    }
    if s.unsaved && s.read_only.is_none() {
        spans.push(Span::styled("  [unsaved]", t.status));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.status), top);
    let read_only: &[(&str, &str)] = &[
        ("j/k", "module"),
        ("o", "sort"),
        ("h/l", "α"),
        ("t", "theme"),
        ("?", "help"),
        ("q", "quit"),
        ("", "· read-only"),
    ];
    let full: &[(&str, &str)] = &[
        ("j/k", "module"),
        ("⏎", "fine-tune"),
        ("[/]", "lr"),
        ("h/l", "α"),
        ("a", "accept"),
        ("s", "save"),
        ("c", "cancel"),
        ("?", "help"),
        ("q", "quit"),
    ];
    let hints = if s.read_only.is_some() {
        read_only
    } else {
        full
    };
    let mut k = Vec::new();
    for (key, what) in hints {
        k.push(Span::styled(*key, t.key));
        k.push(Span::styled(format!(" {what} "), t.status));
    }
    frame.render_widget(Paragraph::new(Line::from(k)).style(t.status), keys);
}

pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
