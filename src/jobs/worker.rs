//! The worker thread: owns the model, the data and the session being built, and runs one
//! job at a time through the same engine functions as `rift run`. libtorch blocks, so this
//! is a named `std::thread`, not a tokio task; it reports over a tokio unbounded channel,
//! which a plain thread can send on.
use super::handle::JobHandle;
use super::messages::{JobCommand, JobEvent};
pub use super::session::refine_alphas;
use super::session::{new_session, reload_finetuned};
use crate::engine::attack::PgdConfig;
use crate::engine::checkpoint::{save_pth, save_safetensors, Checkpoint, RawTensor};
use crate::engine::data::{load_split, Augmenter, DatasetKind, ImageSet, Split};
use crate::engine::models::Model;
use crate::engine::rift::events::Event;
use crate::engine::rift::finetune::{finetune, FinetuneConfig};
use crate::engine::rift::interpolate::{
    choose_alpha, evaluate_alpha, sweep, Endpoints, SweepConfig,
};
use crate::engine::rift::mrc::MrcConfig;
use crate::engine::rift::ood::evaluate_ood;
use crate::engine::rift::results::SweepPoint;
use crate::engine::rift::screen::ExactLowest;
use crate::engine::CancelFlag;
use crate::report::session::{now_rfc3339, ChosenWeights, Session, SessionSettings};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Builds the checkpoint and model on the worker thread (libtorch state stays there).
pub type ModelLoader = Box<dyn FnOnce() -> Result<(Checkpoint, Model)> + Send>;

/// Everything a worker needs; the command layer builds the configs from flags exactly as
/// `rift run` does.
pub struct JobSetup {
    pub load: ModelLoader,
    pub kind: DatasetKind,
    pub data_dir: PathBuf,
    pub attack: PgdConfig,
    pub eval_limit: Option<usize>,
    pub batch_size: usize,
    pub seed: u64,
    /// Modules to score (empty: all).
    pub modules: Vec<String>,
    pub adv_split: String,
    pub adv_limit: Option<usize>,
    pub mrc: MrcConfig,
    /// The explorer screens every module first (first-order estimates, not in the paper)
    /// and then computes exact MRC for this many, lowest estimate first (default: all).
    pub exact_lowest: ExactLowest,
    pub one_step: bool,
    pub finetune: FinetuneConfig,
    pub sweep: SweepConfig,
    pub session_dir: PathBuf,
    pub settings: SessionSettings,
    /// `rift tui --resume`: the saved session to continue (its fine-tuned weights are
    /// reloaded so α can be refined and accepted without fine-tuning again).
    pub resume: Option<Session>,
    /// The corrupted test set evaluated by `JobCommand::StartOod`, when there is one.
    pub ood: Option<OodSetup>,
}

/// Where the OOD job reads its corrupted set.
#[derive(Clone, Debug)]
pub struct OodSetup {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    pub severities: Vec<u8>,
}

pub struct Worker {
    pub(super) setup: JobSetup,
    ckpt: Checkpoint,
    pub(super) model: Model,
    pub(super) test: ImageSet,
    pub(super) train: Option<ImageSet>,
    pub(super) session: Session,
    finetuned: Option<Vec<(String, RawTensor)>>,
    ends: Option<Endpoints>,
    pub(super) tx: UnboundedSender<JobEvent>,
    /// MRC as far as it got, so that MRC paused for another job continues.
    pub(super) mrc_progress: Option<super::mrc_job::MrcProgress>,
}

impl Worker {
    /// Starts the worker thread; it loads the model and the test split, then waits for
    /// commands. Its events (load errors included) arrive on the returned receiver.
    pub fn spawn(setup: JobSetup) -> Result<(JobHandle, UnboundedReceiver<JobEvent>)> {
        let (tx, rx) = unbounded_channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(Mutex::new(CancelFlag::default()));
        let shared = cancel.clone();
        let join = std::thread::Builder::new()
            .name("rift-worker".into())
            .spawn(move || {
                let err_tx = tx.clone();
                match Worker::start(setup, tx) {
                    Ok(mut w) => w.serve(cmd_rx, shared),
                    Err(e) => {
                        let _ = err_tx.send(JobEvent::Failed(format!("{e:#}")));
                    }
                }
            })
            .context("cannot start the worker thread")?;
        Ok((JobHandle::new(cmd_tx, cancel, join), rx))
    }

