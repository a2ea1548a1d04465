//! Clean and PGD-robust accuracy over (the first `limit` samples of) a test set.
use super::adv_examples::{AdvExamples, PerturbationCheck};
use super::attack::{clean_correct, robust_correct, AttackError, Noise, PgdConfig};
use super::batches::range_batch;
use super::data::ImageSet;
use super::models::Model;
use super::CancelFlag;
use serde::Serialize;
use std::time::Instant;
use tch::Tensor;

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct EvalResult {
    /// Percent.
    pub clean_acc: f64,
    /// Percent; None when no attack was run.
    pub robust_acc: Option<f64>,
    pub n: usize,
    pub clean_correct: usize,
    pub robust_correct: Option<usize>,
    pub seconds: f64,
}

/// What an evaluation measures: clean accuracy of the first `limit` samples, and robust
/// accuracy under `attack` whose random starts are keyed per sample by `seed` (sample i gets
/// the same start in every run, batch size and shard: the baseline is the sweep's α = 0).
#[derive(Clone, Copy, Debug)]
pub struct EvalPlan<'a> {
    pub attack: Option<&'a PgdConfig>,
    pub seed: u64,
    pub limit: Option<usize>,
    pub batch_size: usize,
}

/// Per-sample verdicts of an evaluation, in sample order: what paired intervals need
/// (two models judged on the same samples, `final_stats::PairedDifference`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdicts {
    pub clean: Vec<bool>,
    /// Empty when no attack was run.
    pub robust: Vec<bool>,
}

/// Evaluates `model` on `set[..plan.limit]` in batches; `progress(done, total)` after each
/// batch.
pub fn evaluate(
    model: &Model,
    set: &ImageSet,
    plan: &EvalPlan,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalResult, AttackError> {
    let mut kept = Kept::default();
    evaluate_inner(model, set, plan, cancel, progress, &mut kept, Keep::Counts)
}

/// `evaluate`, also keeping every sample's clean and robust verdict.
pub fn evaluate_verdicts(
    model: &Model,
    set: &ImageSet,
    plan: &EvalPlan,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(EvalResult, Verdicts), AttackError> {
    let mut kept = Kept::default();
    let r = evaluate_inner(
        model,
        set,
        plan,
        cancel,
        progress,
        &mut kept,
        Keep::Verdicts,
    )?;
    Ok((r, kept.verdicts))
}

/// What an evaluation keeps besides its counts.
#[derive(Default)]
pub struct Kept {
    pub verdicts: Verdicts,
    /// The attack's output for every point, with `keep_adv` and an attack.
    pub adv: Option<AdvExamples>,
    /// The reference's closing check over the attack's outputs (empty without an attack).
    pub check: PerturbationCheck,
}

/// `evaluate`, keeping every sample's verdicts, the check on the attack's outputs and,
/// with `keep_adv`, the outputs themselves (on the CPU).
pub fn evaluate_keeping(
    model: &Model,
    set: &ImageSet,
    plan: &EvalPlan,
    keep_adv: bool,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(EvalResult, Kept), AttackError> {
    let n = plan.limit.map_or(set.n, |l| l.min(set.n));
    let mut kept = Kept {
        adv: match (keep_adv, plan.attack) {
            (true, Some(_)) => Some(AdvExamples::clean(set, n)?),
            _ => None,
        },
        ..Kept::default()
    };
    let r = evaluate_inner(
        model,
        set,
        plan,
        cancel,
        progress,
        &mut kept,
        Keep::Evidence,
    )?;
    Ok((r, kept))
}

/// What `evaluate_inner` keeps beyond the counts: the sweep, the baseline and the benches
/// call it per batch many times over and pay for no more than they read.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Keep {
    Counts,
    Verdicts,
    /// Verdicts, the perturbation check and (when `Kept::adv` is there) the examples.
    Evidence,
}

fn flags(t: &tch::Tensor) -> Result<Vec<bool>, tch::TchError> {
    let t = t
        .f_to_kind(tch::Kind::Bool)?
        .f_to_device(tch::Device::Cpu)?;
    Vec::<bool>::try_from(&t)
}

fn evaluate_inner(
    model: &Model,
    set: &ImageSet,
    plan: &EvalPlan,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(usize, usize),
    kept: &mut Kept,
    keep: Keep,
) -> Result<EvalResult, AttackError> {
    let start = Instant::now();
    let n = plan.limit.map_or(set.n, |l| l.min(set.n));
    let batch_size = plan.batch_size.max(1);
    let (attack, noise) = (
        plan.attack,
        Noise::Keyed {
            seed: plan.seed,
            first: 0,
        },
    );
    let (mut clean, mut robust) = (0usize, 0usize);
    let mut i = 0;
    while i < n {
        if cancel.is_cancelled() {
            return Err(AttackError::Cancelled);
        }
        let end = (i + batch_size).min(n);
        let (x, y) = range_batch(set, i, end, model.device())?;
        let ok = clean_correct(model, &x, &y)?;
        clean += ok.f_sum(tch::Kind::Int64)?.int64_value(&[]) as usize;
        if keep >= Keep::Verdicts {
            kept.verdicts.clean.extend(flags(&ok)?);
        }
        if let Some(cfg) = attack {
            let (ok, adv) = robust_correct(model, &x, &y, cfg, noise.at(i), cancel)?;
            robust += ok.f_sum(tch::Kind::Int64)?.int64_value(&[]) as usize;
            if keep >= Keep::Verdicts {
                kept.verdicts.robust.extend(flags(&ok)?);
            }
            if keep == Keep::Evidence {
                // Every point's output is an adversarial candidate (its verdict's image).
                let every = Tensor::f_ones([(end - i) as i64], (tch::Kind::Bool, x.device()))?;
                kept.check
                    .merge(&PerturbationCheck::of_batch(&x, &adv, &every, cfg.norm)?);
                if let Some(store) = kept.adv.as_mut() {
                    let idx: Vec<usize> = (i..end).collect();
                    store.put(&idx, &adv, &every)?;
                }
            }
        }
        i = end;
        progress(i, n);
    }
    let pct = |c: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * c as f64 / n as f64
        }
    };
    Ok(EvalResult {
        clean_acc: pct(clean),
        robust_acc: attack.map(|_| pct(robust)),
        n,
        clean_correct: clean,
        robust_correct: attack.map(|_| robust),
        seconds: start.elapsed().as_secs_f64(),
    })
}
