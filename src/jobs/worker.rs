//! The worker thread: owns the pipeline (model, data, the session being built) and runs
//! one job at a time through the engine's `Pipeline`, the same stages `rift run` drives.
//! libtorch blocks, so this is a named `std::thread`, not a tokio task; it reports over a
//! tokio unbounded channel, which a plain thread can send on.
use super::candidates::Candidates;
use super::handle::{JobHandle, Sent};
use super::messages::{JobCommand, JobEvent, JobRequest};
use super::requests::Aside;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::error_text::paragraph;
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, OodModel, Stage, StageAbout};
use crate::engine::rift::final_eval::FinalEvalPlan;
use crate::engine::rift::mrc::stage::{MrcStage, PARTIAL_MRC};
use crate::engine::rift::pipeline::{record_chosen, Pipeline, PipelineSetup, SweepHow};
use crate::engine::rift::run_config::RunConfig;
use crate::engine::session::{ChosenWeights, Session, SessionSettings};
use crate::engine::CancelFlag;
use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use crate::engine::rift::pipeline::OodSetup;

/// Builds the checkpoint and model on the worker thread (libtorch state stays there).
pub type ModelLoader = Box<dyn FnOnce() -> Result<(Checkpoint, Model)> + Send>;

/// Everything a worker needs; the command layer builds the configs from flags exactly as
/// `rift run` does.
pub struct JobSetup {
    pub load: ModelLoader,
    pub pipeline: PipelineSetup,
    /// Every setting that changes a number (its `mrc` is the MRC job's plan); recorded
    /// whole in the session.
    pub config: RunConfig,
    pub settings: SessionSettings,
    /// `rift tui --resume`: the saved session to continue (its fine-tuned weights are
    /// reloaded so α can be refined and accepted without fine-tuning again).
    pub resume: Option<Session>,
}

pub struct Worker {
    p: Pipeline,
    /// MRC as far as it got, so that MRC paused for another job continues; each exact
    /// score also reaches the session's partial file as it finishes.
    mrc: MrcStage,
    /// The session's candidates (one per fine-tuned module set, `candidates.rs`).
    candidates: Candidates,
    tx: UnboundedSender<JobEvent>,
}

impl Worker {
    /// Starts the worker thread; it loads the model and the test split, then waits for
    /// commands. Its events (load errors included) arrive on the returned receiver.
    pub fn spawn(setup: JobSetup) -> Result<(JobHandle, UnboundedReceiver<JobEvent>)> {
        let (tx, rx) = unbounded_channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let join = std::thread::Builder::new()
            .name("rift-worker".into())
            .spawn(move || {
                let err_tx = tx.clone();
                match Worker::start(setup, tx) {
                    Ok(mut w) => w.serve(cmd_rx),
                    Err(e) => {
                        let _ = err_tx.send(JobEvent::Failed(paragraph(e.as_ref())));
                    }
                }
            })
            .context("cannot start the worker thread")?;
        Ok((JobHandle::new(cmd_tx, join), rx))
    }

    fn start(setup: JobSetup, tx: UnboundedSender<JobEvent>) -> Result<Worker> {
        let JobSetup {
            load,
            pipeline,
            config,
            settings,
            resume,
        } = setup;
        let mrc = MrcStage::new(
            config.mrc.clone(),
            Some(pipeline.session_dir.join(PARTIAL_MRC)),
        );
        let (ckpt, model) = load()?;
        let device = settings.device.clone();
        let candidates = Candidates::new(pipeline.session_dir.clone());
        let session = match resume {
            Some(mut session) => {
                session.settings.device = device.clone();
                session
            }
            None => Session::new(&pipeline.session_dir, settings, Some(config), &model),
        };
        let resumed = session.finetuned_weights.is_some();
        let mut p = Pipeline::new(pipeline, ckpt, model, session)?;
        if resumed {
            if let Err(e) = p.reload_finetuned() {
                let message = format!("{}; fine-tune again to sweep or accept α", paragraph(&e));
                let _ = tx.send(JobEvent::Engine(Event::Warning { message }));
            }
        }
        let _ = tx.send(JobEvent::Engine(Event::started(
            Stage::Load,
            StageAbout::Model {
                arch: p.model.spec.name(),
                params: p.model.num_params(),
                modules: p.model.modules().len(),
                normalization: p.model.normalization.short(),
                device,
                zoo: p.session.settings.zoo.clone(),
            },
        )));
        let _ = tx.send(JobEvent::Finished { stage: Stage::Load });
        let _ = tx.send(JobEvent::Candidates(candidates.summaries(&p)));
        for message in candidates.unreadable() {
            let _ = tx.send(JobEvent::Engine(Event::Warning { message }));
        }
        Ok(Worker {
            p,
            mrc,
            candidates,
            tx,
        })
    }