    fn start(mut setup: JobSetup, tx: UnboundedSender<JobEvent>) -> Result<Worker> {
        let load = std::mem::replace(&mut setup.load, Box::new(|| bail!("already loaded")));
        let (ckpt, model) = load()?;
        let test = load_split(setup.kind, &setup.data_dir, Split::Test)?;
        model.check_input(&[
            1,
            test.channels as i64,
            test.height as i64,
            test.width as i64,
        ])?;
        let (session, finetuned, ends) = match setup.resume.take() {
            Some(mut session) => {
                session.settings.device = setup.settings.device.clone();
                let (ft, ends) = match reload_finetuned(&session, &setup.session_dir, &model) {
                    Ok(Some((ft, ends))) => (Some(ft), Some(ends)),
                    Ok(None) => (None, None),
                    Err(e) => {
                        let message = format!("{e:#}; fine-tune again to sweep or accept α");
                        let _ = tx.send(JobEvent::Engine(Event::Warning { message }));
                        (None, None)
                    }
                };
                (session, ft, ends)
            }
            None => (new_session(&setup, &model), None, None),
        };
        let _ = tx.send(JobEvent::Engine(Event::StageStarted {
            stage: "load".into(),
            detail: format!(
                "{} ({} parameters, {} modules, {}) on {}",
                model.spec.name(),
                model.num_params(),
                model.modules().len(),
                model.normalization.short(),
                setup.settings.device
            ),
        }));
        let _ = tx.send(JobEvent::Finished {
            stage: "load".into(),
        });
        Ok(Worker {
            setup,
            ckpt,
            model,
            test,
            train: None,
            session,
            finetuned,
            ends,
            tx,
            mrc_progress: None,
        })
    }

    fn serve(&mut self, rx: Receiver<JobCommand>, cancel: Arc<Mutex<CancelFlag>>) {
        while let Ok(cmd) = rx.recv() {
            if cmd == JobCommand::Shutdown {
                break;
            }
            if cmd == JobCommand::Cancel {
                continue; // the handle sets the flag itself; nothing is queued to stop
            }
            let flag = CancelFlag::default();
            if let Ok(mut slot) = cancel.lock() {
                *slot = flag.clone();
            }
            let outcome = self.run(&cmd, &flag);
            // Whatever happened, the model goes back to the AT weights for the next job.
            let restored = self.restore_at();
            let event = match (outcome, restored) {
                (Ok(stage), Ok(())) => JobEvent::Finished { stage },
                _ if flag.is_cancelled() => JobEvent::Cancelled,
                (Err(e), _) | (Ok(_), Err(e)) => JobEvent::Failed(format!("{e:#}")),
            };
            if self.tx.send(event).is_err() {
                break; // the UI is gone
            }
        }
    }

    pub(super) fn emit(tx: &UnboundedSender<JobEvent>, e: Event) {
        let _ = tx.send(JobEvent::Engine(e));
    }

    fn run(&mut self, cmd: &JobCommand, cancel: &CancelFlag) -> Result<String> {
        match cmd {
            JobCommand::StartMrc => self.mrc(cancel).map(|_| "mrc".into()),
            JobCommand::StartFinetune { layers, lr } => self
                .finetune(layers, *lr, cancel)
                .map(|_| "finetune".into()),
            JobCommand::StartSweep => self.sweep(cancel).map(|_| "sweep".into()),
            JobCommand::Refine { around } => self.refine(*around, cancel).map(|_| "refine".into()),
            JobCommand::Accept { alpha } => self.accept(*alpha).map(|_| "accept".into()),
            JobCommand::Save => self.save().map(|_| "save".into()),
            JobCommand::StartOod { alpha } => self.ood(*alpha, cancel).map(|_| "ood".into()),
            JobCommand::Cancel | JobCommand::Shutdown => Ok("idle".into()),
        }
    }

