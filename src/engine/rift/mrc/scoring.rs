//! The per-module exact MRC loop, written once for every driver: `rift mrc` (plain and
//! screened), `rift run` (with partial results on disk), the explorer's MRC job (paused
//! and continued between jobs) and each device of `--devices`.
use crate::engine::models::{Model, ModuleInfo};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::adv_set::TensorSet;
use crate::engine::rift::mrc::first_steps::FirstSteps;
use crate::engine::rift::mrc::results::{attach, ModuleScore, MrcResult, Screened};
use crate::engine::rift::mrc::{
    finish, first_order, score_module, FastShared, MeasuredOn, MrcConfig, MrcError,
};
use crate::engine::CancelFlag;
use std::time::Instant;

/// What every module's exact MRC is measured against.
pub struct Scorer<'a> {
    pub model: &'a Model,
    /// The fixed adversarial set.
    pub adv: &'a TensorSet,
    /// The set's loss and accuracy at the AT weights.
    pub baseline: (f64, f64),
    pub cfg: &'a MrcConfig,
    /// Screening estimates, attached to each exact score when there are some.
    pub screened: Option<&'a Screened>,
}

impl Scorer<'_> {
    /// Exact MRC of each module of `order` not already in `done`, in order, after a
    /// `Progress` of the modules already done. Each score gets
    /// its estimate, is emitted (`ModuleScored`, then `Progress` of `done` over `order`),
    /// appended to `done` and handed to `after_each` (to persist partial results) before
    /// the next module starts. A module's value does not depend on the order (every module
    /// shuffles alike, from the run's seed), so a run continued from `done` equals an
    /// uninterrupted one.
    pub fn score_all<E: From<MrcError>>(
        &self,
        order: &[(usize, ModuleInfo)],
        done: &mut Vec<ModuleScore>,
        cancel: &CancelFlag,
        sink: Sink,
        mut after_each: impl FnMut(&[ModuleScore]) -> Result<(), E>,
    ) -> Result<(), E> {
        // The count and the modules already scored (a continued run), before the first new
        // one takes its minutes: a progress display then shows 10/21, not nothing or 0 %.
        let already = order
            .iter()
            .filter(|(_, m)| done.iter().any(|s| s.name == m.name))
            .count();
        sink(Event::Progress {
            stage: Stage::Mrc,
            done: already,
            total: order.len(),
        });
        // On the CPU the exact loop runs channels-last whatever `--channels-last` says:
        // libtorch's CPU convolutions then skip the NCHW reorder around every layer (1.12x
        // on ResNet18, issue 26). Faithful and fast, every driver and device all score in
        // this loop, so they still agree exactly; against NCHW only summation order differs
        // (tests/mrc.rs holds it to PyTorch within 1e-4). The baseline stays NCHW.
        let _layout = match self.model.device() {
            tch::Device::Cpu => Some(self.model.channels_last_weights().map_err(MrcError::from)?),
            _ => None,
        };
        let mut shared = FastShared::default();
        let pending: Vec<&str> = order
            .iter()
            .map(|(_, m)| m.name.as_str())
            .filter(|name| !done.iter().any(|s| s.name == *name))
            .collect();
        // One pass for every module's first step pays off from two modules on.
        if self.cfg.fast && pending.len() > 1 && self.adv.n > 0 && !cancel.is_cancelled() {
            let (_, first) = first_order(self.cfg.seed, self.adv.n);
            let batch = &first[..self.cfg.batch_size.clamp(1, first.len())];
            shared.first_steps = FirstSteps::compute(self.model, self.adv, &pending, batch)
                .map_err(MrcError::from)?;
        }
        for (depth, info) in order {
            if done.iter().any(|s| s.name == info.name) {
                continue;
            }
            let mut score = score_module(
                self.model,
                self.adv,
                (*depth, info),
                self.baseline,
                self.cfg,
                &mut shared,
                cancel,
                sink,
            )?;
            if let Some(screened) = self.screened {
                attach(&mut score, screened);
            }
            sink(Event::ModuleScored {
                score: score.clone(),
            });
            done.push(score);
            sink(Event::Progress {
                stage: Stage::Mrc,
                done: done.len(),
                total: order.len(),
            });
            after_each(done)?;
        }
        Ok(())
    }
}

/// What an MRC computation measures on: the model, the fixed adversarial set (and the
/// split it came from, for the record) and the ascent settings.
#[derive(Clone, Copy)]
pub struct MrcInputs<'a> {
    pub model: &'a Model,
    pub adv: &'a TensorSet,
    pub adv_split: &'a str,
    pub cfg: &'a MrcConfig,
}

/// Exact MRC of every selected module (SPEC.md §1), sorted ascending, the lowest marked
/// as recommended.
pub fn compute(
    what: &MrcInputs,
    modules: &[(usize, ModuleInfo)],
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<MrcResult, MrcError> {
    let MrcInputs {
        model,
        adv,
        adv_split,
        cfg,
    } = *what;
    let start = Instant::now();
    let baseline = adv.announce_baseline(model, cfg.batch_size, sink)?;
    let scorer = Scorer {
        model,
        adv,
        baseline,
        cfg,
        screened: None,
    };
    let mut scores = Vec::new();
    scorer.score_all(modules, &mut scores, cancel, sink, |_| {
        Ok::<(), MrcError>(())
    })?;
    let on = MeasuredOn {
        split: adv_split,
        n: adv.n,
        baseline,
    };
    Ok(finish(scores, cfg, &on, start.elapsed().as_secs_f64()))
}
