//! `update(state, msg)`: every change of the explorer's state, as a pure function. What it
//! asks of the outside world (start a job, cancel, quit) comes back as a `Cmd`.
use super::state::{AlphaView, JobStatus, RunningModule, SortOrder, State};
use crate::engine::rift::alpha::interpolate::choose_alpha;
use crate::engine::rift::events::{Event, OodModel, Stage, StageAbout};
use crate::engine::rift::mrc::results::{criticality_cmp, ModuleEstimate};
use crate::jobs::{JobCommand, JobEvent};

pub use super::msg::Msg;

#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    Job(JobCommand),
    Cancel,
    Quit,
}

pub const LR_MIN: f64 = 1e-6;
pub const LR_MAX: f64 = 1.0;

pub fn update(s: &mut State, msg: Msg) -> Option<Cmd> {
    match msg {
        Msg::Start => start_job(s, JobCommand::StartMrc, "baseline and MRC"),
        Msg::Job(e) => job_event(s, e),
        Msg::WorkerGone => {
            s.worker_gone = true;
            s.busy = false;
            s.job = None;
            s.error
                .get_or_insert_with(|| "the worker has stopped".into());
            None
        }
        Msg::Tick(now) => {
            s.now = now;
            None
        }
        Msg::Up | Msg::Down if s.compare_view => {
            super::candidates::move_cursor(s, msg == Msg::Down);
            None
        }
        Msg::CompareView => {
            super::candidates::toggle_view(s);
            None
        }
        Msg::ShowCandidate => {
            let (cmd, what) = super::candidates::show_selected(s)?;
            start_job(s, cmd, &what)
        }
        Msg::Up => {
            s.cursor = s.cursor.saturating_sub(1);
            None
        }
        Msg::Down => {
            if s.cursor + 1 < s.rows().len() {
                s.cursor += 1;
            }
            None
        }
        Msg::SelectModule(i) => {
            if i < s.rows().len() {
                s.cursor = i;
            }
            None
        }
        Msg::SelectAlpha(a) => {
            s.alpha_cursor = s
                .sweep
                .iter()
                .min_by(|p, q| (p.alpha - a).abs().total_cmp(&(q.alpha - a).abs()))
                .map(|p| p.alpha);
            None
        }
        Msg::FineTune => {
            let Some(row) = s.selected_row() else {
                s.status = "no module scored yet: wait for MRC".into();
                return None;
            };
            if row.exact.is_none() {
                s.status = format!(
                    "{} has only a first-order estimate: wait for its exact MRC",
                    row.name
                );
                return None;
            }
            let layers = vec![row.name.to_string()];
            let lr = s.lr;
            let what = format!("fine-tuning {}", layers.join(", "));
            start_job(s, JobCommand::StartFinetune { layers, lr }, &what)
        }
        Msg::LrDown | Msg::LrUp => {
            let f = if msg == Msg::LrUp { 2.0 } else { 0.5 };
            s.lr = (s.lr * f).clamp(LR_MIN, LR_MAX);
            s.status = format!("fine-tuning lr {}", fmt_lr(s.lr));
            None
        }
        Msg::AlphaLeft | Msg::AlphaRight => {
            move_alpha(s, msg == Msg::AlphaRight);
            None
        }
        Msg::AlphaView => {
            s.alpha_view = match s.alpha_view {
                AlphaView::Delta => AlphaView::Plane,
                AlphaView::Plane => AlphaView::Delta,
            };
            None
        }
        Msg::Refine => match s.alpha_cursor {
            Some(around) => start_job(s, JobCommand::Refine { around }, "refining α"),
            None => {
                s.status = "no α sweep yet".into();
                None
            }
        },
        Msg::Accept => match s.alpha_cursor {
            Some(alpha) if s.busy && s.read_only.is_none() => {
                super::requests::accept(s, alpha).map(|r| Cmd::Job(JobCommand::Request(r)))
            }
            Some(alpha) => start_job(s, JobCommand::Accept { alpha }, "writing the chosen model"),
            None => {
                s.status = "no α to accept yet: fine-tune and sweep first".into();
                None
            }
        },
        Msg::Save if s.busy && s.read_only.is_none() => {
            super::requests::save(s).map(|r| Cmd::Job(JobCommand::Request(r)))
        }
        Msg::Save => start_job(s, JobCommand::Save, "saving the session"),
        Msg::Sort => {
            let name = s.selected_row().map(|r| r.name.to_string());
            s.sort = match s.sort {
                SortOrder::Depth => SortOrder::Mrc,
                SortOrder::Mrc => SortOrder::Depth,
            };
            if let Some(name) = name {
                s.select_module(&name);
            }
            None
        }
        Msg::NextTheme => {
            s.theme = (s.theme + 1) % s.theme_names.len().max(1);
            s.status = format!("theme {}", s.theme_name());
            None
        }
        Msg::Cancel => {
            if let Some(what) = &s.read_only {
                s.status = format!("read-only: following {what}; cancel it where it runs");
                None
            } else if s.busy {
                s.status = "cancelling…".into();
                Some(Cmd::Cancel)
            } else {
                s.status = "no job is running".into();
                None
            }
        }
        Msg::AutoAttack => {
            let (cmd, what) = super::aa_check::command(s)?;
            start_job(s, cmd, &what)
        }
        Msg::Help => {
            s.help = !s.help;
            None
        }
        Msg::Dismiss => {
            if !s.help && !s.confirm_quit {
                s.compare_view = false;
            }
            s.help = false;
            s.confirm_quit = false;
            None
        }
        Msg::Quit => {
            // A running job's progress (the module being scored, the epoch being trained)
            // is lost on quitting too, so that asks as well.
            if (s.unsaved || s.busy) && s.read_only.is_none() && !s.confirm_quit {
                s.confirm_quit = true;
                None
            } else {
                s.quit = true;
                Some(Cmd::Quit)
            }
        }
        Msg::ConfirmQuit | Msg::ForceQuit => {
            s.quit = true;
            Some(Cmd::Quit)
        }
    }
}