    /// Runs the jobs in the order sent, each with the cancel flag the handle sent with it
    /// (`handle.rs`); the flag is dropped when the job ends, which tells the handle so.
    fn serve(&mut self, rx: Receiver<Sent>) {
        // Commands that arrived while a job ran (requests are served then, these wait).
        let mut later = VecDeque::new();
        loop {
            let Sent { cmd, cancel: flag } = match later.pop_front() {
                Some(sent) => sent,
                None => match rx.recv() {
                    Ok(sent) => sent,
                    Err(_) => break,
                },
            };
            match &cmd {
                JobCommand::Shutdown => break,
                // The handle sets the flags itself; nothing is queued to stop.
                JobCommand::Cancel => continue,
                JobCommand::Request(r) => {
                    self.serve_request(r);
                    continue;
                }
                _ => {}
            }
            // Cancelled while it waited: it ends without running.
            if flag.is_cancelled() {
                if self.tx.send(JobEvent::Cancelled).is_err() {
                    break;
                }
                continue;
            }
            let mut aside = Aside::new(&self.p, &cmd, &rx, &mut later, self.tx.clone());
            let outcome = self.run(&cmd, &flag, &mut aside);
            if outcome.is_err() {
                // A sweep or refinement that stopped keeps the points it measured (a later
                // sweep continues from them, as `rift run` continues a saved one).
                if let Some(measured) = aside.measured_points() {
                    self.p.session.interpolation = Some(measured);
                }
            }
            if let Some(chosen) = aside.accepted.take() {
                self.adopt_chosen(chosen);
            }
            // Whatever happened, the model goes back to the AT weights for the next job.
            let restored = self.p.restore_at().map_err(anyhow::Error::from);
            let event = match (outcome, restored) {
                (Ok(stage), Ok(())) => JobEvent::Finished { stage },
                _ if flag.is_cancelled() => JobEvent::Cancelled,
                (Err(e), _) | (Ok(_), Err(e)) => JobEvent::Failed(paragraph(e.as_ref())),
            };
            if self.tx.send(event).is_err() {
                break; // the UI is gone
            }
            let _ = self
                .tx
                .send(JobEvent::Candidates(self.candidates.summaries(&self.p)));
        }
    }

    /// A request while no job runs: the same as the job of the same name, without the
    /// `Finished` (the UI did not mark itself busy for it).
    fn serve_request(&mut self, r: &JobRequest) {
        let result = match r {
            JobRequest::Save => self.save(),
            JobRequest::Accept { alpha } => self.accept(*alpha),
        };
        if let Err(e) = result {
            let _ = self.tx.send(JobEvent::RequestFailed(paragraph(e.as_ref())));
        }
    }

    /// An α accepted while a job ran becomes the session's chosen model, when the session
    /// holds its point (a cancelled sweep leaves none: its weights stay on disk only).
    fn adopt_chosen(&mut self, chosen: ChosenWeights) {
        let session = &mut self.p.session;
        let measured = session
            .interpolation
            .as_ref()
            .is_some_and(|i| i.points.iter().any(|p| p.alpha == chosen.alpha));
        if measured {
            record_chosen(session, chosen);
        }
    }

    fn accept(&mut self, alpha: f64) -> Result<()> {
        let chosen = self.p.write_chosen(alpha)?;
        let path = self.p.setup.session_dir.join(chosen.pth);
        let _ = self.tx.send(JobEvent::Accepted {
            alpha,
            path: path.display().to_string(),
        });
        Ok(())
    }

    fn emit(tx: &UnboundedSender<JobEvent>, e: Event) {
        let _ = tx.send(JobEvent::Engine(e));
    }

