//! The α panel's plane view: every sweep point at (clean %, robust %), joined in α order
//! (the path from the AT model at α = 0 to the fine-tuned one at α = 1), each labelled
//! with its α where the label has room. The AT point is ○, the rule's α ◆, the accepted
//! α ★; the cursor's label is highlighted; the tolerance line is the lowest robust
//! accuracy the rule accepts. A `Canvas` draws the path (a `Chart` cannot place labels at
//! points), inside axes drawn here.
use super::alpha::{ACCEPTED_GLYPH, RULE_GLYPH};
use crate::engine::rift::mrc::results::SweepPoint;
use crate::tui::state::State;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::canvas::{Canvas, Context, Line as CanvasLine};
use ratatui::Frame;

pub const AT_GLYPH: char = '○';

/// An accuracy range padded by a tenth (at least 0.1 point), within [0, 100].
pub(super) fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.1);
    ((lo - pad).max(0.0), (hi + pad).min(100.0))
}

/// α as short text: 0, 0.25, 1 (at most three decimals).
pub fn short_alpha(a: f64) -> String {
    let s = format!("{a:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where on the plot (cells) a value lands: the cell of the Braille dot ratatui's canvas
/// draws for it (2×4 dots a cell), so a glyph sits where the path bends.
struct Grid {
    plot: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Grid {
    fn cell(&self, clean: f64, robust: f64) -> (u16, u16) {
        let fx = (clean - self.x.0) / (self.x.1 - self.x.0);
        let fy = (self.y.1 - robust) / (self.y.1 - self.y.0);
        let dots_x = f64::from(self.plot.width * 2).max(1.0) - 1.0;
        let dots_y = f64::from(self.plot.height * 4).max(1.0) - 1.0;
        let col = ((fx * dots_x) as u16 / 2).min(self.plot.width.saturating_sub(1));
        let row = ((fy * dots_y) as u16 / 4).min(self.plot.height.saturating_sub(1));
        (self.plot.x + col, self.plot.y + row)
    }
}

pub fn render(frame: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let Some((_, r0)) = s.alpha_baseline() else {
        return;
    };
    let floor = r0 - s.tolerance;
    let x = padded(s.sweep.iter().map(|p| p.clean_acc));
    let y = padded(s.sweep.iter().map(|p| p.robust_acc).chain([floor]));
    let Some(plot) = plane_axes(frame.buffer_mut(), area, x, y, t.muted) else {
        return;
    };
    let colour = |st: Style| st.fg.unwrap_or(Color::Reset);
    let path: Vec<&SweepPoint> = s.sweep.iter().collect();
    let canvas = plane_canvas(t, x, y, |ctx| {
        ctx.draw(&CanvasLine::new(
            x.0,
            floor,
            x.1,
            floor,
            colour(t.tolerance),
        ));
        ctx.layer();
        for w in path.windows(2) {
            ctx.draw(&CanvasLine::new(
                w[0].clean_acc,
                w[0].robust_acc,
                w[1].clean_acc,
                w[1].robust_acc,
                colour(t.muted),
            ));
        }
    });
    frame.render_widget(canvas, plot);
    let grid = Grid { plot, x, y };
    marks_and_labels(frame.buffer_mut(), &grid, s, t);
}

/// Axes for clean accuracy `x` and robust accuracy `y` (ranges) over `area`; the plot's
/// own rectangle inside them, or `None` when `area` is too small for a plot.
pub(super) fn plane_axes(
    buf: &mut Buffer,
    area: Rect,
    x: (f64, f64),
    y: (f64, f64),
    st: Style,
) -> Option<Rect> {
    let y_labels = [format!("{:.1}", y.1), format!("{:.1}", y.0)];
    let label_w = y_labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0) as u16;
    if area.width < label_w + 8 || area.height < 4 {
        return None;
    }
    let plot = Rect::new(
        area.x + label_w + 1,
        area.y,
        area.width - label_w - 1,
        area.height - 2,
    );
    axes(buf, area, plot, &y_labels, x, st);
    Some(plot)
}

/// A Braille canvas over clean range `x` and robust range `y` in the theme's background,
/// drawn by `paint` (the α plane and the compare view's paths).
pub(super) fn plane_canvas<F: Fn(&mut Context)>(
    t: &Theme,
    x: (f64, f64),
    y: (f64, f64),
    paint: F,
) -> Canvas<'static, F> {
    Canvas::default()
        .background_color(t.base.bg.unwrap_or(Color::Reset))
        .marker(Marker::Braille)
        .x_bounds([x.0, x.1])
        .y_bounds([y.0, y.1])
        .paint(paint)
}

/// The y labels (top, bottom), the axis lines and the x labels (lowest, highest clean).
fn axes(
    buf: &mut Buffer,
    area: Rect,
    plot: Rect,
    y_labels: &[String; 2],
    x: (f64, f64),
    st: Style,
) {
    let axis_x = plot.x - 1;
    let w = usize::from(axis_x - area.x);
    buf.set_string(area.x, plot.y, format!("{:>w$}", y_labels[0]), st);
    buf.set_string(
        area.x,
        plot.bottom() - 1,
        format!("{:>w$}", y_labels[1]),
        st,
    );
    for row in plot.y..plot.bottom() {
        buf.set_string(axis_x, row, "│", st);
    }
    let base = plot.bottom();
    buf.set_string(axis_x, base, "└", st);
    buf.set_string(plot.x, base, "─".repeat(usize::from(plot.width)), st);
    let (lo, hi) = (format!("{:.1}", x.0), format!("{:.1}", x.1));
    buf.set_string(plot.x, base + 1, &lo, st);
    let hi_x = plot.right().saturating_sub(hi.chars().count() as u16);
    buf.set_string(hi_x, base + 1, &hi, st);
}

/// Each point's glyph, then α labels beside them, most important first, where free.
fn marks_and_labels(buf: &mut Buffer, grid: &Grid, s: &State, t: &Theme) {
    let mut taken: Vec<(u16, u16)> = Vec::new();
    let glyph_of = |p: &SweepPoint| {
        if s.accepted_alpha == Some(p.alpha) {
            (ACCEPTED_GLYPH, t.accepted)
        } else if s.best_alpha == Some(p.alpha) {
            (RULE_GLYPH, t.chosen)
        } else if p.alpha == 0.0 {
            (AT_GLYPH, t.baseline)
        } else {
            ('•', t.text)
        }
    };
    for p in &s.sweep {
        let (c, r) = grid.cell(p.clean_acc, p.robust_acc);
        let (glyph, st) = glyph_of(p);
        buf.set_string(c, r, glyph.to_string(), st);
        taken.push((c, r));
    }
    let rank = |p: &SweepPoint| {
        if s.alpha_cursor == Some(p.alpha) {
            0
        } else if s.accepted_alpha == Some(p.alpha) {
            1
        } else if s.best_alpha == Some(p.alpha) {
            2
        } else if p.alpha == 0.0 {
            3
        } else {
            4
        }
    };
    let mut order: Vec<&SweepPoint> = s.sweep.iter().collect();
    order.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.alpha.total_cmp(&b.alpha)));
    for p in order {
        let label = short_alpha(p.alpha);
        let n = label.chars().count() as u16;
        let (c, r) = grid.cell(p.clean_acc, p.robust_acc);
        let right = c + 1;
        let left = c.checked_sub(n);
        let fits = |x0: u16| {
            x0 >= grid.plot.x
                && x0 + n <= grid.plot.right()
                && !taken
                    .iter()
                    .any(|&(tx, ty)| ty == r && tx >= x0 && tx < x0 + n)
        };
        let Some(x0) = [Some(right), left]
            .into_iter()
            .flatten()
            .find(|&x0| fits(x0))
        else {
            continue;
        };
        let st = if s.alpha_cursor == Some(p.alpha) {
            t.cursor
        } else {
            t.muted
        };
        buf.set_string(x0, r, &label, st);
        // With a free cell either side, so two labels never read as one number.
        taken.extend((x0.saturating_sub(1)..x0 + n + 1).map(|x| (x, r)));
    }
}
