//! The first stage of a session (`rift run` and the explorer): clean and robust accuracy of
//! the AT model on the test split, with the events the panels and logs show.
use crate::engine::attack::AttackError;
use crate::engine::data::ImageSet;
use crate::engine::eval::{evaluate_verdicts, EvalPlan, EvalResult, Verdicts};
use crate::engine::models::Model;
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::CancelFlag;

/// Evaluates `model` on `test` as `plan` says (the α sweep's plan, so this is its α = 0
/// point); emits `StageStarted`, `Progress` per batch and `Baseline`. The per-sample
/// verdicts come back too, for paired comparisons against the AT model.
pub fn baseline(
    model: &Model,
    test: &ImageSet,
    plan: &EvalPlan,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<(EvalResult, Verdicts), AttackError> {
    let limit = plan.limit;
    sink(Event::started_text(
        Stage::Baseline,
        format!(
            "{} on {} test images",
            model.spec.name(),
            limit.map_or(test.n, |l| l.min(test.n))
        ),
    ));
    let (r, v) = evaluate_verdicts(model, test, plan, cancel, &mut |done, total| {
        sink(Event::Progress {
            stage: Stage::Baseline,
            done,
            total,
        })
    })?;
    sink(Event::Baseline {
        clean_acc: r.clean_acc,
        robust_acc: r.robust_acc.unwrap_or(0.0),
        n: r.n,
    });
    Ok((r, v))
}