    fn restore_at(&self) -> Result<()> {
        match &self.ends {
            Some(ends) => ends.apply(&self.model, 0.0)?,
            None => self
                .model
                .load_state(&self.ckpt.tensors, &self.ckpt.path.display().to_string())?,
        }
        Ok(())
    }

    pub(super) fn finish_stage(&mut self, stage: &str, t: Instant) {
        let secs = t.elapsed().as_secs_f64();
        self.session.stage_seconds.retain(|(s, _)| s != stage);
        self.session.stage_seconds.push((stage.to_string(), secs));
        Self::emit(
            &self.tx,
            Event::StageFinished {
                stage: stage.into(),
                seconds: secs,
            },
        );
    }

    fn finetune(&mut self, layers: &[String], lr: f64, cancel: &CancelFlag) -> Result<()> {
        if layers.is_empty() {
            bail!("no module to fine-tune: run MRC first or select a module");
        }
        let t = Instant::now();
        if self.train.is_none() {
            self.train = Some(load_split(
                self.setup.kind,
                &self.setup.data_dir,
                Split::Train,
            )?);
        }
        let Some(train) = &self.train else {
            bail!("the training split is not loaded");
        };
        let cfg = FinetuneConfig {
            lr,
            ..self.setup.finetune.clone()
        };
        let tx = self.tx.clone();
        let mut sink = |e: Event| Self::emit(&tx, e);
        sink(Event::StageStarted {
            stage: "finetune".into(),
            detail: format!(
                "{} at lr {} for {} epochs",
                layers.join(", "),
                lr,
                cfg.epochs
            ),
        });
        // Start from the AT weights; the old endpoints stay until this run succeeds, so a
        // cancelled fine-tune leaves the previous one usable.
        self.restore_at()?;
        let aug = Augmenter::for_dataset(self.setup.kind, train.height);
        let r = finetune(
            &self.model,
            layers,
            train,
            &self.test,
            &aug,
            &cfg,
            cancel,
            &mut sink,
        )?;
        if let Some(msg) = &r.diverged {
            sink(Event::Warning {
                message: msg.clone(),
            });
        }
        let state = self.model.state()?;
        self.restore_at()?;
        self.ends = Some(Endpoints::new(&self.model, &state)?);
        self.finetuned = Some(state);
        self.session.finetune = Some(r);
        self.session.interpolation = None;
        self.session.chosen = None;
        self.finish_stage("finetune", t);
        Ok(())
    }

    fn baseline_point(&self) -> Vec<SweepPoint> {
        self.session
            .baseline
            .iter()
            .map(|b| SweepPoint {
                alpha: 0.0,
                clean_acc: b.clean_acc,
                robust_acc: b.robust_acc.unwrap_or(0.0),
                n: b.n,
            })
            .collect()
    }

    fn sweep(&mut self, cancel: &CancelFlag) -> Result<()> {
        let Some(ends) = &self.ends else {
            bail!("nothing to interpolate: fine-tune a module first");
        };
        let t = Instant::now();
        let cfg = &self.setup.sweep;
        let tx = self.tx.clone();
        let mut sink = |e: Event| Self::emit(&tx, e);
        sink(Event::StageStarted {
            stage: "interpolate".into(),
            detail: format!(
                "{} α values, {} refinement rounds",
                cfg.alphas.len(),
                cfg.refine
            ),
        });
        let known = self.baseline_point();
        let r = sweep(
            &self.model,
            ends,
            &self.test,
            cfg,
            &known,
            cancel,
            &mut sink,
        )?;
        self.session.interpolation = Some(r);
        self.finish_stage("interpolate", t);
        Ok(())
    }

