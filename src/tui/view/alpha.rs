//! The α panel: a legend, one of two charts of the sweep (`v` switches, `AlphaView`), and
//! under it the cursor's α with clean and robust accuracy and their changes from the AT
//! model in points, then OOD and AutoAttack lines when there are some.
//! - `Delta` (`alpha_delta.rs`): Δclean and Δrobust against α, the AT model at 0 and the
//!   tolerance band's edge at −tolerance: the small differences that decide α are visible.
//! - `Plane` (`alpha_plane.rs`): the points in the clean-vs-robust plane, in α order.
//!
//! The rule's α (◆, `chosen`) and the accepted α (★, `accepted`) are marked apart.
use super::{alpha_delta, alpha_plane, fit_pieces, panel_titled, Piece};
use crate::tui::state::{AlphaView, State};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The rule's α (SPEC.md §3, `choose_alpha` over the sweep).
pub const RULE_GLYPH: char = '◆';
/// The α the user accepted.
pub const ACCEPTED_GLYPH: char = '★';

/// The chart and `text_rows` text lines (bottom) of the inner area. The legend is in
/// the frame (series on top, α marks below), so the chart keeps every row it can.
fn split(inner: Rect, text_rows: usize) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(3), Constraint::Length(text_rows as u16)]).areas(inner)
}

/// The α under screen column `col` of the panel, when the Δ chart is shown (the caller
/// snaps it to the nearest sweep point). The plane view takes no clicks: a column is a
/// clean accuracy there, not an α.
pub fn alpha_at(area: Rect, s: &State, col: u16) -> Option<f64> {
    if s.sweep.is_empty() || s.alpha_view != AlphaView::Delta {
        return None;
    }
    let inner = area.inner(Margin::new(1, 1));
    // Only the number of text lines matters here, not their colours.
    let rows = text_lines(s, inner.width, &Theme::default_theme()).len();
    let [chart, _] = split(inner, rows);
    alpha_delta::alpha_at(chart, s, col)
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let width = usize::from(area.width.saturating_sub(2));
    let block = panel_titled(series_legend(s, t, width), t).title_bottom(marks_legend(s, t, width));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if s.sweep.is_empty() {
        let msg = if s.busy && s.ft_done {
            "sweeping α…"
        } else {
            "the α sweep runs after fine-tuning"
        };
        frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)), inner);
        return;
    }
    let lines = text_lines(s, inner.width, t);
    let [chart, text] = split(inner, lines.len());
    match s.alpha_view {
        AlphaView::Delta => alpha_delta::render(frame, chart, s, t),
        AlphaView::Plane => alpha_plane::render(frame, chart, s, t),
    }
    frame.render_widget(Paragraph::new(lines), text);
}

/// The panel's title: what is plotted and the series' colours.
fn series_legend(s: &State, t: &Theme, width: usize) -> Line<'static> {
    let tol = format!(" ┈−{:.2} tol", s.tolerance);
    let mut p = match s.alpha_view {
        AlphaView::Delta => vec![
            Piece::new(" Δ vs AT, pts", t.title, 9),
            Piece::new(" ━clean", t.clean, 9),
            Piece::new(" ━robust", t.robust, 9),
            Piece::new(tol, t.tolerance, 8),
            Piece::new(" ─AT", t.baseline, 3),
        ],
        AlphaView::Plane => vec![
            Piece::new(" robust % vs clean %", t.title, 9),
            Piece::new(tol, t.tolerance, 8),
            Piece::new(" •α 0→1", t.text, 7),
        ],
    };
    p.push(Piece::new(" ", t.title, 10));
    fit_pieces(p, width)
}

/// The frame's bottom: the rule's α and the accepted α, each with its glyph.
fn marks_legend(s: &State, t: &Theme, width: usize) -> Line<'static> {
    let mut p = Vec::new();
    if let Some(b) = s.best_alpha {
        p.push(Piece::new(
            format!(" {RULE_GLYPH} rule α {b:.3}"),
            t.chosen,
            9,
        ));
    }
    if let Some(a) = s.accepted_alpha {
        let text = format!(" {ACCEPTED_GLYPH} accepted α {a:.3}");
        p.push(Piece::new(text, t.accepted, 9));
    }
    if let Some((c, r)) = s.alpha_baseline() {
        let glyph = match s.alpha_view {
            AlphaView::Delta => "─",
            AlphaView::Plane => "○",
        };
        p.push(Piece::new(
            format!(" {glyph} AT {c:.1}/{r:.1}"),
            t.baseline,
            3,
        ));
    }
    if !p.is_empty() {
        p.push(Piece::new(" ", t.border, 10));
    }
    fit_pieces(p, width)
}

/// The cursor's α with its accuracies and their changes from AT, then OOD and AutoAttack.
fn text_lines(s: &State, width: u16, t: &Theme) -> Vec<Line<'static>> {
    let w = usize::from(width);
    let mut lines = Vec::new();
    if let (Some(p), Some((c0, r0))) = (s.cursor_point(), s.alpha_baseline()) {
        let clean = format!("clean {:.2}% ({:+.2})", p.clean_acc, p.clean_acc - c0);
        let robust = format!("robust {:.2}% ({:+.2})", p.robust_acc, p.robust_acc - r0);
        let alpha = format!("α {:.3}", p.alpha);
        let one = format!("{alpha} {clean} {robust}");
        if one.chars().count() <= w {
            lines.push(Line::from(vec![
                Span::styled(format!("{alpha} "), t.cursor),
                Span::styled(format!("{clean} "), t.clean),
                Span::styled(robust, t.robust),
            ]));
        } else {
            lines.push(fit_pieces(
                vec![
                    Piece::new(format!("{alpha} "), t.cursor, 9),
                    Piece::new(clean, t.clean, 8),
                ],
                w,
            ));
            lines.push(fit_pieces(
                vec![
                    Piece::new(" ".repeat(alpha.chars().count() + 1), t.text, 1),
                    Piece::new(robust, t.robust, 8),
                ],
                w,
            ));
        }
    }
    let (at, chosen) = s.ood_means();
    if at.is_some() || chosen.is_some() {
        let pct = |v: Option<f64>| v.map_or("…".to_string(), |x| format!("{x:.2}%"));
        lines.push(fit_pieces(
            vec![
                Piece::new("OOD mean:", t.text, 9),
                Piece::new(format!(" AT {} ({})", pct(at), s.ood_at.len()), t.text, 8),
                Piece::new(
                    format!(" · accepted {} ({})", pct(chosen), s.ood_chosen.len()),
                    t.text,
                    8,
                ),
            ],
            w,
        ));
    }
    let aa = super::aa_line::lines(s, width);
    lines.extend(aa.into_iter().map(|l| Line::styled(l, t.text)));
    lines
}
