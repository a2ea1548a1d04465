//! The compare view (`m`), in place of the fine-tuning and α panels: the candidates'
//! table (left) — label in its path's colour, trained parameters, its α (★ accepted, ◆
//! the rule's) and the clean and robust changes from the AT model there — and every
//! candidate's α path in one clean-vs-robust plane (right), its α marked with the same
//! glyph, over the tolerance line. The table's labels are the plot's legend.
use super::alpha::{ACCEPTED_GLYPH, RULE_GLYPH};
use super::alpha_plane::{padded, plane_axes, plane_canvas, short_alpha, AT_GLYPH};
use super::{fit, fit_words, panel};
use crate::tui::compare_rows::{compare_rows, AlphaKind, CompareRow};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::Line as CanvasLine;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The colour of candidate `i`'s path (and its label): the theme's distinct series
/// colours in turn.
pub fn series_colour(t: &Theme, i: usize) -> Color {
    let palette = [
        t.clean,
        t.robust,
        t.accepted,
        t.chosen,
        t.recommended,
        t.ok,
        t.warning,
        t.bar,
    ];
    palette[i % palette.len()].fg.unwrap_or(Color::Reset)
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let rows = compare_rows(s);
    render_table(frame, left, s, &rows, t);
    render_plane(frame, right, s, &rows, t);
}

fn signed(v: f64) -> String {
    format!("{v:+.2}")
}

fn render_table(frame: &mut Frame, area: Rect, s: &State, rows: &[CompareRow], t: &Theme) {
    let block = panel(" Candidates (Enter shows, m closes) ", t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if rows.is_empty() {
        let msg = "no candidates yet: Enter on a module fine-tunes it";
        frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)), inner);
        return;
    }
    let width = usize::from(inner.width);
    // Fixed columns: marker 2, α 7, Δclean 7, Δrobust 7; parameters 8 when there is room.
    let with_params = width >= 44;
    let fixed = 2 + 7 + 7 + 7 + if with_params { 8 } else { 0 };
    let name_w = width.saturating_sub(fixed).max(6);
    let mut head = format!("  {:<name_w$}", "candidate");
    if with_params {
        head.push_str(&format!("{:>8}", "params"));
    }
    head.push_str(&format!("{:>7}{:>7}{:>7}", "α", "Δclean", "Δrob"));
    let mut lines = vec![Line::styled(head, t.muted)];
    for (i, r) in rows.iter().enumerate() {
        let selected = i == s.candidate_cursor;
        let marker = match (selected, r.shown) {
            (true, _) => "▶ ",
            (false, true) => "· ",
            (false, false) => "  ",
        };
        let mut label_style = Style::new().fg(series_colour(t, i));
        if r.shown {
            label_style = label_style.add_modifier(Modifier::BOLD);
        }
        let mut spans = vec![
            Span::styled(marker, if selected { t.cursor } else { t.muted }),
            Span::styled(format!("{:<name_w$}", fit(&r.label, name_w)), label_style),
        ];
        if with_params {
            spans.push(Span::styled(
                format!("{:>8}", short_count(r.trained_params)),
                t.text,
            ));
        }
        match r.delta() {
            Some(d) => {
                let (glyph, st) = match d.kind {
                    AlphaKind::Accepted => (ACCEPTED_GLYPH, t.accepted),
                    AlphaKind::Rule => (RULE_GLYPH, t.chosen),
                };
                let robust_st = if d.robust < -s.tolerance {
                    t.warning
                } else {
                    t.robust
                };
                spans.push(Span::styled(
                    format!("{:>6}{glyph}", short_alpha(d.alpha)),
                    st,
                ));
                spans.push(Span::styled(format!("{:>7}", signed(d.clean)), t.clean));
                spans.push(Span::styled(format!("{:>7}", signed(d.robust)), robust_st));
            }
            None => spans.push(Span::styled(
                if r.points.is_empty() {
                    "  no α curve yet"
                } else {
                    "  …"
                },
                t.muted,
            )),
        }
        lines.push(Line::from(spans));
    }
    let legend = format!("{ACCEPTED_GLYPH} accepted  {RULE_GLYPH} rule's α  Δ: pts from AT");
    lines.push(Line::styled(fit_words(&legend, width), t.muted));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// 11.2M, 590k, 650: a parameter count in at most five characters.
fn short_count(n: i64) -> String {
    match n {
        0 => "—".into(),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

fn render_plane(frame: &mut Frame, area: Rect, s: &State, rows: &[CompareRow], t: &Theme) {
    let block = panel(" Paths · robust % vs clean % ", t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let all = || rows.iter().flat_map(|r| r.points.iter());
    if all().next().is_none() {
        let msg = "each candidate's α path appears here after its sweep";
        frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)), inner);
        return;
    }
    // The lowest robust accuracy the rule accepts, from the AT point of the curves.
    let floor = all()
        .find(|p| p.alpha == 0.0)
        .map(|p| p.robust_acc - s.tolerance);
    let x = padded(all().map(|p| p.clean_acc));
    let y = padded(all().map(|p| p.robust_acc).chain(floor));
    let Some(plot) = plane_axes(frame.buffer_mut(), inner, x, y, t.muted) else {
        return;
    };
    let canvas = plane_canvas(t, x, y, |ctx| {
        if let Some(floor) = floor {
            let colour = t.tolerance.fg.unwrap_or(Color::Reset);
            ctx.draw(&CanvasLine::new(x.0, floor, x.1, floor, colour));
            ctx.layer();
        }
        for (i, r) in rows.iter().enumerate() {
            let colour = series_colour(t, i);
            for w in r.points.windows(2) {
                ctx.draw(&CanvasLine::new(
                    w[0].clean_acc,
                    w[0].robust_acc,
                    w[1].clean_acc,
                    w[1].robust_acc,
                    colour,
                ));
            }
        }
        // Glyphs over the lines: the AT point, then each candidate's α.
        ctx.layer();
        if let Some(at) = rows
            .iter()
            .find_map(|r| r.points.iter().find(|p| p.alpha == 0.0))
        {
            ctx.print(
                at.clean_acc,
                at.robust_acc,
                Span::styled(AT_GLYPH.to_string(), t.baseline),
            );
        }
        for (i, r) in rows.iter().enumerate() {
            let Some(d) = r.delta() else { continue };
            let Some(p) = r.points.iter().find(|p| p.alpha == d.alpha) else {
                continue;
            };
            let glyph = match d.kind {
                AlphaKind::Accepted => ACCEPTED_GLYPH,
                AlphaKind::Rule => RULE_GLYPH,
            };
            let st = Style::new().fg(series_colour(t, i));
            ctx.print(
                p.clean_acc,
                p.robust_acc,
                Span::styled(glyph.to_string(), st),
            );
        }
    });
    frame.render_widget(canvas, plot);
}
