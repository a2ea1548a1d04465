//! Keys → messages. Vim keys and arrows both work; the quit question and the help overlay
//! take the keys while they are shown.
use super::state::State;
use super::update::Msg;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Every key and what it does, for the help overlay.
pub const HELP: &[(&str, &str)] = &[
    ("j/k ↓/↑", "select a module"),
    ("Enter", "fine-tune the selected module (a new candidate)"),
    ("[ / ]", "lower / raise the fine-tuning lr"),
    ("h/l ←/→", "move the α cursor"),
    ("v", "α view: change from AT vs α / clean vs robust"),
    ("m", "compare candidates (↑/↓, Enter shows one)"),
    ("r", "refine the α grid around the cursor"),
    ("a", "accept the α under the cursor, also mid-job"),
    ("e", "AutoAttack AT and the accepted α (α panel)"),
    ("s", "save (mid-job: what is finished so far)"),
    ("o", "sort modules by depth / by MRC"),
    ("t", "next theme"),
    ("c", "cancel the running job"),
    ("?", "this help"),
    ("q", "quit (asks when work is unsaved)"),
    ("Ctrl-C", "quit now"),
];

pub fn to_msg(key: KeyEvent, state: &State) -> Option<Msg> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Msg::ForceQuit);
    }
    if state.confirm_quit {
        return match key.code {
            KeyCode::Char('y') | KeyCode::Char('q') => Some(Msg::ConfirmQuit),
            KeyCode::Char('n') | KeyCode::Esc => Some(Msg::Dismiss),
            KeyCode::Char('s') => Some(Msg::Save),
            _ => None,
        };
    }
    if state.help {
        return match key.code {
            KeyCode::Char('q') => Some(Msg::Quit),
            _ => Some(Msg::Dismiss),
        };
    }
    if state.compare_view && key.code == KeyCode::Enter {
        return Some(Msg::ShowCandidate);
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Msg::Down,
        KeyCode::Char('k') | KeyCode::Up => Msg::Up,
        KeyCode::Enter => Msg::FineTune,
        KeyCode::Char('[') => Msg::LrDown,
        KeyCode::Char(']') => Msg::LrUp,
        KeyCode::Char('h') | KeyCode::Left => Msg::AlphaLeft,
        KeyCode::Char('l') | KeyCode::Right => Msg::AlphaRight,
        KeyCode::Char('v') => Msg::AlphaView,
        KeyCode::Char('m') => Msg::CompareView,
        KeyCode::Char('r') => Msg::Refine,
        KeyCode::Char('a') => Msg::Accept,
        KeyCode::Char('e') => Msg::AutoAttack,
        KeyCode::Char('s') => Msg::Save,
        KeyCode::Char('o') => Msg::Sort,
        KeyCode::Char('t') => Msg::NextTheme,
        KeyCode::Char('c') => Msg::Cancel,
        KeyCode::Char('?') => Msg::Help,
        KeyCode::Esc => Msg::Dismiss,
        KeyCode::Char('q') => Msg::Quit,
        _ => return None,
    })
}
