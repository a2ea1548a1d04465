//! One `render(frame, area, state, theme)` per panel; `draw` lays them out. At 80×24 the
//! MRC bars and the module details share the top half, fine-tuning and α the bottom half.
pub mod alpha;
pub mod finetune;
pub mod help;
pub mod mrc;
pub mod status;

use super::state::State;
use super::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, BorderType, Borders};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, state: &State, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::new().style(theme.base), area);
    let [main, status_area] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(2)]).areas(area);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(main);
    let [bars, details] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [ft, alpha_area] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    mrc::render(frame, bars, state, theme);
    mrc::render_details(frame, details, state, theme);
    finetune::render(frame, ft, state, theme);
    alpha::render(frame, alpha_area, state, theme);
    status::render(frame, status_area, state, theme);
    if state.help {
        help::render(frame, area, theme);
    }
    if state.confirm_quit {
        help::render_confirm(frame, area, theme);
    }
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
