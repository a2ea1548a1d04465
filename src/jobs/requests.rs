//! `s` and `a` while a job runs: the worker serves them between the running job's batches
//! without ending the job.
//!
//! Decision: the requests travel on the worker's one command channel (so a request sent
//! just as a job ends is served by the idle worker instead, in order, and nothing is
//! lost), and the running job's event sink polls that channel each time the engine reports
//! (every fine-tuning batch, α point, MRC epoch or corruption). The engine holds the
//! `Pipeline` (its model, session and endpoints) for the whole stage, so a request cannot
//! reach into it; instead the worker gives each job an [`Aside`]: a copy of the session as
//! the job found it, the α points the job has measured since (from its events), and a
//! second handle on the interpolation endpoints (no copy of the weights). That is all a
//! save of the finished stages and an accepted α's weights need: θ(α) is computed from
//! the endpoints alone (`Endpoints::state_at`), so the model the job is using is never
//! touched. Commands other than requests that arrive meanwhile wait, in order, for the
//! job to end. Once it ends, the worker records an α accepted during it in the pipeline's
//! own session (when the session holds that α's point), so later saves keep it.
//! The UI thread could not do this itself: the fine-tuned endpoints live on the worker.
use super::handle::Sent;
use super::messages::{JobCommand, JobEvent, JobRequest};
use crate::engine::checkpoint::save_safetensors;
use crate::engine::error_text::paragraph;
use crate::engine::rift::alpha::interpolate::{choose_alpha, Endpoints};
use crate::engine::rift::events::Event;
use crate::engine::rift::mrc::results::{InterpolationResult, SweepPoint};
use crate::engine::rift::pipeline::{record_chosen, write_chosen_files, Pipeline, FINETUNED_FILE};
use crate::engine::session::{ChosenWeights, Session};
use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use tokio::sync::mpsc::UnboundedSender;

/// What a running job's requests are served from.
pub(super) struct Aside<'a> {
    commands: &'a Receiver<Sent>,
    /// Commands that are not requests, kept (with their cancel flags) for after the job.
    later: &'a mut VecDeque<Sent>,
    tx: UnboundedSender<JobEvent>,
    dir: PathBuf,
    /// The session as the job found it, with the α points measured since.
    session: Session,
    ends: Option<Endpoints>,
    tolerance: f64,
    /// Fine-tuning replaces the endpoints: no α of the old ones is accepted meanwhile.
    finetuning: bool,
    /// The job measures α points (a sweep or a refinement).
    sweeping: bool,
    /// Chosen weights written during the job.
    pub accepted: Option<ChosenWeights>,
}

impl<'a> Aside<'a> {
    pub fn new(
        p: &Pipeline,
        job: &JobCommand,
        commands: &'a Receiver<Sent>,
        later: &'a mut VecDeque<Sent>,
        tx: UnboundedSender<JobEvent>,
    ) -> Aside<'a> {
        let mut session = p.session.clone();
        if *job == JobCommand::StartSweep {
            // A new sweep replaces the old points; until it ends, its own are the finished ones.
            session.interpolation = None;
        }
        Aside {
            commands,
            later,
            tx,
            dir: p.setup.session_dir.clone(),
            session,
            ends: p.endpoints().map(Endpoints::share),
            tolerance: p.setup.sweep.tolerance,
            finetuning: matches!(job, JobCommand::StartFinetune { .. }),
            sweeping: matches!(job, JobCommand::StartSweep | JobCommand::Refine { .. }),
            accepted: None,
        }
    }

    /// The baseline the job computed before its main stage (MRC's job): a save from now on
    /// writes it.
    pub fn finished_baseline(&mut self, session: &Session) {
        self.session.baseline = session.baseline.clone();
        self.session.stage_seconds = session.stage_seconds.clone();
    }

    /// Keeps what the job has finished so far (its α points).
    pub fn observe(&mut self, e: &Event) {
        if let Event::SweepPoint { point } = e {
            self.add_point(point.clone());
        }
    }

    /// The α points a sweep or refinement measured before it stopped (with the ones it
    /// started from), as the session's interpolation; `None` for other jobs or no points.
    pub fn measured_points(&self) -> Option<InterpolationResult> {
        self.sweeping
            .then(|| self.session.interpolation.clone())
            .flatten()
    }

    /// Serves the requests waiting on the channel; keeps other commands for later.
    pub fn poll(&mut self) {
        while let Ok(sent) = self.commands.try_recv() {
            match &sent.cmd {
                JobCommand::Request(r) => self.serve(r),
                _ => self.later.push_back(sent),
            }
        }
    }

    fn serve(&mut self, r: &JobRequest) {
        let result = match r {
            JobRequest::Save => self.save(),
            JobRequest::Accept { alpha } => self.accept(*alpha),
        };
        if let Err(e) = result {
            let _ = self.tx.send(JobEvent::RequestFailed(paragraph(e.as_ref())));
        }
    }

    fn add_point(&mut self, point: SweepPoint) {
        let interp = self
            .session
            .interpolation
            .get_or_insert_with(|| InterpolationResult {
                points: Vec::new(),
                chosen_alpha: 0.0,
                tolerance: self.tolerance,
                refine_rounds: 0,
                seconds: 0.0,
                search: None,
            });
        interp.points.retain(|p| p.alpha != point.alpha);
        interp.points.push(point);
        interp.points.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
        let accepted = self.session.chosen.as_ref().map(|c| c.alpha);
        interp.chosen_alpha = match accepted {
            Some(a) if interp.points.iter().any(|p| p.alpha == a) => a,
            _ => choose_alpha(&interp.points, interp.tolerance),
        };
    }

    /// session.yaml (atomically) with the finished stages and the points so far, the
    /// fine-tuned weights the endpoints hold, report.md and the plots.
    fn save(&mut self) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
        if let Some(ends) = &self.ends {
            let state = ends.state_at(1.0)?;
            save_safetensors(
                &dir.join(FINETUNED_FILE),
                &state,
                &[("alpha".into(), "1".into())],
            )?;
            self.session.finetuned_weights = Some(FINETUNED_FILE.into());
        }
        self.session.updated = crate::engine::session::now_rfc3339();
        self.session.save(dir)?;
        crate::report::render_report(dir)?;
        let _ = self.tx.send(JobEvent::Saved {
            dir: dir.display().to_string(),
        });
        Ok(())
    }

    /// The chosen weights for a measured α, from the endpoints.
    fn accept(&mut self, alpha: f64) -> Result<()> {
        if self.finetuning {
            bail!("fine-tuning is replacing the interpolation endpoints: accept an α once its sweep has measured it");
        }
        let Some(ends) = &self.ends else {
            bail!("nothing to accept: fine-tune a module and sweep α first");
        };
        let measured = self
            .session
            .interpolation
            .as_ref()
            .is_some_and(|i| i.points.iter().any(|p| p.alpha == alpha));
        if !measured {
            bail!("α = {alpha} is not measured yet: accept a point the sweep has reached");
        }
        let chosen = write_chosen_files(ends, alpha, &self.dir)?;
        record_chosen(&mut self.session, chosen.clone());
        let path = self.dir.join(&chosen.pth).display().to_string();
        self.accepted = Some(chosen);
        let _ = self.tx.send(JobEvent::Accepted { alpha, path });
        Ok(())
    }
}