pub fn fmt_lr(lr: f64) -> String {
    format!("{lr:.2e}")
}

pub(super) fn start_job(s: &mut State, cmd: JobCommand, what: &str) -> Option<Cmd> {
    if let Some(source) = &s.read_only {
        s.status = format!("read-only: following {source} (open it with --resume to act on it)");
        return None;
    }
    if s.worker_gone {
        s.status = "the worker has stopped; restart rift".into();
        return None;
    }
    if s.busy {
        // Exact MRC of the remaining modules can wait: pause it, run this, continue.
        let exact_mrc = s.job.as_ref().is_some_and(|j| j.stage == Stage::Mrc);
        if exact_mrc && s.pending.is_none() && cmd != JobCommand::StartMrc {
            s.pending = Some((cmd, what.to_string()));
            s.status = format!("pausing MRC for {what}; it continues afterwards");
            return Some(Cmd::Cancel);
        }
        s.status = "a job is running: wait for it or press c to cancel".into();
        return None;
    }
    s.busy = true;
    s.error = None;
    s.status = what.to_string();
    Some(Cmd::Job(cmd))
}

fn move_alpha(s: &mut State, right: bool) {
    if s.sweep.is_empty() {
        return;
    }
    let i = s
        .alpha_cursor
        .and_then(|a| s.sweep.iter().position(|p| p.alpha == a))
        .unwrap_or(0);
    let j = if right {
        (i + 1).min(s.sweep.len() - 1)
    } else {
        i.saturating_sub(1)
    };
    s.alpha_cursor = Some(s.sweep[j].alpha);
}

fn job_event(s: &mut State, e: JobEvent) -> Option<Cmd> {
    match e {
        JobEvent::Engine(ev) => {
            engine_event(s, ev);
            None
        }
        // Loading is not a job the UI started: the job queued behind it keeps running.
        JobEvent::Finished { stage: Stage::Load } => {
            if !s.busy {
                s.job = None;
            }
            None
        }
        JobEvent::Finished { stage } => {
            let next = stage_finished(s, stage);
            next.or_else(|| after_job(s))
        }
        JobEvent::Accepted { alpha, path } => {
            if s.accepted_alpha != Some(alpha) {
                s.ood_chosen.clear();
            }
            s.accepted_alpha = Some(alpha);
            s.unsaved = true;
            // The weights are on disk; session.yaml and the report wait for `s`.
            let file = std::path::Path::new(&path)
                .file_name()
                .map_or(path.clone(), |f| f.to_string_lossy().into_owned());
            s.status = format!("α = {alpha} accepted: wrote {file}; s saves the session");
            let (cmd, what) = super::requests::accepted(s, alpha)?;
            start_job(s, cmd, &what)
        }
        JobEvent::RequestFailed(message) => {
            super::requests::failed(s, message);
            None
        }
        JobEvent::Note(message) => {
            s.status = message;
            None
        }
        JobEvent::Candidates(list) => {
            super::candidates::listed(s, list);
            None
        }
        JobEvent::CandidateShown(session) => {
            super::candidates::shown(s, &session);
            None
        }
        JobEvent::Saved { dir } => {
            s.unsaved = false;
            s.status = format!("session saved to {dir}");
            None
        }
        JobEvent::Failed(msg) => {
            s.busy = false;
            s.job = None;
            s.error = Some(msg);
            s.pending = None;
            s.aa.running = None;
            None
        }
        JobEvent::Cancelled => {
            s.busy = false;
            s.job = None;
            s.mrc_running = None;
            s.aa.running = None;
            s.status = "cancelled".into();
            // Cancelled to make way for a user job: MRC continues after it.
            if s.pending.is_some() {
                s.mrc_paused = true;
            }
            after_job(s)
        }
    }
}

