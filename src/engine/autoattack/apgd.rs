//! APGD (Croce & Hein 2020, Alg. 1), L∞ and L2: a step size that starts at 2ε and halves
//! at checkpoints where the loss oscillated or stalled (restarting from the best point),
//! momentum 0.75, and per sample the best point kept. Losses: cross-entropy, DLR, and the
//! targeted DLR of APGD-T against the top-`targets` classes. Under L∞ the step follows the
//! gradient's sign and the start is uniform in the ball's surface box; under L2, as the
//! reference's `L2` branch: the start is at distance ε along a Gaussian direction, the step
//! follows the L2-normalised gradient, and each point is projected by shortening its
//! perturbation to ε and clipping to [0, 1] (`norms::project_l2_ball`).
//!
//! A sample is finished once fooled (an APGD run never un-fools a sample), so fooled rows
//! leave the batch: the rest run exactly as before, on a smaller batch.
use super::{keep_rows, logits, per_sample, rows, streams, AaConfig, AaError, AttackKind};
use crate::engine::models::Model;
use crate::engine::norms::{l2_normalize, linf_normalize, project_l2_ball, Norm};
use crate::engine::CancelFlag;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApgdLoss {
    Ce,
    Dlr,
    /// DLR towards a target class (APGD-T).
    DlrTargeted,
}

/// Per-sample loss the attack ascends.
pub fn loss_per_sample(
    logits: &Tensor,
    y: &Tensor,
    target: Option<&Tensor>,
    loss: ApgdLoss,
) -> Result<Tensor, tch::TchError> {
    let at = |t: &Tensor| {
        logits
            .f_gather(1, &t.f_unsqueeze(1)?, false)?
            .f_squeeze_dim(1)
    };
    match loss {
        ApgdLoss::Ce => {
            logits.f_cross_entropy_loss::<Tensor>(y, None, tch::Reduction::None, -100, 0.0)
        }
        ApgdLoss::Dlr => {
            let (sorted, order) = logits.f_sort(1, false)?;
            let col = |i: i64| sorted.f_select(1, i);
            let top_is_y = order
                .f_select(1, -1)?
                .f_eq_tensor(y)?
                .f_to_kind(Kind::Float)?;
            let other: Tensor = col(-2)? * &top_is_y + col(-1)? * (1.0 - &top_is_y);
            let scale: Tensor = col(-1)? - col(-3)? + 1e-12;
            let gap: Tensor = at(y)? - other;
            Ok(-gap / scale)
        }
        ApgdLoss::DlrTargeted => {
            let (sorted, _) = logits.f_sort(1, false)?;
            let col = |i: i64| sorted.f_select(1, i);
            let t = target
                .ok_or_else(|| tch::TchError::Kind("targeted DLR without a target class".into()))?;
            let scale: Tensor = col(-1)? - (col(-3)? + col(-4)?) * 0.5 + 1e-12;
            let gap: Tensor = at(y)? - at(t)?;
            Ok(-gap / scale)
        }
    }
}

/// Loss, gradient of its sum, and prediction-correctness at `x`. With `eot` > 1 the
/// gradient is the mean over that many passes (EOT, for randomised models); loss and
/// prediction are the last pass's, as the reference's.
fn loss_and_grad(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    target: Option<&Tensor>,
    loss: ApgdLoss,
    eot: usize,
) -> Result<(Tensor, Tensor, Tensor), tch::TchError> {
    let mut sum: Option<Tensor> = None;
    let mut last = None;
    for _ in 0..eot.max(1) {
        let a = x.f_detach()?.set_requires_grad(true);
        let z = logits(model, &a)?;
        let l = loss_per_sample(&z, y, target, loss)?;
        let g = Tensor::f_run_backward(&[&l.f_sum(Kind::Float)?], &[&a], false, false)?;
        let g = g.into_iter().next().unwrap_or_else(|| a.zeros_like());
        sum = Some(match sum {
            Some(s) => s + g,
            None => g,
        });
        last = Some((l.f_detach()?, z.f_argmax(1, false)?.f_eq_tensor(y)?));
    }
    let (l, correct) = last.ok_or_else(|| tch::TchError::Kind("no EOT pass".into()))?;
    let g = sum.ok_or_else(|| tch::TchError::Kind("no EOT pass".into()))?;
    let g = if eot > 1 { g / eot as f64 } else { g };
    Ok((l, g, correct))
}

