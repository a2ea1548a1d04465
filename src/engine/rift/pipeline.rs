//! The RiFT stages after the model is loaded, written once: the AT baseline, fine-tuning
//! of chosen modules, the α sweep (grid, search or several devices), refinement, the
//! chosen model's weights and OOD accuracy. `rift run` drives them in order (skipping what
//! its session already holds); the explorer's worker drives one per job. Both pass the
//! same cancel flag and event sink, and read the results from `Pipeline::session`.
//! MRC is one stage too (`mrc/stage.rs`, `Pipeline::mrc`), which `rift mrc` also runs.
use crate::engine::attack::PgdConfig;
use crate::engine::checkpoint::{
    load_checkpoint, save_pth, save_safetensors, Checkpoint, RawTensor,
};
use crate::engine::data::{load_split_with, Augmenter, DatasetKind, ImageSet, LoadOptions, Split};
use crate::engine::eval::{evaluate_verdicts, EvalPlan, Verdicts};
use crate::engine::models::Model;
use crate::engine::rift::alpha::interpolate::{
    choose_alpha, evaluate_alpha, refinement, sweep, Endpoints, SweepConfig, SweepTask,
};
use crate::engine::rift::alpha::search::SearchConfig;
use crate::engine::rift::events::{Event, OodModel, Sink, Stage, StageAbout};
use crate::engine::rift::final_eval::ood::{corruptions_found, evaluate_ood};
use crate::engine::rift::final_eval::ood_dir::corruptions_in_reach;
use crate::engine::rift::finetune::progress::{self, PARTIAL_FINETUNE};
use crate::engine::rift::finetune::{finetune, FinetuneConfig, FinetuneData, Trained};
use crate::engine::rift::mrc::multi_device::Devices;
use crate::engine::rift::mrc::results::SweepPoint;
use crate::engine::rift::validate::{datasets_fit, PipelineData};
use crate::engine::session::{ChosenWeights, Session};
use crate::engine::CancelFlag;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a stage of the pipeline could not run or failed. Stages asked for out of order say
/// what to do first; the others carry the failing part's own typed error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no module to fine-tune: run MRC first or select a module")]
    NoModule,
    #[error("nothing to {0}: fine-tune a module first")]
    NotFinetuned(String),
    #[error("nothing to {0}: fine-tune a module and sweep α first")]
    NotSwept(&'static str),
    #[error("α = {0} is not a point of the sweep; refine around a measured α")]
    NotASweepPoint(f64),
    #[error("the grid around α = {0} is already as fine as rift refines it")]
    FinestGrid(f64),
    #[error("no corrupted test set: give --ood-dataset/--ood-dir")]
    NoOodSet,
    #[error("the final evaluation needs at least one test sample (--final-limit 0 or an empty test split)")]
    NoFinalSamples,
    #[error("--final-eval: {0}")]
    FinalEvalPlan(String),
    #[error("the final AutoAttack evaluation was cancelled; {} holds the finished batches and a rerun continues from them", state.display())]
    FinalEvalCancelled { state: PathBuf },
    #[error("the final AutoAttack evaluation failed: {0}")]
    FinalEval(#[source] crate::engine::autoattack::AaError),
    #[error("cannot reload the session's fine-tuned weights {}: {source}", path.display())]
    Reload {
        path: PathBuf,
        source: Box<crate::engine::checkpoint::CheckpointError>,
    },
    #[error("the fine-tuned weights {} do not match the model: {source}", path.display())]
    ReloadMismatch {
        path: PathBuf,
        source: crate::engine::rift::alpha::interpolate::InterpolateError,
    },
    #[error("{source}; rift keeps that file as it is rather than fine-tune over it: delete {} to fine-tune again", path.display())]
    FinetunedUnusable {
        path: PathBuf,
        source: Box<PipelineError>,
    },
    #[error(transparent)]
    OodDir(#[from] crate::engine::rift::final_eval::ood_dir::OodDirError),
    #[error(transparent)]
    Data(#[from] crate::engine::data::DataError),
    #[error(transparent)]
    Fit(#[from] crate::engine::rift::validate::FitError),
    #[error(transparent)]
    Model(#[from] crate::engine::models::ModelError),
    #[error(transparent)]
    Checkpoint(Box<crate::engine::checkpoint::CheckpointError>),
    #[error(transparent)]
    Attack(#[from] crate::engine::attack::AttackError),
    #[error(transparent)]
    Finetune(#[from] crate::engine::rift::finetune::FinetuneError),
    #[error(transparent)]
    Interpolate(#[from] crate::engine::rift::alpha::interpolate::InterpolateError),
    #[error(transparent)]
    Devices(#[from] crate::engine::rift::mrc::multi_device::DevicesError),
    #[error(transparent)]
    Ood(#[from] crate::engine::rift::final_eval::ood::OodError),
    #[error(transparent)]
    Write(#[from] crate::engine::files::WriteError),
    #[error(transparent)]
    Session(Box<crate::engine::session::SessionError>),
}

// Checkpoint errors are large; boxed, every `Result` of the pipeline stays small.
impl From<crate::engine::checkpoint::CheckpointError> for PipelineError {
    fn from(e: crate::engine::checkpoint::CheckpointError) -> Self {
        PipelineError::Checkpoint(Box::new(e))
    }
}

type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// A model's full state, as checkpoints and `Model::state` hold it.
pub type StateDict = Vec<(String, RawTensor)>;

/// The fine-tuned weights' file in a session directory.
pub const FINETUNED_FILE: &str = "finetuned.safetensors";

/// Where OOD accuracy reads its corrupted set.
#[derive(Clone, Debug)]
pub struct OodSetup {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    pub severities: Vec<u8>,
}

/// Everything the stages need besides the model: built once from flags (`rift run` and the
/// explorer build it the same way).
#[derive(Clone, Debug)]
pub struct PipelineSetup {
    pub kind: DatasetKind,
    pub data_dir: PathBuf,
    /// How every stage reads the data (ImageNet's preprocessing and subset, and the first
    /// test images any stage reads: `RunConfig::load_options`).
    pub load: LoadOptions,
    pub attack: PgdConfig,
    pub eval_limit: Option<usize>,
    pub batch_size: usize,
    pub seed: u64,
    pub finetune: FinetuneConfig,
    pub sweep: SweepConfig,
    pub ood: Option<OodSetup>,
    pub session_dir: PathBuf,
    /// `--final-eval`: AutoAttack of the AT and chosen model after α (`final_eval.rs`);
    /// the explorer's `e` uses standard AutoAttack when it is absent.
    pub final_eval: Option<crate::engine::rift::final_eval::records::FinalEvalPlan>,
}

/// How the α sweep evaluates its points.
pub enum SweepHow<'a> {
    /// Every grid point (and refinement) on the full set, on the model's device.
    Grid,
    /// Robust accuracy screened on a subset, finalists completed (`--search`).
    Search(&'a SearchConfig),
    /// The grid spread over several devices, each with its own model.
    Devices(Devices<'a>),
}

/// The model, its data and the session being built.
pub struct Pipeline {
    pub setup: PipelineSetup,
    /// The AT weights, restored after every stage that changes the model.
    ckpt: Checkpoint,
    pub model: Model,
    pub test: ImageSet,
    train: Option<ImageSet>,
    pub session: Session,
    finetuned: Option<StateDict>,
    ends: Option<Endpoints>,
    /// Per-sample verdicts of the AT model, once the baseline stage ran in this process.
    at_verdicts: Option<Verdicts>,
}

impl Pipeline {
    /// Loads the test split and checks it, the training split and the OOD set against the
    /// model before any stage runs.
    pub fn new(
        setup: PipelineSetup,
        ckpt: Checkpoint,
        model: Model,
        session: Session,
    ) -> Result<Pipeline> {
        // An OOD directory that cannot be read is refused now, not skipped after the rest.
        if let Some(ood) = &setup.ood {
            corruptions_in_reach(ood.kind, &ood.dir)?;
        }
        let test = load_split_with(setup.kind, &setup.data_dir, Split::Test, &setup.load)?;
        // Every dataset the stages will read (test, training, OOD) against the model, now,
        // not after hours of MRC and fine-tuning.
        datasets_fit(
            &model,
            &PipelineData {
                kind: setup.kind,
                test: &test,
                ood: setup.ood.as_ref().map(|o| o.kind),
            },
        )?;
        Ok(Pipeline {
            setup,
            ckpt,
            model,
            test,
            train: None,
            session,
            finetuned: None,
            ends: None,
            at_verdicts: None,
        })
    }

    /// The interpolation endpoints once a module is fine-tuned (or reloaded).
    pub fn endpoints(&self) -> Option<&Endpoints> {
        self.ends.as_ref()
    }

    /// The corruption types present for the configured OOD set (empty: none configured
    /// or none on disk); an OOD directory that cannot be read is an error, not "none".
    pub fn ood_corruptions(
        &self,
    ) -> Result<Vec<String>, crate::engine::rift::final_eval::ood_dir::OodDirError> {
        match &self.setup.ood {
            Some(ood) => corruptions_in_reach(ood.kind, &ood.dir),
            None => Ok(Vec::new()),
        }
    }

    /// The training split, once a stage has loaded it.
    pub fn train(&self) -> Option<&ImageSet> {
        self.train.as_ref()
    }

    /// The model back at the AT weights.
    pub fn restore_at(&self) -> Result<()> {
        match &self.ends {
            Some(ends) => ends.apply(&self.model, 0.0)?,
            None => self
                .model
                .load_state(&self.ckpt.tensors, &self.ckpt.path.display().to_string())?,
        }
        Ok(())
    }

    /// Runs `body` (a stage's work on the model), then puts the AT weights back whatever it
    /// returned: every stage that changes the model runs through here, so no early return
    /// (an error, a cancel) leaves the model at another α for the next stage or job. The
    /// body's error comes first (it is why the stage stopped), then a failed restore's.
    pub(super) fn restoring<T>(&mut self, body: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outcome = body(self);
        let restored = self.restore_at();
        let value = outcome?;
        restored?;
        Ok(value)
    }

    /// Hands the pipeline another session and its directory, returning the previous ones:
    /// `rift compare` runs one session per candidate on the one loaded model and test set.
    /// The model goes back to the AT weights and the endpoints are dropped (the next
    /// fine-tuning or `reload_finetuned` sets them for the new session).
    pub fn switch_session(&mut self, session: Session, dir: PathBuf) -> Result<(Session, PathBuf)> {
        self.restore_at()?;
        self.ends = None;
        self.finetuned = None;
        let old_dir = std::mem::replace(&mut self.setup.session_dir, dir);
        Ok((std::mem::replace(&mut self.session, session), old_dir))
    }

    /// Records a finished stage's wall time in the session and tells the sink.
    pub fn finish_stage(&mut self, stage: Stage, t: Instant, sink: Sink) {
        let secs = t.elapsed().as_secs_f64();
        let name = stage.name();
        self.session.stage_seconds.retain(|(s, _)| s != name);
        self.session.stage_seconds.push((name.to_string(), secs));
        sink(Event::StageFinished {
            stage,
            seconds: secs,
        });
    }

    /// The evaluation plan of the baseline and the sweep: the run's attack, seed, samples.
    fn eval_plan(&self) -> EvalPlan<'_> {
        let s = &self.setup;
        EvalPlan {
            attack: Some(&s.attack),
            seed: s.seed,
            limit: s.eval_limit,
            batch_size: s.batch_size,
        }
    }

    /// The AT model's per-sample verdicts if the baseline stage ran in this process.
    pub fn at_verdicts(&self) -> Option<&Verdicts> {
        self.at_verdicts.as_ref()
    }

    /// Per-sample clean and robust verdicts of the model at `alpha` (0: the AT model),
    /// judged exactly as the baseline and the sweep judge (same attack, seed, samples), so
    /// their counts equal that α's sweep point. Leaves the model at the AT weights.
    pub fn verdicts_at(&mut self, alpha: f64, cancel: &CancelFlag, sink: Sink) -> Result<Verdicts> {
        if self.ends.is_none() && alpha != 0.0 {
            return Err(PipelineError::NotFinetuned(format!(
                "evaluate at α = {alpha}"
            )));
        }
        self.restoring(|p| {
            match &p.ends {
                Some(ends) => ends.apply(&p.model, alpha)?,
                None => p.restore_at()?,
            }
            let plan = p.eval_plan();
            let mut progress = |done, total| {
                sink(Event::Progress {
                    stage: Stage::Candidate,
                    done,
                    total,
                })
            };
            Ok(evaluate_verdicts(&p.model, &p.test, &plan, cancel, &mut progress)?.1)
        })
    }

    /// Clean and robust accuracy of the AT model (the sweep's α = 0 point).
    pub fn baseline(&mut self, cancel: &CancelFlag, sink: Sink) -> Result<()> {
        let t = Instant::now();
        let plan = self.eval_plan();
        let (r, v) =
            crate::engine::rift::baseline::baseline(&self.model, &self.test, &plan, cancel, sink)?;
        self.session.baseline = Some(r);
        self.at_verdicts = Some(v);
        self.finish_stage(Stage::Baseline, t, sink);
        Ok(())
    }

    /// Fine-tunes `what` from the AT weights with `cfg`; on success the endpoints are the
    /// AT and fine-tuned weights, the model is back at AT, and the previous sweep and
    /// choice are dropped. A failed or cancelled run keeps the previous endpoints.
    pub fn finetune(
        &mut self,
        what: &Trained,
        cfg: &FinetuneConfig,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<()> {
        if matches!(what, Trained::Modules(m) if m.is_empty()) {
            return Err(PipelineError::NoModule);
        }
        let t = Instant::now();
        let (r, state) = self.restoring(|p| {
            p.restore_at()?;
            let train = match p.train.take() {
                Some(train) => train,
                None => {
                    load_split_with(p.setup.kind, &p.setup.data_dir, Split::Train, &p.setup.load)?
                }
            };
            let train = &*p.train.insert(train);
            let augmenter = Augmenter::for_dataset(p.setup.kind, train.height);
            let data = FinetuneData {
                train,
                test: &p.test,
                augmenter: &augmenter,
            };
            // Each finished epoch reaches the session directory, and an unfinished run of
            // this fine-tuning there is continued (`finetune/progress.rs`).
            let partial = p.setup.session_dir.join(PARTIAL_FINETUNE);
            let r = finetune(&p.model, what, data, cfg, Some(&partial), cancel, sink)?;
            Ok((r, p.model.state()?))
        })?;
        if let Some(msg) = &r.diverged {
            sink(Event::Warning {
                message: msg.clone(),
            });
        }
        // The model is at the AT weights again: they are the endpoints' α = 0.
        self.ends = Some(Endpoints::new(&self.model, &state)?);
        self.finetuned = Some(state);
        self.session.finetune = Some(r);
        self.session.interpolation = None;
        self.session.chosen = None;
        self.session.ood_chosen = None;
        self.session.final_eval = None;
        self.finish_stage(Stage::Finetune, t, sink);
        Ok(())
    }

    /// Writes the fine-tuned weights into the session directory (named in the session).
    pub fn save_finetuned(&mut self) -> Result<()> {
        let Some(state) = &self.finetuned else {
            return Ok(());
        };
        let dir = &self.setup.session_dir;
        save_safetensors(
            &dir.join(FINETUNED_FILE),
            state,
            &[("alpha".into(), "1".into())],
        )?;
        self.session.finetuned_weights = Some(FINETUNED_FILE.into());
        // The finished weights are on disk: the epochs they were trained through are
        // not needed any more (a rerun before session.yaml is written fine-tunes again,
        // to the same weights).
        progress::remove(dir).map_err(|source| crate::engine::files::WriteError::Remove {
            path: dir.join(PARTIAL_FINETUNE),
            source,
        })?;
        Ok(())
    }

    /// Reloads the fine-tuned weights the session names (a resumed session) as endpoints.
    /// Ok(false): the session has none.
    pub fn reload_finetuned(&mut self) -> Result<bool> {
        let Some(file) = &self.session.finetuned_weights else {
            return Ok(false);
        };
        let path = self.setup.session_dir.join(file);
        let ckpt = load_checkpoint(&path).map_err(|source| PipelineError::Reload {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let ends = Endpoints::new(&self.model, &ckpt.tensors)
            .map_err(|source| PipelineError::ReloadMismatch { path, source })?;
        self.ends = Some(ends);
        self.finetuned = Some(ckpt.tensors);
        Ok(true)
    }

    /// Points already measured with the sweep's attack, seed and samples: the baseline is
    /// the α = 0 point, and the grid points of a sweep that was saved before it finished
    /// (its endpoints are these: fine-tuning drops the session's sweep), so no sweep
    /// evaluates them again.
    pub fn known_points(&self) -> Vec<SweepPoint> {
        let mut known: Vec<SweepPoint> = self
            .session
            .baseline
            .iter()
            .map(|b| SweepPoint {
                alpha: 0.0,
                clean_acc: b.clean_acc,
                robust_acc: b.robust_acc.unwrap_or(0.0),
                n: b.n,
            })
            .collect();
        if let Some(partial) = &self.session.interpolation {
            if partial.search.is_none() {
                let fresh = partial
                    .points
                    .iter()
                    .filter(|p| !known.iter().any(|k| k.alpha == p.alpha));
                known.extend(fresh.cloned().collect::<Vec<_>>());
            }
        }
        known
    }

    /// The α sweep between the endpoints; leaves the model at the AT weights.
    pub fn sweep(&mut self, how: SweepHow, cancel: &CancelFlag, sink: Sink) -> Result<()> {
        if self.ends.is_none() {
            return Err(PipelineError::NotFinetuned("interpolate".into()));
        }
        let t = Instant::now();
        let r = self.restoring(|p| {
            let Some(ends) = &p.ends else {
                return Err(PipelineError::NotFinetuned("interpolate".into()));
            };
            let cfg = &p.setup.sweep;
            sink(Event::started(
                Stage::Interpolate,
                StageAbout::Sweep {
                    alphas: cfg.alphas.len(),
                    refine: cfg.refine,
                },
            ));
            let known = p.known_points();
            let task = SweepTask {
                ends,
                test: &p.test,
                cfg,
                known: &known,
            };
            let model = &p.model;
            Ok(match how {
                SweepHow::Grid => sweep(model, &task, cancel, sink)?,
                SweepHow::Search(sc) => {
                    crate::engine::rift::alpha::search::search(model, &task, sc, cancel, sink)?
                }
                SweepHow::Devices(devices) => {
                    crate::engine::rift::alpha::sweep_devices::sweep_on_devices(
                        devices, &task, cancel, sink,
                    )?
                }
            })
        })?;
        self.session.interpolation = Some(r);
        self.finish_stage(Stage::Interpolate, t, sink);
        Ok(())
    }

    /// Adds the midpoints between `around` and its grid neighbours to the sweep (the same
    /// rounded midpoints as a sweep's refinement rounds) and chooses α again.
    pub fn refine(&mut self, around: f64, cancel: &CancelFlag, sink: Sink) -> Result<()> {
        let (Some(ends), Some(interp)) = (&self.ends, &self.session.interpolation) else {
            return Err(PipelineError::NotSwept("refine"));
        };
        if !interp.points.iter().any(|p| p.alpha == around) {
            return Err(PipelineError::NotASweepPoint(around));
        }
        let new = refinement(&interp.points, around);
        if new.is_empty() {
            return Err(PipelineError::FinestGrid(around));
        }
        let mut points = interp.points.clone();
        let total = new.len();
        let ends = ends.share();
        self.restoring(|p| {
            for (i, &alpha) in new.iter().enumerate() {
                // Each batch is an event: the explorer serves requests there.
                let batch = &mut || {
                    sink(Event::Batch {
                        stage: Stage::Refine,
                    })
                };
                let point = evaluate_alpha(
                    &p.model,
                    &ends,
                    alpha,
                    &p.test,
                    &p.setup.sweep,
                    cancel,
                    batch,
                )?;
                sink(Event::SweepPoint {
                    point: point.clone(),
                });
                sink(Event::Progress {
                    stage: Stage::Refine,
                    done: i + 1,
                    total,
                });
                points.push(point);
            }
            Ok(())
        })?;
        points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        if let Some(interp) = &mut self.session.interpolation {
            interp.chosen_alpha = choose_alpha(&points, interp.tolerance);
            interp.points = points;
            interp.refine_rounds += 1;
        }
        Ok(())
    }

    /// Writes the model at `alpha` (`chosen.pth` and `chosen.safetensors`) and records it
    /// as the session's chosen model. The model itself is not touched.
    pub fn write_chosen(&mut self, alpha: f64) -> Result<ChosenWeights> {
        let Some(ends) = &self.ends else {
            return Err(PipelineError::NotSwept("accept"));
        };
        let chosen = write_chosen_files(ends, alpha, &self.setup.session_dir)?;
        record_chosen(&mut self.session, chosen.clone());
        Ok(chosen)
    }

    /// Corruption accuracy of the AT model or of the model at `alpha`; leaves the model
    /// at the AT weights.
    pub fn ood(
        &mut self,
        which: OodModel,
        alpha: f64,
        cancel: &CancelFlag,
        sink: Sink,
    ) -> Result<()> {
        let Some(ood) = self.setup.ood.clone() else {
            return Err(PipelineError::NoOodSet);
        };
        let t = Instant::now();
        let corruptions = corruptions_found(ood.kind, &ood.dir)?.len();
        sink(Event::started(
            Stage::Ood,
            StageAbout::Ood {
                model: which,
                alpha,
                corruptions,
            },
        ));
        if self.ends.is_none() && which == OodModel::Chosen {
            return Err(PipelineError::NotSwept("evaluate"));
        }
        let r = self.restoring(|p| {
            match &p.ends {
                Some(ends) => ends.apply(&p.model, alpha)?,
                None => p.restore_at()?,
            }
            let size = p.setup.batch_size;
            let (kind, dir, severities) = (ood.kind, &ood.dir, &ood.severities);
            Ok(evaluate_ood(
                &p.model, kind, dir, severities, size, cancel, sink,
            )?)
        })?;
        match which {
            OodModel::At => self.session.ood_at = Some(r),
            OodModel::Chosen => self.session.ood_chosen = Some(r),
        }
        self.finish_stage(which.stage(), t, sink);
        Ok(())
    }
}

/// Writes θ(α) of `ends` as `chosen.pth` and `chosen.safetensors` in `dir`, in the layout of
/// the AT model's file.
pub fn write_chosen_files(ends: &Endpoints, alpha: f64, dir: &Path) -> Result<ChosenWeights> {
    crate::engine::files::create_dir(dir)?;
    let state = ends.file_state_at(alpha)?;
    let chosen = ChosenWeights {
        alpha,
        pth: "chosen.pth".into(),
        safetensors: "chosen.safetensors".into(),
    };
    save_pth(&dir.join(&chosen.pth), &state)?;
    save_safetensors(
        &dir.join(&chosen.safetensors),
        &state,
        &[("alpha".into(), alpha.to_string())],
    )?;
    Ok(chosen)
}

/// Records `chosen` as the session's chosen model: the sweep's α becomes it, and results
/// of another α's model (OOD, AutoAttack) no longer apply.
pub fn record_chosen(session: &mut Session, chosen: ChosenWeights) {
    if let Some(interp) = &mut session.interpolation {
        interp.chosen_alpha = chosen.alpha;
    }
    if session.chosen.as_ref().map(|c| c.alpha) != Some(chosen.alpha) {
        session.ood_chosen = None;
        session.final_eval = None;
    }
    session.chosen = Some(chosen);
}
