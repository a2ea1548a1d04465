//! The final check after α is chosen (issue 12): AutoAttack on the AT model and on the
//! chosen model (the weights at the chosen α), on the same first N test samples, with the
//! run's PGD ε and seed, and the paired difference "chosen − AT" with its 95 % interval
//! (`stats.rs`). `rift run --final-eval` and the explorer's `e` both call
//! `Pipeline::final_eval`.
//!
//! Each model's AutoAttack state is kept in the session directory (`final_eval_at.json`,
//! `final_eval_chosen.json`): it records which samples each attack left robust, so an
//! interrupted final evaluation continues where it stopped, and the per-sample verdicts
//! behind the interval stay on disk.
pub mod ood;
pub mod ood_dir;
pub mod records;
pub mod stats;
use crate::engine::autoattack::{self, AaConfig, AaError, AaReport, AaState, AaTask};
use crate::engine::models::Precision;
use crate::engine::rift::events::{Event, OodModel, Sink, Stage, StageAbout};
use crate::engine::rift::final_eval::stats::PairedDifference;
use crate::engine::rift::pipeline::{Pipeline, PipelineError};
use crate::engine::CancelFlag;

use std::path::Path;
use std::time::Instant;

pub use crate::engine::rift::final_eval::records::{
    FinalEval, FinalEvalPlan, FinalEvalSummary, DEFAULT_FINAL_LIMIT, STATE_AT, STATE_CHOSEN,
};

/// FNV-1a of the model's state: names the chosen weights in the state file, so a state
/// made for other fine-tuned weights at the same α is never resumed.
fn fingerprint(state: &[(String, crate::engine::checkpoint::RawTensor)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, t) in state {
        for &b in name.as_bytes().iter().chain(&t.data) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The saved state at `path` if it belongs to this run (same plan, samples and weights);
/// anything else (absent, unreadable, another run's) starts afresh.
fn saved_state(path: &Path, cfg: &AaConfig, n: usize, identity: &str) -> Option<AaState> {
    let text = std::fs::read_to_string(path).ok()?;
    let shown = path.display().to_string();
    let state = AaState::parse(&text, &shown).ok()?;
    state.check_same(cfg, n, identity, &shown).ok()?;
    Some(state)
}

impl Pipeline {
    /// AutoAttack of the AT model and of the model at `alpha` on the same first
    /// `plan.limit` test samples (fewer when the split is smaller); the result goes into
    /// the session and to the sink (`Event::FinalEval`). Cancellable between batches; an
    /// interrupted evaluation resumes from the state files. Leaves the model at the AT
    /// weights.
    pub fn final_eval(
        &mut self,
        plan: &FinalEvalPlan,
        alpha: f64,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<(), PipelineError> {
        if self.endpoints().is_none() && alpha != 0.0 {
            return Err(PipelineError::NotSwept("evaluate"));
        }
        let n = plan.limit.min(self.test.n);
        if n == 0 {
            return Err(PipelineError::NoFinalSamples);
        }
        plan.aa
            .validate(self.model.spec.num_classes)
            .map_err(|e| PipelineError::FinalEvalPlan(e.to_string()))?;
        let dir = self.setup.session_dir.clone();
        crate::engine::files::create_dir(&dir)?;
        let t = Instant::now();
        let mut one =
            |which| self.restoring(|p| p.final_eval_one(plan, n, which, alpha, cancel, sink));
        let at = one(OodModel::At)?;
        let chosen = one(OodModel::Chosen)?;
        let difference = PairedDifference::of(&at.robust_flags, &chosen.robust_flags);
        let result = FinalEval {
            alpha,
            samples: format!("first {n} of the test split"),
            n,
            attacks: plan.aa.list_name(),
            config: plan.aa.clone(),
            at,
            chosen,
            difference,
        };
        sink(Event::FinalEval {
            summary: result.summary(),
        });
        self.session.final_eval = Some(result);
        self.finish_stage(Stage::FinalEval, t, sink);
        Ok(())
    }

    /// One model's AutoAttack, resumed from its state file (in the session directory)
    /// when that matches.
    fn final_eval_one(
        &self,
        plan: &FinalEvalPlan,
        n: usize,
        which: OodModel,
        alpha: f64,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<AaReport, PipelineError> {
        let dir = self.setup.session_dir.as_path();
        let model_alpha = match which {
            OodModel::At => 0.0,
            OodModel::Chosen => alpha,
        };
        sink(Event::started(
            Stage::FinalEval,
            StageAbout::FinalEval {
                model: which,
                alpha: model_alpha,
                attacks: plan.aa.list_name(),
                n,
            },
        ));
        let (file, identity) = match which {
            OodModel::At => (
                STATE_AT,
                format!("AT weights of {}", self.session.settings.checkpoint),
            ),
            OodModel::Chosen => {
                match self.endpoints() {
                    Some(ends) => ends.apply(&self.model, alpha)?,
                    None => self.restore_at()?,
                }
                let weights = fingerprint(&self.model.state()?);
                (
                    STATE_CHOSEN,
                    format!(
                        "{} at α = {alpha} (weights {weights:016x})",
                        self.session.settings.checkpoint
                    ),
                )
            }
        };
        if which == OodModel::At && self.model.compute().precision == Precision::Bf16 {
            sink(Event::Warning {
                message: autoattack::checks::BF16_VERDICTS.to_string(),
            });
        }
        let path = dir.join(file);
        let resume = saved_state(&path, &plan.aa, n, &identity);
        let mut save = |s: &AaState| -> std::result::Result<(), crate::engine::files::SaveError> {
            Ok(crate::engine::files::atomic_write(
                &path,
                s.to_json().as_bytes(),
            )?)
        };
        let task = AaTask {
            model: &self.model,
            set: &self.test,
            n,
            cfg: &plan.aa,
            identity: &identity,
        };
        autoattack::evaluate(task, resume, &mut save, sink, cancel).map_err(|e| match e {
            AaError::Cancelled => PipelineError::FinalEvalCancelled {
                state: dir.join(file),
            },
            e => PipelineError::FinalEval(e),
        })
    }
}