/// Uniform noise in [−1, 1] shaped like `x`, row s from `rngs[s]`.
pub(crate) fn uniform_like(x: &Tensor, rngs: &mut [ChaCha8Rng]) -> Result<Tensor, tch::TchError> {
    let per = x.numel() / rngs.len().max(1);
    let mut v = Vec::with_capacity(x.numel());
    for r in rngs.iter_mut() {
        v.extend((0..per).map(|_| r.gen_range(-1.0f32..=1.0)));
    }
    Tensor::f_from_slice(&v)?
        .f_view(x.size().as_slice())?
        .f_to_device(x.device())
}

/// Standard normal noise shaped like `x`, row s from `rngs[s]`.
pub(crate) fn gaussian_like(x: &Tensor, rngs: &mut [ChaCha8Rng]) -> Result<Tensor, tch::TchError> {
    let per = x.numel() / rngs.len().max(1);
    let mut v = Vec::with_capacity(x.numel());
    for r in rngs.iter_mut() {
        v.extend((0..per).map(|_| crate::engine::attack::standard_normal(r)));
    }
    Tensor::f_from_slice(&v)?
        .f_view(x.size().as_slice())?
        .f_to_device(x.device())
}

/// Projection onto the ε-ball around `x` and onto [0, 1].
fn project(p: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor, tch::TchError> {
    p.f_max_other(lo)?.f_min_other(hi)?.f_clamp(0.0, 1.0)
}

/// The region a run stays in: the L∞ box [lo, hi] ∩ [0, 1], or the L2 ball of radius
/// `eps` around `x0` (then [0, 1]).
struct Region<'a> {
    norm: Norm,
    eps: f64,
    x0: &'a Tensor,
    lo: &'a Tensor,
    hi: &'a Tensor,
}

impl Region<'_> {
    fn project(&self, p: &Tensor) -> Result<Tensor, tch::TchError> {
        match self.norm {
            Norm::Linf => project(p, self.lo, self.hi),
            Norm::L2 => project_l2_ball(self.x0, p, self.eps),
        }
    }

    /// One APGD step from `x_adv` with per-sample `step` along `grad`, mixed with the last
    /// move `momentum` (weight 1 − a), each stage projected back.
    fn step(
        &self,
        x_adv: &Tensor,
        grad: &Tensor,
        step: &Tensor,
        momentum: &Tensor,
        a: f64,
    ) -> Result<Tensor, tch::TchError> {
        let direction = match self.norm {
            Norm::Linf => grad.f_sign()?,
            Norm::L2 => l2_normalize(grad)?,
        };
        let z = self.project(&(x_adv + step * direction))?;
        self.project(&(x_adv + (z - x_adv) * a + momentum * (1.0 - a)))
    }
}

/// The schedule's lengths for `iters` iterations: first checkpoint, minimum and decrement.
fn schedule(iters: usize) -> (usize, usize, usize) {
    let f = |r: f64| ((r * iters as f64) as usize).max(1);
    (f(0.22), f(0.06), f(0.03))
}

/// The still-robust points one APGD run attacks, row for row: inputs in [0, 1], labels,
/// and for APGD-T the class each row is pushed towards.
#[derive(Clone, Copy)]
pub struct ApgdBatch<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
    pub target: Option<&'a Tensor>,
}

