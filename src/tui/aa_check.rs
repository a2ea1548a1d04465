//! The explorer's AutoAttack check of the accepted α (`e`): its state (plain data) and how
//! the worker's events change it. The worker runs the same `Pipeline::final_eval` as
//! `rift run --final-eval`; the α panel shows the result beside PGD's.
pub use super::aa_state::{model_name, AaCheck, AaRunning};
use super::state::{JobStatus, State};
use crate::engine::autoattack::ensemble::AaUpdate;
use crate::engine::rift::events::{OodModel, Stage, StageAbout};
use crate::engine::rift::final_eval::FinalEvalSummary;
use crate::jobs::JobCommand;

/// `e`: the job that checks the accepted α with AutoAttack (and what to call it), or
/// none yet (the status says why).
pub fn command(s: &mut State) -> Option<(JobCommand, String)> {
    let Some(alpha) = s.accepted_alpha else {
        s.status = "accept an α first (a), then e checks it with AutoAttack".into();
        return None;
    };
    let what = format!("AutoAttack of AT and α = {alpha}");
    Some((JobCommand::StartFinalEval { alpha }, what))
}

/// A final-evaluation stage starts for one model.
pub fn stage_started(s: &mut State, about: Option<&StageAbout>) {
    if let Some(StageAbout::FinalEval { model, .. }) = about {
        // A check starts with the AT model: the previous check's numbers go.
        if *model == OodModel::At {
            s.aa = AaCheck::default();
        }
        s.aa.model = Some(*model);
        s.aa.chosen_attacks.clear();
    }
}

/// Per-attack progress: the running line, and the job's bar and ETA per attack.
pub fn progress(s: &mut State, u: AaUpdate) {
    let model = s.aa.model.unwrap_or(OodModel::At);
    match u {
        AaUpdate::Started {
            attack,
            points,
            done,
        } => {
            s.aa.running = Some(AaRunning {
                model,
                attack: attack.clone(),
                done,
                total: points,
                done_at_start: done,
                started: s.now,
            });
            if let Some(j) = &mut s.job {
                let detail = format!("{} {attack}", model_name(model));
                *j = JobStatus::new(Stage::FinalEval, detail, s.now);
                j.total = points.saturating_sub(done);
            }
        }
        AaUpdate::Progress {
            attack,
            done,
            total,
        } => {
            let r = s.aa.running.get_or_insert_with(|| AaRunning {
                model,
                attack: attack.clone(),
                done,
                total,
                done_at_start: 0,
                started: s.now,
            });
            r.attack = attack;
            r.done = done;
            r.total = total;
            if let Some(j) = &mut s.job {
                j.done = done.saturating_sub(r.done_at_start);
                j.total = total.saturating_sub(r.done_at_start);
            }
        }
        AaUpdate::Finished { outcome } => {
            s.aa.running = None;
            let v = match model {
                OodModel::At => &mut s.aa.at_attacks,
                OodModel::Chosen => &mut s.aa.chosen_attacks,
            };
            v.retain(|(a, _)| *a != outcome.attack);
            v.push((outcome.attack, outcome.robust_acc));
        }
    }
}

/// The check is done: its numbers stay in the α panel.
pub fn finished(s: &mut State, summary: FinalEvalSummary) {
    s.aa.running = None;
    s.aa.model = None;
    s.status = format!(
        "AutoAttack: AT {:.2}% · α = {} {:.2}% · Δ {:+.2} [{:+.2}, {:+.2}]",
        summary.at_robust,
        summary.alpha,
        summary.chosen_robust,
        summary.difference,
        summary.ci95[0],
        summary.ci95[1]
    );
    s.aa.result = Some(summary);
    s.unsaved = true;
}

#[cfg(test)]
#[path = "update_aa_tests.rs"]
mod tests;
