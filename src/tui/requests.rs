//! `s` and `a` while a job runs: sent as `JobCommand::Request`s, which the worker serves
//! between the running job's batches (`jobs/requests.rs`) without ending it, so the UI
//! stays busy with that job. `s` saves the finished stages and the α points so far; `a`
//! writes the weights of an α already measured (the α cursor only rests on measured
//! points). With a corrupted set, OOD accuracy of the accepted α follows as its own job
//! once the worker is free, as it does after an `a` while idle.
use super::state::State;
use crate::engine::rift::events::Stage;
use crate::jobs::{JobCommand, JobRequest};

/// `s` while busy: the request to send.
pub(super) fn save(s: &mut State) -> Option<JobRequest> {
    s.status = "saving what is finished so far (the job continues)".into();
    Some(JobRequest::Save)
}

/// `a` on the measured `alpha` while busy: the request to send, if any.
pub(super) fn accept(s: &mut State, alpha: f64) -> Option<JobRequest> {
    if s.job.as_ref().is_some_and(|j| j.stage == Stage::Finetune) {
        s.status =
            "fine-tuning replaces the endpoints: accept an α once its sweep measures it".into();
        return None;
    }
    s.requested_accept = Some(alpha);
    s.status = format!("writing the chosen model for α = {alpha} (the job continues)");
    Some(JobRequest::Accept { alpha })
}

/// The worker wrote the weights of a requested α: its OOD accuracy next (after the
/// running job, if one still runs). Some: the job to start now (the worker is free).
pub(super) fn accepted(s: &mut State, alpha: f64) -> Option<(JobCommand, String)> {
    if s.requested_accept != Some(alpha) {
        return None;
    }
    s.requested_accept = None;
    if !s.ood_enabled {
        return None;
    }
    let ood = JobCommand::StartOod { alpha };
    let what = format!("OOD accuracy of α = {alpha}");
    if !s.busy {
        return Some((ood, what));
    }
    if s.pending.is_none() {
        s.pending = Some((ood, what));
    }
    None
}

/// A request the worker could not serve: the running job is unaffected.
pub(super) fn failed(s: &mut State, message: String) {
    s.requested_accept = None;
    s.error = Some(message);
}
