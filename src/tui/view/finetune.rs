//! The fine-tuning panel: a line chart of the training loss against the iteration (the raw
//! loss, an exponential moving average of it, the epoch boundaries), beside the per-epoch
//! accuracies; a narrow panel keeps the chart and the latest epoch's accuracies on a line.
use super::{fit_pieces, panel, Piece};
use crate::engine::rift::events::Stage;
use crate::engine::rift::mrc::results::FinetuneEpoch;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::update::fmt_lr;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

/// Weight of the newest loss in the moving average: each point keeps 0.9 of the average
/// before it (TensorBoard's default smoothing), enough to show the trend through the
/// noise of single batches while still following the lr steps within an epoch.
pub const EMA_WEIGHT: f64 = 0.1;

/// Panels at least this wide show the accuracy table beside the chart.
const TABLE_BESIDE_MIN_WIDTH: u16 = 60;
const TABLE_WIDTH: u16 = 28;

/// Exponential moving average, starting at the first value.
pub fn ema(v: &[f64], weight: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut avg = None;
    for &x in v {
        let a = avg.map_or(x, |a: f64| a + weight * (x - a));
        avg = Some(a);
        out.push(a);
    }
    out
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let title = if s.read_only.is_some() {
        " Fine-tuning ".to_string()
    } else {
        format!(" Fine-tuning · next lr {} ", fmt_lr(s.lr))
    };
    let mut block = panel(&title, t);
    if !s.ft_losses.is_empty() {
        block = block.title_bottom(legend(t, usize::from(area.width.saturating_sub(2))));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if s.ft_layers.is_empty() {
        let msg = if s.mrc_done && s.read_only.is_none() {
            "Enter fine-tunes the selected module"
        } else if s.mrc_done {
            "no fine-tuning yet"
        } else {
            "waiting for MRC"
        };
        frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)), inner);
        return;
    }
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    frame.render_widget(Paragraph::new(head_line(s, t, head.width)), head);
    if body.width >= TABLE_BESIDE_MIN_WIDTH {
        let [chart, _, table] = Layout::horizontal([
            Constraint::Min(10),
            Constraint::Length(1),
            Constraint::Length(TABLE_WIDTH),
        ])
        .areas(body);
        render_chart(frame, chart, s, t);
        frame.render_widget(Paragraph::new(table_lines(s, t, table.height)), table);
    } else {
        let [chart, last] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(body);
        render_chart(frame, chart, s, t);
        if let Some(e) = s.ft_epochs.last() {
            frame.render_widget(Paragraph::new(compact_epoch(e, t, last.width)), last);
        }
    }
}

/// The chart's series, in the frame's bottom edge.
fn legend(t: &Theme, width: usize) -> Line<'static> {
    let p = vec![
        Piece::new(" ━ raw", t.muted, 8),
        Piece::new(format!(" ━ EMA {:.1}", 1.0 - EMA_WEIGHT), t.bar_running, 9),
        Piece::new(" ⡇ epoch", t.baseline, 7),
        Piece::new(" ", t.border, 10),
    ];
    fit_pieces(p, width)
}

/// Layers, lr, where the run is and the last loss: the least needed pieces go first.
fn head_line(s: &State, t: &Theme, width: u16) -> Line<'static> {
    let state = if s.ft_done {
        " · done".to_string()
    } else {
        format!(" · epoch {}/{}", s.ft_epoch + 1, s.ft_total_epochs)
    };
    let mut p = vec![
        Piece::new(s.ft_layers.join(","), t.text, 9),
        Piece::new(format!(" · lr {}", fmt_lr(s.ft_lr)), t.text, 4),
        Piece::new(state, t.text, 8),
    ];
    if let Some(l) = s.ft_losses.last() {
        p.push(Piece::new(format!(" · loss {l:.4}"), t.text, 6));
    }
    fit_pieces(p, usize::from(width))
}

/// The total iterations of the run when known (the running job's `Progress` total, else
/// every iteration seen), so the x axis does not rescale while the run goes on.
fn iterations(s: &State) -> usize {
    let running = s
        .job
        .as_ref()
        .filter(|j| j.stage == Stage::Finetune && j.total > 0)
        .map(|j| j.total);
    running.unwrap_or(0).max(s.ft_iters).max(1)
}

