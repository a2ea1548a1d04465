//! One `render(frame, area, state, theme)` per panel; `draw` lays them out with `areas`,
//! which mouse clicks use too (`hit`).
pub mod aa_line;
pub mod alpha;
pub mod finetune;
pub mod help;
pub mod mrc;
pub mod status;

use super::state::State;
use super::theme::Theme;
use super::update::Msg;
use ratatui::layout::{Constraint, Layout, Rect};
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
    finetune::render(frame, a.finetune, state, theme);
    alpha::render(frame, a.alpha, state, theme);
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
    if a.alpha.contains(pos) {
        return alpha::alpha_at(a.alpha, state, col).map(Msg::SelectAlpha);
    }
    None
}

/// A panel's frame in the theme's colours.
pub fn panel<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
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
