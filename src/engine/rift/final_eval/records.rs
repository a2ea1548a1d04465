//! What the final evaluation (`final_eval.rs`) is asked to run and what it records: plain
//! data in a leaf, so sessions and events can hold it without depending on the pipeline.
use crate::engine::autoattack::config::AaConfig;
use crate::engine::autoattack::report::AaReport;
use crate::engine::rift::final_eval::stats::PairedDifference;
use serde::{Deserialize, Serialize};

/// Test samples of the final evaluation when `--final-limit` is not given (the whole test
/// split when it is smaller): enough for a ±3-point interval on one accuracy, a few hours
/// of standard AutoAttack for a WRN-34-10 on a CPU.
pub const DEFAULT_FINAL_LIMIT: usize = 1000;

/// AutoAttack state files of the two models, in the session directory.
pub const STATE_AT: &str = "final_eval_at.json";
pub const STATE_CHOSEN: &str = "final_eval_chosen.json";

/// What the final evaluation runs: the attacks with their budgets, ε and seed (the run's),
/// and how many of the first test samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalEvalPlan {
    pub aa: AaConfig,
    pub limit: usize,
}

impl FinalEvalPlan {
    /// Standard AutoAttack at `eps` in `norm` with `seed` on the first
    /// `DEFAULT_FINAL_LIMIT` samples (the explorer's `e` when no `--final-eval` was given).
    pub fn standard(
        eps: f64,
        norm: crate::engine::norms::Norm,
        seed: u64,
        batch_size: usize,
    ) -> FinalEvalPlan {
        FinalEvalPlan {
            aa: AaConfig {
                batch_size,
                norm,
                ..AaConfig::standard(eps, seed)
            },
            limit: DEFAULT_FINAL_LIMIT,
        }
    }
}

/// The final evaluation as `session.yaml` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalEval {
    /// The chosen model's α.
    pub alpha: f64,
    /// Which samples: "first N of the test split".
    pub samples: String,
    pub n: usize,
    /// `autoattack` or the list of attacks, in order.
    pub attacks: String,
    /// Attacks, ε (pixel units), seed and budgets.
    pub config: AaConfig,
    /// Clean accuracy, robust accuracy after each attack (cumulative) and final.
    pub at: AaReport,
    pub chosen: AaReport,
    /// Robust accuracy chosen − AT on the same samples, in points, with its interval.
    pub difference: PairedDifference,
}

impl FinalEval {
    /// The few numbers the explorer and the progress printer show.
    pub fn summary(&self) -> FinalEvalSummary {
        FinalEvalSummary {
            alpha: self.alpha,
            n: self.n,
            attacks: self.attacks.clone(),
            at_clean: self.at.clean_acc,
            at_robust: self.at.robust_acc,
            chosen_clean: self.chosen.clean_acc,
            chosen_robust: self.chosen.robust_acc,
            difference: self.difference.points,
            ci95: self.difference.ci95,
        }
    }

    /// Already measured with exactly this plan for this α (nothing to redo).
    pub fn answers(&self, plan: &FinalEvalPlan, n: usize, alpha: f64) -> bool {
        self.alpha == alpha && self.n == n && self.config == plan.aa
    }
}

/// The final evaluation's result as an event: plain numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalEvalSummary {
    pub alpha: f64,
    pub n: usize,
    pub attacks: String,
    pub at_clean: f64,
    pub at_robust: f64,
    pub chosen_clean: f64,
    pub chosen_robust: f64,
    /// chosen − AT robust accuracy (points) and its paired 95 % interval.
    pub difference: f64,
    pub ci95: [f64; 2],
}
