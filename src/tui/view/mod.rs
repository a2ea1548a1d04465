//! One `render(frame, area, state, theme)` per panel; `draw` lays them out with `areas`,
//! which mouse clicks use too (`hit`).
pub mod aa_line;
pub mod alpha;
pub mod alpha_delta;
pub mod alpha_plane;
pub mod compare;
pub mod finetune;
pub mod help;
pub mod mrc;
pub mod status;

use super::state::State;
use super::theme::Theme;
use super::update::Msg;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};
use ratatui::Frame;

/// Where each panel goes: at 80×24 the MRC bars and the module details share the top
/// half, fine-tuning and α the bottom half; taller screens give the bars more rows (deep
/// networks have 30+ modules).
pub struct Areas {
    pub bars: Rect,
    pub details: Rect,
    pub finetune: Rect,
    pub alpha: Rect,
    pub status: Rect,
}

pub fn areas(area: Rect) -> Areas {
    let [main, status] = Layout::vertical([Constraint::Min(8), Constraint::Length(2)]).areas(area);
    let top_pct = if area.height >= 48 { 55 } else { 50 };
    let [top, bottom] = Layout::vertical([
        Constraint::Percentage(top_pct),
        Constraint::Percentage(100 - top_pct),
    ])
    .areas(main);
    let [bars, details] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [finetune, alpha] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    Areas {
        bars,
        details,
        finetune,
        alpha,
        status,
    }
}

pub fn draw(frame: &mut Frame, state: &State, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::new().style(theme.base), area);
    let a = areas(area);
    mrc::render(frame, a.bars, state, theme);
    mrc::render_details(frame, a.details, state, theme);
    if state.compare_view {
        compare::render(frame, a.finetune.union(a.alpha), state, theme);
    } else {
        finetune::render(frame, a.finetune, state, theme);
        alpha::render(frame, a.alpha, state, theme);
    }
    status::render(frame, a.status, state, theme);
    if state.help {
        help::render(frame, area, theme);
    }
    if state.confirm_quit {
        help::render_confirm(frame, area, theme);
    }
}

/// What a left click at (`col`, `row`) of a screen of size `area` selects: a module's bar
/// or the α point nearest to the clicked column. Overlays take no clicks.
pub fn hit(area: Rect, state: &State, col: u16, row: u16) -> Option<Msg> {
    if state.help || state.confirm_quit {
        return None;
    }
    let a = areas(area);
    let pos = ratatui::layout::Position::new(col, row);
    if a.bars.contains(pos) {
        return mrc::row_at(a.bars, state, row).map(Msg::SelectModule);
    }
    if a.alpha.contains(pos) && !state.compare_view {
        return alpha::alpha_at(a.alpha, state, col).map(Msg::SelectAlpha);
    }
    None
}

/// A panel's frame in the theme's colours.
pub fn panel<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    panel_titled(Line::from(title), theme)
}

/// A panel's frame whose title keeps its spans' colours (the α panel's legend).
pub fn panel_titled<'a>(title: Line<'a>, theme: &Theme) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border)
        .title(title)
        .title_style(theme.title)
        .style(theme.base)
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Shortens `s` to `n` characters, with … when cut.
pub fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A piece of a one-line text: what it says (one or more styled spans) and how much it
/// matters. When the line is too narrow the least important pieces go first (the later
/// of equals), so words are dropped whole instead of being cut at the edge.
pub struct Piece {
    pub spans: Vec<Span<'static>>,
    pub rank: u8,
}

impl Piece {
    pub fn new(text: impl Into<String>, style: Style, rank: u8) -> Piece {
        Piece {
            spans: vec![Span::styled(text.into(), style)],
            rank,
        }
    }

    fn width(&self) -> usize {
        self.spans.iter().map(|s| s.content.chars().count()).sum()
    }
}

/// The pieces that fit in `width` columns, in their order; a lone piece still too long
/// is shortened at a word boundary with `…`.
pub fn fit_pieces(mut pieces: Vec<Piece>, width: usize) -> Line<'static> {
    let len = |v: &[Piece]| v.iter().map(Piece::width).sum::<usize>();
    while len(&pieces) > width && pieces.len() > 1 {
        let lowest = pieces
            .iter()
            .enumerate()
            .min_by(|(i, a), (j, b)| a.rank.cmp(&b.rank).then(j.cmp(i)))
            .map_or(0, |(i, _)| i);
        pieces.remove(lowest);
    }
    if let Some(p) = pieces.first_mut() {
        if p.width() > width {
            let text: String = p.spans.iter().map(|s| s.content.as_ref()).collect();
            let style = p.spans.first().map_or(Style::new(), |s| s.style);
            p.spans = vec![Span::styled(fit_words(&text, width), style)];
        }
    }
    Line::from(pieces.into_iter().flat_map(|p| p.spans).collect::<Vec<_>>())
}

/// `s` shortened to at most `n` columns at a word boundary, with `…` when cut (a single
/// word longer than `n` is cut with `fit`).
pub fn fit_words(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out = String::new();
    for word in s.split(' ') {
        let extra = usize::from(!out.is_empty()) + word.chars().count();
        if out.chars().count() + extra + 1 > n {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return fit(s, n);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn narrow_lines_drop_whole_pieces_least_needed_first() {
        let st = Style::new();
        let pieces = || {
            vec![
                Piece::new("finetune", st, 9),
                Piece::new(" 50%", st, 8),
                Piece::new(" 100/200", st, 2),
                Piece::new(" · 3.3 it/s", st, 6),
            ]
        };
        assert_eq!(
            texts(&fit_pieces(pieces(), 80)),
            "finetune 50% 100/200 · 3.3 it/s"
        );
        // 31 columns do not fit in 24: the count (rank 2) goes, nothing is cut.
        assert_eq!(texts(&fit_pieces(pieces(), 24)), "finetune 50% · 3.3 it/s");
        assert_eq!(texts(&fit_pieces(pieces(), 12)), "finetune 50%");
        // A lone piece still too long is shortened at a word boundary.
        let long = vec![Piece::new("error: cannot read the file", st, 9)];
        assert_eq!(texts(&fit_pieces(long, 20)), "error: cannot read…");
        assert_eq!(
            fit_words("layer1.0.conv1 · epoch 2/4", 20),
            "layer1.0.conv1 ·…"
        );
    }
}
