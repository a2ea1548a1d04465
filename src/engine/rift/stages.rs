//! The order of RiFT's stages and "skip what the session already holds", written once, and
//! the one way a session reaches disk (`save_session`).
//!
//! `rift run` and `rift compare` run `baseline_once`, `mrc_once` and `after_mrc` in that
//! order, each stage's result saved as soon as it is computed, so a killed run continues
//! from the last one. The explorer's worker runs `baseline_once` and `mrc_once` as its MRC
//! job (saving only when the session on display is the explorer's own: a candidate's
//! directory is written when the user saves it) and every later stage as its own job,
//! when the user asks.
use crate::engine::rift::events::{Event, OodModel, Sink};
use crate::engine::rift::finetune::Trained;
use crate::engine::rift::mrc::stage::{MrcStage, MrcStageError, PARTIAL_MRC};
use crate::engine::rift::pipeline::{Pipeline, PipelineError, SweepHow};
use crate::engine::session::now_rfc3339;
use crate::engine::CancelFlag;

/// A stage's failure: the pipeline's, or MRC's (its own error type: the MRC stage builds
/// on the pipeline, not the other way round).
#[derive(Debug, thiserror::Error)]
pub enum StagesError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Mrc(#[from] MrcStageError),
}

type Result<T, E = StagesError> = std::result::Result<T, E>;

impl Pipeline {
    /// Writes the session into its directory (created if need be; session.yaml
    /// atomically), stamped now.
    pub fn save_session(&mut self) -> Result<(), PipelineError> {
        crate::engine::files::create_dir(&self.setup.session_dir)?;
        self.session.updated = now_rfc3339();
        self.session
            .save(&self.setup.session_dir)
            .map_err(|e| PipelineError::Session(Box::new(e)))
    }

    /// The fine-tuned weights (when there are) and then the session: what a save of the
    /// whole session writes before its report.
    pub fn save_all(&mut self) -> Result<(), PipelineError> {
        crate::engine::files::create_dir(&self.setup.session_dir)?;
        self.save_finetuned()?;
        self.save_session()
    }

    /// Clean and robust accuracy of the AT model, unless the session holds them; saved
    /// with `persist`. Ok(true): it ran.
    pub fn baseline_once(
        &mut self,
        persist: bool,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<bool> {
        if self.session.baseline.is_some() {
            return Ok(false);
        }
        self.baseline(cancel, sink)?;
        if persist {
            self.save_session()?;
        }
        Ok(true)
    }

    /// The MRC stage for this session's directory: each exact score reaches its partial
    /// file as it finishes, and a partial file already there is continued.
    pub fn mrc_stage(&self, plan: crate::engine::rift::run_config::MrcPlan) -> MrcStage {
        MrcStage::new(plan, Some(self.setup.session_dir.join(PARTIAL_MRC)))
    }

    /// MRC into the session (continuing `stage`), unless the session holds it already;
    /// with `persist` the finished scores are saved and the partial file, now redundant
    /// (a session holding MRC never reads it) but misleading, removed. Ok(true): it ran.
    pub fn mrc_once(
        &mut self,
        stage: &mut MrcStage,
        persist: bool,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<bool> {
        if self.session.mrc.is_some() {
            return Ok(false);
        }
        self.mrc(stage, cancel, sink)?;
        if persist {
            self.save_session()?;
            let _ = std::fs::remove_file(self.setup.session_dir.join(PARTIAL_MRC));
        }
        Ok(true)
    }

    /// The stages after MRC, each skipped when the session already holds its result and
    /// each saved as it finishes: fine-tune `what` (or reload the fine-tuned weights),
    /// sweep α (`how`; a sweep saved before it finished continues from its points), write
    /// the chosen model, OOD of the AT and chosen models, the final evaluation. Returns the
    /// chosen α.
    pub fn after_mrc(
        &mut self,
        what: &Trained,
        how: SweepHow,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<f64> {
        // Fine-tune the chosen module(s); the AT weights are restored afterwards.
        let reloaded = self.session.finetune.is_some() && self.continue_finetuned(sink)?;
        if !reloaded {
            let cfg = self.setup.finetune.clone();
            self.finetune(what, &cfg, cancel, sink)?;
            self.save_all()?;
        }

        let swept = self
            .session
            .interpolation
            .as_ref()
            .is_some_and(|i| i.covers(&self.setup.sweep.alphas));
        if !swept {
            self.sweep(how, cancel, sink)?;
            self.save_session()?;
        }
        let alpha = self
            .session
            .interpolation
            .as_ref()
            .map_or(0.0, |r| r.chosen_alpha);
        let dir = &self.setup.session_dir;
        let written = self.session.chosen.as_ref().is_some_and(|c| {
            c.alpha == alpha && dir.join(&c.pth).exists() && dir.join(&c.safetensors).exists()
        });
        if !written {
            self.write_chosen(alpha)?;
            self.save_session()?;
        }

        self.ood_once(alpha, cancel, sink)?;
        if self.final_eval_once(alpha, cancel, sink)? {
            self.save_session()?;
        }
        Ok(alpha)
    }

    /// OOD of the AT and the chosen model (at `alpha`) when there is a corrupted set,
    /// each unless the session holds it, each saved.
    fn ood_once(
        &mut self,
        alpha: f64,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<(), PipelineError> {
        let Some(ood) = self.setup.ood.clone() else {
            return Ok(());
        };
        if self.ood_corruptions()?.is_empty() {
            sink(Event::Warning {
                message: format!(
                    "no {} files under {}; OOD skipped",
                    ood.kind.name(),
                    ood.dir.display()
                ),
            });
            return Ok(());
        }
        for (which, a) in [(OodModel::At, 0.0), (OodModel::Chosen, alpha)] {
            let done = match which {
                OodModel::At => self.session.ood_at.is_some(),
                OodModel::Chosen => self.session.ood_chosen.is_some(),
            };
            if !done {
                self.ood(which, a, cancel, sink)?;
                self.save_session()?;
            }
        }
        Ok(())
    }

    /// The final evaluation of the model at `alpha` when the run asks for one
    /// (`setup.final_eval`) and the session does not hold it for this α and these
    /// settings. Ok(true): it ran (the session changed).
    pub fn final_eval_once(
        &mut self,
        alpha: f64,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<bool, PipelineError> {
        let Some(plan) = self.setup.final_eval.clone() else {
            return Ok(false);
        };
        let n = plan.limit.min(self.test.n);
        match &self.session.final_eval {
            Some(done) if done.answers(&plan, n, alpha) => return Ok(false),
            Some(done) => sink(Event::Warning {
                message: format!(
                    "the session's final evaluation ({} on {} samples, α = {}) was made with other settings; running it again",
                    done.attacks, done.n, done.alpha
                ),
            }),
            None => {}
        }
        self.final_eval(&plan, alpha, cancel, sink)?;
        Ok(true)
    }
}