/// The state after a job ended well; the job that follows by itself, if any.
fn stage_finished(s: &mut State, stage: Stage) -> Option<Cmd> {
    s.busy = false;
    s.job = None;
    match stage {
        Stage::Mrc => {
            s.mrc_done = true;
            s.mrc_running = None;
            s.status = if s.read_only.is_some() {
                "MRC done".into()
            } else {
                "MRC done: Enter fine-tunes the selected module".into()
            };
            if let Some(r) = s.recommended.clone() {
                s.select_module(&r);
            }
        }
        Stage::Finetune => {
            s.ft_done = true;
            if s.read_only.is_some() {
                s.status = "fine-tuning done".into();
                return None;
            }
            return start_job(s, JobCommand::StartSweep, "α sweep");
        }
        Stage::Interpolate | Stage::Refine => {
            s.status = if s.read_only.is_some() {
                "the run's α sweep is done".into()
            } else {
                "←/→ move the α cursor, a accepts, r refines".into()
            };
            if stage == Stage::Interpolate || s.alpha_cursor.is_none() {
                s.alpha_cursor = s.best_alpha;
            }
        }
        Stage::Save => {}
        Stage::Accept => {
            if let (true, Some(alpha)) = (s.ood_enabled, s.accepted_alpha) {
                let what = format!("OOD accuracy of α = {alpha}");
                return start_job(s, JobCommand::StartOod { alpha }, &what);
            }
        }
        Stage::Ood => s.status = "OOD done: s saves the session".into(),
        // `candidates::shown` has said which one.
        Stage::Candidate => {}
        // The result's line (set by `Event::FinalEval`) stays in the status bar.
        Stage::FinalEval => {}
        other => s.status = format!("{other} done"),
    }
    None
}

/// After a job: the one that interrupted MRC, else MRC again where it paused.
fn after_job(s: &mut State) -> Option<Cmd> {
    if s.busy || s.read_only.is_some() {
        return None;
    }
    if let Some((cmd, what)) = s.pending.take() {
        return start_job(s, cmd, &what);
    }
    if s.mrc_paused && !s.mrc_done {
        s.mrc_paused = false;
        return start_job(s, JobCommand::StartMrc, "MRC continues");
    }
    None
}

