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

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let sort = match s.sort {
        SortOrder::Depth => "depth",
        SortOrder::Mrc => "MRC",
    };
    let title = format!(
        " MRC {}/{} · by {sort} ",
        s.modules.len(),
        s.mrc_total.max(s.modules.len())
    );
    let block = panel(&title, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    let rows = s.ordered_modules();
    if rows.is_empty() && s.mrc_running.is_none() {
        let msg = if s.busy {
            "computing baseline and the adversarial set…"
        } else {
            "no MRC yet"
        };
        lines.push(Line::styled(msg, t.muted));
    }
    let max = rows.iter().map(|m| m.mrc.abs()).fold(1e-12, f64::max);
    let name_w = (w / 3).clamp(6, 18);
    let num_w = 8;
    // The robust-accuracy drop gets its own column where there is room (else: details).
    let drop_w = if w >= 56 { 8 } else { 0 };
    let bar_w = w.saturating_sub(name_w + num_w + drop_w + 3);
    let (first, visible) = window(inner.height, s);
    for (i, m) in rows.iter().enumerate().skip(first).take(visible) {
        let rec = s.recommended.as_deref() == Some(m.name.as_str());
        let filled = ((m.mrc.abs() / max) * bar_w as f64).round() as usize;
        let mark = if i == s.cursor { "›" } else { " " };
        let name_style = if rec { t.recommended } else { t.text };
        let mut line = Line::from(vec![
            Span::styled(mark, t.cursor),
            Span::styled(format!("{:<name_w$} ", fit(&m.name, name_w)), name_style),
            Span::styled(
                BAR.to_string().repeat(filled.min(bar_w)),
                if rec { t.recommended } else { t.bar },
            ),
            Span::styled(" ".repeat(bar_w - filled.min(bar_w)), t.text),
            Span::styled(format!(" {:>num_w$.4}", m.mrc), t.text),
        ]);
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
    (i < first + visible && i < s.modules.len()).then_some(i)
}

pub fn render_details(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let block = panel(" Module ", t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    match s.selected_module() {
        None => lines.push(Line::styled("modules appear as MRC scores them", t.muted)),
        Some(m) => {
            let rec = s.recommended.as_deref() == Some(m.name.as_str());
            lines.push(Line::styled(
                m.name.clone(),
                if rec { t.recommended } else { t.title },
            ));
            if rec {
                lines.push(Line::styled(
                    "lowest MRC: recommended (Enter)",
                    t.recommended,
                ));
            }
            let total = s.mrc_total.max(s.modules.len());
            lines.push(Line::from(vec![
                Span::styled(format!("depth {}/{} ", m.depth + 1, total), t.text),
                Span::styled(depth_gauge(m.depth, total), t.bar),
                Span::styled(format!(" {}", depth_band(m.depth, total)), t.muted),
            ]));
            let shape: Vec<String> = m.shape.iter().map(|d| d.to_string()).collect();
            lines.push(Line::styled(
                format!("{}  {}  {} params", m.kind, shape.join("×"), m.params),
                t.text,
            ));
            lines.push(Line::styled(
                format!("MRC {:.4}  robust drop {:.2} pts", m.mrc, m.robust_acc_drop),
                t.text,
            ));
            let losses: Vec<String> = m.epoch_losses.iter().map(|l| format!("{l:.3}")).collect();
            lines.push(Line::styled(
                format!("epoch loss {}", losses.join(" ")),
                t.muted,
            ));
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
