//! The fine-tuning panel: smoothed training loss per iteration and per-epoch accuracies.
use super::panel;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::update::fmt_lr;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

/// Moving average over `window` points, for a readable loss curve.
pub fn smooth(v: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for (i, x) in v.iter().enumerate() {
        sum += x;
        if i >= window {
            sum -= v[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let title = if s.read_only.is_some() {
        " Fine-tuning ".to_string()
    } else {
        format!(" Fine-tuning · next lr {} ", fmt_lr(s.lr))
    };
    let block = panel(&title, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if s.ft_layers.is_empty() {
        let msg = if s.mrc_done {
            "Enter fine-tunes the selected module"
        } else {
            "waiting for MRC"
        };
        frame.render_widget(Paragraph::new(Line::styled(msg, t.muted)), inner);
        return;
    }
    let rows = (inner.height as usize).saturating_sub(2);
    let table_h = (s.ft_epochs.len() + 1).min(rows / 2).max(1) as u16;
    let [head, chart, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(table_h),
    ])
    .areas(inner);
    let state = if s.ft_done {
        "done".to_string()
    } else {
        format!("epoch {}/{}", s.ft_epoch + 1, s.ft_total_epochs)
    };
    let last = s
        .ft_losses
        .last()
        .map_or(String::new(), |l| format!(" loss {l:.4}"));
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "{} · lr {} · {state}{last}",
                s.ft_layers.join(","),
                fmt_lr(s.ft_lr)
            ),
            t.text,
        )),
        head,
    );
    // The last `width` smoothed losses, scaled to integers for the sparkline.
    let sm = smooth(&s.ft_losses, 10);
    let w = chart.width as usize;
    let tail = &sm[sm.len().saturating_sub(w)..];
    let max = tail.iter().copied().fold(f64::MIN, f64::max);
    let min = tail.iter().copied().fold(f64::MAX, f64::min);
    let span = (max - min).max(1e-12);
    // From the smallest loss shown, so the trend fills the panel's height.
    let data: Vec<u64> = tail
        .iter()
        .map(|v| ((v - min) / span * 1000.0) as u64 + 1)
        .collect();
    frame.render_widget(Sparkline::default().data(&data).style(t.bar), chart);
    let mut lines = vec![Line::styled("ep   train   val    test", t.muted)];
    let skip = s
        .ft_epochs
        .len()
        .saturating_sub(table_h.saturating_sub(1) as usize);
    for e in s.ft_epochs.iter().skip(skip) {
        let opt = |v: Option<f64>| v.map_or("   -  ".to_string(), |x| format!("{x:6.2}"));
        lines.push(Line::styled(
            format!(
                "{:<3} {:6.2} {} {}",
                e.epoch + 1,
                e.train_acc,
                opt(e.val_acc),
                opt(e.test_acc)
            ),
            t.text,
        ));
    }
    frame.render_widget(Paragraph::new(lines), table);
}
