//! The MRC panel (a bar per scored module, the running one live, the recommendation
//! highlighted) and the details of the selected module.
use super::{fit, panel};
use crate::tui::state::{SortOrder, State};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

const BAR: char = '█';

/// Estimate-only bars: a lighter block, so they never read as exact MRC.
const EST_BAR: char = '░';

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let sort = match s.sort {
        SortOrder::Depth => "depth",
        SortOrder::Mrc => "MRC",
    };
    let est = if s.estimates.is_empty() {
        String::new()
    } else {
        format!(" · {EST_BAR} estimate")
    };
    let total = s.mrc_total.max(s.estimates.len());
    // Until MRC says how many modules it scores, the count scored has no "of".
    let of = if total == 0 && !s.mrc_done {
        String::new()
    } else {
        format!("/{}", total.max(s.modules.len()))
    };
    let title = format!(" MRC {}{of} exact{est} · by {sort} ", s.modules.len());
    let block = panel(&title, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    let rows = s.rows();
    if rows.is_empty() && s.mrc_running.is_none() {
        let msg = if s.busy {
            "computing baseline and the adversarial set…"
        } else {
            "no MRC yet"
        };
        lines.push(Line::styled(msg, t.muted));
    }
    // Exact values and estimates are on different scales: each has its own maximum.
    let max = rows
        .iter()
        .filter_map(|r| r.exact.map(|m| m.mrc.abs()))
        .fold(1e-12, f64::max);
    let max_est = rows
        .iter()
        .filter(|r| r.exact.is_none())
        .filter_map(|r| r.estimate_value().map(f64::abs))
        .fold(1e-12, f64::max);
    let name_w = (w / 3).clamp(6, 18);
    let num_w = 8;
    // The robust-accuracy drop gets its own column where there is room (else: details).
    let drop_w = if w >= 56 { 8 } else { 0 };
    let bar_w = w.saturating_sub(name_w + num_w + drop_w + 3);
    let (first, visible) = window(inner.height, s);
    for (i, r) in rows.iter().enumerate().skip(first).take(visible) {
        let rec = s.recommended.as_deref() == Some(r.name);
        let mark = if i == s.cursor { "›" } else { " " };
        let name_style = if rec { t.recommended } else { t.text };
        let mut line = Line::from(vec![
            Span::styled(mark, t.cursor),
            Span::styled(format!("{:<name_w$} ", fit(r.name, name_w)), name_style),
        ]);
        match r.exact {
            Some(m) => {
                let filled = (((m.mrc.abs() / max) * bar_w as f64).round() as usize).min(bar_w);
                line.push_span(Span::styled(
                    BAR.to_string().repeat(filled),
                    if rec { t.recommended } else { t.bar },
                ));
                line.push_span(Span::styled(" ".repeat(bar_w - filled), t.text));
                line.push_span(Span::styled(format!(" {:>num_w$.4}", m.mrc), t.text));
                if drop_w > 0 {
                    line.push_span(Span::styled(
                        // The change of robust accuracy: a drop shows as negative.
                        format!(
                            " {:>w$}",
                            format!("{:+.2}", -m.robust_acc_drop),
                            w = drop_w - 1
                        ),
                        t.muted,
                    ));
                }
            }
            None => {
                let v = r.estimate_value().unwrap_or(0.0);
                let filled = (((v.abs() / max_est) * bar_w as f64).round() as usize).min(bar_w);
                line.push_span(Span::styled(EST_BAR.to_string().repeat(filled), t.muted));
                line.push_span(Span::styled(" ".repeat(bar_w - filled), t.text));
                line.push_span(Span::styled(
                    format!(" ~{:>w$.4}", v, w = num_w - 1),
                    t.muted,
                ));
                if drop_w > 0 {
                    line.push_span(Span::styled(
                        format!(" {:>w$}", "est.", w = drop_w - 1),
                        t.muted,
                    ));
                }
            }
        }
        if i == s.cursor {
            // Every span carries the theme's background, so the highlight goes on each.
            if let Some(bg) = t.selected.bg {
                for span in &mut line.spans {
                    span.style = span.style.bg(bg);
                }
            }
        }
        lines.push(line);
    }
    if let Some(r) = &s.mrc_running {
        lines.push(Line::from(vec![
            Span::styled(" ", t.text),
            Span::styled(format!("{:<name_w$} ", fit(&r.name, name_w)), t.bar_running),
            Span::styled(
                format!("epoch {} loss {:.4}", r.epoch + 1, r.loss),
                t.bar_running,
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The rows of bars shown: the first index and how many, keeping the cursor in view and
/// a row for the running module.
fn window(height: u16, s: &State) -> (usize, usize) {
    let reserve = usize::from(s.mrc_running.is_some());
    let visible = (height as usize).saturating_sub(reserve).max(1);
    (s.cursor.saturating_sub(visible - 1), visible)
}

/// The module (index in display order) whose bar is on screen row `row` of the panel.
pub fn row_at(area: Rect, s: &State, row: u16) -> Option<usize> {
    let inner = area.inner(ratatui::layout::Margin::new(1, 1));
    if row < inner.y || row >= inner.bottom() {
        return None;
    }
    let (first, visible) = window(inner.height, s);
    let i = first + (row - inner.y) as usize;
    (i < first + visible && i < s.rows().len()).then_some(i)
}

pub fn render_details(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let block = panel(" Module ", t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    match s.selected_row() {
        None => lines.push(Line::styled("modules appear as MRC scores them", t.muted)),
        Some(row) => {
            let rec = s.recommended.as_deref() == Some(row.name);
            lines.push(Line::styled(
                row.name.to_string(),
                if rec { t.recommended } else { t.title },
            ));
            if rec {
                lines.push(Line::styled(s.recommendation_label(), t.recommended));
            }
            let total = s.mrc_total.max(s.modules.len()).max(s.estimates.len());
            lines.push(Line::from(vec![
                Span::styled(format!("depth {}/{} ", row.depth + 1, total), t.text),
                Span::styled(depth_gauge(row.depth, total), t.bar),
                Span::styled(format!(" {}", depth_band(row.depth, total)), t.muted),
            ]));
            let (kind, shape, params) = row.info();
            let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            lines.push(Line::styled(
                format!("{kind}  {}  {params} params", shape.join("×")),
                t.text,
            ));
            match row.exact {
                Some(m) => {
                    lines.push(Line::styled(
                        format!("MRC {:.4}  robust drop {:.2} pts", m.mrc, m.robust_acc_drop),
                        t.text,
                    ));
                    let losses: Vec<String> =
                        m.epoch_losses.iter().map(|l| format!("{l:.3}")).collect();
                    lines.push(Line::styled(
                        format!("epoch loss {}", losses.join(" ")),
                        t.muted,
                    ));
                }
                None => lines.push(Line::styled(
                    "exact MRC pending: first-order estimate only (not in the paper)",
                    t.muted,
                )),
            }
            if let Some(e) = row.estimate_value() {
                let step = row
                    .estimate
                    .and_then(|e| e.estimate_step)
                    .map_or(String::new(), |v| format!(", one step {v:.4}"));
                lines.push(Line::styled(format!("estimate {e:.4}{step}"), t.muted));
            }
        }
    }
    // The model and its baselines, below the module where there is room.
    lines.push(Line::raw(""));
    if let Some((c, r, n)) = s.baseline {
        lines.push(Line::styled(
            format!("AT model: clean {c:.2}% robust {r:.2}% (n={n})"),
            t.text,
        ));
    }
    if let Some((n, loss, acc)) = s.adv_set {
        lines.push(Line::styled(
            format!("adversarial set: {n} samples, loss {loss:.4}, acc {acc:.2}%"),
            t.muted,
        ));
    }
    if !s.model_info.is_empty() {
        lines.push(Line::styled(s.model_info.clone(), t.muted));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        inner,
    );
}

/// Where a module sits in the network, as a 10-cell gauge (the published advice favours
/// middle layers).
pub fn depth_gauge(depth: usize, total: usize) -> String {
    let cells = 10usize;
    let pos = if total <= 1 {
        0
    } else {
        depth * (cells - 1) / (total - 1)
    };
    (0..cells)
        .map(|i| if i == pos { '●' } else { '·' })
        .collect()
}

pub fn depth_band(depth: usize, total: usize) -> &'static str {
    let third = (depth * 3) / total.max(1);
    match third {
        0 => "early",
        1 => "middle",
        _ => "late",
    }
}
