//! The MRC stage, written once for every driver: `rift mrc` (plain, screened, a shard,
//! several devices), `rift run`, `rift compare` and the explorer's MRC job. It builds the
//! fixed adversarial set, screens every module when the plan says so (first-order
//! estimates, not in the paper: they order the exact work), then computes exact MRC
//! (SPEC.md §1) module by module. With a partial file (a session's `mrc_partial.yaml`)
//! each exact score is written as it finishes and read back when the stage starts, so a
//! killed run, a saved explorer session or an MRC paused for another job continues where
//! it stopped; each module's value does not depend on the order (its shuffles are seeded
//! per module), so a continued stage equals an uninterrupted one.
use crate::engine::attack::PgdConfig;
use crate::engine::data::{load_split_with, DatasetKind, ImageSet, LoadOptions, Split};
use crate::engine::files::{atomic_write, WriteError};
use crate::engine::models::{Model, ModuleInfo};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::mrc::adv_set::{build, AdvSetError, AdvSetPlan, AdvSplit, TensorSet};
use crate::engine::rift::mrc::multi_device::{compute_on_devices, Devices, DevicesError};
use crate::engine::rift::mrc::partial::{load_partial, AdvSetSummary, PartialError, PartialMrc};
use crate::engine::rift::mrc::results::{attach, ModuleScore, MrcResult, Screened};
use crate::engine::rift::mrc::scoring::{MrcInputs, Scorer};
use crate::engine::rift::mrc::screen::{
    assemble, estimate, exact_order, ScreenConfig, ESTIMATE_LABEL,
};
use crate::engine::rift::mrc::shard::Shard;
use crate::engine::rift::mrc::{finish, select_modules, MeasuredOn, MrcError};
use crate::engine::rift::run_config::MrcPlan;
use crate::engine::CancelFlag;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Exact scores finished so far, in the session directory until the stage completes.
pub const PARTIAL_MRC: &str = "mrc_partial.yaml";

