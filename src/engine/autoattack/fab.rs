//! FAB (Croce & Hein 2020, L∞ or L2), targeted (FAB-T) and untargeted: at each step the
//! decision boundary between the true and the target class (untargeted: the class whose
//! linearised boundary is closest in the norm) is linearised, and the point moves to the closest point of
//! that hyperplane from both the current iterate and the clean input (a convex
//! combination, α ≤ α_max, with overshoot η); a success is pulled back towards the clean
//! input by β. The smallest perturbation found counts if it is within ε. Norms enter in
//! the projection (`fab_projections`) and in measuring steps and perturbations.
//!
//! A sample is finished once a success within ε is found (later iterations only shrink
//! the norm further), so such rows leave the batch.
use super::apgd::{gaussian_like, uniform_like};
use super::fab_projections::{project_l2, project_linf};
use super::{keep_rows, logits, per_sample, rows, streams, AaConfig, AaError, AttackKind};
use crate::engine::models::Model;
use crate::engine::norms::{l2_normalize, linf_normalize, Norm};
use crate::engine::CancelFlag;
use tch::{Kind, Tensor};

const ALPHA_MAX: f64 = 0.1;
const ETA: f64 = 1.05;
const BETA: f64 = 0.9;

/// Logit difference (target − true) and its gradient at `x1`.
fn diff_and_grad(
    model: &Model,
    x1: &Tensor,
    y: &Tensor,
    target: &Tensor,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let a = x1.f_detach()?.set_requires_grad(true);
    let z = logits(model, &a)?;
    let at = |t: &Tensor| z.f_gather(1, &t.f_unsqueeze(1)?, false)?.f_squeeze_dim(1);
    let diff = at(target)? - at(y)?;
    let g = Tensor::f_run_backward(&[&diff.f_sum(Kind::Float)?], &[&a], false, false)?;
    let g = g.into_iter().next().unwrap_or_else(|| a.zeros_like());
    Ok((diff.f_detach()?, g))
}

/// The untargeted boundary at `x1`: of the hyperplanes between the true class and every
/// other class (logit differences and their gradients, one backward pass per class), the
/// closest in the norm (distance |Δlogit| / ‖∇Δlogit‖ in the dual norm). Returns (w, Δ).
fn closest_boundary(
    model: &Model,
    x1: &Tensor,
    y: &Tensor,
    norm: Norm,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let bs = rows(x1);
    let a = x1.f_detach()?.set_requires_grad(true);
    let z = logits(model, &a)?;
    let classes = z.size()[1];
    let mut grads = Vec::with_capacity(classes as usize);
    for c in 0..classes {
        let g = Tensor::f_run_backward(
            &[&z.f_select(1, c)?.f_sum(Kind::Float)?],
            &[&a],
            true,
            false,
        )?;
        let g = g.into_iter().next().unwrap_or_else(|| a.zeros_like());
        grads.push(g.f_flatten(1, -1)?);
    }
    let g = Tensor::f_stack(&grads, 1)?;
    let d = g.size()[2];
    let z = z.f_detach()?;
    let yy = y.f_view([-1, 1])?;
    let df = (&z - z.f_gather(1, &yy, false)?).f_scatter_value(1, &yy, 1e10)?;
    let pick = |i: &Tensor| i.f_view([-1, 1, 1])?.f_expand([bs, 1, d], false);
    let dg = &g - g.f_gather(1, &pick(&yy)?, false)?;
    let dual = match norm {
        Norm::Linf => dg
            .f_abs()?
            .f_sum_dim_intlist(&[2i64][..], false, Kind::Float)?,
        Norm::L2 => dg
            .f_square()?
            .f_sum_dim_intlist(&[2i64][..], false, Kind::Float)?
            .f_sqrt()?,
    };
    let closest = (df.f_abs()? / (dual + 1e-12)).f_argmin(1, false)?;
    let w = dg.f_gather(1, &pick(&closest)?, false)?.f_squeeze_dim(1)?;
    let diff = df
        .f_gather(1, &closest.f_view([-1, 1])?, false)?
        .f_squeeze_dim(1)?;
    Ok((w, diff))
}

/// The random start of FAB's later restarts: half the radius along a uniform (L∞) or
/// Gaussian (L2) direction, clipped to [0, 1].
fn random_start(
    x: &Tensor,
    rngs: &mut [rand_chacha::ChaCha8Rng],
    cfg: &AaConfig,
) -> Result<Tensor, tch::TchError> {
    let t = match cfg.norm {
        Norm::Linf => linf_normalize(&uniform_like(x, rngs)?)?,
        Norm::L2 => l2_normalize(&gaussian_like(x, rngs)?)?,
    };
    (x + t * (cfg.eps * 0.5)).f_clamp(0.0, 1.0)
}