fn engine_event(s: &mut State, ev: Event) {
    match ev {
        Event::StageStarted {
            stage,
            detail,
            about,
        } => {
            // A followed run starts its stages itself.
            if s.read_only.is_some() && stage != Stage::Load {
                s.busy = true;
            }
            if stage == Stage::Load {
                s.model_info = detail.clone();
                if let Some(StageAbout::Model { device, .. }) = &about {
                    s.device = device.clone();
                }
            }
            if stage == Stage::Ood {
                s.ood_filling_chosen = matches!(
                    about,
                    Some(StageAbout::Ood {
                        model: OodModel::Chosen,
                        ..
                    })
                );
                if s.ood_filling_chosen {
                    s.ood_chosen.clear();
                } else {
                    s.ood_at.clear();
                }
            }
            if stage == Stage::FinalEval {
                super::aa_check::stage_started(s, about.as_ref());
            }
            if let Some(StageAbout::Candidate { label, modules, .. }) = &about {
                super::candidates::followed(s, label, modules);
            }
            if stage == Stage::Finetune {
                s.aa = Default::default();
                s.ft_losses.clear();
                s.ft_stride = 1;
                s.ft_epochs.clear();
                s.ft_epoch = 0;
                s.ft_done = false;
                s.ft_iters = 0;
                s.ft_epoch_starts.clear();
                s.ft_layers.clear();
                // A followed run's layers and epoch count come from here (a log written
                // before typed events has none: the panel then shows what epochs arrive).
                if let Some(StageAbout::Finetune { layers, epochs, .. }) = &about {
                    s.ft_layers = layers.clone();
                    s.ft_total_epochs = *epochs;
                }
                s.sweep.clear();
                s.alpha_cursor = None;
                s.best_alpha = None;
                s.accepted_alpha = None;
            }
            s.job = Some(JobStatus::new(stage, detail, s.now));
        }
        Event::Progress { stage, done, total } => {
            if stage == Stage::Mrc {
                s.mrc_total = total;
            }
            if let Some(j) = &mut s.job {
                j.record(done, total, s.now);
            }
        }
        Event::Baseline {
            clean_acc,
            robust_acc,
            n,
        } => s.baseline = Some((clean_acc, robust_acc, n)),
        // The adversarial set's own sanity numbers are in the status line via AdvSetReady.
        Event::AdvSetBaseline { .. } => {}
        Event::AdvSetReady { n, loss, acc } => s.adv_set = Some((n, loss, acc)),
        Event::ModuleEpoch {
            module,
            epoch,
            loss,
            ..
        } => {
            let r = s.mrc_running.get_or_insert_with(|| RunningModule {
                name: module.clone(),
                epoch,
                loss,
                losses: Vec::new(),
            });
            if r.name != module {
                r.name = module;
                r.losses.clear();
            }
            r.epoch = epoch;
            r.loss = loss;
            r.losses.push(loss);
        }
        Event::ModuleScored { score } => {
            let selected = s.selected_row().map(|r| r.name.to_string());
            s.mrc_running = None;
            s.modules.retain(|m| m.name != score.name);
            s.modules.push(score);
            s.recommended = s
                .modules
                .iter()
                .filter(|m| !m.mrc.is_nan())
                .min_by(|a, b| criticality_cmp(a.mrc, b.mrc).then(a.depth.cmp(&b.depth)))
                .map(|m| m.name.clone());
            // No unsaved mark: the worker writes each exact score to the session's
            // partial file, and the finished MRC to session.yaml.
            if let Some(name) = selected {
                s.select_module(&name);
            }
        }
        Event::FinetuneIter {
            epoch, loss, lr, ..
        } => {
            if s.ft_epoch_starts.is_empty() || epoch != s.ft_epoch {
                s.ft_epoch_starts.push(s.ft_iters);
            }
            s.ft_epoch = epoch;
            s.ft_lr = lr;
            s.push_loss(loss);
        }
        Event::FinetuneEpoch { log } => {
            s.ft_epochs.retain(|e| e.epoch != log.epoch);
            s.ft_epochs.push(log);
            s.unsaved = true;
        }
        Event::SweepPoint { point } => {
            s.sweep.retain(|p| p.alpha != point.alpha);
            s.sweep.push(point);
            s.sweep.sort_by(|a, b| a.alpha.total_cmp(&b.alpha));
            s.best_alpha = Some(choose_alpha(&s.sweep, s.tolerance));
            s.unsaved = true;
        }
        Event::Warning { message } => s.status = format!("warning: {message}"),
        Event::Failed { message } => s.error = Some(message),
        Event::Corruption { result } => {
            let v = if s.ood_filling_chosen {
                &mut s.ood_chosen
            } else {
                &mut s.ood_at
            };
            v.retain(|c| c.name != result.name);
            v.push(result);
            s.unsaved = true;
        }
        Event::AutoAttack { update } => super::aa_check::progress(s, update),
        Event::FinalEval { summary } => super::aa_check::finished(s, summary),
        Event::StageFinished { .. }
        | Event::TrainEpoch { .. }
        | Event::LogFormat { .. }
        | Event::Batch { .. } => {}
        Event::ModuleEstimated {
            module,
            depth,
            estimate,
            estimate_step,
            kind,
            shape,
            params,
        } => {
            let selected = s.selected_row().map(|r| r.name.to_string());
            s.estimates.retain(|e| e.name != module);
            s.estimates.push(ModuleEstimate {
                name: module,
                depth,
                kind,
                shape,
                params,
                estimate,
                estimate_step,
            });
            if let Some(name) = selected {
                s.select_module(&name);
            }
        }
        Event::ScreenFinished { modules, .. } => {
            s.status = format!(
                "{modules} first-order estimates (not in the paper); exact MRC follows, lowest estimate first"
            );
        }
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
pub(super) mod tests;

#[cfg(test)]
#[path = "update_view_tests.rs"]
mod view_tests;

#[cfg(test)]
#[path = "update_mrc_tests.rs"]
mod mrc_tests;