    fn run(&mut self, cmd: &JobCommand, cancel: &CancelFlag, aside: &mut Aside) -> Result<Stage> {
        if *cmd == JobCommand::StartMrc {
            return self.run_mrc(cancel, aside);
        }
        let tx = self.tx.clone();
        let mut sink = job_sink(aside, &tx);
        let p = &mut self.p;
        match cmd {
            JobCommand::StartFinetune { layers, lr } => {
                if let Some(dir) = self.candidates.dir_for(p, layers) {
                    Self::show(p, &self.candidates, &self.tx, dir, &layers.join("+"))?;
                }
                let cfg = crate::engine::rift::finetune::FinetuneConfig {
                    lr: *lr,
                    ..p.setup.finetune.clone()
                };
                let what = crate::engine::rift::finetune::Trained::Modules(layers.clone());
                p.finetune(&what, &cfg, cancel, &mut sink)?;
                Ok(Stage::Finetune)
            }
            JobCommand::StartSweep => {
                p.sweep(SweepHow::Grid, cancel, &mut sink)?;
                Ok(Stage::Interpolate)
            }
            JobCommand::Refine { around } => {
                p.refine(*around, cancel, &mut sink)?;
                Ok(Stage::Refine)
            }
            JobCommand::Accept { alpha } => {
                self.accept(*alpha)?;
                Ok(Stage::Accept)
            }
            JobCommand::Save => {
                self.save()?;
                Ok(Stage::Save)
            }
            JobCommand::StartOod { alpha } => {
                if p.setup.ood.is_none() {
                    bail!("no corrupted test set: start the explorer with --ood-dataset/--ood-dir");
                }
                if p.session.ood_at.is_none() {
                    p.ood(OodModel::At, 0.0, cancel, &mut sink)?;
                }
                p.ood(OodModel::Chosen, *alpha, cancel, &mut sink)?;
                Ok(Stage::Ood)
            }
            JobCommand::StartFinalEval { alpha } => {
                let s = &p.setup;
                let plan = s.final_eval.clone().unwrap_or_else(|| {
                    FinalEvalPlan::standard(s.attack.eps, s.attack.norm, s.seed, s.batch_size)
                });
                p.final_eval(&plan, *alpha, cancel, &mut sink)?;
                Ok(Stage::FinalEval)
            }
            JobCommand::ShowCandidate { label } => {
                let Some(dir) = self.candidates.dir_of(p, label) else {
                    bail!("no candidate {label} in this session");
                };
                if dir != p.setup.session_dir {
                    Self::show(p, &self.candidates, &self.tx, dir, label)?;
                }
                Ok(Stage::Candidate)
            }
            JobCommand::StartMrc
            | JobCommand::Request(_)
            | JobCommand::Cancel
            | JobCommand::Shutdown => {
                bail!("internal: not a job here")
            }
        }
    }

    /// The AT baseline (once), then the MRC stage, continued where it stopped (in this
    /// process, or in the partial file a saved or killed explorer left). The baseline and
    /// the finished MRC reach session.yaml at once; each exact score reaches the partial
    /// file as it finishes (`MrcStage`).
    fn run_mrc(&mut self, cancel: &CancelFlag, aside: &mut Aside) -> Result<Stage> {
        let tx = self.tx.clone();
        let p = &mut self.p;
        // The explorer's own session is written as results come; a candidate's directory
        // only when the user saves it.
        let own = p.setup.session_dir == self.candidates.root();
        if p.baseline_once(own, cancel, &mut job_sink(aside, &tx))? {
            // A save during MRC writes it too.
            aside.finished_baseline(&p.session);
        }
        p.mrc_once(&mut self.mrc, own, cancel, &mut job_sink(aside, &tx))?;
        Ok(Stage::Mrc)
    }

    /// session.yaml (atomically), the fine-tuned weights, report.md and the plots.
    fn save(&mut self) -> Result<()> {
        Self::save_shown(&mut self.p, &self.candidates)?;
        let _ = self.tx.send(JobEvent::Saved {
            dir: self.p.setup.session_dir.display().to_string(),
        });
        Ok(())
    }

    /// Saves the candidate on display into its directory, and the shared results into
    /// the explorer's own session when another candidate is on display.
    fn save_shown(p: &mut Pipeline, candidates: &Candidates) -> Result<()> {
        let dir = p.setup.session_dir.clone();
        p.save_all()?;
        crate::report::render_report(&dir)?;
        candidates.save_shared(&dir, &p.session)?;
        if dir != candidates.root() {
            crate::report::render_report(candidates.root())?;
        }
        Ok(())
    }

    /// Puts the candidate in `dir` (`label`, new or saved) on display: the one shown is
    /// saved first, so nothing of it is lost; its weights are read back when it returns.
    fn show(
        p: &mut Pipeline,
        candidates: &Candidates,
        tx: &UnboundedSender<JobEvent>,
        dir: std::path::PathBuf,
        label: &str,
    ) -> Result<()> {
        let next = candidates.session_for(&dir, &p.session, label, &p.model)?;
        // A new candidate whose fine-tuning never finished leaves nothing to keep.
        if p.session.finetune.is_some() || p.setup.session_dir == candidates.root() {
            Self::save_shown(p, candidates)?;
        }
        p.switch_session(next, dir)?;
        if let Err(e) = p.reload_finetuned() {
            let message = format!("{}; fine-tune it again to sweep or accept α", paragraph(&e));
            Self::emit(tx, Event::Warning { message });
        }
        let _ = tx.send(JobEvent::CandidateShown(Box::new(p.session.clone())));
        Ok(())
    }
}

/// A job's event sink: each engine event goes to the UI, and is where requests are served
/// (`requests.rs`).
fn job_sink<'s, 'a: 's>(
    aside: &'s mut Aside<'a>,
    tx: &'s UnboundedSender<JobEvent>,
) -> Box<dyn FnMut(Event) + 's> {
    Box::new(move |e: Event| {
        aside.observe(&e);
        let _ = tx.send(JobEvent::Engine(e));
        aside.poll();
    })
}