    /// Midpoints between `around` and its neighbours, added to the sweep.
    fn refine(&mut self, around: f64, cancel: &CancelFlag) -> Result<()> {
        let (Some(ends), Some(interp)) = (&self.ends, &self.session.interpolation) else {
            bail!("nothing to refine: run the α sweep first");
        };
        let alphas: Vec<f64> = interp.points.iter().map(|p| p.alpha).collect();
        let new = refine_alphas(&alphas, around);
        if new.is_empty() {
            bail!("the grid around α = {around} is already as fine as rift refines it");
        }
        let cfg = &self.setup.sweep;
        let mut points = interp.points.clone();
        let total = new.len();
        for (i, &alpha) in new.iter().enumerate() {
            let p = evaluate_alpha(&self.model, ends, alpha, &self.test, cfg, cancel)?;
            Self::emit(&self.tx, Event::SweepPoint { point: p.clone() });
            Self::emit(
                &self.tx,
                Event::Progress {
                    stage: "refine".into(),
                    done: i + 1,
                    total,
                },
            );
            points.push(p);
        }
        points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        if let Some(interp) = &mut self.session.interpolation {
            interp.chosen_alpha = choose_alpha(&points, interp.tolerance);
            interp.points = points;
            interp.refine_rounds += 1;
        }
        Ok(())
    }

    fn accept(&mut self, alpha: f64) -> Result<()> {
        let Some(ends) = &self.ends else {
            bail!("nothing to accept: fine-tune a module and sweep α first");
        };
        let dir = &self.setup.session_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
        ends.apply(&self.model, alpha)?;
        let state = self.model.state()?;
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
        if let Some(interp) = &mut self.session.interpolation {
            interp.chosen_alpha = alpha;
        }
        self.session.chosen = Some(chosen);
        let _ = self.tx.send(JobEvent::Accepted {
            alpha,
            path: dir.join("chosen.pth").display().to_string(),
        });
        Ok(())
    }

    /// Corruption accuracy of the AT model (once) and of the model at `alpha`.
    fn ood(&mut self, alpha: f64, cancel: &CancelFlag) -> Result<()> {
        let Some(ood) = self.setup.ood.clone() else {
            bail!("no corrupted test set: start the explorer with --ood-dataset/--ood-dir");
        };
        let tx = self.tx.clone();
        let mut sink = |e: Event| Self::emit(&tx, e);
        let mut jobs = vec![("chosen", alpha)];
        if self.session.ood_at.is_none() {
            jobs.insert(0, ("at", 0.0));
        }
        for (which, a) in jobs {
            let t = Instant::now();
            sink(Event::StageStarted {
                stage: "ood".into(),
                detail: format!("{which} model (α = {a}) on {}", ood.kind.name()),
            });
            match (&self.ends, which) {
                (Some(ends), _) => ends.apply(&self.model, a)?,
                (None, "at") => self.restore_at()?,
                (None, _) => bail!("nothing to evaluate: fine-tune a module and sweep α first"),
            }
            let r = evaluate_ood(
                &self.model,
                ood.kind,
                &ood.dir,
                &ood.severities,
                self.setup.batch_size,
                cancel,
                &mut sink,
            )?;
            if which == "at" {
                self.session.ood_at = Some(r);
            } else {
                self.session.ood_chosen = Some(r);
            }
            self.finish_stage(&format!("ood_{which}"), t);
        }
        Ok(())
    }

    /// session.yaml (atomically), the fine-tuned weights, report.md and the plots.
    fn save(&mut self) -> Result<()> {
        let dir = self.setup.session_dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
        if let Some(state) = &self.finetuned {
            let name = "finetuned.safetensors";
            save_safetensors(&dir.join(name), state, &[("alpha".into(), "1".into())])?;
            self.session.finetuned_weights = Some(name.into());
        }
        self.session.updated = now_rfc3339();
        self.session.save(&dir)?;
        crate::report::render_report(&dir)?;
        let _ = self.tx.send(JobEvent::Saved {
            dir: dir.display().to_string(),
        });
        Ok(())
    }
}
