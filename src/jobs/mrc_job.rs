//! The explorer's MRC job: the AT model's baseline (once), the adversarial set, the
//! first-order screening of every module (estimates, not in the paper: they order the
//! exact work and preview the bars), then exact MRC (SPEC.md §1) module by module, lowest
//! estimate first. Progress is kept between jobs, so MRC paused for a user's job (a
//! fine-tune of a module already exact, a save…) continues where it stopped; each module's
//! exact value does not depend on the order (its shuffles are seeded per module).
use crate::engine::data::{load_split, Split};
use crate::engine::models::ModuleInfo;
use crate::engine::rift::adv_set::{build, AdvSetPlan, AdvSplit, TensorSet};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::{select_modules, MeasuredOn, MrcConfig};
use crate::engine::rift::pipeline::Pipeline;
use crate::engine::rift::results::ModuleScore;
use crate::engine::rift::scoring::Scorer;
use crate::engine::rift::screen::{
    assemble, estimate, exact_order, ExactLowest, ScreenConfig, Screened, ESTIMATE_LABEL,
};
use crate::engine::CancelFlag;
use anyhow::{bail, Result};
use std::time::Instant;

/// How the explorer's MRC job runs (the other stages read the pipeline's setup).
#[derive(Clone, Debug)]
pub struct MrcSetup {
    /// Modules to score (empty: all).
    pub modules: Vec<String>,
    pub adv_split: String,
    pub adv_limit: Option<usize>,
    pub mrc: MrcConfig,
    /// The explorer screens every module first (first-order estimates, not in the paper)
    /// and then computes exact MRC for this many, lowest estimate first (default: all).
    pub exact_lowest: ExactLowest,
    pub one_step: bool,
}

/// The MRC job and how far it got.
pub struct MrcJob {
    setup: MrcSetup,
    progress: Option<MrcProgress>,
}

/// How far MRC got: the fixed set, its baseline, the estimates and the exact scores.
struct MrcProgress {
    adv: TensorSet,
    base: (f64, f64),
    screened: Screened,
    /// Modules that get exact MRC, lowest estimate first.
    order: Vec<(usize, ModuleInfo)>,
    done: Vec<ModuleScore>,
    /// Seconds spent so far (over all the job's runs).
    seconds: f64,
}

impl MrcJob {
    pub fn new(setup: MrcSetup) -> MrcJob {
        MrcJob {
            setup,
            progress: None,
        }
    }

    /// Runs (or continues) MRC on the pipeline's model; the result goes to its session.
    pub fn run(&mut self, pipe: &mut Pipeline, cancel: &CancelFlag, sink: Sink) -> Result<()> {
        if pipe.session.baseline.is_none() {
            pipe.baseline(cancel, sink)?;
        }
        let t = Instant::now();
        if self.progress.is_none() {
            self.progress = Some(self.screen(pipe, cancel, sink)?);
        }
        let Some(p) = &mut self.progress else {
            bail!("internal: MRC progress missing");
        };
        let s = &self.setup;
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
            model: &pipe.model,
            adv: &p.adv,
            baseline: p.base,
            cfg: &s.mrc,
            screened: Some(&p.screened),
        };
        let result = scorer.score_all(&p.order, &mut p.done, cancel, sink, |_| {
            Ok::<(), anyhow::Error>(())
        });
        p.seconds += run.elapsed().as_secs_f64();
        result?;
        let on = MeasuredOn {
            split: &s.adv_split,
            n: p.adv.n,
            baseline: p.base,
        };
        pipe.session.mrc = Some(assemble(
            p.done.clone(),
            &p.screened,
            s.exact_lowest,
            &s.mrc,
            &on,
            p.seconds,
        ));
        pipe.finish_stage(Stage::Mrc, t, sink);
        Ok(())
    }

    /// The adversarial set, its baseline and the estimate of every module.
    fn screen(&self, pipe: &Pipeline, cancel: &CancelFlag, sink: Sink) -> Result<MrcProgress> {
        let t = Instant::now();
        let s = &self.setup;
        let modules = select_modules(&pipe.model, &s.modules)?;
        let adv = self.adv_set(pipe, cancel, sink)?;
        let model = &pipe.model;
        let base = adv.announce_baseline(model, s.mrc.batch_size, sink)?;
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
    fn adv_set(&self, pipe: &Pipeline, cancel: &CancelFlag, sink: Sink) -> Result<TensorSet> {
        let (s, ps) = (&self.setup, &pipe.setup);
        let split = AdvSplit::parse(ps.kind, &s.adv_split)?;
        let loaded;
        let set = match (split.split(), pipe.train()) {
            (Split::Test, _) => &pipe.test,
            (Split::Train, Some(train)) => train,
            (Split::Train, None) => {
                loaded = load_split(ps.kind, &ps.data_dir, Split::Train)?;
                &loaded
            }
        };
        let idx = split.indices(set.n, s.adv_limit)?;
        let plan = AdvSetPlan {
            attack: &ps.attack,
            seed: ps.seed,
            batch_size: ps.batch_size,
        };
        Ok(build(&pipe.model, set, &idx, &plan, cancel, sink)?)
    }
}