/// One APGD run on a batch of still-robust points. Returns per sample whether it is still
/// correctly classified, and the adversarial point where it is not (the clean point otherwise).
pub fn run(
    model: &Model,
    batch: ApgdBatch,
    loss: ApgdLoss,
    cfg: &AaConfig,
    rngs: &mut [ChaCha8Rng],
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let ApgdBatch { x, y, target } = batch;
    let n = rows(x);
    let iters = cfg.apgd_iters;
    let eps = cfg.eps;
    let mut out_adv = x.f_detach()?;
    let mut out_robust = Tensor::f_ones([n], (Kind::Bool, x.device()))?;

    // Active rows: their index in the batch and all per-sample state.
    let mut active = Tensor::f_arange(n, (Kind::Int64, x.device()))?;
    let mut x0 = x.f_detach()?;
    let mut y = y.shallow_clone();
    let mut target = match target {
        Some(t) => t.shallow_clone(),
        None => y.shallow_clone(),
    };
    let targeted = loss == ApgdLoss::DlrTargeted;
    let start = match cfg.norm {
        Norm::Linf => linf_normalize(&uniform_like(&x0, rngs)?)?,
        Norm::L2 => l2_normalize(&gaussian_like(&x0, rngs)?)?,
    };
    let mut x_adv = (&x0 + start * eps).f_clamp(0.0, 1.0)?;
    let mut lo = x0.f_sub_scalar(eps)?;
    let mut hi = x0.f_add_scalar(eps)?;
    let (mut l, mut grad, correct) = loss_and_grad(
        model,
        &x_adv,
        &y,
        targeted.then_some(&target),
        loss,
        cfg.eot_iter,
    )?;
    let mut x_best = x_adv.shallow_clone();
    let mut grad_best = grad.shallow_clone();
    let mut loss_best = l.shallow_clone();
    let mut step = Tensor::f_full([n, 1, 1, 1], 2.0 * eps, (Kind::Float, x.device()))?;
    let mut x_old = x_adv.shallow_clone();
    let mut loss_steps = Tensor::f_zeros([n, iters as i64], (Kind::Float, x.device()))?;
    let mut best_at_check = loss_best.shallow_clone();
    let mut reduced_at_check = Tensor::f_ones([n], (Kind::Bool, x.device()))?;
    // The start itself may already fool a sample.
    let mut fooled = correct.f_logical_not()?;
    record(&fooled, &active, &x_adv, &mut out_adv, &mut out_robust)?;
    let (first, min_len, decr) = schedule(iters);
    let mut k = first;
    let mut since_check = 0;
    for i in 0..iters {
        // Fooled rows are done (recorded when fooled): drop them from the batch.
        if fooled.f_any()?.int64_value(&[]) != 0 {
            let keep = fooled.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
            if keep.numel() == 0 {
                return Ok((out_robust, out_adv));
            }
            keep_rows(
                &mut [
                    &mut active,
                    &mut x0,
                    &mut y,
                    &mut target,
                    &mut x_adv,
                    &mut lo,
                    &mut hi,
                    &mut l,
                    &mut grad,
                    &mut x_best,
                    &mut grad_best,
                    &mut loss_best,
                    &mut step,
                    &mut x_old,
                    &mut loss_steps,
                    &mut best_at_check,
                    &mut reduced_at_check,
                ],
                &keep,
            )?;
        }
        if cancel.is_cancelled() {
            return Err(AaError::Cancelled);
        }
        let momentum = x_adv.f_sub(&x_old)?;
        x_old = x_adv.shallow_clone();
        let a = if i > 0 { 0.75 } else { 1.0 };
        let region = Region {
            norm: cfg.norm,
            eps,
            x0: &x0,
            lo: &lo,
            hi: &hi,
        };
        x_adv = region.step(&x_adv, &grad, &step, &momentum, a)?;
        let (li, gi, correct) = loss_and_grad(
            model,
            &x_adv,
            &y,
            targeted.then_some(&target),
            loss,
            cfg.eot_iter,
        )?;
        l = li;
        grad = gi;
        fooled = correct.f_logical_not()?;
        record(&fooled, &active, &x_adv, &mut out_adv, &mut out_robust)?;
        loss_steps = loss_steps.f_index_copy(
            1,
            &Tensor::f_from_slice(&[i as i64])?.f_to_device(x.device())?,
            &l.f_unsqueeze(1)?,
        )?;
        let improved = l.f_gt_tensor(&loss_best)?;
        let im4 = per_sample(&improved)?;
        x_best = x_adv.f_where_self(&im4, &x_best)?;
        grad_best = grad.f_where_self(&im4, &grad_best)?;
        loss_best = l.f_where_self(&improved, &loss_best)?;
        since_check += 1;
        if since_check == k {
            // Oscillation: the loss rose in at most ρ·k of the last k steps.
            let mut rises = Tensor::f_zeros([rows(&l)], (Kind::Float, x.device()))?;
            for c in 0..k {
                let now = (i as i64) - c as i64;
                let before = (now - 1).rem_euclid(iters as i64);
                let up = loss_steps
                    .f_select(1, now)?
                    .f_gt_tensor(&loss_steps.f_select(1, before)?)?;
                rises += up.f_to_kind(Kind::Float)?;
            }
            let oscillated = rises.f_le(k as f64 * 0.75)?;
            let stalled = reduced_at_check
                .f_logical_not()?
                .f_logical_and(&best_at_check.f_ge_tensor(&loss_best)?)?;
            let halve = oscillated.f_logical_or(&stalled)?;
            reduced_at_check = halve.shallow_clone();
            best_at_check = loss_best.shallow_clone();
            let h4 = per_sample(&halve)?;
            step = (&step * 0.5).f_where_self(&h4, &step)?;
            x_adv = x_best.f_where_self(&h4, &x_adv)?;
            grad = grad_best.f_where_self(&h4, &grad)?;
            k = k.saturating_sub(decr).max(min_len);
            since_check = 0;
        }
    }
    Ok((out_robust, out_adv))
}

