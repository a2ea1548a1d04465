//! Several candidates in one session, on the explorer's side: Enter on another module
//! fine-tunes it as a new candidate (the worker keeps each one's session,
//! `jobs/candidates.rs`); `m` opens the compare view, where ↑/↓ select a candidate and
//! Enter puts it on display, with its own fine-tuning, α curve and accepted α. Pure.
use super::compare_rows::compare_rows;
use super::state::State;
use crate::jobs::{CandidateSummary, JobCommand};
use crate::report::session::Session;

pub fn toggle_view(s: &mut State) {
    s.compare_view = !s.compare_view;
    if s.compare_view {
        let rows = compare_rows(s);
        s.candidate_cursor = rows.iter().position(|r| r.shown).unwrap_or(0);
        s.status = match rows.len() {
            0 => "no candidates yet: Enter fine-tunes the selected module".into(),
            1 => "one candidate: Enter on another module (m closes this) adds one".into(),
            n => format!("{n} candidates: ↑/↓ select, Enter shows one, m closes"),
        };
    }
}

pub fn move_cursor(s: &mut State, down: bool) {
    let n = compare_rows(s).len();
    s.candidate_cursor = if down {
        (s.candidate_cursor + 1).min(n.saturating_sub(1))
    } else {
        s.candidate_cursor.saturating_sub(1)
    };
}

/// The job that shows the selected candidate, with what the status bar calls it; `None`
/// when there is nothing to show (the status says why).
pub fn show_selected(s: &mut State) -> Option<(JobCommand, String)> {
    let rows = compare_rows(s);
    let Some(row) = rows.get(s.candidate_cursor) else {
        s.status = "no candidates yet: Enter fine-tunes the selected module".into();
        return None;
    };
    if row.shown {
        s.compare_view = false;
        s.status = format!("{} is on display", row.label);
        return None;
    }
    let label = row.label.clone();
    let what = format!("showing candidate {label}");
    Some((JobCommand::ShowCandidate { label }, what))
}

/// The worker's list of candidates. A session resumed with candidates but none on
/// display (a `rift compare` directory) opens the compare view by itself.
pub fn listed(s: &mut State, list: Vec<CandidateSummary>) {
    let first = s.candidates.is_empty();
    s.candidates = list;
    let rows = compare_rows(s).len();
    s.candidate_cursor = s.candidate_cursor.min(rows.saturating_sub(1));
    let nothing_shown = !s.candidates.iter().any(|c| c.shown) && s.ft_layers.is_empty();
    // (MRC may be running meanwhile: the bars stay above the view.)
    if first && nothing_shown && !s.candidates.is_empty() {
        toggle_view(s);
    }
}

/// Another candidate is on display: its panels from its session; the shared MRC stays.
/// Until the worker lists the candidates again (after this job), none is marked shown
/// and the compare view takes the one on display from the panels.
pub fn shown(s: &mut State, session: &Session) {
    for c in &mut s.candidates {
        c.shown = false;
    }
    super::restore::restore_candidate(s, session);
    s.compare_view = false;
    s.status = match &session.finetune {
        Some(f) => format!("showing candidate {}", f.layers.join("+")),
        None => format!("new candidate {}", session.settings.layer),
    };
}

/// A followed `rift compare` starts its next candidate: the one before keeps its α curve
/// in the list (the panels now fill with the new one's), so the compare view of the
/// follower shows every candidate so far.
pub fn followed(s: &mut State, label: &str, modules: &[String]) {
    let sweep = s.sweep.clone();
    for c in s.candidates.iter_mut().filter(|c| c.shown) {
        c.shown = false;
        c.points = sweep.clone();
    }
    s.candidates.retain(|c| c.label != label);
    s.candidates.push(CandidateSummary {
        label: label.to_string(),
        modules: modules.to_vec(),
        trained_params: 0,
        points: Vec::new(),
        accepted: None,
        dir: String::new(),
        shown: true,
    });
}