fn render_chart(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    // Each stored loss stands for `ft_stride` iterations (the oldest are averaged in pairs).
    // A diverged run's NaN/Inf losses are left out: the chart shows what is finite.
    let stride = s.ft_stride as f64;
    let raw: Vec<(f64, f64)> = s
        .ft_losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as f64 * stride, l))
        .collect();
    if raw.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("no loss yet", t.muted)), area);
        return;
    }
    let finite: Vec<f64> = raw.iter().map(|p| p.1).collect();
    let smoothed: Vec<(f64, f64)> = ema(&finite, EMA_WEIGHT)
        .into_iter()
        .zip(&raw)
        .map(|(l, p)| (p.0, l))
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let x_max = iterations(s) as f64;
    // An epoch boundary is a vertical line where the epoch's first iteration is.
    let boundaries: Vec<Vec<(f64, f64)>> = s
        .ft_epoch_starts
        .iter()
        .filter(|&&i| i > 0)
        .map(|&i| vec![(i as f64, lo), (i as f64, hi)])
        .collect();
    // The legend is in the frame's bottom edge: ratatui's legend box would cover the curve.
    let mut datasets: Vec<Dataset> = boundaries
        .iter()
        .map(|b| {
            Dataset::default()
                .data(b)
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(t.baseline)
        })
        .collect();
    datasets.push(
        Dataset::default()
            .data(&raw)
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(t.muted),
    );
    datasets.push(
        Dataset::default()
            .data(&smoothed)
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(t.bar_running),
    );
    let x_labels: Vec<String> = if area.width >= 30 {
        vec![
            "0".into(),
            format!("{}", x_max as usize / 2),
            format!("{}", x_max as usize),
        ]
    } else {
        vec!["0".into(), format!("{}", x_max as usize)]
    };
    let y_labels = vec![format!("{lo:.2}"), format!("{hi:.2}")];
    let chart = Chart::new(datasets)
        .style(t.base)
        .x_axis(
            Axis::default()
                .title(Line::styled("iteration", t.muted))
                .bounds([0.0, x_max])
                .style(t.muted)
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .title(Line::styled("loss", t.muted))
                .bounds([lo, hi])
                .style(t.muted)
                .labels(y_labels),
        );
    frame.render_widget(chart, area);
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.2}"))
}

/// The per-epoch accuracies, the latest that fit.
fn table_lines(s: &State, t: &Theme, height: u16) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        format!("{:<3}{:>8}{:>8}{:>8}", "ep", "train", "val", "test"),
        t.muted,
    )];
    let rows = usize::from(height).saturating_sub(1);
    let skip = s.ft_epochs.len().saturating_sub(rows);
    for e in s.ft_epochs.iter().skip(skip) {
        lines.push(Line::styled(
            format!(
                "{:<3}{:>8.2}{:>8}{:>8}",
                e.epoch + 1,
                e.train_acc,
                pct(e.val_acc),
                pct(e.test_acc)
            ),
            t.text,
        ));
    }
    lines
}

/// The latest epoch's accuracies on one line, for a narrow panel.
fn compact_epoch(e: &FinetuneEpoch, t: &Theme, width: u16) -> Line<'static> {
    let mut p = vec![
        Piece::new(format!("ep {}", e.epoch + 1), t.muted, 9),
        Piece::new(format!(" train {:.2}", e.train_acc), t.text, 8),
    ];
    if let Some(v) = e.val_acc {
        p.push(Piece::new(format!(" val {v:.2}"), t.text, 7));
    }
    if let Some(v) = e.test_acc {
        p.push(Piece::new(format!(" test {v:.2}"), t.text, 6));
    }
    fit_pieces(p, usize::from(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value keeps 1 − w of the average before it and adds w of the new loss.
    #[test]
    fn ema_follows_its_definition() {
        let v = [1.0, 0.5, 0.8, 0.2];
        let got = ema(&v, 0.25);
        let mut want = vec![v[0]];
        for x in &v[1..] {
            let prev = want[want.len() - 1];
            want.push(0.75 * prev + 0.25 * x);
        }
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        assert!(ema(&[], 0.1).is_empty());
    }
}