#[derive(Debug, thiserror::Error)]
pub enum MrcStageError {
    #[error(transparent)]
    Mrc(#[from] MrcError),
    #[error(transparent)]
    AdvSet(#[from] AdvSetError),
    #[error(transparent)]
    Devices(#[from] DevicesError),
    #[error(transparent)]
    Partial(#[from] PartialError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot write the partial MRC scores as YAML: {0}")]
    Serialise(#[from] serde_yaml::Error),
    #[error(transparent)]
    Data(#[from] crate::engine::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::engine::models::ModelError),
    #[error(transparent)]
    Restore(Box<crate::engine::rift::pipeline::PipelineError>),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl MrcStageError {
    pub fn is_cancelled(&self) -> bool {
        match self {
            MrcStageError::Mrc(e) => matches!(e, MrcError::Cancelled),
            MrcStageError::Devices(e) => e.is_cancelled(),
            _ => false,
        }
    }
}

/// What the stage measures on: the model, the run's attack, seed and evaluation batch (the
/// adversarial set is built with them) and the data, with the splits already in memory.
pub struct MrcInput<'a> {
    pub model: &'a Model,
    pub attack: &'a PgdConfig,
    pub seed: u64,
    pub batch_size: usize,
    pub kind: DatasetKind,
    pub data_dir: &'a Path,
    /// How a split is read (ImageNet's preprocessing and subset).
    pub load: LoadOptions,
    /// Splits a caller holds already (the pipeline's test split), so they are not read again.
    pub loaded: &'a [(Split, &'a ImageSet)],
    /// `rift mrc --shard I/N`: only this shard's modules.
    pub shard: Option<Shard>,
    /// `rift mrc --devices`: exact MRC spread over these devices.
    pub devices: Option<Devices<'a>>,
}

/// The MRC stage and how far it got.
pub struct MrcStage {
    plan: MrcPlan,
    partial: Option<PathBuf>,
    progress: Option<Progress>,
}

/// The fixed set, its baseline, the estimates and the exact scores so far.
struct Progress {
    adv: TensorSet,
    base: (f64, f64),
    screened: Option<Screened>,
    /// Modules selected (screened, when screening).
    total: usize,
    /// Modules that get exact MRC, in the order they are scored.
    order: Vec<(usize, ModuleInfo)>,
    done: Vec<ModuleScore>,
    /// Seconds spent so far, over all of the stage's runs.
    seconds: f64,
}

impl MrcStage {
    /// The stage of `plan`; with `partial`, exact scores are written there as they finish
    /// and the ones already there are not computed again.
    pub fn new(plan: MrcPlan, partial: Option<PathBuf>) -> MrcStage {
        MrcStage {
            plan,
            partial,
            progress: None,
        }
    }

    pub fn plan(&self) -> &MrcPlan {
        &self.plan
    }

    /// The fixed adversarial set, once the stage has built it.
    pub fn adv_set(&self) -> Option<&TensorSet> {
        self.progress.as_ref().map(|p| &p.adv)
    }

    /// Runs or continues the stage; its result is every selected module's score.
    pub fn run(
        &mut self,
        input: &MrcInput,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<MrcResult, MrcStageError> {
        let mut p = match self.progress.take() {
            Some(p) => p,
            None => self.prepare(input, cancel, sink)?,
        };
        let (plan, partial) = (&self.plan, self.partial.as_deref());
        let run = Instant::now();
        let scored = score(plan, partial, &mut p, input, cancel, sink);
        p.seconds += run.elapsed().as_secs_f64();
        // Kept whatever happened: a later run (the explorer's next MRC job) continues it.
        let p = &*self.progress.insert(p);
        scored?;
        let split = AdvSplit::parse(input.kind, &plan.adv_split)?;
        let on = MeasuredOn {
            split: split.name(),
            n: p.adv.n,
            baseline: p.base,
        };
        let cfg = &plan.config;
        Ok(match (&p.screened, plan.screen) {
            (Some(sc), Some(s)) => assemble(p.done.clone(), sc, s.exact, cfg, &on, p.seconds),
            _ => finish(p.done.clone(), cfg, &on, p.seconds),
        })
    }

    /// The adversarial set, its baseline, the estimates (when screening) and the scores a
    /// partial file holds.
    fn prepare(
        &self,
        input: &MrcInput,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<Progress, MrcStageError> {
        let t = Instant::now();
        let plan = &self.plan;
        let model = input.model;
        let mut modules = select_modules(model, &plan.modules)?;
        if let Some(shard) = input.shard {
            modules = shard.select(&modules);
        }
        let mut done = match &self.partial {
            Some(path) => load_partial(path)?.scores,
            None => Vec::new(),
        };
        done.retain(|s| modules.iter().any(|(_, m)| m.name == s.name));
        let adv = adv_set(plan, input, cancel, sink)?;
        let cfg = &plan.config;
        let base = adv.announce_baseline(model, cfg.batch_size, sink)?;
        let screened = match plan.screen {
            Some(s) => {
                sink(Event::started_text(
                    Stage::Screen,
                    format!("{} modules, {ESTIMATE_LABEL}", modules.len()),
                ));
                let screen = ScreenConfig {
                    epsilon: cfg.epsilon,
                    batch_size: cfg.batch_size,
                    one_step: s.one_step,
                };
                Some(estimate(
                    model, &adv, &modules, base.0, &screen, cancel, sink,
                )?)
            }
            None => None,
        };
        let order = match (&screened, plan.screen) {
            (Some(sc), Some(s)) => exact_order(sc, &modules, s.exact),
            _ => modules.clone(),
        };
        for s in &mut done {
            if let Some(sc) = &screened {
                attach(s, sc);
            }
        }
        // The set and the estimates reach disk before the first exact module starts.
        if let Some(path) = &self.partial {
            write_partial(path, &partial_record(&adv, base, screened.as_ref(), &done))?;
        }
        Ok(Progress {
            adv,
            base,
            total: modules.len(),
            screened,
            order,
            done,
            seconds: t.elapsed().as_secs_f64(),
        })
    }
}

/// Exact MRC of the modules of `p.order` not yet done, each written to `partial` as it
/// finishes.
fn score(
    plan: &MrcPlan,
    partial: Option<&Path>,
    p: &mut Progress,
    input: &MrcInput,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<(), MrcStageError> {
    let left: Vec<(usize, ModuleInfo)> = p
        .order
        .iter()
        .filter(|(_, m)| !p.done.iter().any(|d| d.name == m.name))
        .cloned()
        .collect();
    let cfg = &plan.config;
    sink(Event::started_text(
        Stage::Mrc,
        format!(
            "exact MRC of {} of {} modules{}{}, {} already scored",
            p.order.len(),
            p.total,
            if p.screened.is_some() {
                ", lowest estimate first"
            } else {
                ""
            },
            if cfg.fast { " (fast path)" } else { "" },
            p.order.len() - left.len()
        ),
    ));
    // Scores read back are shown before the first new module takes its minutes.
    for s in p.done.iter() {
        sink(Event::ModuleScored { score: s.clone() });
    }
    let (adv, base, screened) = (&p.adv, p.base, p.screened.as_ref());
    let write = |done: &[ModuleScore]| -> Result<(), MrcStageError> {
        match partial {
            Some(path) => write_partial(path, &partial_record(adv, base, screened, done)),
            None => Ok(()),
        }
    };
    match input.devices {
        Some(devices) if devices.list.len() > 1 && !left.is_empty() => {
            let split = AdvSplit::parse(input.kind, &plan.adv_split)?;
            let what = MrcInputs {
                model: input.model,
                adv: &p.adv,
                adv_split: split.name(),
                cfg,
            };
            // Each score reaches the partial file as it arrives, from whichever device.
            let done = &mut p.done;
            compute_on_devices(devices, &what, &left, cancel, sink, |s: &ModuleScore| {
                let mut s = s.clone();
                if let Some(sc) = screened {
                    attach(&mut s, sc);
                }
                done.push(s);
                write(done)
            })?;
            Ok(())
        }
        _ => {
            let scorer = Scorer {
                model: input.model,
                adv: &p.adv,
                baseline: p.base,
                cfg,
                screened: p.screened.as_ref(),
            };
            scorer.score_all(&p.order, &mut p.done, cancel, sink, write)
        }
    }
}

/// What the partial file holds: the set's summary, the estimates and the scores so far.
fn partial_record(
    adv: &TensorSet,
    base: (f64, f64),
    screened: Option<&Screened>,
    done: &[ModuleScore],
) -> PartialMrc {
    PartialMrc {
        adv_set: Some(AdvSetSummary {
            n: adv.n,
            loss: base.0,
            acc: base.1,
        }),
        estimates: screened.map_or_else(Vec::new, |s| s.estimates.clone()),
        scores: done.to_vec(),
    }
}

fn write_partial(path: &Path, record: &PartialMrc) -> Result<(), MrcStageError> {
    Ok(atomic_write(
        path,
        serde_yaml::to_string(record)?.as_bytes(),
    )?)
}

/// The fixed adversarial set of the plan's split, from a split in memory when there is one.
fn adv_set(
    plan: &MrcPlan,
    input: &MrcInput,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<TensorSet, MrcStageError> {
    let split = AdvSplit::parse(input.kind, &plan.adv_split)?;
    let loaded;
    let set = match input.loaded.iter().find(|(s, _)| *s == split.split()) {
        Some((_, set)) => *set,
        None => {
            loaded = load_split_with(input.kind, input.data_dir, split.split(), &input.load)?;
            &loaded
        }
    };
    input
        .model
        .check_input(&[1, set.channels as i64, set.height as i64, set.width as i64])?;
    let idx = split.indices(set.n, plan.adv_limit)?;
    let build_plan = AdvSetPlan {
        attack: input.attack,
        seed: input.seed,
        batch_size: input.batch_size,
    };
    Ok(build(input.model, set, &idx, &build_plan, cancel, sink)?)
}

impl crate::engine::rift::pipeline::Pipeline {
    /// The MRC stage on the pipeline's model, attack, seed and data (its test split, and
    /// its training split once loaded, are not read again) into its session. The model is
    /// at the AT weights before and after.
    pub fn mrc(
        &mut self,
        stage: &mut MrcStage,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<(), MrcStageError> {
        let t = Instant::now();
        self.restore_at()
            .map_err(|e| MrcStageError::Restore(Box::new(e)))?;
        let mut loaded: Vec<(Split, &ImageSet)> = vec![(Split::Test, &self.test)];
        if let Some(train) = self.train() {
            loaded.push((Split::Train, train));
        }
        let s = &self.setup;
        let input = MrcInput {
            model: &self.model,
            attack: &s.attack,
            seed: s.seed,
            batch_size: s.batch_size,
            kind: s.kind,
            data_dir: &s.data_dir,
            load: s.load,
            loaded: &loaded,
            shard: None,
            devices: None,
        };
        let r = stage.run(&input, cancel, sink);
        self.restore_at()
            .map_err(|e| MrcStageError::Restore(Box::new(e)))?;
        self.session.mrc = Some(r?);
        self.finish_stage(Stage::Mrc, t, sink);
        Ok(())
    }
}
