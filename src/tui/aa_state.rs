//! The explorer's AutoAttack check as plain data (a leaf: `state.rs` holds it, and
//! `aa_check.rs` changes it from the worker's events).
use crate::engine::rift::events::OodModel;
use crate::engine::rift::final_eval::records::FinalEvalSummary;

/// The attack the check is running now, for the per-attack progress line.
#[derive(Clone, Debug, PartialEq)]
pub struct AaRunning {
    /// The model under attack (AT or the accepted one).
    pub model: OodModel,
    /// `clean` (the clean pass) or the attack's name.
    pub attack: String,
    pub done: usize,
    pub total: usize,
    /// Points already done when this attack started here (a resumed state), and when.
    pub done_at_start: usize,
    pub started: f64,
}

impl AaRunning {
    /// Points per second since the attack started here, and seconds left at that rate.
    pub fn rate(&self, now: f64) -> Option<(f64, f64)> {
        let secs = now - self.started;
        let fresh = self.done.saturating_sub(self.done_at_start);
        if secs <= 0.0 || fresh == 0 {
            return None;
        }
        let rate = fresh as f64 / secs;
        Some((rate, self.total.saturating_sub(self.done) as f64 / rate))
    }
}

/// What the α panel shows of AutoAttack: the running attack, each model's robust accuracy
/// after each finished attack, and the final result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AaCheck {
    pub running: Option<AaRunning>,
    /// Which model the running stage attacks (from its `StageAbout`).
    pub model: Option<OodModel>,
    /// Cumulative robust accuracy (percent) after each finished attack, per model.
    pub at_attacks: Vec<(String, f64)>,
    pub chosen_attacks: Vec<(String, f64)>,
    /// The finished check.
    pub result: Option<FinalEvalSummary>,
}

/// How AutoAttack lines name a model: the AT one, or the accepted α's.
pub fn model_name(m: OodModel) -> &'static str {
    match m {
        OodModel::At => "AT",
        OodModel::Chosen => "accepted",
    }
}
