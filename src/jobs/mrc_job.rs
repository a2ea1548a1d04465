//! The explorer's MRC job: the AT model's baseline (once), the adversarial set, the
//! first-order screening of every module (estimates, not in the paper: they order the
//! exact work and preview the bars), then exact MRC (SPEC.md §1) module by module, lowest
//! estimate first. Progress is kept between jobs, so MRC paused for a user's job (a
//! fine-tune of a module already exact, a save…) continues where it stopped; each module's
//! exact value does not depend on the order (its shuffles are seeded per module).
use super::worker::Worker;
use crate::engine::data::{load_split, ImageSet, Split};
use crate::engine::models::ModuleInfo;
use crate::engine::rift::adv_set::{generate, holdout_split, TensorSet};
use crate::engine::rift::events::{Event, Stage};
use crate::engine::rift::mrc::select_modules;
use crate::engine::rift::results::ModuleScore;
use crate::engine::rift::scoring::Scorer;
use crate::engine::rift::screen::{
    assemble, estimate, exact_order, ScreenConfig, Screened, ESTIMATE_LABEL,
};
use crate::engine::CancelFlag;
use anyhow::{bail, Result};
use std::time::Instant;

/// How far MRC got: the fixed set, its baseline, the estimates and the exact scores.
pub struct MrcProgress {
    adv: TensorSet,
    base: (f64, f64),
    screened: Screened,
    /// Modules that get exact MRC, lowest estimate first.
    order: Vec<(usize, ModuleInfo)>,
    done: Vec<ModuleScore>,
    /// Seconds spent so far (over all the job's runs).
    seconds: f64,
}

impl Worker {
    pub(super) fn mrc(&mut self, cancel: &CancelFlag) -> Result<()> {
        let tx = self.tx.clone();
        let mut sink = |e: Event| Self::emit(&tx, e);
        if self.p.session.baseline.is_none() {
            self.p.baseline(cancel, &mut sink)?;
        }
        let t = Instant::now();
        if self.mrc_progress.is_none() {
            self.mrc_progress = Some(self.screen(cancel, &mut sink)?);
        }
        let Some(p) = &mut self.mrc_progress else {
            bail!("internal: MRC progress missing");
        };
        let s = &self.mrc_setup;
        let left: Vec<(usize, ModuleInfo)> = p
            .order
            .iter()
            .filter(|(_, m)| !p.done.iter().any(|d| d.name == m.name))
            .cloned()
            .collect();
        sink(Event::started_text(
            Stage::Mrc,
            format!(
                "exact MRC of {} modules, lowest estimate first{}",
                left.len(),
                if s.mrc.fast { " (fast path)" } else { "" }
            ),
        ));
        let run = Instant::now();
        let scorer = Scorer {
            model: &self.p.model,
            adv: &p.adv,
            baseline: p.base,
            cfg: &s.mrc,
            screened: Some(&p.screened),
        };
        let result = scorer.score_all(&p.order, &mut p.done, cancel, &mut sink, |_| {
            Ok::<(), anyhow::Error>(())
        });
        p.seconds += run.elapsed().as_secs_f64();
        result?;
        self.p.session.mrc = Some(assemble(
            p.done.clone(),
            &p.screened,
            s.exact_lowest,
            &s.mrc,
            &s.adv_split,
            p.adv.n,
            p.base,
            p.seconds,
        ));
        self.p.finish_stage(Stage::Mrc, t, &mut sink);
        Ok(())
    }

    /// The adversarial set, its baseline and the estimate of every module.
    fn screen(&self, cancel: &CancelFlag, sink: &mut dyn FnMut(Event)) -> Result<MrcProgress> {
        let t = Instant::now();
        let s = &self.mrc_setup;
        let modules = select_modules(&self.p.model, &s.modules)?;
        let adv = self.adv_set(cancel, sink)?;
        let model = &self.p.model;
        let base = adv.baseline(model, s.mrc.batch_size)?;
        sink(Event::AdvSetReady {
            n: adv.n,
            loss: base.0,
            acc: base.1,
        });
        sink(Event::started_text(
            Stage::Screen,
            format!("{} modules, {ESTIMATE_LABEL}", modules.len()),
        ));
        let cfg = ScreenConfig {
            epsilon: s.mrc.epsilon,
            batch_size: s.mrc.batch_size,
            one_step: s.one_step,
        };
        let screened = estimate(model, &adv, &modules, base.0, &cfg, cancel, sink)?;
        let order = exact_order(&screened, &modules, s.exact_lowest);
        Ok(MrcProgress {
            adv,
            base,
            screened,
            order,
            done: Vec::new(),
            seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// The fixed adversarial set of MRC, from the split `rift run --adv-split` names.
    fn adv_set(&self, cancel: &CancelFlag, sink: &mut dyn FnMut(Event)) -> Result<TensorSet> {
        let (s, ps) = (&self.mrc_setup, &self.p.setup);
        let train;
        let (set, mut idx): (&ImageSet, Vec<usize>) = match s.adv_split.as_str() {
            "test" => (&self.p.test, (0..self.p.test.n).collect()),
            "train" | "holdout" => {
                train = match self.p.train() {
                    Some(t) => t.clone(),
                    None => load_split(ps.kind, &ps.data_dir, Split::Train)?,
                };
                let idx = if s.adv_split == "train" {
                    (0..train.n).collect()
                } else {
                    holdout_split(train.n).1
                };
                (&train, idx)
            }
            other => bail!("unknown adversarial split `{other}`; expected test, train or holdout"),
        };
        if let Some(l) = s.adv_limit {
            idx.truncate(l);
        }
        if idx.is_empty() {
            bail!("the adversarial set would be empty");
        }
        sink(Event::started_text(
            Stage::AdvSet,
            format!("PGD-{} on {} samples", ps.attack.steps, idx.len()),
        ));
        tch::manual_seed(ps.seed as i64);
        Ok(generate(
            &self.p.model,
            set,
            &idx,
            &ps.attack,
            crate::engine::attack::Noise::Keyed {
                seed: ps.seed,
                first: 0,
            },
            ps.batch_size,
            cancel,
            sink,
        )?)
    }
}
