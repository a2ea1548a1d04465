//! What an AutoAttack run reports: its progress updates and its result. Plain data (a
//! leaf), shared by the event stream, sessions and the explorer.
use crate::engine::adv_examples::PerturbationCheck;
use serde::{Deserialize, Serialize};

/// Progress of an AutoAttack run, for the event sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum AaUpdate {
    /// An attack starts on `points` still-robust points (`done` of them already finished
    /// in an earlier, interrupted run).
    Started {
        attack: String,
        points: usize,
        #[serde(default)]
        done: usize,
    },
    /// Points of the current attack (or of the clean pass, attack `clean`) done.
    Progress {
        attack: String,
        done: usize,
        total: usize,
    },
    Finished {
        outcome: AttackOutcome,
    },
}

/// Robust accuracy after one attack of the ensemble (cumulative over the earlier ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackOutcome {
    pub attack: String,
    /// Percent of all n samples.
    pub robust_acc: f64,
    pub robust: usize,
    /// Points this attack ran on (those still robust before it).
    pub evaluated: usize,
    pub seconds: f64,
    /// Finished in an earlier run and read from the state file.
    #[serde(default)]
    pub resumed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AaReport {
    pub n: usize,
    pub clean_acc: f64,
    pub clean_correct: usize,
    pub attacks: Vec<AttackOutcome>,
    /// Percent: robust to every attack.
    pub robust_acc: f64,
    pub robust_correct: usize,
    pub eps: f64,
    pub seconds: f64,
    /// Per sample (the first n of the set): robust to every attack. For paired comparisons
    /// of two models on the same samples.
    #[serde(skip)]
    pub robust_flags: Vec<bool>,
    /// Per sample: the attack that broke it (the first of the ensemble whose point was
    /// misclassified within ε), None where the sample is robust or misclassified clean.
    #[serde(skip)]
    pub broken_by: Vec<Option<String>>,
    /// The reference's closing check over the adversarial examples found.
    #[serde(default)]
    pub check: PerturbationCheck,
}
