//! The help overlay (`?`) and the quit question.
use super::{centered, panel};
use crate::tui::keys::HELP;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, t: &Theme) {
    let rect = centered(area, 62, HELP.len() as u16 + 3);
    frame.render_widget(Clear, rect);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>9}  "), t.cursor),
                Span::styled(*what, t.text),
            ])
        })
        .chain(std::iter::once(Line::styled(
            "any key closes this",
            t.muted,
        )))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(panel(" Keys ", t)), rect);
}

pub fn render_confirm(frame: &mut Frame, area: Rect, t: &Theme) {
    let rect = centered(area, 44, 4);
    frame.render_widget(Clear, rect);
    let lines = vec![
        Line::styled("There is unsaved work.", t.warning),
        Line::from(vec![
            Span::styled("y", t.cursor),
            Span::styled(" quit  ", t.text),
            Span::styled("s", t.cursor),
            Span::styled(" save  ", t.text),
            Span::styled("n", t.cursor),
            Span::styled(" stay", t.text),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines).block(panel(" Quit? ", t)), rect);
}
