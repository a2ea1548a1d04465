//! The α panel's Δ chart: clean and robust accuracy as changes from the AT model, in
//! points, against α. The AT model is the line at 0 and the tolerance band's lower edge
//! the line at −tolerance: a robust point below it is one the rule may not pick. The
//! cursor is a vertical line; the rule's α and the accepted α are marked on both curves.
use super::alpha::{ACCEPTED_GLYPH, RULE_GLYPH};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
use ratatui::Frame;

/// The α range: the sweep's, and at least [0, 1].
fn x_bounds(s: &State) -> (f64, f64) {
    let a = s.sweep.iter().map(|p| p.alpha);
    let lo = a.clone().fold(0.0, f64::min);
    let hi = a.fold(1.0, f64::max);
    (lo, hi)
}

/// The change range: every point's changes, 0 (AT) and −tolerance, padded.
pub fn y_bounds(s: &State) -> (f64, f64) {
    let d = s.alpha_deltas();
    let values = d.iter().flat_map(|&(_, c, r)| [c, r]);
    let (lo, hi) = values
        .chain([0.0, -s.tolerance])
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.05);
    (lo - pad, hi + pad)
}

/// The y-axis labels (signed points); their width decides where the plot starts.
fn y_labels(s: &State) -> Vec<String> {
    let (lo, hi) = y_bounds(s);
    let digits = if hi - lo < 2.0 { 2 } else { 1 };
    [lo, (lo + hi) / 2.0, hi]
        .iter()
        .map(|v| format!("{v:+.digits$}"))
        .collect()
}

fn x_labels(s: &State) -> Vec<String> {
    let (lo, hi) = x_bounds(s);
    let f = |v: f64| format!("{v}");
    vec![f(lo), f((lo + hi) / 2.0), f(hi)]
}

/// The α under screen column `col` of the chart area (as ratatui's `Chart` lays it out:
/// the y labels, never wider than a third of the area, then the axis, then the plot).
pub fn alpha_at(chart: Rect, s: &State, col: u16) -> Option<f64> {
    let widest = y_labels(s).iter().map(|l| l.chars().count()).max();
    // A left-aligned first x label may reach left of the axis by all but one column.
    let first_x = x_labels(s)[0].chars().count().saturating_sub(1);
    let label_w = (widest.unwrap_or(0).max(first_x) as u16).min(chart.width / 3);
    let x0 = chart.x + label_w + 1;
    let x1 = chart.right().saturating_sub(1);
    if col < chart.x || col >= chart.right() || x1 <= x0 {
        return None;
    }
    let frac = f64::from(col.clamp(x0, x1) - x0) / f64::from(x1 - x0);
    let (lo, hi) = x_bounds(s);
    Some(lo + frac * (hi - lo))
}

fn line<'a>(data: &'a [(f64, f64)], style: Style) -> Dataset<'a> {
    Dataset::default()
        .data(data)
        .graph_type(GraphType::Line)
        .marker(Marker::Braille)
        .style(style)
}

fn marks<'a>(data: &'a [(f64, f64)], glyph: char, style: Style) -> Dataset<'a> {
    Dataset::default()
        .data(data)
        .graph_type(GraphType::Scatter)
        .marker(Marker::Custom(glyph))
        .style(style)
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let d = s.alpha_deltas();
    let (x_lo, x_hi) = x_bounds(s);
    let (lo, hi) = y_bounds(s);
    let clean: Vec<(f64, f64)> = d.iter().map(|&(a, c, _)| (a, c)).collect();
    let robust: Vec<(f64, f64)> = d.iter().map(|&(a, _, r)| (a, r)).collect();
    let at = [(x_lo, 0.0), (x_hi, 0.0)];
    let band_edge = [(x_lo, -s.tolerance), (x_hi, -s.tolerance)];
    let cursor: Vec<(f64, f64)> = s.alpha_cursor.map_or(vec![], |a| vec![(a, lo), (a, hi)]);
    let at_alpha = |alpha: Option<f64>| -> Vec<(f64, f64)> {
        alpha
            .and_then(|a| d.iter().find(|p| p.0 == a))
            .map_or(vec![], |&(a, c, r)| vec![(a, c), (a, r)])
    };
    let rule = at_alpha(s.best_alpha);
    let accepted = at_alpha(s.accepted_alpha);
    let datasets = vec![
        line(&at, t.baseline),
        line(&band_edge, t.tolerance),
        line(&cursor, t.cursor),
        line(&clean, t.clean),
        line(&robust, t.robust),
        marks(&clean, '•', t.clean),
        marks(&robust, '•', t.robust),
        marks(&rule, RULE_GLYPH, t.chosen),
        // Last, so it shows where the user accepted the rule's α.
        marks(&accepted, ACCEPTED_GLYPH, t.accepted),
    ];
    // The legend is the panel's first lines: a legend box would cover the curves.
    let chart = Chart::new(datasets)
        .style(t.base)
        .x_axis(
            Axis::default()
                .bounds([x_lo, x_hi])
                .style(t.muted)
                .labels(x_labels(s)),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .style(t.muted)
                .labels(y_labels(s)),
        );
    frame.render_widget(chart, area);
}