/// Writes the fooled rows of the active batch into the outputs, at their batch positions.
fn record(
    fooled: &Tensor,
    active: &Tensor,
    x_adv: &Tensor,
    out_adv: &mut Tensor,
    out_robust: &mut Tensor,
) -> Result<(), tch::TchError> {
    if fooled.f_any()?.int64_value(&[]) == 0 {
        return Ok(());
    }
    let idx = active.f_masked_select(fooled)?;
    let pts = x_adv.f_index_select(0, &fooled.f_nonzero()?.f_squeeze_dim(1)?)?;
    *out_adv = out_adv.f_index_copy(0, &idx, &pts)?;
    *out_robust = out_robust.f_index_fill(0, &idx, 0)?;
    Ok(())
}

/// APGD-CE / APGD-DLR with `cfg.apgd_restarts` restarts, or APGD-T over the top
/// `cfg.targets` classes (one run per target, each on the points still robust).
/// `keys` are the samples' indices in the evaluated set. Returns per-sample robustness
/// and adversarial points.
pub fn attack(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    kind: AttackKind,
    cfg: &AaConfig,
    keys: &[usize],
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let (loss, runs) = match kind {
        AttackKind::ApgdCe => (ApgdLoss::Ce, cfg.apgd_restarts),
        AttackKind::ApgdDlr => (ApgdLoss::Dlr, cfg.apgd_restarts),
        AttackKind::ApgdT => (ApgdLoss::DlrTargeted, cfg.targets),
        other => {
            return Err(AaError::Config(format!(
                "{} is not an APGD attack",
                other.name()
            )))
        }
    };
    // Target classes come from the clean logits, ranked: the r-th run aims at rank r + 2.
    let ranking = if loss == ApgdLoss::DlrTargeted {
        Some(tch::no_grad(|| logits(model, x)?.f_argsort(1, false))?)
    } else {
        None
    };
    let mut robust = Tensor::f_ones([rows(x)], (Kind::Bool, x.device()))?;
    let mut adv = x.f_detach()?;
    for r in 0..runs {
        let idx = robust.f_nonzero()?.f_squeeze_dim(1)?;
        if idx.numel() == 0 {
            break;
        }
        let picked: Vec<i64> = Vec::<i64>::try_from(&idx.f_to_device(tch::Device::Cpu)?)?;
        let sub_keys: Vec<usize> = picked.iter().map(|&i| keys[i as usize]).collect();
        let mut rngs = streams(cfg.seed, kind, r as u64, &sub_keys);
        let xs = x.f_index_select(0, &idx)?;
        let ys = y.f_index_select(0, &idx)?;
        let target = match &ranking {
            Some(order) => Some(
                order
                    .f_index_select(0, &idx)?
                    .f_select(1, -(r as i64) - 2)?,
            ),
            None => None,
        };
        let batch = ApgdBatch {
            x: &xs,
            y: &ys,
            target: target.as_ref(),
        };
        let (still, pts) = run(model, batch, loss, cfg, &mut rngs, cancel)?;
        super::merge_broken(&idx, &still, &pts, &mut robust, &mut adv)?;
    }
    Ok((robust, adv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_the_published_one() {
        assert_eq!(schedule(100), (22, 6, 3));
        assert_eq!(schedule(10), (2, 1, 1));
    }

    #[test]
    fn dlr_is_zero_at_a_tie_and_negative_when_correct() {
        let z = Tensor::from_slice(&[3.0f32, 1.0, 0.0, -1.0]).view([1, 4]);
        let y = Tensor::from_slice(&[0i64]);
        let l = loss_per_sample(&z, &y, None, ApgdLoss::Dlr).unwrap();
        // -(3 - 1) / (3 - 0) = -2/3
        assert!((l.double_value(&[0]) + 2.0 / 3.0).abs() < 1e-6);
        let t = Tensor::from_slice(&[1i64]);
        let lt = loss_per_sample(&z, &y, Some(&t), ApgdLoss::DlrTargeted).unwrap();
        // -(3 - 1) / (3 - (0 + -1)/2) = -2/3.5
        assert!((lt.double_value(&[0]) + 2.0 / 3.5).abs() < 1e-6);
    }
}
