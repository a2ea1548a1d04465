//! The first stage of a session (`rift run` and the explorer): clean and robust accuracy of
//! the AT model on the test split, with the events the panels and logs show.
use super::events::{Event, Sink, Stage};
use crate::engine::attack::{AttackError, Noise, PgdConfig};
use crate::engine::data::ImageSet;
use crate::engine::eval::{evaluate, EvalResult};
use crate::engine::models::Model;
use crate::engine::CancelFlag;

/// Evaluates `model` on `test[..limit]` under `attack` (random starts keyed by `seed`, as
/// the α sweep's, so this is its α = 0 point); emits `StageStarted`, `Progress` per batch
/// and `Baseline`.
#[allow(clippy::too_many_arguments)]
pub fn baseline(
    model: &Model,
    test: &ImageSet,
    attack: &PgdConfig,
    seed: u64,
    limit: Option<usize>,
    batch_size: usize,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<EvalResult, AttackError> {
    sink(Event::started_text(
        Stage::Baseline,
        format!(
            "{} on {} test images",
            model.spec.name(),
            limit.map_or(test.n, |l| l.min(test.n))
        ),
    ));
    let r = evaluate(
        model,
        test,
        Some(attack),
        Noise::Keyed { seed, first: 0 },
        limit,
        batch_size,
        cancel,
        &mut |done, total| {
            sink(Event::Progress {
                stage: Stage::Baseline,
                done,
                total,
            })
        },
    )?;
    sink(Event::Baseline {
        clean_acc: r.clean_acc,
        robust_acc: r.robust_acc.unwrap_or(0.0),
        n: r.n,
    });
    Ok(r)
}
