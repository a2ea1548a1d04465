//! The α panel: clean and robust accuracy over α, the AT baselines as references, the
//! cursor with its numbers, the rule's best α and the accepted α.
use super::panel;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

/// The head lines (cursor, marks, OOD when known) above the chart.
fn split(inner: Rect, s: &State) -> [Rect; 2] {
    let no_ood = s.ood_at.is_empty() && s.ood_chosen.is_empty();
    let aa = super::aa_line::lines(s, inner.width).len() as u16;
    let head = if no_ood { 2 } else { 3 } + aa;
    Layout::vertical([Constraint::Length(head), Constraint::Min(3)]).areas(inner)
}

/// Accuracy range of the chart: every point, padded, within [0, 100].
fn y_bounds(s: &State) -> (f64, f64) {
    let all = s.sweep.iter().flat_map(|p| [p.clean_acc, p.robust_acc]);
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.5);
    ((lo - pad).max(0.0), (hi + pad).min(100.0))
}

/// The y-axis labels; their width decides where the plotting area starts.
fn y_labels(s: &State) -> [String; 2] {
    let (lo, hi) = y_bounds(s);
    [format!("{lo:.0}"), format!("{hi:.0}")]
}

/// The α under screen column `col` of the panel, when the chart is shown (the caller
/// snaps it to the nearest sweep point).
pub fn alpha_at(area: Rect, s: &State, col: u16) -> Option<f64> {
    if s.sweep.is_empty() {
        return None;
    }
    let [_, chart] = split(area.inner(ratatui::layout::Margin::new(1, 1)), s);
    // Labels, then the axis line, then the plot up to the right edge.
    let label_w = y_labels(s)
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let x0 = chart.x + label_w + 1;
    let x1 = chart.right().saturating_sub(1);
    if col < chart.x || col >= chart.right() || x1 <= x0 {
        return None;
    }
    let frac = (f64::from(col.clamp(x0, x1) - x0)) / f64::from(x1 - x0);
    Some(frac)
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let block = panel(" α: clean / robust ", t);
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
    let [head, chart_area] = split(inner, s);
    let mut head_lines = Vec::new();
    if let Some(p) = s.cursor_point() {
        head_lines.push(Line::from(vec![
            Span::styled(format!("α {:.3} ", p.alpha), t.cursor),
            Span::styled(format!("clean {:.2}% ", p.clean_acc), t.clean),
            Span::styled(format!("robust {:.2}%", p.robust_acc), t.robust),
        ]));
    }
    let mut marks = Vec::new();
    if let Some(b) = s.best_alpha {
        marks.push(Span::styled(format!("rule α {b:.3} "), t.chosen));
    }
    if let Some(a) = s.accepted_alpha {
        marks.push(Span::styled(format!("accepted α {a:.3} "), t.ok));
    }
    if let Some(b) = s.sweep.iter().find(|p| p.alpha == 0.0) {
        marks.push(Span::styled(
            format!("AT {:.1}/{:.1}", b.clean_acc, b.robust_acc),
            t.baseline,
        ));
    }
    head_lines.push(Line::from(marks));
    let (at, chosen) = s.ood_means();
    if at.is_some() || chosen.is_some() {
        let pct = |v: Option<f64>| v.map_or("…".to_string(), |x| format!("{x:.2}%"));
        head_lines.push(Line::styled(
            format!(
                "OOD mean: AT {} ({}) · accepted {} ({})",
                pct(at),
                s.ood_at.len(),
                pct(chosen),
                s.ood_chosen.len()
            ),
            t.text,
        ));
    }
    let aa = super::aa_line::lines(s, head.width);
    head_lines.extend(aa.into_iter().map(|l| Line::styled(l, t.text)));
    frame.render_widget(Paragraph::new(head_lines), head);

    let clean: Vec<(f64, f64)> = s.sweep.iter().map(|p| (p.alpha, p.clean_acc)).collect();
    let robust: Vec<(f64, f64)> = s.sweep.iter().map(|p| (p.alpha, p.robust_acc)).collect();
    let (lo, hi) = y_bounds(s);
    let base = s.sweep.iter().find(|p| p.alpha == 0.0);
    let base_clean: Vec<(f64, f64)> =
        base.map_or(vec![], |b| vec![(0.0, b.clean_acc), (1.0, b.clean_acc)]);
    let base_robust: Vec<(f64, f64)> =
        base.map_or(vec![], |b| vec![(0.0, b.robust_acc), (1.0, b.robust_acc)]);
    let cursor: Vec<(f64, f64)> = s.alpha_cursor.map_or(vec![], |a| vec![(a, lo), (a, hi)]);
    let best: Vec<(f64, f64)> = s
        .best_alpha
        .and_then(|a| s.sweep.iter().find(|p| p.alpha == a))
        .map_or(vec![], |p| {
            vec![(p.alpha, p.clean_acc), (p.alpha, p.robust_acc)]
        });
    let line = |data, style| {
        Dataset::default()
            .data(data)
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(style)
    };
    let points = |data, style| {
        Dataset::default()
            .data(data)
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(style)
    };
    let datasets = vec![
        line(&base_clean, t.baseline),
        line(&base_robust, t.baseline),
        line(&cursor, t.cursor),
        line(&clean, t.clean).name("clean"),
        line(&robust, t.robust).name("robust"),
        points(&clean, t.clean),
        points(&robust, t.robust),
        Dataset::default()
            .data(&best)
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(t.chosen),
    ];
    // The head line names the two colours; a legend box would cover the curves.
    let chart = Chart::new(datasets)
        .hidden_legend_constraints((Constraint::Length(0), Constraint::Length(0)))
        .style(t.base)
        .x_axis(
            Axis::default()
                .bounds([0.0, 1.0])
                .style(t.muted)
                .labels(["0", "0.5", "1"]),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .style(t.muted)
                .labels(y_labels(s)),
        );
    frame.render_widget(chart, chart_area);
}
