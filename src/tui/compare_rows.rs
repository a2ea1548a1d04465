//! The compare view's rows: every candidate of the session with its α curve, the α that
//! stands for it (accepted, else the rule's) and the changes from the AT model there.
//! The candidate on display comes from the live panels (its sweep may be running), the
//! others from the worker's last `Candidates` list.
use super::state::State;
use crate::engine::rift::alpha::interpolate::choose_alpha;
use crate::engine::rift::mrc::results::SweepPoint;

/// Which α stands for a candidate in the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlphaKind {
    /// Accepted with `a` (its weights are written).
    Accepted,
    /// The rule's (SPEC.md §3) over its points; nothing accepted yet.
    Rule,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    pub label: String,
    pub modules: Vec<String>,
    pub trained_params: i64,
    pub points: Vec<SweepPoint>,
    pub accepted: Option<f64>,
    pub rule: Option<f64>,
    /// On display in the other panels.
    pub shown: bool,
}

/// The row's α, how it was chosen, and the clean and robust changes (points) from the
/// curve's own α = 0 point (the AT model on the same samples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowDelta {
    pub alpha: f64,
    pub kind: AlphaKind,
    pub clean: f64,
    pub robust: f64,
}

impl CompareRow {
    pub fn delta(&self) -> Option<RowDelta> {
        let (alpha, kind) = match (self.accepted, self.rule) {
            (Some(a), _) => (a, AlphaKind::Accepted),
            (None, Some(r)) => (r, AlphaKind::Rule),
            (None, None) => return None,
        };
        let at = self.points.iter().find(|p| p.alpha == 0.0)?;
        let p = self.points.iter().find(|p| p.alpha == alpha)?;
        Some(RowDelta {
            alpha,
            kind,
            clean: p.clean_acc - at.clean_acc,
            robust: p.robust_acc - at.robust_acc,
        })
    }
}

/// Every candidate in the worker's order; the one on display with the panels' values.
pub fn compare_rows(s: &State) -> Vec<CompareRow> {
    let live = |label: String, modules: Vec<String>, trained_params: i64| CompareRow {
        label,
        modules,
        trained_params,
        points: s.sweep.clone(),
        accepted: s.accepted_alpha,
        rule: s.best_alpha,
        shown: true,
    };
    let mut rows: Vec<CompareRow> = s
        .candidates
        .iter()
        .map(|c| {
            if c.shown {
                live(c.label.clone(), c.modules.clone(), c.trained_params)
            } else {
                CompareRow {
                    label: c.label.clone(),
                    modules: c.modules.clone(),
                    trained_params: c.trained_params,
                    rule: (!c.points.is_empty()).then(|| choose_alpha(&c.points, s.tolerance)),
                    points: c.points.clone(),
                    accepted: c.accepted,
                    shown: false,
                }
            }
        })
        .collect();
    // A fine-tuning that has just begun is on display before the worker lists it.
    if !rows.iter().any(|r| r.shown) && !s.ft_layers.is_empty() {
        rows.push(live(s.ft_layers.join("+"), s.ft_layers.clone(), 0));
    }
    rows
}