/// One FAB run on still-robust points: towards `target` (FAB-T) or the closest boundary
/// (None), from `start` (None: the clean point). Returns per sample whether no success
/// within ε was found, and the found point.
pub fn run(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    target: Option<&Tensor>,
    start: Option<Tensor>,
    cfg: &AaConfig,
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let n = rows(x);
    let eps = cfg.eps;
    let mut out_adv = x.f_detach()?;
    let mut out_robust = Tensor::f_ones([n], (Kind::Bool, x.device()))?;
    let mut active = Tensor::f_arange(n, (Kind::Int64, x.device()))?;
    let mut im = x.f_detach()?;
    let mut y = y.shallow_clone();
    let targeted = target.is_some();
    let mut target = target.map_or_else(|| y.shallow_clone(), |t| t.shallow_clone());
    let mut x1 = start.unwrap_or_else(|| im.shallow_clone());
    let mut best = im.shallow_clone();
    let mut best_norm = Tensor::f_full([n], 1e10, (Kind::Float, x.device()))?;
    for _ in 0..cfg.fab_iters {
        if cancel.is_cancelled() {
            return Err(AaError::Cancelled);
        }
        let bs = rows(&x1);
        let (w, df) = if targeted {
            let (df, dg) = diff_and_grad(model, &x1, &y, &target)?;
            (dg.f_flatten(1, -1)?, df)
        } else {
            closest_boundary(model, &x1, &y, cfg.norm)?
        };
        let b = -&df
            + w.f_mul(&x1.f_flatten(1, -1)?)?
                .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
        let pts = Tensor::f_cat(&[x1.f_flatten(1, -1)?, im.f_flatten(1, -1)?], 0)?;
        let project = match cfg.norm {
            Norm::Linf => project_linf,
            Norm::L2 => project_l2,
        };
        let d3 = project(
            &pts,
            &Tensor::f_cat(&[&w, &w], 0)?,
            &Tensor::f_cat(&[&b, &b], 0)?,
        )?;
        let d1 = d3.f_narrow(0, 0, bs)?.f_view_as(&x1)?;
        let d2 = d3.f_narrow(0, bs, bs)?.f_view_as(&x1)?;
        let a0 = cfg.norm.lengths(&d3)?.f_clamp_min(1e-8)?;
        let (a1, a2) = (a0.f_narrow(0, 0, bs)?, a0.f_narrow(0, bs, bs)?);
        let alpha = per_sample(&(&a1 / (&a1 + &a2)).f_clamp(0.0, ALPHA_MAX)?)?;
        let from_iterate: Tensor = (&x1 + d1 * ETA) * (1.0 - &alpha);
        let from_clean: Tensor = (&im + d2 * ETA) * &alpha;
        x1 = (from_iterate + from_clean).f_clamp(0.0, 1.0)?;
        let is_adv = tch::no_grad(|| logits(model, &x1)?.f_argmax(1, false)?.f_ne_tensor(&y))?;
        let norm = cfg.norm.lengths(&(&x1 - &im))?;
        let better = is_adv.f_logical_and(&norm.f_lt_tensor(&best_norm)?)?;
        best = x1.f_where_self(&per_sample(&better)?, &best)?;
        best_norm = norm.f_where_self(&better, &best_norm)?;
        x1 = (&im + (&x1 - &im) * BETA).f_where_self(&per_sample(&is_adv)?, &x1)?;

        // Successes within ε are final: record them and drop their rows.
        let done = best_norm.f_le(eps)?;
        if done.f_any()?.int64_value(&[]) != 0 {
            let idx = active.f_masked_select(&done)?;
            let rows_done = done.f_nonzero()?.f_squeeze_dim(1)?;
            out_adv = out_adv.f_index_copy(0, &idx, &best.f_index_select(0, &rows_done)?)?;
            out_robust = out_robust.f_index_fill(0, &idx, 0)?;
            let keep = done.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
            if keep.numel() == 0 {
                break;
            }
            keep_rows(
                &mut [
                    &mut active,
                    &mut im,
                    &mut y,
                    &mut target,
                    &mut x1,
                    &mut best,
                    &mut best_norm,
                ],
                &keep,
            )?;
        }
    }
    Ok((out_robust, out_adv))
}

/// FAB-T over the top `cfg.targets` classes of the clean logits (rank 2 first), or
/// untargeted FAB with `cfg.fab_restarts` restarts (later ones from random starts keyed by
/// `keys`), each run on the points still robust.
pub fn attack(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    kind: AttackKind,
    cfg: &AaConfig,
    keys: &[usize],
    cancel: &CancelFlag,
) -> Result<(Tensor, Tensor), AaError> {
    let targeted = kind == AttackKind::FabT;
    let ranking = if targeted {
        Some(tch::no_grad(|| logits(model, x)?.f_argsort(1, false))?)
    } else {
        None
    };
    let runs = if targeted {
        cfg.targets
    } else {
        cfg.fab_restarts
    };
    let mut robust = Tensor::f_ones([rows(x)], (Kind::Bool, x.device()))?;
    let mut adv = x.f_detach()?;
    for r in 0..runs {
        let idx = robust.f_nonzero()?.f_squeeze_dim(1)?;
        if idx.numel() == 0 {
            break;
        }
        let xs = x.f_index_select(0, &idx)?;
        let target = match &ranking {
            Some(order) => Some(
                order
                    .f_index_select(0, &idx)?
                    .f_select(1, -(r as i64) - 2)?,
            ),
            None => None,
        };
        let start = if !targeted && r > 0 {
            let picked = Vec::<i64>::try_from(&idx.f_to_device(tch::Device::Cpu)?)?;
            let sub_keys: Vec<usize> = picked.iter().map(|&i| keys[i as usize]).collect();
            let mut rngs = streams(cfg.seed, kind, r as u64, &sub_keys);
            Some(random_start(&xs, &mut rngs, cfg)?)
        } else {
            None
        };
        let (still, pts) = run(
            model,
            &xs,
            &y.f_index_select(0, &idx)?,
            target.as_ref(),
            start,
            cfg,
            cancel,
        )?;
        super::merge_broken(&idx, &still, &pts, &mut robust, &mut adv)?;
    }
    Ok((robust, adv))
}
